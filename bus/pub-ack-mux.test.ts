// PubAckMux against the real nats-server (NATS_URL): PubAcks matched to their publishes by reply
// token whatever order they arrive in, a real stream's duplicate answer, error replies, "no
// responders", the timeout sweep, the window, and close. Out-of-order and missing answers come from a
// core NATS responder standing in for a stream on subjects no stream covers; each test uses its own
// subjects and streams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnection } from 'node:net';
import { connect, headers, type Msg, type NatsConnection } from 'nats';
import { PubAckMux, type PubAckOk } from './pub-ack-mux.ts';
import { NATS_URL, needs, uniqueName } from '../test/support/services.ts';
import { isPulseError } from '../shared/errors.ts';

const ok = await needs('nats');

const bytes = (n: number) => Uint8Array.from([n & 0xff, (n >> 8) & 0xff]);
const numberOf = (m: Msg) => m.data[0]! + 256 * m.data[1]!;
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** Settle every promise; outcome per index, so a test can assert exactly which failed and why. */
async function outcomes(ps: readonly Promise<PubAckOk>[]): Promise<Array<PubAckOk | string>> {
  return Promise.all(ps.map((p) => p.then((a) => a, (e: unknown) => (isPulseError(e) ? e.code : `untyped: ${String(e)}`))));
}

describe.skipIf(!ok)('PubAckMux', () => {
  let nc: NatsConnection;
  let responder: NatsConnection;
  const streams: string[] = [];

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL, noAsyncTraces: true });
    responder = await connect({ servers: NATS_URL });
  });

  afterAll(async () => {
    const jsm = await responder.jetstreamManager();
    for (const s of streams) await jsm.streams.delete(s).catch(() => undefined);
    await nc.close();
    await responder.close();
  });

  /** A core subscriber on `<subject>.*` that hands each request to `onRequest` (no stream involved). */
  async function fakeStream(onRequest: (m: Msg) => void): Promise<string> {
    const subject = uniqueName('muxt');
    responder.subscribe(`${subject}.*`, { callback: (_e, m) => onRequest(m) });
    await responder.flush();
    return subject;
  }

  it('matches PubAcks to their publishes by reply token even when they arrive in reverse order', async () => {
    const held: Msg[] = [];
    const N = 200;
    const subject = await fakeStream((m) => {
      held.push(m);
      if (held.length < N) return;
      // Answer only once all have arrived, last first; the seq tells which message it is about.
      for (const r of held.reverse()) r.respond(json({ stream: 'FAKE', seq: 1000 + numberOf(r), duplicate: numberOf(r) % 2 === 1 }));
    });
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 10_000, maxInFlight: 4096 });
    const got = await outcomes(Array.from({ length: N }, (_, i) => mux.publish(`${subject}.x`, bytes(i), `id-${i}`)));
    expect(got).toEqual(Array.from({ length: N }, (_, i) => ({ ok: true, seq: 1000 + i, duplicate: i % 2 === 1 })));
    // Each publish carried its id and our stream as the expected stream.
    expect(held.map((m) => [m.headers?.get('Nats-Msg-Id'), m.headers?.get('Nats-Expected-Stream')]).sort()).toEqual(Array.from({ length: N }, (_, i) => [`id-${i}`, 'FAKE']).sort());
    expect(mux.inFlight).toBe(0);
    mux.close();
  });

  it('rejects BUS_UNAVAILABLE on an error reply, a PubAck from another stream or junk, and keeps the rest', async () => {
    const subject = await fakeStream((m) => {
      const n = numberOf(m);
      if (n === 1) m.respond(json({ error: { code: 400, err_code: 10060, description: 'expected stream does not match' } }));
      else if (n === 2) m.respond(json({ stream: 'OTHER', seq: 9 }));
      else if (n === 3) m.respond(new TextEncoder().encode('not json'));
      else m.respond(json({ stream: 'FAKE', seq: 100 + n }));
    });
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 10_000, maxInFlight: 64 });
    const ps = [0, 1, 2, 3, 4].map((n) => mux.publish(`${subject}.x`, bytes(n), `e-${n}`));
    expect(await outcomes(ps)).toEqual([{ ok: true, seq: 100, duplicate: false }, 'BUS_UNAVAILABLE', 'BUS_UNAVAILABLE', 'BUS_UNAVAILABLE', { ok: true, seq: 104, duplicate: false }]);
    await expect(ps[1]).rejects.toThrow(/publish e-1: JetStream error 400\/10060: expected stream does not match/);
    await expect(ps[2]).rejects.toThrow(/publish e-2: PubAck from stream "OTHER", expected FAKE/);
    mux.close();
  });

  it('rejects BUS_UNAVAILABLE when no PubAck comes within the timeout, ignores the late one, and resolves the others', async () => {
    const late: Msg[] = [];
    const subject = await fakeStream((m) => {
      if (numberOf(m) === 1) late.push(m); // never answered in time
      else m.respond(json({ stream: 'FAKE', seq: 10 + numberOf(m) }));
    });
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 300, maxInFlight: 64 });
    const t0 = performance.now();
    const ps = [0, 1, 2].map((n) => mux.publish(`${subject}.x`, bytes(n), `t-${n}`));
    let rejectedAfter = 0;
    ps[1]!.catch(() => (rejectedAfter = performance.now() - t0));
    const got = await outcomes(ps);
    expect(got).toEqual([{ ok: true, seq: 10, duplicate: false }, 'BUS_UNAVAILABLE', { ok: true, seq: 12, duplicate: false }]);
    // Never before its timeout (the sweep may add up to one period, never subtract one).
    expect(rejectedAfter).toBeGreaterThanOrEqual(300);
    await expect(ps[1]).rejects.toThrow(/publish t-1: no PubAck within 300 ms/);
    expect(mux.inFlight).toBe(0);
    // The answer arriving after the timeout matches nothing: nothing settles twice, nothing throws.
    late[0]!.respond(json({ stream: 'FAKE', seq: 11 }));
    await responder.flush();
    const after = await outcomes([mux.publish(`${subject}.x`, bytes(5), 't-5')]);
    expect(after).toEqual([{ ok: true, seq: 15, duplicate: false }]);
    mux.close();
  });

  it('rejects "no responders" at once and reports it (the stream is gone)', async () => {
    let noResponders = 0;
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 60_000, maxInFlight: 64, onNoResponders: () => noResponders++ });
    const p = mux.publish(`${uniqueName('nobody')}.x`, bytes(1), 'n-1');
    await expect(p).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_UNAVAILABLE') && /no responders/.test((e as Error).message));
    expect(noResponders).toBe(1);
    mux.close();
  });

  it('resolves on a real stream, a resend of the same Nats-Msg-Id as a duplicate of the same sequence', async () => {
    const stream = uniqueName('PULSE_MUX');
    streams.push(stream);
    const subject = uniqueName('muxs');
    await (await responder.jetstreamManager()).streams.add({ name: stream, subjects: [`${subject}.*`] });
    const mux = new PubAckMux(nc, { stream, timeoutMs: 5_000, maxInFlight: 64 });
    const h = headers();
    h.append('Pulse-Received-At', '1');
    const first = await mux.publish(`${subject}.a`, bytes(1), 'dup-1', h);
    const again = await mux.publish(`${subject}.a`, bytes(1), 'dup-1');
    const other = await mux.publish(`${subject}.a`, bytes(2), 'dup-2');
    expect(first).toMatchObject({ seq: 1, duplicate: false });
    expect(again).toMatchObject({ seq: 1, duplicate: true });
    expect(other).toMatchObject({ seq: 2, duplicate: false });
    const stored = await (await responder.jetstreamManager()).streams.getMessage(stream, { seq: 1 });
    expect(stored.header.get('Pulse-Received-At')).toBe('1');
    expect(stored.header.get('Nats-Msg-Id')).toBe('dup-1');
    // Only our stream may confirm: the same subject with another expected stream is refused by the server.
    const wrong = new PubAckMux(nc, { stream: `${stream}_NOT`, timeoutMs: 5_000, maxInFlight: 64 });
    await expect(wrong.publish(`${subject}.a`, bytes(3), 'dup-3')).rejects.toThrow(/BUS_UNAVAILABLE: publish dup-3: JetStream error 400\/10060/);
    mux.close();
    wrong.close();
  });

  it('keeps at most maxInFlight unanswered and sends the rest in order as answers come', async () => {
    const seen: number[] = [];
    const waiting: Msg[] = [];
    const subject = await fakeStream((m) => {
      seen.push(numberOf(m));
      waiting.push(m);
    });
    // Until every PUB sent so far (and every one an answer just released) has reached the responder:
    // the server forwards a PUB before it answers the PING behind it, and the responder's PING
    // behind whatever it was forwarded.
    const settle = async () => {
      await new Promise((r) => setImmediate(r));
      await nc.flush();
      await nc.flush();
      await responder.flush();
    };
    const answer = async (n: number) => {
      for (const m of waiting.splice(0, n)) m.respond(json({ stream: 'FAKE', seq: 100 + numberOf(m) }));
      await responder.flush();
      await settle();
    };
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 10_000, maxInFlight: 3 });
    const ps = Array.from({ length: 8 }, (_, i) => mux.publish(`${subject}.x`, bytes(i), `w-${i}`));
    await settle();
    expect([seen.length, mux.inFlight, mux.queued]).toEqual([3, 3, 5]);
    await answer(1);
    expect([seen.length, mux.inFlight, mux.queued]).toEqual([4, 3, 4]);
    await answer(2);
    expect([seen.length, mux.inFlight, mux.queued]).toEqual([6, 3, 2]);
    await answer(3);
    await answer(2);
    expect([seen.length, mux.inFlight, mux.queued]).toEqual([8, 0, 0]);
    expect(await outcomes(ps)).toEqual(Array.from({ length: 8 }, (_, i) => ({ ok: true, seq: 100 + i, duplicate: false })));
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    mux.close();
  });

  it('on close rejects what is in flight (BUS_UNAVAILABLE) and refuses new publishes (BUS_CLOSED)', async () => {
    const subject = await fakeStream(() => undefined); // never answers
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 60_000, maxInFlight: 1 });
    const ps = [mux.publish(`${subject}.x`, bytes(1), 'c-1'), mux.publish(`${subject}.x`, bytes(2), 'c-2')];
    await new Promise((r) => setImmediate(r));
    expect([mux.inFlight, mux.queued]).toEqual([1, 1]);
    const settled = mux.settled();
    mux.close();
    await settled;
    expect(await outcomes(ps)).toEqual(['BUS_UNAVAILABLE', 'BUS_UNAVAILABLE']);
    expect(await outcomes([mux.publish(`${subject}.x`, bytes(3), 'c-3')])).toEqual(['BUS_CLOSED']);
  });

  it('gives each queued publish its own full timeout once it is sent, so none waits forever behind an unanswered one', async () => {
    const subject = await fakeStream(() => undefined); // never answers
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 100, maxInFlight: 1 });
    const t0 = performance.now();
    const got = await outcomes([1, 2, 3].map((n) => mux.publish(`${subject}.x`, bytes(n), `q-${n}`)));
    expect(got).toEqual(['BUS_UNAVAILABLE', 'BUS_UNAVAILABLE', 'BUS_UNAVAILABLE']);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300); // one after the other, each ≥ 100 ms
    expect([mux.inFlight, mux.queued]).toEqual([0, 0]);
    mux.close();
  });

  it('rejects a reply whose header block is malformed instead of leaving its publish unsettled (review finding)', async () => {
    const replies: string[] = [];
    const subject = await fakeStream((m) => replies.push(m.reply!));
    const mux = new PubAckMux(nc, { stream: 'FAKE', timeoutMs: 60_000, maxInFlight: 8 });
    const p = mux.publish(`${subject}.x`, bytes(1), 'h-1');
    while (replies.length === 0) await new Promise((r) => setTimeout(r, 5));
    // nats.js cannot build such a message, so a raw client sends it: "bad key" is not a valid header name.
    const u = new URL(NATS_URL);
    const raw = createConnection({ host: u.hostname, port: Number(u.port || 4222) });
    const header = 'NATS/1.0\r\nbad key: v\r\n\r\n';
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      raw.on('error', reject);
      raw.on('data', (b) => {
        seen += b.toString();
        if (seen.includes('PONG')) resolve();
      });
      raw.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true}\r\nHPUB ${replies[0]} ${header.length} ${header.length}\r\n${header}\r\nPING\r\n`);
    });
    raw.destroy();
    await expect(p).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_UNAVAILABLE') && /unreadable reply/.test((e as Error).message));
    // The connection still reads: the next publish is answered.
    const next = await fakeStream((m) => m.respond(json({ stream: 'FAKE', seq: 7 })));
    expect(await mux.publish(`${next}.x`, bytes(2), 'h-2')).toEqual({ ok: true, seq: 7, duplicate: false });
    mux.close();
  });

  it('rejects what waits for a PubAck as soon as the connection closes, not after the timeout', async () => {
    const own = await connect({ servers: NATS_URL, noAsyncTraces: true });
    const subject = await fakeStream(() => undefined); // never answers
    const mux = new PubAckMux(own, { stream: 'FAKE', timeoutMs: 600_000, maxInFlight: 1 });
    const ps = [mux.publish(`${subject}.x`, bytes(1), 'x-1'), mux.publish(`${subject}.x`, bytes(2), 'x-2')];
    await new Promise((r) => setImmediate(r));
    expect([mux.inFlight, mux.queued]).toEqual([1, 1]);
    await own.close();
    // Both settle long before the 10-minute timeout (the test's own timeout is 60 s).
    expect(await outcomes(ps)).toEqual(['BUS_UNAVAILABLE', 'BUS_UNAVAILABLE']);
    await expect(ps[0]).rejects.toThrow(/the NATS connection closed/);
    mux.close();
  });

  it('refuses a timeout or window below 1 (BUS_BAD_CONFIG)', () => {
    expect(() => new PubAckMux(nc, { stream: 'S', timeoutMs: 0, maxInFlight: 1 })).toThrow(/BUS_BAD_CONFIG/);
    expect(() => new PubAckMux(nc, { stream: 'S', timeoutMs: 100, maxInFlight: 0 })).toThrow(/BUS_BAD_CONFIG/);
  });
});
