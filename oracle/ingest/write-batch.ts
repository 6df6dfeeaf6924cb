// The ingest storage transaction (issue 4 §Ingest, docs/storage.md §Ingest): in ONE transaction and a
// fixed handful of batched statements (UNNEST, never row by row):
//   1. look up the keys and lock their device rows, in device_id order (no deadlock between workers);
//   2. apply the registry and replay rules against the locked rows;
//   3. insert accepted heartbeats and upsert the slot rollups and the per-(device, epoch) counters
//      from exactly the rows inserted;
//   4. advance each device's max seq;
//   5. insert every rejection with its reason code.
// The caller acks the bus deliveries only after this commits, so a crash anywhere before the commit
// redelivers everything and a crash after it finds the rows already there (HB_DUPLICATE).
import type { Sql, Store } from '../store/store.ts';
import { toHex, bytesEqual } from '../../shared/hex.ts';
import { MAX_STORED_REJECTION_BYTES, cleanDetail, type Candidate, type Rejection } from './classify.ts';

export type BatchOutcome = {
  /** Per candidate (same order as the input): undefined when accepted, else its rejection. */
  readonly verdicts: readonly (Rejection | undefined)[];
  readonly accepted: number;
  /** Rows actually inserted (equals `accepted` unless a unique index caught a duplicate). */
  readonly inserted: number;
};

type KeyRow = { key_id: string; device_id: string; status: string; retired: boolean; max_seq: string; max_seq_received_at: string };
type DeviceState = { maxSeq: bigint; maxReceivedAt: bigint; newMax: boolean };

function rejection(c: Candidate, deviceId: string | null, reason: Rejection['reason'], detail: string): Rejection {
  return { deviceId, seq: c.heartbeat.seq, reason, detail: cleanDetail(detail), raw: c.heartbeat.raw, receivedAt: c.receivedAt };
}

/**
 * JSON object {"<metric id>": <u64>} (jsonb numbers are arbitrary-precision NUMERIC, so u64 is
 * exact), written as a double-quoted array literal element. Ids and values are digits, so the only
 * characters that need a backslash there are the quotes around the keys (PostgreSQL §8.15.6).
 */
function metricsElement(c: Candidate): string {
  const metrics = c.heartbeat.metrics;
  let out = '"{';
  for (let i = 0; i < metrics.length; i++) out += `${i === 0 ? '' : ','}\\"${metrics[i]!.id}\\":${metrics[i]!.value.toString()}`;
  return `${out}}"`;
}

/**
 * A PostgreSQL array literal of elements that need no quoting: lowercase hex or decimal digits only
 * (device and key ids, bigint decimals), never NULL. Every value comes from decoded bytes or from
 * the database, so that always holds; it is checked all the same (one regex test over the joined
 * text, a tiny share of the statement), so that a future free-form value fails its batch loudly
 * (bisected and recorded like any other store error) instead of shifting elements between columns.
 */
const LITERAL_SAFE = /^(?:[0-9a-f]+(?:,[0-9a-f]+)*)?$/;
function arrayLiteral(values: readonly string[]): string {
  const body = values.join(',');
  if (!LITERAL_SAFE.test(body)) throw new RangeError('writeBatch: an array element is not lowercase hex or decimal digits');
  return `{${body}}`;
}

export async function writeBatch(store: Store, candidates: readonly Candidate[], rejected: readonly Rejection[]): Promise<BatchOutcome> {
  return store.transaction((tx) => writeInTransaction(tx, candidates, rejected));
}

async function writeInTransaction(tx: Sql, candidates: readonly Candidate[], rejected: readonly Rejection[]): Promise<BatchOutcome> {
  const verdicts: (Rejection | undefined)[] = new Array<Rejection | undefined>(candidates.length).fill(undefined);
  const accepted: number[] = [];
  let inserted = 0;

  if (candidates.length > 0) {
    // 1. Keys → devices, locking each device row (FOR UPDATE OF d) in device_id order.
    const keyIds = [...new Set(candidates.map((c) => c.heartbeat.deviceId))];
    const keyRows = await tx.query<KeyRow>(
      `SELECT k.key_id, d.device_id, d.status, (k.retired_at IS NOT NULL) AS retired,
              d.max_seq::text AS max_seq, d.max_seq_received_at::text AS max_seq_received_at
         FROM device_keys k JOIN devices d ON d.device_id = k.device_id
        WHERE k.key_id = ANY($1::text[])
        ORDER BY d.device_id
          FOR UPDATE OF d`,
      [arrayLiteral(keyIds)],
    );
    const byKey = new Map(keyRows.map((r) => [r.key_id, r]));
    const devices = new Map<string, DeviceState>();
    for (const r of keyRows)
      if (!devices.has(r.device_id)) devices.set(r.device_id, { maxSeq: BigInt(r.max_seq), maxReceivedAt: BigInt(r.max_seq_received_at), newMax: false });

    // 2. Registry rules, then seq rules. Process each device's heartbeats in seq order so the
    //    outcome does not depend on the order the bus handed them over.
    const order = candidates.map((_, i) => i);
    const deviceIds = candidates.map((c) => byKey.get(c.heartbeat.deviceId)?.device_id ?? '');
    order.sort((a, b) => {
      const da = deviceIds[a]!;
      const db = deviceIds[b]!;
      if (da !== db) return da < db ? -1 : 1;
      const sa = candidates[a]!.heartbeat.seq;
      const sb = candidates[b]!.heartbeat.seq;
      return sa < sb ? -1 : sa > sb ? 1 : a - b;
    });

    // docs/rewards.md §Epochs: a closed epoch's inputs never change, so a heartbeat whose slot lies in
    // a closed epoch is recorded, never credited. The cursor row is read FOR SHARE: an epoch close
    // (FOR UPDATE, oracle/epochs/close-epoch.ts) waits for this batch, and this batch for a close.
    const cursor = await tx.query<{ next_first_slot: string }>('SELECT next_first_slot::text AS next_first_slot FROM epoch_cursor FOR SHARE');
    const openFrom = cursor[0] === undefined ? undefined : BigInt(cursor[0].next_first_slot);

    const needExisting: number[] = [];
    for (const i of order) {
      const c = candidates[i]!;
      const key = byKey.get(c.heartbeat.deviceId);
      if (key === undefined) {
        verdicts[i] = rejection(c, c.heartbeat.deviceId, 'HB_UNKNOWN_DEVICE', `no registered device has key ${c.heartbeat.deviceId}`);
      } else if (key.status !== 'active') {
        verdicts[i] = rejection(c, key.device_id, 'HB_REVOKED_DEVICE', `device ${key.device_id} is ${key.status}`);
      } else if (key.retired) {
        verdicts[i] = rejection(c, key.device_id, 'HB_REVOKED_DEVICE', `key ${c.heartbeat.deviceId} was rotated away from device ${key.device_id}`);
      } else if (openFrom !== undefined && c.slot < openFrom) {
        verdicts[i] = rejection(c, key.device_id, 'HB_EPOCH_CLOSED', `slot ${c.slot} belongs to an epoch that is already closed (open slots start at ${openFrom})`);
      } else if (c.heartbeat.seq <= devices.get(key.device_id)!.maxSeq) {
        needExisting.push(i); // duplicate, equivocation, replay, or late processing: decided below
      }
    }

    // Stored rows for the seqs at or below the device max (normally only redeliveries).
    const existing = new Map<string, Uint8Array>();
    if (needExisting.length > 0) {
      const rows = await tx.query<{ device_id: string; seq: string; raw: Uint8Array }>(
        `SELECT h.device_id, h.seq::text AS seq, h.raw
           FROM heartbeats h
           JOIN unnest($1::text[], $2::bigint[]) AS c(device_id, seq) ON h.device_id = c.device_id AND h.seq = c.seq`,
        [needExisting.map((i) => deviceIds[i]!), needExisting.map((i) => candidates[i]!.heartbeat.seq.toString())],
      );
      for (const r of rows) existing.set(`${r.device_id}:${r.seq}`, r.raw);
    }

    // `order` is sorted by (device, seq), so the heartbeats of one (device, seq) are adjacent and the
    // one accepted among them, if any, is the last heartbeat accepted when a later one is reached.
    let lastAccepted: { readonly deviceId: string; readonly seq: bigint; readonly raw: Uint8Array } | undefined;
    for (const i of order) {
      if (verdicts[i] !== undefined) continue;
      const c = candidates[i]!;
      const deviceId = deviceIds[i]!;
      const state = devices.get(deviceId)!;
      const prior =
        (existing.size > 0 ? existing.get(`${deviceId}:${c.heartbeat.seq}`) : undefined) ??
        (lastAccepted !== undefined && lastAccepted.deviceId === deviceId && lastAccepted.seq === c.heartbeat.seq ? lastAccepted.raw : undefined);
      if (prior !== undefined) {
        verdicts[i] = bytesEqual(prior, c.heartbeat.raw)
          ? rejection(c, deviceId, 'HB_DUPLICATE', `seq ${c.heartbeat.seq} is already stored with identical bytes`)
          : rejection(c, deviceId, 'HB_EQUIVOCATION', `seq ${c.heartbeat.seq} is already stored with different bytes`);
        continue;
      }
      if (c.heartbeat.seq <= state.maxSeq && BigInt(c.receivedAt) > state.maxReceivedAt) {
        // docs/protocol.md §Replay and time rules: a lower seq is a replay. "Lower" is judged in the
        // broker's receive order, so a concurrent worker committing a later heartbeat first does not
        // turn this earlier one into a replay (docs/storage.md §Replay rule with concurrent workers).
        verdicts[i] = rejection(c, deviceId, 'HB_REPLAY', `seq ${c.heartbeat.seq} is below the device's highest accepted seq ${state.maxSeq}, received later`);
        continue;
      }
      lastAccepted = { deviceId, seq: c.heartbeat.seq, raw: c.heartbeat.raw };
      accepted.push(i);
      if (c.heartbeat.seq > state.maxSeq) {
        state.maxSeq = c.heartbeat.seq;
        state.maxReceivedAt = BigInt(c.receivedAt);
        state.newMax = true;
      }
    }

    // 3. Heartbeats, slot rollups and epoch counters in one statement: the rollups are built from the
    //    RETURNING rows of the insert, so a row skipped by ON CONFLICT can never be counted (credited)
    //    twice, and the epoch counters from the RETURNING rows of the rollup upserts (a slot is newly
    //    credited when its rollup row now holds exactly this batch's heartbeats; a metric's capped
    //    slot sum grows by min(new, cap) − min(old, cap)). The layout and caps come from the cursor row
    //    this transaction holds FOR SHARE; without a layout no counter is kept, and ensureCursor
    //    rebuilds them from the rollups when it records one (oracle/epochs/epoch-stats.ts).
    if (accepted.length > 0) {
      // The columns go over as array literals built here, and the raw heartbeats as one bytea sliced
      // in SQL by offset and length: ids and numbers are hex or decimal digits, which an array
      // literal takes unquoted, and node-postgres sends a Uint8Array parameter as binary. Its generic
      // array serialization (an escaping pass over every element) and a hex text per raw heartbeat
      // cost more client CPU than all the rest of this function (measured with bench/ingest.ts).
      const n = accepted.length;
      const device = new Array<string>(n);
      const seq = new Array<string>(n);
      const key = new Array<string>(n);
      const ts = new Array<string>(n);
      const slot = new Array<string>(n);
      const recv = new Array<string>(n);
      const rawOffset = new Array<number>(n);
      const rawLength = new Array<number>(n);
      const metrics = new Array<string>(n);
      let rawBytes = 0;
      for (let j = 0; j < n; j++) {
        const i = accepted[j]!;
        const c = candidates[i]!;
        device[j] = deviceIds[i]!;
        seq[j] = c.heartbeat.seq.toString();
        key[j] = c.heartbeat.deviceId;
        ts[j] = c.heartbeat.timestamp.toString();
        slot[j] = c.slot.toString();
        recv[j] = String(c.receivedAt);
        rawOffset[j] = rawBytes + 1; // substring() counts from 1
        rawLength[j] = c.heartbeat.raw.length;
        metrics[j] = metricsElement(c);
        rawBytes += c.heartbeat.raw.length;
      }
      const raw = new Uint8Array(rawBytes);
      for (let j = 0; j < n; j++) raw.set(candidates[accepted[j]!]!.heartbeat.raw, rawOffset[j]! - 1);
      const [r] = await tx.query<{ inserted: number }>(
        `WITH input AS (
           SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::integer[], $8::integer[], $9::text[])
             AS t(device_id, seq, key_id, ts, slot, received_at, raw_offset, raw_length, metrics)
         ), ins AS (
           INSERT INTO heartbeats (device_id, seq, key_id, ts, at, slot, received_at, raw, metrics)
           SELECT device_id, seq, key_id, ts, to_timestamp(ts / 1000.0), slot, received_at, substring($10::bytea FROM raw_offset FOR raw_length), metrics::jsonb
             FROM input
           ON CONFLICT DO NOTHING
           RETURNING device_id, seq, slot, metrics
         ), by_slot AS (
           SELECT device_id, slot, count(*)::integer AS added, min(seq) AS first_seq, max(seq) AS last_seq FROM ins GROUP BY device_id, slot
         ), roll AS (
           INSERT INTO slot_rollups AS r (device_id, slot, heartbeats, first_seq, last_seq)
           SELECT device_id, slot, added, first_seq, last_seq FROM by_slot
           ON CONFLICT (device_id, slot) DO UPDATE
             SET heartbeats = r.heartbeats + excluded.heartbeats,
                 first_seq = least(r.first_seq, excluded.first_seq),
                 last_seq = greatest(r.last_seq, excluded.last_seq)
           RETURNING r.device_id, r.slot, r.heartbeats
         ), by_metric AS (
           SELECT i.device_id, i.slot, m.key::integer AS metric_id, sum(m.value::numeric) AS added
             FROM ins i CROSS JOIN LATERAL jsonb_each_text(i.metrics) AS m(key, value)
            GROUP BY i.device_id, i.slot, m.key::integer
         ), sums AS (
           INSERT INTO slot_metric_sums AS s (device_id, slot, metric_id, total)
           SELECT device_id, slot, metric_id, added FROM by_metric
           ON CONFLICT (device_id, slot, metric_id) DO UPDATE SET total = s.total + excluded.total
           RETURNING s.device_id, s.slot, s.metric_id, s.total
         ), layout AS (
           SELECT genesis_slot, epoch_slots, cap_metric_ids, cap_per_slot FROM epoch_cursor WHERE id AND genesis_slot IS NOT NULL
         ), device_stats AS (
           INSERT INTO epoch_device_stats AS e (epoch, device_id, credited_slots, heartbeats)
           SELECT (b.slot - l.genesis_slot) / l.epoch_slots, b.device_id, count(*) FILTER (WHERE r.heartbeats = b.added), sum(b.added)
             FROM by_slot b JOIN roll r USING (device_id, slot) CROSS JOIN layout l
            WHERE b.slot >= l.genesis_slot
            GROUP BY 1, 2
            -- Rows are locked in (device, epoch) order, the order session-report ingest uses too
            -- (oracle/ingest/session-ingest.ts), so the two never deadlock on these rows.
            ORDER BY b.device_id, 1
           ON CONFLICT (epoch, device_id) DO UPDATE
             SET credited_slots = e.credited_slots + excluded.credited_slots, heartbeats = e.heartbeats + excluded.heartbeats
           RETURNING 1
         ), metric_stats AS (
           INSERT INTO epoch_metric_stats AS m (epoch, device_id, metric_id, total, max_slot_total, capped_total, slot_cap)
           SELECT (b.slot - l.genesis_slot) / l.epoch_slots, b.device_id, b.metric_id, sum(b.added), max(s.total),
                  CASE WHEN c.cap IS NULL THEN NULL ELSE sum(LEAST(s.total, c.cap) - LEAST(s.total - b.added, c.cap)) END, c.cap
             FROM by_metric b JOIN sums s USING (device_id, slot, metric_id) CROSS JOIN layout l
             LEFT JOIN LATERAL unnest(l.cap_metric_ids, l.cap_per_slot) AS c(metric_id, cap) ON c.metric_id = b.metric_id
            WHERE b.slot >= l.genesis_slot
            GROUP BY 1, 2, 3, c.cap
           ON CONFLICT (epoch, device_id, metric_id) DO UPDATE
             SET total = m.total + excluded.total,
                 max_slot_total = greatest(m.max_slot_total, excluded.max_slot_total),
                 capped_total = CASE WHEN m.slot_cap = excluded.slot_cap THEN m.capped_total + excluded.capped_total END,
                 slot_cap = CASE WHEN m.slot_cap = excluded.slot_cap THEN m.slot_cap END
           RETURNING 1
         )
         SELECT (SELECT count(*) FROM ins)::integer AS inserted, (SELECT count(*) FROM device_stats)::integer AS device_stats,
                (SELECT count(*) FROM metric_stats)::integer AS metric_stats`,
        [
          arrayLiteral(device), arrayLiteral(seq), arrayLiteral(key), arrayLiteral(ts), arrayLiteral(slot), arrayLiteral(recv),
          `{${rawOffset.join(',')}}`, `{${rawLength.join(',')}}`, `{${metrics.join(',')}}`, raw,
        ],
      );
      inserted = r?.inserted ?? 0;

      // 4. Advance max seq (and its receive time) for devices that got a higher seq.
      const moved = [...devices.entries()].filter(([, s]) => s.newMax);
      if (moved.length > 0) {
        await tx.query(
          `UPDATE devices d SET max_seq = v.max_seq, max_seq_received_at = v.received_at
             FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(device_id, max_seq, received_at)
            WHERE d.device_id = v.device_id AND d.max_seq < v.max_seq`,
          [arrayLiteral(moved.map(([id]) => id)), arrayLiteral(moved.map(([, s]) => s.maxSeq.toString())), arrayLiteral(moved.map(([, s]) => s.maxReceivedAt.toString()))],
        );
      }
    }
  }

  // 5. Every rejection, with its code.
  const all = [...rejected, ...verdicts.filter((v): v is Rejection => v !== undefined)];
  if (all.length > 0) {
    await tx.query(
      `INSERT INTO rejections (device_id, seq, reason, detail, raw, raw_length, received_at)
       SELECT device_id, seq, reason, detail, decode(raw_hex, 'hex'), raw_length, received_at
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::integer[], $7::bigint[])
           AS t(device_id, seq, reason, detail, raw_hex, raw_length, received_at)`,
      [
        all.map((r) => r.deviceId),
        all.map((r) => (r.seq === null ? null : r.seq.toString())),
        all.map((r) => r.reason),
        all.map((r) => r.detail),
        all.map((r) => toHex(r.raw.subarray(0, MAX_STORED_REJECTION_BYTES))),
        all.map((r) => r.raw.length),
        all.map((r) => String(r.receivedAt)),
      ],
    );
  }
  return { verdicts, accepted: accepted.length, inserted };
}
