// JetStreamBus against the real nats-server (NATS_URL): durable publish with PubAck, dedup by
// deviceId:seq, pull consumers with explicit ack / nak / term / ack-wait redelivery, shared durables,
// and recovery after the network to NATS is cut. Every test uses its own stream, deleted afterwards.
import { afterAll, describe, expect, it } from 'vitest';
import { connect, headers, type NatsConnection } from 'nats';
import { JetStreamBus, type JetStreamBusOptions } from './jetstream.ts';
import type { BusHeartbeat, SessionReport } from './bus.ts';
import { encodeSessionReport } from './session-report.ts';
import { NATS_URL, needs, uniqueName } from '../test/support/services.ts';
import { tcpProxy } from '../broker/test-kit.ts';
import { isPulseError } from '../shared/errors.ts';

const ok = await needs('nats');

const devA = 'a'.repeat(64);
const devB = 'b'.repeat(64);

function hb(deviceId: string, seq: number, fill = seq): BusHeartbeat {
  return { deviceId, seq: BigInt(seq), raw: Uint8Array.from([1, 2, 3, fill & 0xff]), receivedAt: 1_700_000_000_000 + seq };
}

const T0 = 1_700_000_000_000;
function report(seq: number, brokerId = 'pulse-broker-a', part = 0, parts = 1): SessionReport {
  return { brokerId, seq, part, parts, from: T0 + seq * 30_000, to: T0 + (seq + 1) * 30_000, intervals: [{ deviceId: devA, from: T0 + seq * 30_000 + 5, to: T0 + (seq + 1) * 30_000 }] };
}

describe.skipIf(!ok)('JetStreamBus', () => {
  const streams: string[] = [];
  const buses: JetStreamBus[] = [];
  let admin: NatsConnection | undefined;

  async function open(extra: Partial<JetStreamBusOptions> = {}): Promise<JetStreamBus> {
    const stream = extra.stream ?? uniqueName('PULSE_T');
    if (!streams.includes(stream)) streams.push(stream);
    const bus = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: extra.subjectPrefix ?? uniqueName('t'), ...extra });
    buses.push(bus);
    return bus;
  }

  afterAll(async () => {
    for (const b of buses) await b.close().catch(() => undefined);
    admin ??= await connect({ servers: NATS_URL });
    const jsm = await admin.jetstreamManager();
    for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
    await admin.close();
  });

  it('stores a published heartbeat durably before publish() resolves, and delivers it intact', async () => {
    const bus = await open();
    await bus.publisher().publish(hb(devA, 1));
    const info = await bus.jsm.streams.info(bus.options.stream);
    expect(info.state.messages).toBe(1);
    expect(info.config.subjects).toEqual([`${bus.options.subjectPrefix}.hb.*`, `${bus.options.subjectPrefix}.sessions.*`]);
    const [d, ...rest] = await bus.consumer('c1').fetch(10, 1000);
    expect(rest).toEqual([]);
    expect({ ...d!.message, raw: [...d!.message.raw] }).toEqual({ ...hb(devA, 1), raw: [...hb(devA, 1).raw] });
    expect(d!.deliveryCount).toBe(1);
    await d!.ack();
  });

  it('drops a resend of the same deviceId:seq (duplicate window), from any publisher', async () => {
    const bus = await open();
    const other = await open({ stream: bus.options.stream, subjectPrefix: bus.options.subjectPrefix });
    await bus.publisher().publish(hb(devA, 7));
    await other.publisher().publish(hb(devA, 7));
    await bus.publisher().publish(hb(devB, 7));
    expect((await bus.jsm.streams.info(bus.options.stream)).state.messages).toBe(2);
    // Other signed bytes under the same seq are not a resend (bus.ts heartbeatMessageId): ingest
    // must see them to record the equivocation.
    await bus.publisher().publish(hb(devA, 7, 99));
    expect((await bus.jsm.streams.info(bus.options.stream)).state.messages).toBe(3);
  });

  it('keeps a bounded window of publishes in flight and loses none', async () => {
    const bus = await open({ maxInFlight: 32 });
    const p = bus.publisher();
    let peak = 0;
    // Publishes leave in a burst per event-loop turn, so the window is sampled as each one settles
    // (by then the mux has refilled the window from its queue).
    const all = Array.from({ length: 1500 }, (_, i) =>
      p.publish(hb(i % 2 ? devA : devB, i + 1)).then(() => {
        peak = Math.max(peak, bus.inFlight);
      }),
    );
    await Promise.all(all);
    expect(peak).toBe(32);
    expect(bus.inFlight).toBe(0);
    expect((await bus.jsm.streams.info(bus.options.stream)).state.messages).toBe(1500);
  });

  it('redelivers after nak and after the ack wait; term ends redelivery', async () => {
    const bus = await open({ ackWaitMs: 600 });
    const p = bus.publisher();
    await p.publish(hb(devA, 1));
    await p.publish(hb(devA, 2));
    await p.publish(hb(devA, 3));
    const c = bus.consumer('redeliver');
    const first = await c.fetch(3, 1000);
    expect(first.map((d) => d.message.seq)).toEqual([1n, 2n, 3n]);
    first[0]!.nak();
    first[1]!.term();
    // seq 3 is neither acked nor nak'ed: redelivered after the ack wait.
    const again = new Map<bigint, number>();
    for (let i = 0; i < 10 && again.size < 2; i++) {
      for (const d of await c.fetch(5, 500)) {
        again.set(d.message.seq, d.deliveryCount);
        await d.ack();
      }
    }
    expect(again).toEqual(new Map([[1n, 2], [3n, 2]]));
    expect(await c.fetch(5, 700)).toEqual([]);
  });

  it('shares one durable between handles; another durable sees everything', async () => {
    const bus = await open();
    const p = bus.publisher();
    for (let i = 1; i <= 40; i++) await p.publish(hb(devB, i));
    const w1 = bus.consumer('workers');
    const w2 = bus.consumer('workers');
    const seen: bigint[] = [];
    for (let i = 0; i < 20 && seen.length < 40; i++) {
      for (const c of [w1, w2]) {
        for (const d of await c.fetch(7, 200)) {
          seen.push(d.message.seq);
          await d.ack();
        }
      }
    }
    expect(seen.length).toBe(40);
    expect(new Set(seen).size).toBe(40);
    const audit = await bus.consumer('audit').fetch(100, 1000);
    expect(audit.length).toBe(40);
  });

  it('returns as soon as a message arrives while fetch is waiting', async () => {
    const bus = await open();
    const c = bus.consumer('waiter');
    expect(await c.fetch(5, 100)).toEqual([]);
    const pending = c.fetch(5, 5_000);
    setTimeout(() => void bus.publisher().publish(hb(devA, 9)), 100);
    const got = await pending;
    expect(got.map((d) => d.message.seq)).toEqual([9n]);
  });

  it('terminates foreign messages on its subjects instead of handing them out, and reports each', async () => {
    const terminated: unknown[] = [];
    const bus = await open({ onStatus: (s) => s.type === 'foreignMessageTerminated' && terminated.push(s.data) });
    // Ids a broker would not produce for these bytes: junk, the id without the signature part, a
    // wrong signature part.
    for (const id of ['not-ours', `${devA}:6`, `${devA}:7:0000000000000000`]) {
      const h = headers();
      h.set('Nats-Msg-Id', id);
      h.set('Pulse-Received-At', '1700000000000');
      await bus.nc.jetstream().publish(`${bus.options.subjectPrefix}.hb.${devA}`, hb(devA, 7).raw, { headers: h });
    }
    await bus.publisher().publish(hb(devA, 5));
    const got = await bus.consumer('strict').fetch(10, 1000);
    expect(got.map((d) => d.message.seq)).toEqual([5n]);
    expect(terminated).toEqual([`${bus.options.subjectPrefix}.hb.${devA}`, `${bus.options.subjectPrefix}.hb.${devA}`, `${bus.options.subjectPrefix}.hb.${devA}`]);
  });

  it('refuses names NATS cannot carry (BUS_BAD_CONFIG)', async () => {
    await expect(JetStreamBus.connect({ servers: NATS_URL, stream: 'bad.name', subjectPrefix: 'x' })).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_BAD_CONFIG'));
    const bus = await open();
    await expect(bus.publisher().publish(hb('dev.*', 1))).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_BAD_CONFIG'));
    expect(() => bus.consumer('a.b')).toThrow(/durable name/);
  });

  it('rejects publishes while NATS is unreachable and recovers by itself when it returns', async () => {
    const u = new URL(NATS_URL);
    const proxy = await tcpProxy({ host: u.hostname, port: Number(u.port || 4222) });
    try {
      const bus = await open({ servers: `nats://127.0.0.1:${proxy.port}`, publishTimeoutMs: 500 });
      const p = bus.publisher();
      await p.publish(hb(devA, 1));
      proxy.cut();
      await expect(p.publish(hb(devA, 2))).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_UNAVAILABLE'));
      proxy.restore();
      let delivered = false;
      for (let i = 0; i < 40 && !delivered; i++) {
        delivered = await p.publish(hb(devA, 2)).then(() => true, () => false);
        if (!delivered) await new Promise((r) => setTimeout(r, 250));
      }
      expect(delivered).toBe(true);
      const got = await bus.consumer('after').fetch(10, 1000);
      expect(got.map((d) => d.message.seq)).toEqual([1n, 2n]);
    } finally {
      await proxy.close();
    }
  });

  it('closes even while NATS is unreachable (the drain is bounded)', async () => {
    const u = new URL(NATS_URL);
    const proxy = await tcpProxy({ host: u.hostname, port: Number(u.port || 4222) });
    try {
      const bus = await open({ servers: `nats://127.0.0.1:${proxy.port}`, publishTimeoutMs: 300 });
      await bus.publisher().publish(hb(devB, 1));
      proxy.cut();
      await bus.close();
      expect(bus.nc.isClosed()).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('re-creates its stream when it disappears, so publishing recovers', async () => {
    const bus = await open();
    const p = bus.publisher();
    await p.publish(hb(devA, 1));
    await bus.jsm.streams.delete(bus.options.stream);
    let delivered = false;
    for (let i = 0; i < 20 && !delivered; i++) {
      delivered = await p.publish(hb(devA, 2)).then(() => true, (e: unknown) => (isPulseError(e, 'BUS_UNAVAILABLE') ? false : Promise.reject(e)));
      if (!delivered) await new Promise((r) => setTimeout(r, 300));
    }
    expect(delivered).toBe(true);
    expect((await bus.jsm.streams.info(bus.options.stream)).state.messages).toBe(1);
  });

  it('carries session reports on their own subject: durable, deduplicated by report id, invisible to heartbeat consumers', async () => {
    const bus = await open();
    const other = await open({ stream: bus.options.stream, subjectPrefix: bus.options.subjectPrefix });
    await bus.publisher().publish(hb(devA, 1));
    await bus.sessionPublisher().publish(report(1));
    await other.sessionPublisher().publish(report(1)); // resent (e.g. after a lost PubAck): same id
    await bus.sessionPublisher().publish(report(1, 'pulse-broker-b')); // another broker's seq 1
    await bus.sessionPublisher().publish(report(2, 'pulse-broker-a', 0, 2));
    await bus.sessionPublisher().publish(report(2, 'pulse-broker-a', 1, 2));
    expect((await bus.jsm.streams.info(bus.options.stream)).state.messages).toBe(5);
    const hbs = await bus.consumer('hb').fetch(10, 500);
    expect(hbs.map((d) => d.message.seq)).toEqual([1n]);
    const c = bus.sessionConsumer('sessions');
    const got = await c.fetch(10, 1000);
    expect(got.map((d) => (d.message.ok ? `${d.message.value.brokerId}:${d.message.value.seq}:${d.message.value.part}` : d.message.code))).toEqual([
      'pulse-broker-a:1:0',
      'pulse-broker-b:1:0',
      'pulse-broker-a:2:0',
      'pulse-broker-a:2:1',
    ]);
    expect(got[0]!.message).toEqual({ ok: true, value: report(1) });
    for (const d of got) await d.ack();
    expect(await c.fetch(10, 300)).toEqual([]);
  });

  it('redelivers an unacked session report (at least once) and a nak with a delay', async () => {
    const bus = await open({ ackWaitMs: 500 });
    await bus.sessionPublisher().publish(report(1));
    await bus.sessionPublisher().publish(report(2));
    const c = bus.sessionConsumer('redeliver');
    const [a, b] = await c.fetch(5, 1000);
    a!.nak(300);
    expect(b!.deliveryCount).toBe(1);
    const again = new Map<number, number>();
    for (let i = 0; i < 10 && again.size < 2; i++) {
      for (const d of await c.fetch(5, 500)) {
        if (d.message.ok) again.set(d.message.value.seq, d.deliveryCount);
        await d.ack();
      }
    }
    expect(again).toEqual(new Map([[1, 2], [2, 2]]));
  });

  it('hands malformed or mislabelled session messages to the consumer as SESSION_BAD_REPORT', async () => {
    const bus = await open();
    const js = bus.nc.jetstream();
    const prefix = bus.options.subjectPrefix;
    await js.publish(`${prefix}.sessions.pulse-broker-a`, new TextEncoder().encode('{"v":1'));
    await js.publish(`${prefix}.sessions.pulse-broker-z`, encodeSessionReport(report(3))); // names broker a on broker z's subject
    await bus.sessionPublisher().publish(report(4));
    const got = await bus.sessionConsumer('strict').fetch(10, 1000);
    expect(got.map((d) => (d.message.ok ? d.message.value.seq : d.message.code))).toEqual(['SESSION_BAD_REPORT', 'SESSION_BAD_REPORT', 4]);
    for (const d of got) d.term();
  });

  it('refuses to publish an invalid session report (typed) and widens an existing heartbeat-only stream', async () => {
    const stream = uniqueName('PULSE_T');
    streams.push(stream);
    const prefix = uniqueName('t');
    admin ??= await connect({ servers: NATS_URL });
    await (await admin.jetstreamManager()).streams.add({ name: stream, subjects: [`${prefix}.hb.*`] });
    const bus = await open({ stream, subjectPrefix: prefix });
    expect((await bus.jsm.streams.info(stream)).config.subjects).toEqual([`${prefix}.hb.*`, `${prefix}.sessions.*`]);
    await expect(bus.sessionPublisher().publish({ ...report(1), intervals: [{ deviceId: devA, from: 0, to: 1 }] })).rejects.toSatisfy((e: unknown) => isPulseError(e, 'SESSION_BAD_REPORT'));
    await bus.sessionPublisher().publish(report(1));
    expect((await bus.jsm.streams.info(stream)).state.messages).toBe(1);
  });
});
