// Session-report ingest (docs/storage.md §Session reports; issue 5 §Scores: connected time is
// reported beside credited uptime, never paid). Pulls broker session reports from a durable bus
// consumer and, in ONE transaction per batch and a fixed handful of batched statements:
//   1. reads the epoch cursor FOR SHARE (like write-batch.ts: an epoch close, FOR UPDATE, waits for
//      this batch and this batch for a close; ensureCursor's EXCLUSIVE lock waits for it too);
//   2. inserts every report part's id into session_reports, ON CONFLICT DO NOTHING: the ids that come
//      back are new, the others were counted before (a redelivery or a resend) and add nothing;
//   3. splits the new reports' intervals at epoch boundaries (session-epochs.ts, pure) and adds the
//      milliseconds to epoch_device_stats.connected_ms (UNNEST upsert, never row by row), touching
//      no other column of it.
// Lock order: heartbeat ingest (write-batch.ts) locks epoch_device_stats rows in one statement, in
// (device_id, epoch) order; step 3 locks them in one statement in the same order, and its follow-up
// for rows at the epoch's length touches only rows it already holds. So the two kinds of batch
// never wait for each other in a cycle on those rows, and neither locks anything else the other
// locks (the cursor is FOR SHARE on both sides). Step 2 inserts ids in id order, so two session
// workers given overlapping batches (a redelivery racing a slow worker) take them in one order too.
// Should a deadlock still occur, PostgreSQL aborts one side (40P01), a transient error: nak, retry.
// The deliveries are acked only after COMMIT, so a crash redelivers the batch and step 2 makes that
// harmless.
//
// Pruning: a report part whose window ends at or before the first open epoch's start can add
// nothing any more (time in closed epochs is frozen out by step 3), so its id no longer needs to be
// remembered. Whenever a batch sees the cursor past the epoch it last pruned to, the worker deletes
// those ids after COMMIT (FOR UPDATE SKIP LOCKED: never waits for another worker). Should such a
// report be redelivered later, step 2 records its id again and step 3 adds 0 ms (counted as
// epoch_closed), so session_reports holds about one epoch of reports instead of growing forever. What is not added, and why, is counted: time in a closed epoch (its inputs are frozen),
// before genesis, of an unknown device id, or beyond the epoch's length.
//
// Failure handling, so a bad report never wedges the stream and nothing crashes the service:
// - a malformed report (SESSION_BAD_REPORT) is counted, logged and terminated;
// - before the oracle has recorded the epoch layout on the cursor, the batch is nak'ed with a delay
//   and counted later (never dropped);
// - a transient database error naks the batch with a backoff; any other database error bisects the
//   batch until the one report that causes it is isolated, which is then terminated (store_error).
import type { BusConsumer, BusDelivery, BusSessionReport, SessionReport } from '../../bus/bus.ts';
import { connectedMsOf, sessionReportId } from '../../bus/session-report.ts';
import type { Sql, Store } from '../store/store.ts';
import { connectedTimeByEpoch, epochLengthMs, epochStartMs, type EpochLayout } from './session-epochs.ts';
import { isTransient } from './ingest-worker.ts';
import { ConsumerLoop } from './consumer-loop.ts';
import type { SessionIngestMetrics } from './session-metrics.ts';

export type SessionIngestOptions = {
  readonly store: Store;
  readonly consumer: BusConsumer<BusSessionReport>;
  /** Report parts per transaction. */
  readonly batchSize?: number;
  readonly fetchWaitMs?: number;
  /** How long to wait before retrying reports that arrived before the epoch layout was recorded. Default 5 s. */
  readonly layoutRetryMs?: number;
  readonly metrics?: SessionIngestMetrics;
  readonly log?: (event: Record<string, unknown>) => void;
};

export type SessionBatchStats = {
  readonly delivered: number;
  /** Report parts counted now (new ids). */
  readonly counted: number;
  /** Report parts already counted before (redelivered or resent). */
  readonly duplicates: number;
  readonly malformed: number;
  /** Nak'ed to be retried: no epoch layout yet, or a transient database error. */
  readonly deferred: number;
  readonly storeErrors: number;
  /** Milliseconds added to epoch_device_stats.connected_ms. */
  readonly addedMs: number;
  readonly ignoredMs: { readonly epochClosed: number; readonly unknownDevice: number; readonly beforeGenesis: number; readonly capped: number };
};

const EMPTY: SessionBatchStats = {
  delivered: 0, counted: 0, duplicates: 0, malformed: 0, deferred: 0, storeErrors: 0, addedMs: 0,
  ignoredMs: { epochClosed: 0, unknownDevice: 0, beforeGenesis: 0, capped: 0 },
};

function plus(a: SessionBatchStats, b: SessionBatchStats): SessionBatchStats {
  return {
    delivered: a.delivered + b.delivered, counted: a.counted + b.counted, duplicates: a.duplicates + b.duplicates, malformed: a.malformed + b.malformed,
    deferred: a.deferred + b.deferred, storeErrors: a.storeErrors + b.storeErrors, addedMs: a.addedMs + b.addedMs,
    ignoredMs: {
      epochClosed: a.ignoredMs.epochClosed + b.ignoredMs.epochClosed, unknownDevice: a.ignoredMs.unknownDevice + b.ignoredMs.unknownDevice,
      beforeGenesis: a.ignoredMs.beforeGenesis + b.ignoredMs.beforeGenesis, capped: a.ignoredMs.capped + b.ignoredMs.capped,
    },
  };
}

type Valid = { readonly report: SessionReport; readonly id: string; readonly delivery: BusDelivery<BusSessionReport> };

type Written =
  | { readonly kind: 'no-layout' }
  | { readonly kind: 'written'; readonly newIds: ReadonlySet<string>; readonly nextEpoch: number; readonly openFromMs: number; readonly addedMs: number; readonly knownMs: number; readonly openMs: number; readonly epochClosedMs: number; readonly beforeGenesisMs: number; readonly cappedMs: number };

type CursorRow = { next_epoch: string; genesis_slot: string | null; epoch_slots: number | null; slot_ms: string | null };

/**
 * Forget the ids of report parts whose window ends at or before `openFromMs`, the first open
 * epoch's start (see Pruning above). Rows another worker holds are skipped, not waited for; the
 * next prune takes them. Returns how many were deleted. Exposed for tests.
 */
export async function pruneSessionReports(store: Sql, openFromMs: number): Promise<number> {
  const rows = await store.query<{ n: string }>(
    `WITH gone AS (
       DELETE FROM session_reports WHERE report_id IN (
         SELECT report_id FROM session_reports WHERE to_ms <= $1::bigint FOR UPDATE SKIP LOCKED)
       RETURNING 1
     ) SELECT count(*)::text AS n FROM gone`,
    [String(openFromMs)],
  );
  return Number(rows[0]?.n ?? 0);
}

/** The transaction of one batch (steps 1–3 above). Exposed for tests. */
export async function writeSessionReports(store: Store, reports: readonly SessionReport[]): Promise<Written> {
  return store.transaction((tx) => writeInTransaction(tx, reports));
}

async function writeInTransaction(tx: Sql, batch: readonly SessionReport[]): Promise<Written> {
  // 1. The layout and the first open epoch, held FOR SHARE until COMMIT.
  const cursor = (await tx.query<CursorRow>('SELECT next_epoch::text AS next_epoch, genesis_slot::text AS genesis_slot, epoch_slots, slot_ms::text AS slot_ms FROM epoch_cursor WHERE id FOR SHARE'))[0];
  if (cursor === undefined || cursor.genesis_slot === null || cursor.epoch_slots === null || cursor.slot_ms === null) return { kind: 'no-layout' };
  const layout: EpochLayout = { genesisSlot: Number(cursor.genesis_slot), epochSlots: Number(cursor.epoch_slots), slotMs: Number(cursor.slot_ms) };
  const nextEpoch = Number(cursor.next_epoch);

  // 2. Dedup by report id: only the ids inserted now are counted. In id order (lock order, above).
  const reports = [...batch].sort((a, b) => (sessionReportId(a) < sessionReportId(b) ? -1 : sessionReportId(a) > sessionReportId(b) ? 1 : 0));
  const inserted = await tx.query<{ report_id: string }>(
    `INSERT INTO session_reports (report_id, broker_id, report_seq, part, parts, from_ms, to_ms, intervals, reported_ms)
     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::integer[], $5::integer[], $6::bigint[], $7::bigint[], $8::integer[], $9::bigint[])
     ON CONFLICT (report_id) DO NOTHING
     RETURNING report_id`,
    [
      reports.map((r) => sessionReportId(r)),
      reports.map((r) => r.brokerId),
      reports.map((r) => String(r.seq)),
      reports.map((r) => r.part),
      reports.map((r) => r.parts),
      reports.map((r) => String(r.from)),
      reports.map((r) => String(r.to)),
      reports.map((r) => r.intervals.length),
      reports.map((r) => String(connectedMsOf(r))),
    ],
  );
  const newIds = new Set(inserted.map((r) => r.report_id));

  // 3. Split at epoch boundaries, sum per (epoch, device), add to the open epochs of known devices.
  const time = connectedTimeByEpoch(
    reports.filter((r) => newIds.has(sessionReportId(r))).flatMap((r) => r.intervals),
    layout,
    nextEpoch,
  );
  let addedMs = 0;
  let knownMs = 0;
  const openMs = time.add.reduce((a, x) => a + x.ms, 0);
  if (time.add.length > 0) {
    const cap = String(epochLengthMs(layout));
    // What this batch adds is counted from its own input, never as new − old: `old` read in the same
    // statement comes from the statement's snapshot, and when another worker commits to a row while
    // this upsert waits for its lock, the upsert builds on the newer value, so new − old counted the
    // other worker's time too (and `capped` went negative).
    //
    // A row that stays within the epoch's length takes the whole input (added = ms). A row that
    // would exceed it is not updated here (the DO UPDATE's WHERE fails), but ON CONFLICT DO UPDATE
    // locks it all the same (PostgreSQL docs, INSERT: "all rows will be locked when the ON CONFLICT
    // DO UPDATE action is taken"); rows are locked in (device_id, epoch) order, as heartbeat ingest
    // locks them.
    const rows = await tx.query<{ epoch: string; device_id: string; ms: string; written: boolean }>(
      `WITH input AS (
         SELECT u.epoch, u.device_id, u.ms
           FROM unnest($1::bigint[], $2::text[], $3::bigint[]) AS u(epoch, device_id, ms)
          WHERE EXISTS (SELECT 1 FROM devices d WHERE d.device_id = u.device_id)
       ), up AS (
         INSERT INTO epoch_device_stats AS s (epoch, device_id, connected_ms)
         SELECT epoch, device_id, LEAST(ms, $4::bigint) FROM input ORDER BY device_id, epoch
         ON CONFLICT (epoch, device_id) DO UPDATE SET connected_ms = s.connected_ms + excluded.connected_ms
           WHERE s.connected_ms + excluded.connected_ms <= $4::bigint
         RETURNING s.epoch, s.device_id
       )
       SELECT i.epoch::text AS epoch, i.device_id, i.ms::text AS ms, (u.device_id IS NOT NULL) AS written
         FROM input i LEFT JOIN up u ON u.epoch = i.epoch AND u.device_id = i.device_id`,
      [time.add.map((x) => String(x.epoch)), time.add.map((x) => x.deviceId), time.add.map((x) => String(x.ms)), cap],
    );
    const full: { epoch: string; deviceId: string }[] = [];
    for (const r of rows) {
      knownMs += Number(r.ms);
      if (r.written) addedMs += Number(r.ms);
      else full.push({ epoch: r.epoch, deviceId: r.device_id });
    }
    if (full.length > 0) {
      // The rows that reach the epoch's length: this transaction holds their locks since the upsert,
      // so this statement's snapshot (READ COMMITTED, the store's plain BEGIN: one snapshot per
      // statement, taken after the upsert) reads their latest value, and the room left, cap − value,
      // is exactly what this batch adds; the rest of its input is capped. It takes no new lock.
      const [r] = await tx.query<{ added_ms: string }>(
        `WITH cur AS (
           SELECT s.epoch, s.device_id, s.connected_ms
             FROM epoch_device_stats s JOIN unnest($1::bigint[], $2::text[]) AS u(epoch, device_id) ON s.epoch = u.epoch AND s.device_id = u.device_id
         ), up AS (
           UPDATE epoch_device_stats s SET connected_ms = $3::bigint FROM cur
            WHERE s.epoch = cur.epoch AND s.device_id = cur.device_id AND cur.connected_ms < $3::bigint
           RETURNING $3::bigint - cur.connected_ms AS added
         )
         SELECT coalesce(sum(added), 0)::text AS added_ms FROM up`,
        [full.map((x) => x.epoch), full.map((x) => x.deviceId), cap],
      );
      addedMs += Number(r?.added_ms ?? 0);
    }
  }
  return { kind: 'written', newIds, nextEpoch, openFromMs: epochStartMs(nextEpoch, layout), addedMs, knownMs, openMs, epochClosedMs: time.epochClosedMs, beforeGenesisMs: time.beforeGenesisMs, cappedMs: time.cappedMs };
}

export class SessionIngestWorker {
  private readonly layoutRetryMs: number;
  private readonly log: (event: Record<string, unknown>) => void;
  private readonly loop: ConsumerLoop<BusSessionReport>;
  private waitingForLayout = false;
  /** The first open epoch this worker last pruned session_reports for (see Pruning above). */
  private prunedFor = -1;

  constructor(private readonly opts: SessionIngestOptions) {
    this.layoutRetryMs = opts.layoutRetryMs ?? 5_000;
    this.log = opts.log ?? ((event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component: 'session-ingest', ...event })}\n`));
    this.loop = new ConsumerLoop({
      consumer: opts.consumer, batchSize: opts.batchSize ?? 200, fetchWaitMs: opts.fetchWaitMs ?? 500, log: this.log,
      process: (deliveries) => this.processBatch(deliveries),
    });
  }

  start(): void {
    this.loop.start();
  }

  /** Graceful stop: finish (commit and ack) the batch in hand, then stop fetching. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Process one batch end to end (exposed for tests). */
  async processBatch(deliveries: readonly BusDelivery<BusSessionReport>[]): Promise<SessionBatchStats> {
    const m = this.opts.metrics;
    const valid: Valid[] = [];
    let malformed = 0;
    for (const d of deliveries) {
      if (d.message.ok) {
        valid.push({ report: d.message.value, id: sessionReportId(d.message.value), delivery: d });
      } else {
        malformed++;
        m?.reports.inc({ outcome: 'malformed' });
        this.log({ level: 'warn', msg: 'malformed session report terminated', code: d.message.code, reason: d.message.message });
        d.term();
      }
    }
    const stats = await this.write(valid);
    return plus(stats, { ...EMPTY, delivered: malformed, malformed });
  }

  private async write(valid: readonly Valid[]): Promise<SessionBatchStats> {
    if (valid.length === 0) return EMPTY;
    const m = this.opts.metrics;
    // The same report twice in one batch (a redelivery racing the first copy) is written once.
    const unique = [...new Map(valid.map((v) => [v.id, v.report])).values()];
    let out: Written;
    try {
      out = await writeSessionReports(this.opts.store, unique);
      this.loop.succeeded();
    } catch (e) {
      return this.handleFailure(valid, e);
    }
    if (out.kind === 'no-layout') {
      // Not dropped: the oracle records the layout when its epoch pipeline starts (ensureCursor).
      if (!this.waitingForLayout) this.log({ level: 'info', msg: 'epoch layout not recorded yet; session reports are retried later', retryMs: this.layoutRetryMs, reports: valid.length });
      this.waitingForLayout = true;
      m?.reports.inc({ outcome: 'deferred' }, valid.length);
      for (const v of valid) v.delivery.nak(this.layoutRetryMs);
      return { ...EMPTY, delivered: valid.length, deferred: valid.length };
    }
    this.waitingForLayout = false;
    // Ack only after COMMIT (bus/bus.ts). A failed ack is harmless: the redelivered copy is a duplicate.
    const acks = await Promise.allSettled(valid.map((v) => v.delivery.ack()));
    const failedAcks = acks.filter((a) => a.status === 'rejected').length;
    if (failedAcks > 0) this.log({ level: 'warn', msg: 'acks failed after commit; the bus will redeliver them as duplicates', failed: failedAcks });
    // Every delivery beyond the first copy of a newly counted id is a duplicate.
    const counted = out.newIds.size;
    const duplicates = valid.length - counted;
    const ignoredMs = { epochClosed: out.epochClosedMs, unknownDevice: out.openMs - out.knownMs, beforeGenesis: out.beforeGenesisMs, capped: out.cappedMs + (out.knownMs - out.addedMs) };
    if (m !== undefined) {
      if (counted > 0) m.reports.inc({ outcome: 'counted' }, counted);
      if (duplicates > 0) m.reports.inc({ outcome: 'duplicate' }, duplicates);
      if (out.addedMs > 0) m.connectedMs.inc({ outcome: 'counted' }, out.addedMs);
      if (ignoredMs.epochClosed > 0) m.connectedMs.inc({ outcome: 'epoch_closed' }, ignoredMs.epochClosed);
      if (ignoredMs.unknownDevice > 0) m.connectedMs.inc({ outcome: 'unknown_device' }, ignoredMs.unknownDevice);
      if (ignoredMs.beforeGenesis > 0) m.connectedMs.inc({ outcome: 'before_genesis' }, ignoredMs.beforeGenesis);
      if (ignoredMs.capped > 0) m.connectedMs.inc({ outcome: 'capped' }, ignoredMs.capped);
    }
    if (ignoredMs.epochClosed > 0) this.log({ level: 'info', msg: 'connected time in closed epochs ignored', ms: ignoredMs.epochClosed, nextEpoch: out.nextEpoch });
    if (ignoredMs.unknownDevice > 0) this.log({ level: 'info', msg: 'connected time of unknown device ids ignored', ms: ignoredMs.unknownDevice });
    if (out.nextEpoch > this.prunedFor) await this.prune(out.nextEpoch, out.openFromMs);
    return { ...EMPTY, delivered: valid.length, counted, duplicates, addedMs: out.addedMs, ignoredMs };
  }

  /** After COMMIT and the acks: a failed prune loses nothing (the rows stay) and is retried next batch. */
  private async prune(nextEpoch: number, openFromMs: number): Promise<void> {
    try {
      const pruned = await pruneSessionReports(this.opts.store, openFromMs);
      this.prunedFor = nextEpoch;
      if (pruned > 0) this.log({ level: 'info', msg: 'session report ids of closed epochs pruned', pruned, nextEpoch });
    } catch (e) {
      this.log({ level: 'warn', msg: 'pruning session report ids failed; retried with the next batch', error: (e as Error).message });
    }
  }

  private async handleFailure(valid: readonly Valid[], e: unknown): Promise<SessionBatchStats> {
    const m = this.opts.metrics;
    if (isTransient(e)) {
      const delay = this.loop.backoff();
      this.log({ level: 'warn', msg: 'session batch failed, redelivering', error: (e as Error).message, size: valid.length, retryMs: delay });
      m?.reports.inc({ outcome: 'deferred' }, valid.length);
      for (const v of valid) v.delivery.nak(delay);
      return { ...EMPTY, delivered: valid.length, deferred: valid.length };
    }
    if (valid.length > 1) {
      // A data error: bisect to find the report that causes it; the others are still counted.
      const half = Math.ceil(valid.length / 2);
      return plus(await this.write(valid.slice(0, half)), await this.write(valid.slice(half)));
    }
    const v = valid[0]!;
    this.log({ level: 'error', msg: 'session report failed to store on its own; terminated', id: v.id, error: (e as Error).message });
    m?.reports.inc({ outcome: 'store_error' });
    v.delivery.term();
    return { ...EMPTY, delivered: 1, storeErrors: 1 };
  }
}
