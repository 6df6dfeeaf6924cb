// Topic ACL rules (docs/broker.md §Authorization).
import { describe, expect, it } from 'vitest';
import { isCleanTopic, mayPublish, mayReceive, maySubscribe, type Principal } from './acl.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const dev: Principal = { kind: 'device', keyId: A, deviceId: A };
const svc: Principal = { kind: 'service', username: 'dash' };

describe('ACL', () => {
  it('lets a device publish only to its own heartbeat topic', () => {
    expect(mayPublish(dev, `devices/${A}/heartbeat`)).toBe(true);
    for (const t of [`devices/${B}/heartbeat`, `devices/${A}/events`, `devices/${A}/heartbeat/`, `devices/${A.toUpperCase()}/heartbeat`, `/devices/${A}/heartbeat`, `devices/${A}/heartbeat\u0000`])
      expect(mayPublish(dev, t), t).toBe(false);
    expect(mayPublish(svc, `devices/${A}/heartbeat`)).toBe(false);
  });

  it('confines device subscriptions to devices/<own id>/…', () => {
    for (const t of [`devices/${A}/events`, `devices/${A}/#`, `devices/${A}/+`]) expect(maySubscribe(dev, t), t).toBe(true);
    for (const t of ['#', '+/#', `devices/#`, `devices/+/events`, `devices/${B}/events`, `devices/${A}`, '$SYS/#', `$share/g/devices/${A}/events`, `devices/${A}\u0000/events`, `devices/${A}/\ufffd`, ''])
      expect(maySubscribe(dev, t), JSON.stringify(t)).toBe(false);
  });

  it('gives service accounts the devices/ tree only', () => {
    for (const t of ['devices/#', 'devices/+/heartbeat', `devices/${A}/events`]) expect(maySubscribe(svc, t), t).toBe(true);
    for (const t of ['#', '+/+/heartbeat', '$SYS/#', '$share/g/devices/#', 'other/x']) expect(maySubscribe(svc, t), t).toBe(false);
  });

  it('checks every delivery', () => {
    expect(mayReceive(dev, `devices/${A}/events`)).toBe(true);
    expect(mayReceive(dev, `devices/${B}/events`)).toBe(false);
    expect(mayReceive(svc, `devices/${B}/heartbeat`)).toBe(true);
    expect(mayReceive(svc, '$pulse/rejected')).toBe(false);
    expect(mayReceive(dev, '$SYS/broker/heartbeat')).toBe(false);
  });

  it('refuses NUL, U+FFFD (invalid UTF-8), $-topics and absurd lengths', () => {
    expect(isCleanTopic('devices/x/heartbeat')).toBe(true);
    expect(isCleanTopic('a\u0000b')).toBe(false);
    expect(isCleanTopic('a\ufffdb')).toBe(false);
    expect(isCleanTopic('$SYS')).toBe(false);
    expect(isCleanTopic('x'.repeat(513))).toBe(false);
  });
});
