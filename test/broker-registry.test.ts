// The broker on the oracle's real device registry in PostgreSQL (docs/broker.md §Authentication):
// a connect token accepted by one broker cannot be replayed on another (the registry records token
// timestamps atomically), unknown devices are refused, and a revocation made in the registry closes
// the device's live session without a broker restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { MemoryBus } from '../bus/memory.ts';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { TestDevice, closed, connectDevice } from '../broker/test-kit.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { StoreDeviceDirectory } from '../oracle/registry/store-device-directory.ts';
import { freshDatabase, needs } from './support/services.ts';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ok = await needs('postgres');
const NETWORK = 61;

async function refusedWith(p: Promise<MqttClient>): Promise<number | undefined> {
  try {
    await (await p).endAsync();
    return 0;
  } catch (e) {
    return (e as { code?: number }).code;
  }
}

describe.skipIf(!ok)('broker on the PostgreSQL registry', () => {
  let db: { url: string; drop: () => Promise<void> };
  let store: PgStore;
  let registry: Registry;
  const bus = new MemoryBus();
  const brokers: BrokerHandle[] = [];
  const device = new TestDevice(NETWORK);

  beforeAll(async () => {
    db = await freshDatabase('pulse_broker');
    store = new PgStore({ url: db.url, maxConnections: 4 });
    await migrate(store);
    registry = new Registry({ store, networkId: NETWORK });
    const added = await registry.addDevice({ id: device.id });
    expect(added.ok).toBe(true);
    const directory = new StoreDeviceDirectory(store);
    for (let i = 0; i < 2; i++)
      brokers.push(await startBroker(brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, metricsPort: undefined, networkId: NETWORK, directoryTtlMs: 200 }), { bus, directory }));
  });

  afterAll(async () => {
    for (const b of brokers) await b.close();
    await bus.close();
    await store?.close();
    await db?.drop();
  });

  const url = (i: number) => `mqtt://127.0.0.1:${brokers[i]!.addresses.mqtt!.port}`;

  it('accepts a registered device and refuses its token replayed on the other broker', async () => {
    const password = device.password();
    const a = await mqtt.connectAsync(url(0), { clientId: device.id, username: device.id, password, reconnectPeriod: 0 });
    await a.endAsync();
    expect(await refusedWith(mqtt.connectAsync(url(1), { clientId: device.id, username: device.id, password, reconnectPeriod: 0 }))).toBe(4);
    // A fresh token works on either broker.
    expect(await refusedWith(connectDevice(url(1), device))).toBe(0);
  });

  it('refuses a device the registry does not know', async () => {
    expect(await refusedWith(connectDevice(url(0), new TestDevice(NETWORK)))).toBe(5);
  });

  it('closes the live session of a device revoked in the registry, on whichever broker holds it', async () => {
    const c = await connectDevice(url(1), device);
    const gone = closed(c, 5_000);
    expect((await registry.revoke(device.id)).ok).toBe(true);
    expect(await gone).toBe(true);
    expect(await refusedWith(connectDevice(url(0), device))).toBe(5);
  });

  it('`pulse broker --database-url` uses the registry', async () => {
    const d = new TestDevice(NETWORK);
    expect((await registry.addDevice({ id: d.id })).ok).toBe(true);
    const pulse = fileURLToPath(new URL('../bin/pulse.js', import.meta.url));
    const child = spawn(process.execPath, [pulse, 'broker', '--database-url', db.url, '--bus', 'memory', '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--metrics-port', 'off', '--network-id', String(NETWORK)], { stdio: ['ignore', 'ignore', 'pipe'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let err = '';
        child.stderr.on('data', (b: Buffer) => {
          err += b.toString();
          const line = err.split('\n').find((l) => l.includes('"broker listening"'));
          if (line !== undefined) resolve(Number((JSON.parse(line) as { mqtt: string }).mqtt.split(':').pop()));
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
      });
      expect(await refusedWith(connectDevice(`mqtt://127.0.0.1:${port}`, d))).toBe(0);
      expect(await refusedWith(connectDevice(`mqtt://127.0.0.1:${port}`, new TestDevice(NETWORK)))).toBe(5);
      const exited = new Promise<number | null>((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
