// Edge verification and the durable hand-off, over real sockets with mqtt.js (docs/broker.md
// §Heartbeats): accepted heartbeats reach the bus with their receive time and raw bytes; rejected ones
// are PUBACKed, never forwarded, counted by reason code, and explained on devices/<id>/events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { MemoryBus } from '../bus/memory.ts';
import type { BusConsumer, BusHeartbeat } from '../bus/bus.ts';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, connectDevice, nextMessage } from '../broker/test-kit.ts';
import { bytesEqual } from '../shared/hex.ts';

const NETWORK = 7;

async function drain(consumer: BusConsumer, waitMs = 300): Promise<BusHeartbeat[]> {
  const out: BusHeartbeat[] = [];
  for (;;) {
    const batch = await consumer.fetch(100, waitMs);
    if (batch.length === 0) return out;
    for (const d of batch) {
      out.push(d.message);
      await d.ack();
    }
  }
}

async function counter(broker: BrokerHandle, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = await broker.metrics.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe('broker edge verification', () => {
  const bus = new MemoryBus();
  const directory = new MemoryDirectory();
  const consumer = bus.consumer('edge-test');
  let broker: BrokerHandle;
  let url: string;
  const device = new TestDevice(NETWORK);
  const other = new TestDevice(NETWORK);
  let client: MqttClient;

  beforeAll(async () => {
    directory.set(device.id);
    directory.set(other.id);
    broker = await startBroker(brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, publishBurst: 50 }), { bus, directory });
    url = `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`;
    client = await connectDevice(url, device);
    await client.subscribeAsync(device.eventsTopic, { qos: 1 });
  });

  afterAll(async () => {
    await client?.endAsync();
    await broker?.close();
    await bus.close();
  });

  it('hands an accepted QoS 1 heartbeat to the bus before the PUBACK, byte for byte', async () => {
    const hb = device.heartbeat();
    const before = Date.now();
    await client.publishAsync(device.topic, Buffer.from(hb), { qos: 1 });
    // The PUBACK arrived, so the bus already holds it: no wait needed.
    const got = await consumer.fetch(10, 0);
    expect(got).toHaveLength(1);
    const m = got[0]!.message;
    expect(m.deviceId).toBe(device.id);
    expect(m.seq).toBe(device.seq);
    expect(bytesEqual(m.raw, hb)).toBe(true);
    expect(m.receivedAt).toBeGreaterThanOrEqual(before - 1);
    await got[0]!.ack();
    expect(await counter(broker, 'pulse_broker_messages_accepted_total')).toBe(1);
  });

  const cases: Array<[string, () => Uint8Array, string]> = [
    ['a bad signature', () => {
      const hb = device.heartbeat();
      hb[hb.length - 1]! ^= 1;
      return hb;
    }, 'HB_BAD_SIGNATURE'],
    ['another network', () => device.heartbeat({ networkId: NETWORK + 1 }), 'HB_WRONG_NETWORK'],
    ['a timestamp outside the skew window', () => device.heartbeat({ timestamp: Date.now() - 120_000 }), 'HB_CLOCK_SKEW'],
    ['a truncated payload', () => device.heartbeat().subarray(0, 60), 'HB_TRUNCATED'],
    ['trailing bytes', () => Buffer.concat([device.heartbeat(), Buffer.from([0])]), 'HB_BAD_LENGTH'],
    ["another device's heartbeat on its own topic", () => other.heartbeat(), 'HB_TOPIC_MISMATCH'],
    ['a payload over the 1 KiB limit', () => new Uint8Array(1500), 'HB_OVERSIZED'],
  ];

  for (const [what, make, code] of cases) {
    it(`rejects ${what} with ${code}: PUBACK, event, not forwarded`, async () => {
      const payload = make();
      const event = nextMessage(client, device.eventsTopic);
      await client.publishAsync(device.topic, Buffer.from(payload), { qos: 1 });
      const body = JSON.parse((await event).toString()) as { seq: unknown; status: string; reason: string; message: string };
      expect(body.status).toBe('rejected');
      expect(body.reason).toBe(code);
      expect(typeof body.message).toBe('string');
      expect(await drain(consumer, 50)).toEqual([]);
      expect(await counter(broker, 'pulse_broker_messages_rejected_total', { reason: code })).toBe(1);
      expect(client.connected).toBe(true);
    });
  }

  it('reports the seq of a decodable rejected heartbeat', async () => {
    const hb = device.heartbeat({ networkId: 99 });
    const event = nextMessage(client, device.eventsTopic);
    await client.publishAsync(device.topic, Buffer.from(hb), { qos: 1 });
    expect(JSON.parse((await event).toString())).toMatchObject({ seq: Number(device.seq), reason: 'HB_WRONG_NETWORK' });
  });

  it('does not forward rejected heartbeats to subscribers of the heartbeat topic', async () => {
    await client.subscribeAsync(device.topic, { qos: 0 });
    const seen: Buffer[] = [];
    const on = (t: string, p: Buffer) => t === device.topic && seen.push(p);
    client.on('message', on);
    const bad = device.heartbeat({ networkId: 99 });
    const good = device.heartbeat();
    // Deliveries to one subscriber keep publish order: once the good one is in, a forwarded bad
    // one would already be in `seen`.
    const goodArrived = nextMessage(client, device.topic);
    await client.publishAsync(device.topic, Buffer.from(bad), { qos: 1 });
    await client.publishAsync(device.topic, Buffer.from(good), { qos: 1 });
    await goodArrived;
    client.off('message', on);
    await client.unsubscribeAsync(device.topic);
    expect(seen.map((b) => Buffer.from(b).toString('hex'))).toEqual([Buffer.from(good).toString('hex')]);
    expect((await drain(consumer, 50)).map((m) => m.seq)).toEqual([device.seq]);
  });

  it('accepts QoS 0 heartbeats too (no PUBACK to gate, still verified and handed off)', async () => {
    client.publish(device.topic, Buffer.from(device.heartbeat()), { qos: 0 });
    const got = await consumer.fetch(10, 10_000);
    for (const d of got) await d.ack();
    expect(got.map((d) => d.message.seq)).toEqual([device.seq]);
  });

  it('rate-limits a device with a token bucket (HB_RATE_LIMITED), without disconnecting it', async () => {
    const r = new TestDevice(NETWORK);
    directory.set(r.id);
    const limited = await startBroker(brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, publishRate: 0.001, publishBurst: 3 }), { bus, directory });
    const c = await connectDevice(`mqtt://127.0.0.1:${limited.addresses.mqtt!.port}`, r);
    const reasons: string[] = [];
    c.on('message', (_t, p) => reasons.push((JSON.parse(p.toString()) as { reason: string }).reason));
    await c.subscribeAsync(r.eventsTopic, { qos: 1 });
    for (let i = 0; i < 5; i++) await c.publishAsync(r.topic, Buffer.from(r.heartbeat()), { qos: 1 });
    for (let i = 0; i < 100 && reasons.length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    expect(reasons).toEqual(['HB_RATE_LIMITED', 'HB_RATE_LIMITED']);
    expect((await drain(consumer, 50)).map((m) => m.seq)).toEqual([1n, 2n, 3n]);
    expect(c.connected).toBe(true);
    await c.endAsync();
    await limited.close();
  });
});
