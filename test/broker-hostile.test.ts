// Hostile clients against the edge broker (docs/broker.md §Limits): malformed packets, oversized
// frames, CONNECT floods, connection limits, slow clients. Each is counted by reason, ends in a
// clear outcome (the connection closes) and never takes the broker down.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect, type Socket } from 'node:net';
import { MemoryBus } from '../bus/memory.ts';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, closed, connectDevice } from '../broker/test-kit.ts';

const NETWORK = 31;

async function violations(broker: BrokerHandle, reason: string): Promise<number> {
  const m = await broker.metrics.registry.getSingleMetric('pulse_broker_violations_total')?.get();
  return m?.values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
}

/** Open a raw TCP connection, write `bytes`, resolve true if the server closes it within `ms`. */
function serverCloses(port: number, bytes: Buffer, ms = 3_000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      s.destroy();
      resolve(false);
    }, ms);
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    s.on('connect', () => {
      if (bytes.length > 0) s.write(bytes);
    });
    s.resume();
  });
}

function openRaw(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('hostile clients', () => {
  const bus = new MemoryBus();
  const directory = new MemoryDirectory();
  const device = new TestDevice(NETWORK);
  let broker: BrokerHandle;
  let port: number;

  beforeAll(async () => {
    directory.set(device.id);
    broker = await startBroker(
      brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, connectTimeoutMs: 300, connectRate: 200, connectBurst: 400 }),
      { bus, directory },
    );
    port = broker.addresses.mqtt!.port;
  });

  afterAll(async () => {
    await broker?.close();
    await bus.close();
  });

  async function stillServes(): Promise<void> {
    const c = await connectDevice(`mqtt://127.0.0.1:${port}`, device);
    await c.publishAsync(device.topic, Buffer.from(device.heartbeat()), { qos: 1 });
    await c.endAsync();
  }

  it('closes connections sending garbage, bad header flags, or packets before CONNECT', async () => {
    expect(await serverCloses(port, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(true);
    expect(await serverCloses(port, Buffer.from([0x12, 0x00]))).toBe(true); // CONNECT with reserved flags set (MQTT-2.2.2-2)
    expect(await serverCloses(port, Buffer.from([0x30, 0x05, 0x00, 0x01, 0x61, 0x68, 0x69]))).toBe(true); // PUBLISH before CONNECT (MQTT-3.1.0-1)
    expect(await serverCloses(port, Buffer.from([0x10, 0x03, 0x00, 0x04, 0x4d]))).toBe(true); // truncated CONNECT: closed by the connect timeout
    await stillServes();
  });

  it('closes a frame that announces more than the limit before buffering it', async () => {
    // PUBLISH announcing 64 MiB (remaining length 0x80 0x80 0x80 0x20), then a trickle of bytes.
    const s = await openRaw(port);
    const gone = new Promise<boolean>((r) => s.once('close', () => r(true)));
    s.on('error', () => undefined);
    s.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x20, 0x00, 0x10]));
    expect(await gone).toBe(true);
    expect(await violations(broker, 'frame_too_large')).toBeGreaterThanOrEqual(1);
    await stillServes();
  });

  it('closes a remaining length longer than four bytes (MQTT-2.2.3)', async () => {
    expect(await serverCloses(port, Buffer.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))).toBe(true);
    expect(await violations(broker, 'malformed_length')).toBe(1);
  });

  it('disconnects an authenticated device sending a 1 MiB PUBLISH, nothing reaches the bus', async () => {
    const before = await violations(broker, 'frame_too_large');
    const c = await connectDevice(`mqtt://127.0.0.1:${port}`, device);
    const gone = closed(c);
    c.publish(device.topic, Buffer.alloc(1 << 20, 7), { qos: 1 });
    expect(await gone).toBe(true);
    expect(await violations(broker, 'frame_too_large')).toBe(before + 1);
    await stillServes();
  });

  it('closes a connection that sends a second CONNECT (MQTT-3.1.0-2)', async () => {
    const c = await connectDevice(`mqtt://127.0.0.1:${port}`, device);
    const gone = closed(c);
    // Write a raw CONNECT on the established stream.
    (c.stream as unknown as Socket).write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00]));
    expect(await gone).toBe(true);
  });

  it('closes a connection that never sends CONNECT (connect timeout)', async () => {
    expect(await serverCloses(port, Buffer.alloc(0), 3_000)).toBe(true);
  });

  it('limits new connections per source address (CONNECT flood)', async () => {
    const limited = await startBroker(
      brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, connectRate: 0.5, connectBurst: 10 }),
      { bus, directory },
    );
    const p = limited.addresses.mqtt!.port;
    const sockets = await Promise.all(Array.from({ length: 60 }, () => openRaw(p).catch(() => undefined)));
    // The client sees "connected" when the kernel completes the handshake; wait until the broker
    // has accepted (or refused) every one of them.
    for (let i = 0; i < 100 && (await violations(limited, 'connect_rate')) + limited.health().connections < 60; i++) await new Promise((r) => setTimeout(r, 50));
    const refused = await violations(limited, 'connect_rate');
    expect(refused).toBeGreaterThanOrEqual(40);
    expect(refused).toBeLessThanOrEqual(50);
    for (const s of sockets) s?.destroy();
    // The bucket refills (0.5/s): a real device gets in after a pause.
    await new Promise((r) => setTimeout(r, 2_500));
    const c = await connectDevice(`mqtt://127.0.0.1:${p}`, device);
    expect(c.connected).toBe(true);
    await c.endAsync();
    await limited.close();
  });

  it('caps open connections (max connections)', async () => {
    const capped = await startBroker(
      brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, maxConnections: 3, connectTimeoutMs: 5_000 }),
      { bus, directory },
    );
    const p = capped.addresses.mqtt!.port;
    const held = await Promise.all([openRaw(p), openRaw(p), openRaw(p)]);
    for (let i = 0; i < 100 && capped.health().connections < 3; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await serverCloses(p, Buffer.alloc(0), 2_000)).toBe(true);
    expect(await violations(capped, 'max_connections')).toBe(1);
    expect(capped.health().connections).toBe(3);
    held[0]!.destroy();
    for (let i = 0; i < 100 && capped.health().connections > 2; i++) await new Promise((r) => setTimeout(r, 50));
    const c = await connectDevice(`mqtt://127.0.0.1:${p}`, device);
    expect(c.connected).toBe(true);
    await c.endAsync();
    for (const s of held) s.destroy();
    await capped.close();
  });
});
