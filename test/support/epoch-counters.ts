// Test helpers for the per-(device, epoch) counters (oracle/epochs/epoch-stats.ts): a comparable
// snapshot of the counter tables, and a forced rebuild from the slot rollups.
import type { Store } from '../../oracle/store/store.ts';
import { rebuildOpenEpochStats } from '../../oracle/epochs/epoch-stats.ts';

/** Every counter row, in a stable order (rows with only connected time are left out). */
export async function counterSnapshot(store: Store): Promise<unknown[]> {
  return [
    ...(await store.query('SELECT epoch::text, device_id, credited_slots, heartbeats::text FROM epoch_device_stats WHERE credited_slots > 0 OR heartbeats > 0 ORDER BY 1, 2')),
    ...(await store.query('SELECT epoch::text, device_id, metric_id, total::text, max_slot_total::text, capped_total::text, slot_cap::text FROM epoch_metric_stats ORDER BY 1, 2, 3')),
  ];
}

/** Recompute the open epochs' counters from the rollups, as ensureCursor does when caps change. */
export async function rebuildCounters(store: Store): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.query('LOCK TABLE epoch_cursor IN EXCLUSIVE MODE');
    const [c] = await tx.query<{ next_epoch: string; next_first_slot: string }>('SELECT next_epoch::text, next_first_slot::text FROM epoch_cursor');
    if (c === undefined) throw new Error('no epoch cursor');
    await rebuildOpenEpochStats(tx, Number(c.next_epoch), Number(c.next_first_slot));
  });
}
