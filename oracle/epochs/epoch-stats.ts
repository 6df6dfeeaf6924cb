// Per-(device, epoch) counters (migrations/006_epoch_stats.sql; docs/storage.md §Epoch counters).
// Ingest keeps them up to date in its own transaction (oracle/ingest/write-batch.ts), so closing an
// epoch reads one row per device and metric instead of every slot rollup. The slot rollups stay the
// source of truth: `rebuildOpenEpochStats` recomputes the counters from them, and it is what runs
// whenever the epoch layout or the per-slot caps are recorded or change.
import type { Sql, Store } from '../store/store.ts';
import { epochWindow, genesisSlot, type EpochTiming } from '../../shared/epoch-timing.ts';
import type { RewardParams } from '../../shared/rewards/reward-params.ts';
import { PulseError } from '../../shared/errors.ts';

type CursorRow = {
  next_epoch: string;
  next_first_slot: string;
  genesis_slot: string | null;
  epoch_slots: number | null;
  slot_ms: string | null;
  cap_ids: string;
  caps: string;
};

const READ_CURSOR = `SELECT next_epoch::text, next_first_slot::text, genesis_slot::text, epoch_slots, slot_ms::text,
                            array_to_string(cap_metric_ids, ',') AS cap_ids, array_to_string(cap_per_slot, ',') AS caps
                       FROM epoch_cursor WHERE id`;

/** The per-slot caps of `params` as the cursor stores them: sorted by metric id. */
function capsOf(params: RewardParams): { ids: number[]; caps: string[] } {
  const sorted = [...params.metrics].sort((a, b) => a.metricId - b.metricId);
  return { ids: sorted.map((m) => m.metricId), caps: sorted.map((m) => m.capPerSlot.toString()) };
}

function layoutMatches(row: CursorRow, timing: EpochTiming): boolean {
  return row.genesis_slot === String(genesisSlot(timing)) && row.epoch_slots === timing.epochSlots && row.slot_ms === String(timing.slotMs);
}

function capsMatch(row: CursorRow, params: RewardParams): boolean {
  const { ids, caps } = capsOf(params);
  return row.cap_ids === ids.join(',') && row.caps === caps.join(',');
}

/**
 * Make sure the cursor exists (epoch 0 at the genesis slot) and records this network's epoch layout
 * and these parameters' per-slot caps. Idempotent and cheap when nothing changed (one read).
 *
 * A layout different from the recorded one is refused (TIMING_INVALID): closed epochs and the open
 * cursor were laid out with it, so another epoch length or genesis would re-slice history. New caps
 * (a new parameter version) are recorded and the open epochs' counters rebuilt with them.
 *
 * The write path takes the cursor table in EXCLUSIVE mode. Every ingest batch reads the cursor FOR
 * SHARE before it writes rollups, which holds a ROW SHARE lock on the table until it commits, even
 * when the row did not exist yet. So the lock waits for every batch that read the old state, and
 * holds back every later batch until the new layout is committed: the rebuild sees each batch
 * either in the rollups or, later, the batch maintains the counters itself. Never both, never neither.
 */
export async function ensureCursor(store: Store, timing: EpochTiming, params: RewardParams): Promise<void> {
  const fast = (await store.query<CursorRow>(READ_CURSOR))[0];
  if (fast !== undefined && layoutMatches(fast, timing) && capsMatch(fast, params)) return;
  await store.transaction(async (tx) => {
    await tx.query('LOCK TABLE epoch_cursor IN EXCLUSIVE MODE');
    await tx.query('INSERT INTO epoch_cursor (id, next_epoch, next_first_slot) VALUES (true, 0, $1) ON CONFLICT (id) DO NOTHING', [String(epochWindow(timing, 0).firstSlot)]);
    const row = (await tx.query<CursorRow>(READ_CURSOR))[0]!;
    if (row.genesis_slot !== null && !layoutMatches(row, timing)) {
      throw new PulseError(
        'TIMING_INVALID',
        `this database's epochs are laid out with genesis slot ${row.genesis_slot}, ${row.epoch_slots} slots of ${row.slot_ms} ms; ` +
          `the configured timing (genesis slot ${genesisSlot(timing)}, ${timing.epochSlots} slots of ${timing.slotMs} ms) would re-slice closed epochs`,
      );
    }
    if (row.genesis_slot !== null && capsMatch(row, params)) return; // another oracle got here first
    const { ids, caps } = capsOf(params);
    await tx.query('UPDATE epoch_cursor SET genesis_slot = $1, epoch_slots = $2, slot_ms = $3, cap_metric_ids = $4::int[], cap_per_slot = $5::numeric[] WHERE id', [
      String(genesisSlot(timing)), timing.epochSlots, String(timing.slotMs), ids, caps,
    ]);
    await rebuildOpenEpochStats(tx, Number(row.next_epoch), Number(row.next_first_slot));
  });
}

/**
 * Recompute the counters of every open epoch (epoch ≥ `fromEpoch`, slots ≥ `fromSlot`) from the slot
 * rollups, with the layout and caps the cursor records. Closed epochs are never touched: their
 * inputs are frozen (HB_EPOCH_CLOSED). Connected time comes from broker session reports, not from
 * the rollups, so it is kept. Run inside a transaction that holds the cursor table (ensureCursor).
 */
export async function rebuildOpenEpochStats(tx: Sql, fromEpoch: number, fromSlot: number): Promise<void> {
  const open = [String(fromEpoch)];
  await tx.query('UPDATE epoch_device_stats SET credited_slots = 0, heartbeats = 0 WHERE epoch >= $1', open);
  await tx.query(
    `INSERT INTO epoch_device_stats AS e (epoch, device_id, credited_slots, heartbeats)
     SELECT (r.slot - l.genesis_slot) / l.epoch_slots, r.device_id, count(*), sum(r.heartbeats)
       FROM slot_rollups r CROSS JOIN epoch_cursor l
      WHERE r.slot >= $1 AND l.genesis_slot IS NOT NULL
      GROUP BY 1, 2
     ON CONFLICT (epoch, device_id) DO UPDATE SET credited_slots = excluded.credited_slots, heartbeats = excluded.heartbeats`,
    [String(fromSlot)],
  );
  await tx.query('DELETE FROM epoch_metric_stats WHERE epoch >= $1', open);
  await tx.query(
    `INSERT INTO epoch_metric_stats (epoch, device_id, metric_id, total, max_slot_total, capped_total, slot_cap)
     SELECT (s.slot - l.genesis_slot) / l.epoch_slots, s.device_id, s.metric_id, sum(s.total), max(s.total),
            CASE WHEN c.cap IS NULL THEN NULL ELSE sum(LEAST(s.total, c.cap)) END, c.cap
       FROM slot_metric_sums s CROSS JOIN epoch_cursor l
       LEFT JOIN LATERAL unnest(l.cap_metric_ids, l.cap_per_slot) AS c(metric_id, cap) ON c.metric_id = s.metric_id
      WHERE s.slot >= $1 AND l.genesis_slot IS NOT NULL
      GROUP BY 1, 2, 3, c.cap`,
    [String(fromSlot)],
  );
}

/** What the close needs per device, from the counters (see shared/rewards/score-epoch.ts DeviceAggregate). */
export type EpochStatsRows = {
  readonly devices: readonly { device_id: string; credited: number; heartbeats: string; connected_ms: string }[];
  readonly metrics: readonly { device_id: string; metric_id: number; raw: string; capped: string; any_capped: boolean }[];
  readonly unweighted: readonly { device_id: string }[];
};

/**
 * The counters of one epoch, capped with `params`. A metric's capped sum is its total when no slot
 * exceeded the cap, the maintained capped total when it was kept with this cap, and otherwise (the
 * cap changed since) the slots of that one device capped one by one.
 *
 * That last case is a second statement over just those (device, metric) pairs, not a correlated
 * subquery in the first: its per-row cost estimate (an index scan for each of 100,000 rows) made
 * PostgreSQL JIT-compile the whole statement with inlining and optimization, ~0.2–0.5 s of a close
 * that needed no slot row at all.
 */
export async function readEpochStats(tx: Sql, params: RewardParams, epoch: number, firstSlot: number, endSlot: number): Promise<EpochStatsRows> {
  const devices = await tx.query<EpochStatsRows['devices'][number]>(
    `SELECT device_id, credited_slots AS credited, heartbeats::text AS heartbeats, connected_ms::text AS connected_ms
       FROM epoch_device_stats WHERE epoch = $1`,
    [String(epoch)],
  );
  const { ids, caps } = capsOf(params);
  // One pass over the epoch's metric rows: a metric the parameters do not weight (no cap) only marks
  // its device UNWEIGHTED_METRIC; capped is NULL where the slots must be capped one by one.
  const rows = await tx.query<{ device_id: string; metric_id: number; weighted: boolean; raw: string; capped: string | null; any_capped: boolean }>(
    `SELECT e.device_id, e.metric_id, c.cap IS NOT NULL AS weighted, e.total::text AS raw,
            (CASE WHEN e.max_slot_total <= c.cap THEN e.total
                  WHEN e.slot_cap = c.cap THEN e.capped_total
             END)::text AS capped,
            coalesce(e.max_slot_total > c.cap, false) AS any_capped
       FROM epoch_metric_stats e LEFT JOIN unnest($2::int[], $3::numeric[]) AS c(metric_id, cap) ON c.metric_id = e.metric_id
      WHERE e.epoch = $1`,
    [String(epoch), ids, caps],
  );
  const recap = rows.filter((r) => r.weighted && r.capped === null);
  const recapped = new Map<string, string>();
  if (recap.length > 0) {
    const sums = await tx.query<{ device_id: string; metric_id: number; capped: string }>(
      `SELECT s.device_id, s.metric_id, sum(LEAST(s.total, c.cap))::text AS capped
         FROM slot_metric_sums s
         JOIN unnest($3::text[], $4::int[]) AS k(device_id, metric_id) ON k.device_id = s.device_id AND k.metric_id = s.metric_id
         JOIN unnest($5::int[], $6::numeric[]) AS c(metric_id, cap) ON c.metric_id = s.metric_id
        WHERE s.slot >= $1 AND s.slot < $2
        GROUP BY s.device_id, s.metric_id`,
      [String(firstSlot), String(endSlot), recap.map((r) => r.device_id), recap.map((r) => r.metric_id), ids, caps],
    );
    for (const r of sums) recapped.set(`${r.device_id}/${r.metric_id}`, r.capped);
  }
  const metrics: EpochStatsRows['metrics'][number][] = [];
  const unweighted = new Set<string>();
  for (const r of rows) {
    if (!r.weighted) {
      unweighted.add(r.device_id);
      continue;
    }
    const capped = r.capped ?? recapped.get(`${r.device_id}/${r.metric_id}`);
    // The counters hold a total for this metric, so the epoch has slot rows for it; none means the
    // counters and the rollups disagree, and no score can be computed from either.
    if (capped === undefined) throw new PulseError('EPOCH_CLOSE_FAILED', `epoch ${epoch}: device ${r.device_id} metric ${r.metric_id} has counters but no slot sums to cap`);
    metrics.push({ device_id: r.device_id, metric_id: r.metric_id, raw: r.raw, capped, any_capped: r.any_capped });
  }
  return { devices, metrics, unweighted: [...unweighted].map((device_id) => ({ device_id })) };
}
