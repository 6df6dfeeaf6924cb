// Test helper: everything a bus holds for a fresh durable consumer, acked, in delivery order.
import type { Bus, BusHeartbeat } from '../../bus/bus.ts';

export async function drainBus(bus: Bus, durable = 'drain-test', waitMs = 100): Promise<BusHeartbeat[]> {
  const consumer = bus.consumer(durable);
  const out: BusHeartbeat[] = [];
  for (;;) {
    const batch = await consumer.fetch(500, waitMs);
    if (batch.length === 0) break;
    for (const d of batch) {
      out.push(d.message);
      await d.ack();
    }
  }
  await consumer.close();
  return out;
}
