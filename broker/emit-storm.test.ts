// Regression: "RangeError: Maximum call stack size exceeded" from mqemitter with ~2,000 clients on
// one Aedes (docs/broker.md §Aedes 1.2 pitfalls). Aedes' default mqemitter concurrency of 100 queues
// every emit beyond 100 in flight, and a queue of synchronous emits is then run recursively when an
// in-flight one completes. Here a service account subscribed to devices/# stops reading (its
// deliveries wait for 'drain'), 50 devices flood rejected heartbeats (their events fan out to it),
// 2,000 more devices disconnect at once ($SYS notices), then the subscriber reads again. With the
// default concurrency the broker process died of the RangeError (or, before that, every publish in
// the broker stalled behind the one slow subscriber); the broker now runs Aedes without that queue.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { MemoryBus } from '../bus/memory.ts';
import { startBroker, type BrokerHandle } from './broker.ts';
import { brokerConfig } from './config.ts';
import { MemoryDirectory } from './memory-directory.ts';
import { RawConnection, benchConnect, benchDevice, encodeConnect, encodePublishQos1 } from './load-client.ts';
import { TestDevice, connectDevice } from './test-kit.ts';

const NETWORK = 12;
const IDLE = 2_000;
const FLOODERS = 50;
const PER_FLOODER = 400;

/** SUBSCRIBE (MQTT-3.8) for one filter at QoS 0, packet id 1. */
function encodeSubscribe(filter: string): Buffer {
  const topic = Buffer.from(filter);
  const body = Buffer.concat([Buffer.from([0, 1, topic.length >> 8, topic.length & 0xff]), topic, Buffer.from([0])]);
  return Buffer.concat([Buffer.from([0x82, body.length]), body]);
}

const until = async (cond: () => boolean, what: string, ms = 60_000): Promise<void> => {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('broker under an emit storm behind a slow subscriber', () => {
  const bus = new MemoryBus({ maxMessages: 1_000_000 });
  const directory = new MemoryDirectory();
  const flooders = Array.from({ length: FLOODERS }, () => benchDevice(randomBytes(32)));
  const idle = Array.from({ length: IDLE }, () => benchDevice(randomBytes(32)));
  let broker: BrokerHandle;
  let port: number;
  const conns: RawConnection[] = [];
  let watcher: Socket | undefined;

  beforeAll(async () => {
    for (const d of [...flooders, ...idle]) directory.set(d.id);
    broker = await startBroker(
      brokerConfig({
        mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, metricsPort: undefined, networkId: NETWORK,
        connectRate: 1e6, connectBurst: 1_000_000, publishRate: 0.0001, publishBurst: 1,
        serviceAccounts: new Map([['watch', 'secret']]),
      }),
      { bus, directory },
    );
    port = broker.addresses.mqtt!.port;
  });

  afterAll(async () => {
    for (const c of conns) c.close();
    watcher?.destroy();
    await broker?.close();
    await bus.close();
  });

  it('keeps serving every other client while the subscriber is stuck, survives the disconnect storm, and works after', async () => {
    // In a broker process an uncaught error is fatal; here it is recorded and must not happen.
    const uncaught: unknown[] = [];
    const record = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', record);
    try {
      await storm();
    } finally {
      process.off('uncaughtException', record);
    }
    expect(uncaught.map((e) => String(e))).toEqual([]);
  });

  const storm = async () => {
    // The slow subscriber: CONNECT + SUBSCRIBE devices/#, wait for CONNACK and SUBACK, stop reading.
    const w = netConnect({ host: '127.0.0.1', port, noDelay: true });
    watcher = w;
    let watcherClosed = false;
    w.on('close', () => (watcherClosed = true));
    w.on('error', () => undefined);
    let got = Buffer.alloc(0);
    const onData = (b: Buffer) => (got = Buffer.concat([got, b]));
    w.on('data', onData);
    await new Promise((r) => w.once('connect', r));
    w.write(encodeConnect('dashboard-1', 'watch', 'secret'));
    w.write(encodeSubscribe('devices/#'));
    await until(() => got.includes(Buffer.from([0x90, 3, 0, 1, 0])), 'CONNACK and SUBACK');
    expect(got.subarray(0, 4)).toEqual(Buffer.from([0x20, 2, 0, 0]));
    w.off('data', onData);
    w.pause();

    const now = Date.now();
    const all = [...flooders, ...idle];
    for (let i = 0; i < all.length; i += 250) {
      conns.push(...(await Promise.all(all.slice(i, i + 250).map((d, k) => RawConnection.open('127.0.0.1', port, benchConnect(d, NETWORK, now + i + k))))));
    }
    expect(broker.health().sessions).toBe(all.length + 1);

    // Each flooder's first heartbeat-shaped payload takes its only token, the rest are rate-limited:
    // every one is PUBACKed and explained on devices/<id>/events, which the stuck subscriber matches.
    let acked = 0;
    const junk = Buffer.alloc(200, 7);
    for (const [i, c] of conns.slice(0, FLOODERS).entries()) {
      c.onAck = () => acked++;
      c.write(Buffer.concat(Array.from({ length: PER_FLOODER }, (_, k) => encodePublishQos1(`devices/${flooders[i]!.id}/heartbeat`, junk, k + 1))));
    }
    // All PUBACKs arrive while the subscriber is still connected and still not reading: its backlog
    // holds up nobody else (with Aedes' default it stalled everyone until drainTimeout cut it off).
    await until(() => acked === FLOODERS * PER_FLOODER || watcherClosed, 'the flood to be acknowledged');
    expect(watcherClosed).toBe(false);
    expect(acked).toBe(FLOODERS * PER_FLOODER);

    // Everyone leaves at once: 2,050 $SYS disconnect notices, then the subscriber reads again.
    for (const c of conns) c.close();
    await until(() => broker.health().connections === 1, 'the devices to be gone');
    w.on('data', () => undefined);
    w.resume();

    // Still alive and serving: a new device connects and gets a heartbeat accepted.
    const fresh = new TestDevice(NETWORK);
    directory.set(fresh.id);
    const client = await connectDevice(`mqtt://127.0.0.1:${port}`, fresh);
    await client.publishAsync(fresh.topic, Buffer.from(fresh.heartbeat()), { qos: 1 });
    await client.endAsync();
    const rejected = (await broker.metrics.rejected.get()).values.reduce((n, v) => n + v.value, 0);
    expect(rejected).toBe(FLOODERS * PER_FLOODER);
    expect(broker.health().status).toBe('ok');
    expect(watcherClosed).toBe(false);
  };
});
