// BatchedPublisher: hand-offs of one event-loop turn reach the bus together, in order, and each
// promise settles with its own message's outcome (docs/broker.md §Performance).
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../bus/memory.ts';
import type { BusHeartbeat } from '../bus/bus.ts';
import { BatchedPublisher } from './batched-publisher.ts';

const hb = (seq: number): BusHeartbeat => ({ deviceId: 'ab'.repeat(32), seq: BigInt(seq), raw: Uint8Array.of(seq), receivedAt: 1_700_000_000_000 + seq });

async function drain(bus: MemoryBus): Promise<bigint[]> {
  const consumer = bus.consumer('check');
  const out: bigint[] = [];
  for (;;) {
    const batch = await consumer.fetch(100, 0);
    if (batch.length === 0) return out;
    for (const d of batch) {
      out.push(d.message.seq);
      await d.ack();
    }
  }
}

describe('BatchedPublisher', () => {
  it('publishes the calls of one turn together after the turn, in call order, each resolving on its own publish', async () => {
    const bus = new MemoryBus();
    const p = new BatchedPublisher(bus.publisher());
    const settled: number[] = [];
    const all = [1, 2, 3, 4, 5].map((s) => p.publish(hb(s)).then(() => settled.push(s)));
    // Nothing has reached the bus yet: the burst goes out from setImmediate.
    expect(p.queued).toBe(5);
    expect(await drain(bus)).toEqual([]);
    await Promise.all(all);
    expect(p.queued).toBe(0);
    expect(settled).toEqual([1, 2, 3, 4, 5]);
    expect(await drain(bus)).toEqual([1n, 2n, 3n, 4n, 5n]);
    // A later turn is a new burst.
    await p.publish(hb(6));
    expect(await drain(bus)).toEqual([6n]);
    await bus.close();
  });

  it("a refused message rejects alone, with the bus's own error", async () => {
    const bus = new MemoryBus({ maxMessages: 2 });
    const p = new BatchedPublisher(bus.publisher());
    const results = await Promise.allSettled([1, 2, 3].map((s) => p.publish(hb(s))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(((results[2] as PromiseRejectedResult).reason as { code: string }).code).toBe('BUS_FULL');
    await bus.close();
  });

  it('close() sends what is queued, then closes the inner publisher', async () => {
    const bus = new MemoryBus();
    const p = new BatchedPublisher(bus.publisher());
    const pending = p.publish(hb(1));
    await p.close();
    await pending;
    expect(await drain(bus)).toEqual([1n]);
    await expect(p.publish(hb(2))).rejects.toMatchObject({ code: 'BUS_CLOSED' });
    await bus.close();
  });
});
