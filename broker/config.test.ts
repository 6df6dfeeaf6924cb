// Broker config parsing (broker/config.ts): flags beat environment beats defaults; `off` ports;
// service accounts; errors name the flag and the variable.
import { describe, expect, it } from 'vitest';
import { loadBrokerConfig, parseServiceAccounts } from './config.ts';
import { isPulseError } from '../shared/errors.ts';

describe('broker config', () => {
  it('has the documented defaults', () => {
    const c = loadBrokerConfig({}, {});
    expect(c).toMatchObject({ mqttPort: 1883, wsPort: 8083, tlsPort: 8883, maxPayload: 1024, skewMs: 30_000, bus: 'jetstream', natsUrl: 'nats://127.0.0.1:4222' });
    expect(c.serviceAccounts.size).toBe(0);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes flags over environment, parses durations and `off` ports', () => {
    const c = loadBrokerConfig({ 'mqtt-port': '2883', 'ws-port': 'off' }, { PULSE_MQTT_PORT: '3883', PULSE_SKEW: '5s', PULSE_DIRECTORY_TTL: '250ms', NATS_URL: 'nats://n:4222' });
    expect(c.mqttPort).toBe(2883);
    expect(c.wsPort).toBeUndefined();
    expect(c.skewMs).toBe(5_000);
    expect(c.directoryTtlMs).toBe(250);
    expect(c.natsUrl).toBe('nats://n:4222');
  });

  it('names the flag and variable of a bad value (CONFIG_INVALID)', () => {
    let e: unknown;
    try {
      loadBrokerConfig({ 'max-payload': 'lots' }, {});
    } catch (x) {
      e = x;
    }
    expect(isPulseError(e, 'CONFIG_INVALID')).toBe(true);
    expect((e as Error).message).toContain('--max-payload / PULSE_MAX_PAYLOAD');
    expect(() => loadBrokerConfig({ bus: 'kafka' }, {})).toThrow(/jetstream or memory/);
  });

  it('parses service accounts and refuses device-shaped user names', () => {
    expect([...parseServiceAccounts('dash:pw1, bridge:p:w')]).toEqual([['dash', 'pw1'], ['bridge', 'p:w']]);
    expect(() => parseServiceAccounts('nopassword')).toThrow(/user:password/);
    expect(() => parseServiceAccounts(`${'a'.repeat(64)}:x`)).toThrow(/device id/);
  });
});
