// MemoryBus gives the bus/bus.ts guarantees: publish queues, dedup by (deviceId, seq, signed bytes) within the
// window, durables share work, at-least-once with ack-wait redelivery, nak, term, deliveryCount.
import { describe, expect, it } from 'vitest';
import { MemoryBus } from './memory.ts';
import type { BusHeartbeat, SessionReport } from './bus.ts';
import { isPulseError } from '../shared/errors.ts';

function hb(seq: number, deviceId = 'aa'.repeat(32)): BusHeartbeat {
  return { deviceId, seq: BigInt(seq), raw: Uint8Array.of(seq & 0xff, 1, 2), receivedAt: 1000 + seq };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const T0 = 1_700_000_000_000;
function report(seq: number, brokerId = 'b1'): SessionReport {
  return { brokerId, seq, part: 0, parts: 1, from: T0, to: T0 + 30_000, intervals: [{ deviceId: 'aa'.repeat(32), from: T0 + seq, to: T0 + 30_000 }] };
}

describe('MemoryBus', () => {
  it('delivers published messages in order and drops resends of the same (deviceId, seq, bytes)', async () => {
    const bus = new MemoryBus();
    const pub = bus.publisher();
    await pub.publish(hb(1));
    await pub.publish(hb(2));
    await pub.publish(hb(1)); // resend within the window
    await pub.publish(hb(1, 'bb'.repeat(32))); // same seq, other device: not a duplicate
    await pub.publish({ ...hb(1), raw: Uint8Array.of(7, 7, 7) }); // same seq, other bytes: an equivocation, not a resend
    const c = bus.consumer('ingest');
    const got = await c.fetch(10, 10);
    expect(got.map((d) => `${d.message.deviceId.slice(0, 2)}:${d.message.seq}`)).toEqual(['aa:1', 'aa:2', 'bb:1', 'aa:1']);
    expect(got.every((d) => d.deliveryCount === 1)).toBe(true);
    for (const d of got) await d.ack();
    expect(await c.fetch(10, 20)).toEqual([]);
    expect(bus.size).toBe(0);
    await bus.close();
  });

  it('copies the payload so the publisher may reuse its buffer', async () => {
    const bus = new MemoryBus();
    const m = hb(5);
    await bus.publisher().publish(m);
    (m.raw as Uint8Array)[0] = 99;
    const [d] = await bus.consumer('x').fetch(1, 10);
    expect(d!.message.raw[0]).toBe(5);
    await bus.close();
  });

  it('forgets dedup keys after the window', async () => {
    const bus = new MemoryBus({ dedupWindowMs: 20 });
    const pub = bus.publisher();
    const c = bus.consumer('ingest');
    await pub.publish(hb(1));
    await sleep(40);
    await pub.publish(hb(1));
    const got = await c.fetch(10, 10);
    expect(got).toHaveLength(2);
    await bus.close();
  });

  it('redelivers an unacked message after the ack wait with a higher deliveryCount', async () => {
    const bus = new MemoryBus({ ackWaitMs: 50 });
    await bus.publisher().publish(hb(1));
    const c = bus.consumer('ingest');
    const [first] = await c.fetch(5, 10);
    expect(first!.deliveryCount).toBe(1);
    expect(await c.fetch(5, 0)).toEqual([]); // in flight, not yet due
    const [second] = await c.fetch(5, 1000); // waits for the ack wait to expire
    expect(second!.message.seq).toBe(1n);
    expect(second!.deliveryCount).toBe(2);
    await second!.ack();
    await sleep(80);
    expect(await c.fetch(5, 0)).toEqual([]);
    await bus.close();
  });

  it('nak redelivers (now or after a delay); term never redelivers', async () => {
    const bus = new MemoryBus({ ackWaitMs: 30 });
    const pub = bus.publisher();
    await pub.publish(hb(1));
    await pub.publish(hb(2));
    await pub.publish(hb(3));
    const c = bus.consumer('ingest');
    const [a, b, t] = await c.fetch(3, 10);
    a!.nak();
    b!.nak(60);
    t!.term();
    const again = await c.fetch(3, 10);
    expect(again.map((d) => d.message.seq)).toEqual([1n]);
    expect(again[0]!.deliveryCount).toBe(2);
    await again[0]!.ack();
    const later = await c.fetch(3, 500);
    expect(later.map((d) => d.message.seq)).toEqual([2n]);
    await later[0]!.ack();
    await sleep(60);
    expect(await c.fetch(3, 0)).toEqual([]); // seq 3 was terminated
    await bus.close();
  });

  it('handles with one durable name share the work; another durable sees everything', async () => {
    const bus = new MemoryBus();
    const pub = bus.publisher();
    for (let i = 1; i <= 100; i++) await pub.publish(hb(i));
    const w1 = bus.consumer('ingest');
    const w2 = bus.consumer('ingest');
    const other = bus.consumer('audit');
    const seen: bigint[] = [];
    for (;;) {
      const [x, y] = await Promise.all([w1.fetch(7, 5), w2.fetch(7, 5)]);
      if (x.length + y.length === 0) break;
      for (const d of [...x, ...y]) {
        seen.push(d.message.seq);
        await d.ack();
      }
    }
    expect(seen.sort((p, q) => (p < q ? -1 : 1))).toEqual(Array.from({ length: 100 }, (_, i) => BigInt(i + 1)));
    const all = await other.fetch(1000, 5);
    expect(all).toHaveLength(100);
    for (const d of all) await d.ack();
    expect(bus.size).toBe(0);
    await bus.close();
  });

  it('a waiting fetch wakes on publish, and returns empty on close', async () => {
    const bus = new MemoryBus();
    const c = bus.consumer('ingest');
    const pending = c.fetch(10, 5000);
    await sleep(10);
    await bus.publisher().publish(hb(9));
    const got = await pending;
    expect(got.map((d) => d.message.seq)).toEqual([9n]);
    const waiting = c.fetch(10, 5000);
    await bus.close();
    expect(await waiting).toEqual([]);
  });

  it('refuses publishes with typed errors when full or closed', async () => {
    const bus = new MemoryBus({ maxMessages: 2 });
    const pub = bus.publisher();
    await pub.publish(hb(1));
    await pub.publish(hb(2));
    await expect(pub.publish(hb(3))).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_FULL'));
    await bus.close();
    await expect(pub.publish(hb(4))).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_CLOSED'));
  });

  it('stops redelivering after maxDeliver', async () => {
    const bus = new MemoryBus({ ackWaitMs: 10, maxDeliver: 2 });
    await bus.publisher().publish(hb(1));
    const c = bus.consumer('ingest');
    expect((await c.fetch(1, 10))[0]!.deliveryCount).toBe(1);
    expect((await c.fetch(1, 500))[0]!.deliveryCount).toBe(2);
    expect(await c.fetch(1, 60)).toEqual([]);
    await bus.close();
  });

  it('keeps session reports in their own queue: deduplicated by report id, redelivered, decoded on delivery', async () => {
    const bus = new MemoryBus({ ackWaitMs: 40 });
    await bus.publisher().publish(hb(1));
    const sp = bus.sessionPublisher();
    await sp.publish(report(1));
    await sp.publish(report(1)); // resend: same id
    await sp.publish(report(1, 'b2'));
    await sp.publish(report(2));
    expect(bus.sessionReportsHeld).toBe(3);
    expect((await bus.consumer('hb').fetch(10, 5)).map((d) => d.message.seq)).toEqual([1n]);
    const c = bus.sessionConsumer('sessions');
    const got = await c.fetch(10, 5);
    expect(got.map((d) => d.message)).toEqual([
      { ok: true, value: report(1) },
      { ok: true, value: report(1, 'b2') },
      { ok: true, value: report(2) },
    ]);
    await got[0]!.ack();
    got[1]!.nak(10);
    const again = await c.fetch(10, 500); // b2's after the nak delay, then seq 2's after the ack wait
    const more = again.length < 2 ? await c.fetch(10, 500) : [];
    const redelivered = [...again, ...more];
    expect(redelivered.map((d) => [d.message.ok && `${d.message.value.brokerId}:${d.message.value.seq}`, d.deliveryCount]).sort()).toEqual([
      ['b1:2', 2],
      ['b2:1', 2],
    ]);
    for (const d of redelivered) await d.ack();
    expect(bus.sessionReportsHeld).toBe(0);
    await bus.close();
  });

  it('refuses invalid session reports and publishes on a closed bus with typed errors', async () => {
    const bus = new MemoryBus();
    const sp = bus.sessionPublisher();
    await expect(sp.publish({ ...report(1), seq: 0 })).rejects.toSatisfy((e: unknown) => isPulseError(e, 'SESSION_BAD_REPORT'));
    await bus.close();
    await expect(sp.publish(report(1))).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUS_CLOSED'));
    expect(() => bus.sessionConsumer('x')).toThrow(/closed/);
  });
});
