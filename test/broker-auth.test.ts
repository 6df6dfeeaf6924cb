// Authentication and authorization at the edge (docs/broker.md §Authentication, §Authorization),
// over real sockets with mqtt.js and a hand-written raw MQTT client.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { MemoryBus } from '../bus/memory.ts';
import type { BusConsumer } from '../bus/bus.ts';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, closed, connectDevice, nextMessage } from '../broker/test-kit.ts';

const NETWORK = 11;

function connackCode(e: unknown): number | undefined {
  return (e as { code?: number }).code;
}

async function refusedWith(p: Promise<MqttClient>): Promise<number | undefined> {
  try {
    const c = await p;
    await c.endAsync();
    return 0;
  } catch (e) {
    return connackCode(e);
  }
}

/** The SUBACK return code for one filter (mqtt.js turns 0x80 into an error carrying the code). */
async function granted(c: MqttClient, topic: string, qos: 0 | 1 = 1): Promise<number> {
  try {
    const g = await c.subscribeAsync(topic, { qos });
    return g[0]!.qos;
  } catch (e) {
    return (e as { packet?: { granted?: number[] } }).packet?.granted?.[0] ?? -1;
  }
}

async function violations(broker: BrokerHandle, reason: string): Promise<number> {
  const m = await broker.metrics.registry.getSingleMetric('pulse_broker_violations_total')?.get();
  return m?.values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
}

/** A raw MQTT 3.1.1 CONNECT (MQTT-3.1), so tests can send what mqtt.js refuses to. */
function rawConnect(clientId: string, opts: { clean: boolean; username?: string; password?: string }): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(b.length);
    return Buffer.concat([len, b]);
  };
  let flags = opts.clean ? 0x02 : 0;
  const payload = [str(clientId)];
  if (opts.username !== undefined) {
    flags |= 0x80;
    payload.push(str(opts.username));
  }
  if (opts.password !== undefined) {
    flags |= 0x40;
    payload.push(str(opts.password));
  }
  const variable = Buffer.concat([str('MQTT'), Buffer.from([4, flags, 0, 60])]);
  const body = Buffer.concat([variable, ...payload]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

/** Send bytes on a fresh TCP connection; resolve with what came back before the server closed (or timeout). */
function rawExchange(port: number, bytes: Buffer, ms = 2_000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const t = setTimeout(() => {
      s.destroy();
      resolve({ data: Buffer.concat(chunks), closed: false });
    }, ms);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
    s.on('connect', () => s.write(bytes));
  });
}

describe('broker authentication and authorization', () => {
  const bus = new MemoryBus();
  const directory = new MemoryDirectory();
  let consumer: BusConsumer;
  let broker: BrokerHandle;
  let url: string;
  let port: number;
  const device = new TestDevice(NETWORK);
  const other = new TestDevice(NETWORK);

  beforeAll(async () => {
    directory.set(device.id);
    directory.set(other.id);
    consumer = bus.consumer('auth-test');
    broker = await startBroker(
      brokerConfig({
        mqttPort: 0,
        mqttHost: '127.0.0.1',
        wsPort: undefined,
        metricsPort: undefined,
        networkId: NETWORK,
        directoryTtlMs: 200,
        serviceAccounts: new Map([['dashboard', 's3cret']]),
      }),
      { bus, directory },
    );
    port = broker.addresses.mqtt!.port;
    url = `mqtt://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await broker?.close();
    await bus.close();
  });

  it('accepts a registered device with a fresh token', async () => {
    const c = await connectDevice(url, device);
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('refuses unknown and revoked devices with CONNACK 5', async () => {
    const stranger = new TestDevice(NETWORK);
    expect(await refusedWith(connectDevice(url, stranger))).toBe(5);
    const revoked = new TestDevice(NETWORK);
    directory.set(revoked.id, 'revoked');
    expect(await refusedWith(connectDevice(url, revoked))).toBe(5);
  });

  it('refuses a replayed token (the same password twice) with CONNACK 4', async () => {
    const password = device.password();
    const first = await mqtt.connectAsync(url, { clientId: device.id, username: device.id, password, reconnectPeriod: 0 });
    await first.endAsync();
    expect(await refusedWith(mqtt.connectAsync(url, { clientId: device.id, username: device.id, password, reconnectPeriod: 0 }))).toBe(4);
  });

  it('refuses tokens for another network, outside the skew window, or with a bad signature (CONNACK 4)', async () => {
    expect(await refusedWith(connectDevice(url, device, { password: device.passwordAt(Date.now() + 5, NETWORK + 1) }))).toBe(4);
    expect(await refusedWith(connectDevice(url, device, { password: device.passwordAt(Date.now() + 120_000) }))).toBe(4);
    const pw = device.password();
    const tampered = pw.slice(0, -1) + (pw.endsWith('0') ? '1' : '0');
    expect(await refusedWith(connectDevice(url, device, { password: tampered }))).toBe(4);
    expect(await refusedWith(connectDevice(url, device, { password: 'not-a-token' }))).toBe(4);
  });

  it('refuses a username that differs from the client id (CONNACK 2)', async () => {
    expect(await refusedWith(connectDevice(url, device, { username: other.id }))).toBe(2);
  });

  it('refuses an empty client id with clean session off (MQTT-3.1.3-8, CONNACK 2)', async () => {
    const { data, closed: wasClosed } = await rawExchange(port, rawConnect('', { clean: false }));
    expect([...data.subarray(0, 4)]).toEqual([0x20, 0x02, 0x00, 0x02]);
    expect(wasClosed).toBe(true);
    expect(await violations(broker, 'empty_client_id')).toBe(1);
  });

  it('cannot take over a live session without the device key', async () => {
    const live = await connectDevice(url, device);
    // Same client id, a token signed by another key: refused, and the live session stays.
    const forged = other.password();
    expect(await refusedWith(mqtt.connectAsync(url, { clientId: device.id, username: device.id, password: forged, reconnectPeriod: 0 }))).toBe(4);
    await new Promise((r) => setTimeout(r, 100));
    expect(live.connected).toBe(true);
    await live.endAsync();
  });

  it('closes a live session when the device is revoked (directory change poll)', async () => {
    const d = new TestDevice(NETWORK);
    directory.set(d.id);
    const c = await connectDevice(url, d);
    const gone = closed(c, 3_000);
    directory.revoke(d.id);
    expect(await gone).toBe(true);
    expect(await violations(broker, 'revoked_session_closed')).toBeGreaterThanOrEqual(1);
    expect(await refusedWith(connectDevice(url, d))).toBe(5);
  });

  it('after a key rotation, closes the old key\'s session and accepts the new key', async () => {
    const oldKey = new TestDevice(NETWORK);
    const newKey = new TestDevice(NETWORK);
    directory.set(oldKey.id);
    const c = await connectDevice(url, oldKey);
    const gone = closed(c, 3_000);
    directory.rotate(oldKey.id, newKey.id);
    expect(await gone).toBe(true);
    expect(await refusedWith(connectDevice(url, oldKey))).toBe(5);
    const n = await connectDevice(url, newKey);
    expect(n.connected).toBe(true);
    await n.endAsync();
  });

  it('lets a device subscribe only under devices/<its id>/ (SUBACK 0x80 otherwise)', async () => {
    const c = await connectDevice(url, device);
    const tries = [
      `devices/${device.id}/events`,
      `devices/${device.id}/#`,
      `devices/${other.id}/events`,
      `devices/+/heartbeat`,
      `devices/#`,
      '#',
      '+/+/+',
      '$SYS/#',
      `$share/g/devices/${other.id}/heartbeat`,
      `devices/${device.id}\u0000/x`,
      `devices/${device.id}/\u0000`,
    ];
    const byTopic: Record<string, number> = {};
    for (const t of tries) byTopic[t] = await granted(c, t);
    expect(byTopic[`devices/${device.id}/events`]).toBe(1);
    expect(byTopic[`devices/${device.id}/#`]).toBe(1);
    for (const t of tries.slice(2)) expect(byTopic[t], t).toBe(128);
    expect(c.connected).toBe(true);
    await c.endAsync();
  });

  it('disconnects a device publishing for another device, to $SYS, or to any other topic; nothing reaches the bus', async () => {
    for (const topic of [`devices/${other.id}/heartbeat`, '$SYS/broker/x', `devices/${device.id}/events`, `devices/${device.id}/heartbeat/x`, `devices/${device.id}/heartbeat\u0000`]) {
      const c = await connectDevice(url, device);
      const gone = closed(c);
      c.publish(topic, Buffer.from(other.heartbeat()), { qos: 1 });
      expect(await gone, topic).toBe(true);
    }
    expect(await consumer.fetch(10, 100)).toEqual([]);
    expect(await violations(broker, 'acl_publish')).toBe(5);
  });

  it('never publishes a Will outside the device ACL', async () => {
    const watcher = await connectDevice(url, other);
    await watcher.subscribeAsync(`devices/${other.id}/#`, { qos: 1 });
    const seen: string[] = [];
    watcher.on('message', (t) => seen.push(t));
    const c = await connectDevice(url, device, { will: { topic: `devices/${other.id}/events`, payload: Buffer.from('{"status":"hacked"}'), qos: 1, retain: false } });
    const gone = closed(c);
    (c.stream as unknown as { destroy(): void }).destroy(); // ungraceful: the broker would publish the Will
    await gone;
    await new Promise((r) => setTimeout(r, 1_000));
    expect(seen).toEqual([]);
    await watcher.endAsync();
  });

  describe('service accounts', () => {
    it('read heartbeats of every device, and cannot publish', async () => {
      const svc = await mqtt.connectAsync(url, { clientId: 'dash-1', username: 'dashboard', password: 's3cret', reconnectPeriod: 0 });
      expect(await granted(svc, 'devices/+/heartbeat', 0)).toBe(0);
      expect(await granted(svc, '#', 0)).toBe(128);
      expect(await granted(svc, '$SYS/#', 0)).toBe(128);
      expect(await granted(svc, '+/+/heartbeat', 0)).toBe(128);
      const dev = await connectDevice(url, device);
      const msg = nextMessage(svc, device.topic);
      const hb = device.heartbeat();
      await dev.publishAsync(device.topic, Buffer.from(hb), { qos: 1 });
      expect(Buffer.from(await msg).equals(Buffer.from(hb))).toBe(true);
      await consumer.fetch(10, 100).then((ds) => Promise.all(ds.map((d) => d.ack())));
      const gone = closed(svc);
      svc.publish(device.topic, Buffer.from(device.heartbeat()), { qos: 1 });
      expect(await gone).toBe(true);
      await dev.endAsync();
    });

    it('refuse a wrong password (CONNACK 4) and device-shaped client ids (CONNACK 2)', async () => {
      expect(await refusedWith(mqtt.connectAsync(url, { clientId: 'dash-2', username: 'dashboard', password: 'nope', reconnectPeriod: 0 }))).toBe(4);
      expect(await refusedWith(mqtt.connectAsync(url, { clientId: device.id, username: 'dashboard', password: 's3cret', reconnectPeriod: 0 }))).toBe(2);
    });
  });
});
