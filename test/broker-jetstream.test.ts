// Broker + the real NATS JetStream (docs/broker.md §Bus, §Horizontal scale): PUBACK only after the
// stream holds the heartbeat; no PUBACK (and no loss) while the bus is unreachable, recovery without
// a restart; two broker instances on one stream give no loss and no duplicate downstream.
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from 'nats';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, connectDevice, tcpProxy } from '../broker/test-kit.ts';
import { JetStreamBus } from '../bus/jetstream.ts';
import type { BusConsumer } from '../bus/bus.ts';
import { NATS_URL, needs, uniqueName } from './support/services.ts';

const ok = await needs('nats');
const NETWORK = 21;

function config(extra: Parameters<typeof brokerConfig>[0] = {}) {
  return brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, publishBurst: 1000, publishRate: 1000, ...extra });
}

/** Everything a durable consumer can read now, acked; keys are deviceId:seq in arrival order. */
async function readAll(consumer: BusConsumer, idleMs = 500): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const batch = await consumer.fetch(500, idleMs);
    if (batch.length === 0) return out;
    for (const d of batch) {
      out.push(`${d.message.deviceId}:${d.message.seq}`);
      await d.ack();
    }
  }
}

describe.skipIf(!ok)('broker with NATS JetStream', () => {
  const streams: string[] = [];
  const cleanup: Array<() => Promise<unknown>> = [];

  async function openBus(servers = NATS_URL, stream = uniqueName('PULSE_BRK'), subjectPrefix = uniqueName('brk')): Promise<JetStreamBus> {
    if (!streams.includes(stream)) streams.push(stream);
    const bus = await JetStreamBus.connect({ servers, stream, subjectPrefix, publishTimeoutMs: 400 });
    cleanup.push(() => bus.close());
    return bus;
  }

  afterAll(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => undefined);
    const nc = await connect({ servers: NATS_URL });
    const jsm = await nc.jetstreamManager();
    for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
    await nc.close();
  });

  it('hands every QoS 1 heartbeat to the stream before its PUBACK', async () => {
    const bus = await openBus();
    const directory = new MemoryDirectory();
    const device = new TestDevice(NETWORK);
    directory.set(device.id);
    const broker = await startBroker(config(), { bus, directory });
    cleanup.push(() => broker.close());
    const c = await connectDevice(`mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, device);
    await Promise.all(Array.from({ length: 50 }, () => c.publishAsync(device.topic, Buffer.from(device.heartbeat()), { qos: 1 })));
    // Every PUBACK is in: the stream must already hold all 50.
    expect((await bus.jsm.streams.info(bus.options.stream)).state.messages).toBe(50);
    await c.endAsync();
    const got = await readAll(bus.consumer('check'));
    expect(new Set(got).size).toBe(50);
  });

  it('withholds the PUBACK while the bus is unreachable, then delivers it exactly once when the bus returns', async () => {
    const u = new URL(NATS_URL);
    const proxy = await tcpProxy({ host: u.hostname, port: Number(u.port || 4222) });
    cleanup.push(() => proxy.close());
    const stream = uniqueName('PULSE_DOWN');
    const prefix = uniqueName('down');
    const bus = await openBus(`nats://127.0.0.1:${proxy.port}`, stream, prefix);
    const directory = new MemoryDirectory();
    const device = new TestDevice(NETWORK);
    directory.set(device.id);
    const broker = await startBroker(config(), { bus, directory });
    cleanup.push(() => broker.close());
    const c = await connectDevice(`mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, device);

    proxy.cut();
    let acked = false;
    const pub = c.publishAsync(device.topic, Buffer.from(device.heartbeat()), { qos: 1 }).then(() => (acked = true));
    await new Promise((r) => setTimeout(r, 1_500));
    expect(acked).toBe(false);
    expect(broker.health()).toMatchObject({ status: 'bus_down', busUp: false, inFlight: 1 });
    expect(c.connected).toBe(true);

    proxy.restore();
    await pub;
    expect(acked).toBe(true);
    expect(broker.health().status).toBe('ok');
    await c.endAsync();

    const direct = await openBus(NATS_URL, stream, prefix);
    expect(await readAll(direct.consumer('check'))).toEqual([`${device.id}:1`]);
  });

  it('two broker instances on one stream: no loss and no duplicate downstream', async () => {
    const stream = uniqueName('PULSE_SCALE');
    const prefix = uniqueName('scale');
    const busA = await openBus(NATS_URL, stream, prefix);
    const busB = await openBus(NATS_URL, stream, prefix);
    const directory = new MemoryDirectory();
    const brokerA: BrokerHandle = await startBroker(config(), { bus: busA, directory });
    const brokerB: BrokerHandle = await startBroker(config(), { bus: busB, directory });
    cleanup.push(() => brokerA.close(), () => brokerB.close());
    const devices = Array.from({ length: 12 }, () => new TestDevice(NETWORK));
    for (const d of devices) directory.set(d.id);
    const PER_DEVICE = 30;

    await Promise.all(
      devices.map(async (d, i) => {
        const beats = Array.from({ length: PER_DEVICE }, (_, k) => d.heartbeat({ seq: BigInt(k + 1) }));
        // First half through one broker, then the device fails over to the other broker and resends
        // from seq 10 (it lost track of its PUBACKs): seq 10..15 arrive twice, through different brokers.
        const [first, second] = i % 2 === 0 ? [brokerA, brokerB] : [brokerB, brokerA];
        const c1 = await connectDevice(`mqtt://127.0.0.1:${first.addresses.mqtt!.port}`, d);
        for (const b of beats.slice(0, 15)) await c1.publishAsync(d.topic, Buffer.from(b), { qos: 1 });
        await c1.endAsync();
        const c2 = await connectDevice(`mqtt://127.0.0.1:${second.addresses.mqtt!.port}`, d);
        await Promise.all(beats.slice(9).map((b) => c2.publishAsync(d.topic, Buffer.from(b), { qos: 1 })));
        await c2.endAsync();
      }),
    );

    const got = await readAll(busA.consumer('ingest'));
    const expected = new Set(devices.flatMap((d) => Array.from({ length: PER_DEVICE }, (_, k) => `${d.id}:${k + 1}`)));
    expect(got.length).toBe(expected.size); // no duplicate
    expect(new Set(got)).toEqual(expected); // no loss
    const accepted = async (b: BrokerHandle) => (await b.metrics.registry.getSingleMetric('pulse_broker_messages_accepted_total')!.get()).values[0]!.value;
    // Both brokers took part, and resends were acknowledged (the devices' PUBACKs all arrived).
    expect((await accepted(brokerA)) + (await accepted(brokerB))).toBe(devices.length * (15 + PER_DEVICE - 9));
  });
});
