// Close the next epoch (issue 5 part 1; docs/rewards.md §Epochs). One transaction reads the cursor
// (FOR UPDATE, so two oracles never close the same epoch and ingest batches, which hold the cursor
// FOR SHARE, finish first), the registry, the epoch's per-device counters and the previous cumulative
// leaves; runs the pure settlement (shared/rewards/settle-epoch.ts); and writes scores, rewards,
// leaves, the tree dump and the advanced cursor. A crash anywhere rolls everything back, so the
// epoch is closed exactly once and a restart simply closes it again.
import type { Sql, Store } from '../store/store.ts';
import { epochEndMs, epochWindow, isEpochDue, type EpochTiming } from '../../shared/epoch-timing.ts';
import { settleEpochColumns } from '../../shared/rewards/settle-epoch.ts';
import { rewardParamsHash, type RewardParams } from '../../shared/rewards/reward-params.ts';
import type { EpochWindow } from '../../shared/rewards/score-epoch.ts';
import { FLAG_SLOT_CAPPED, FLAG_UNWEIGHTED, reasonCodes, scoringOrder, type MetricColumns, type ScoringColumns, type ScoringOrder } from '../../shared/rewards/score-columns.ts';
import { IntColumn } from '../../shared/rewards/int-column.ts';
import { ensureCursor, readEpochStats, type EpochStatsRows } from './epoch-stats.ts';
import type { RewardLeaf } from '../../shared/merkle/reward-tree.ts';
import { PulseError } from '../../shared/errors.ts';
import { paramsToJson } from './params-json.ts';

/** Version of the scoring rules in docs/rewards.md; part of every bundle. */
export const SCORER_VERSION = 'pulse-scorer/1';

export type CloseOutcome =
  | { readonly kind: 'not-due'; readonly epoch: number; readonly dueAtMs: number }
  | { readonly kind: 'closed'; readonly epoch: number; readonly root: string | null; readonly devices: number; readonly owners: number; readonly allocated: bigint; readonly cumulativeTotal: bigint };

const SCORE_COLUMNS = ['epoch', 'device_id', 'owner', 'credited_slots', 'slot_count', 'uptime_bps', 'connected_ms', 'contribution', 'metrics',
  'eligible', 'reasons', 'availability_reward', 'contribution_reward'] as const;

/**
 * Device i's metric scores as the JSON the metrics column stores (jsonb: key order and spacing are
 * normalized by PostgreSQL, so this equals what JSON.stringify of its MetricScore list would give).
 * Ids are integers and amounts decimal digits, so nothing needs escaping; written by hand because it
 * runs once per device.
 */
function metricsJson(ms: readonly MetricColumns[], i: number): string {
  let out = '[';
  for (const m of ms) {
    if (!m.raw.has(i)) continue;
    out += `${out.length === 1 ? '' : ','}{"metricId":${m.metricId},"raw":"${m.raw.text(i)}","capped":"${m.capped.text(i)}","points":"${m.points.text(i)}"}`;
  }
  return out + ']';
}

/**
 * Reason codes (a score-epoch.ts reason bit set) as a text[] literal (PostgreSQL §8.15.6 Array Value
 * Input). Each element is double quoted, with `"` and `\\` escaped, so no code could read as NULL or
 * split in two. A close sees only a handful of distinct bit sets, so each literal is built once per
 * close and then looked up.
 */
function reasonsLiterals(): (mask: number) => string {
  const seen: (string | undefined)[] = [];
  return (mask) => (seen[mask] ??= `{${reasonCodes(mask).map((r) => `"${r.replace(/["\\]/g, '\\$&')}"`).join(',')}}`);
}

/** Record the parameter set (by version) the first time it is used; a changed set under an old version is refused. */
async function recordParams(tx: Sql, params: RewardParams, epoch: number): Promise<string> {
  const hash = rewardParamsHash(params);
  const rows = await tx.query<{ params_hash: string }>('SELECT params_hash FROM reward_params WHERE version = $1', [String(params.version)]);
  const existing = rows[0];
  if (existing === undefined) {
    await tx.query('INSERT INTO reward_params (version, params, params_hash, first_epoch) VALUES ($1, $2::jsonb, $3, $4)', [String(params.version), JSON.stringify(paramsToJson(params)), hash, String(epoch)]);
  } else if (existing.params_hash !== hash) {
    throw new PulseError('PARAMS_CHANGED', `reward parameters version ${params.version} were recorded with hash ${existing.params_hash}; a changed set needs a new version`);
  }
  return hash;
}

// The registry snapshot is the registry as of the close (docs/rewards.md §Epochs): every registered
// device is scored (one with no credited slot gets LOW_UPTIME), owner and revocation as they stand.
//
// The per-slot step of scoring (credited slots; per metric the raw sum and the sum after per-slot
// caps) comes from the per-(device, epoch) counters that ingest maintains (oracle/epochs/epoch-stats.ts),
// so the close moves one row per device and metric into the process instead of one per device, slot
// and metric. They hold exactly what shared/rewards/score-epoch.ts aggregateRollups computes from the
// slot rollups (test/epochs-aggregate.test.ts checks both agree).
export async function readCloseInputs(tx: Sql, params: RewardParams, window: EpochWindow): Promise<{ scoring: ScoringColumns; leaves: RewardLeaf[]; heartbeats: number }> {
  const devices = await tx.query<RegistryRow>(
    `SELECT device_id, CASE WHEN owner IS NULL THEN NULL ELSE '0x' || encode(owner, 'hex') END AS owner, status
       FROM devices ORDER BY device_id`,
  );
  const stats = await readEpochStats(tx, params, window.epoch, window.firstSlot, window.firstSlot + window.slotCount);
  const previous = await tx.query<{ owner: string; cumulative: string }>('SELECT owner, cumulative::text AS cumulative FROM cumulative_rewards ORDER BY owner');
  const leaves: RewardLeaf[] = previous.map((p) => ({ account: p.owner, cumulative: BigInt(p.cumulative) }));
  let heartbeats = 0;
  for (const r of stats.devices) heartbeats += Number(r.heartbeats);
  const order = scoringOrder(
    devices.map((d) => d.device_id),
    () => scoringInputIds(stats),
  );
  const scoring = fillColumns(params, devices, stats, order);
  return { scoring, leaves, heartbeats };
}

type RegistryRow = { device_id: string; owner: string | null; status: string };

/**
 * The devices whose counters are a scoring input: credited slots or metrics. A row with only
 * connected time is not: such a device is scored from the registry like any device without credited
 * slots, and not at all when it is not registered (score-epoch.ts DeviceInfo holds connected time).
 */
function* scoringInputIds(stats: EpochStatsRows): Generator<string> {
  for (const r of stats.devices) if (r.credited > 0) yield r.device_id;
  for (const r of stats.metrics) yield r.device_id;
  for (const r of stats.unweighted) yield r.device_id;
}

/**
 * The scoring columns straight from the rows, at the positions `order` gives (it holds every
 * registered device and every scoringInputIds one): a few typed arrays, no object or Map per device
 * (issue 5: a Map per device and metric made a 100,000-device close spend ~1 s in garbage collection).
 */
function fillColumns(params: RewardParams, devices: readonly RegistryRow[], stats: EpochStatsRows, order: ScoringOrder): ScoringColumns {
  const { ids, at } = order;
  const n = ids.length;
  const owners = new Array<string | null>(n).fill(null);
  const revoked = new Uint8Array(n);
  const registered = new Uint8Array(n);
  for (let k = 0; k < devices.length; k++) {
    const d = devices[k]!;
    // In the registry's own order (the close's case) a row's index is its position: no lookup.
    const i = ids[k] === d.device_id ? k : at.get(d.device_id)!;
    owners[i] = d.owner;
    revoked[i] = d.status !== 'active' ? 1 : 0;
    registered[i] = 1;
  }
  const connectedMs = new Float64Array(n);
  const credited = new Float64Array(n);
  const flags = new Uint8Array(n);
  for (const r of stats.devices) {
    const i = at.get(r.device_id);
    if (i === undefined) continue; // connected time only, of an unregistered device (scoringInputIds)
    if (r.credited > 0) credited[i] = r.credited;
    // Connected time is the registry's side of a score (score-epoch.ts DeviceInfo): none without a registry row.
    if (registered[i] === 1) connectedMs[i] = Number(r.connected_ms);
  }
  const rule = new Map(params.metrics.map((m, k) => [m.metricId, k]));
  const raw = params.metrics.map(() => new IntColumn(n));
  const slotCapped = params.metrics.map(() => new IntColumn(n));
  for (const r of stats.metrics) {
    const i = at.get(r.device_id)!;
    const k = rule.get(r.metric_id);
    // readEpochStats returns weighted metrics only; the scorer would ignore any other id.
    if (k === undefined) continue;
    if (!raw[k]!.setText(i, r.raw) || !slotCapped[k]!.setText(i, r.capped)) {
      throw new PulseError('EPOCH_CLOSE_FAILED', `epoch counters of device ${r.device_id} metric ${r.metric_id} are not integers: ${r.raw} / ${r.capped}`);
    }
    if (r.any_capped) flags[i]! |= FLAG_SLOT_CAPPED;
  }
  for (const r of stats.unweighted) flags[at.get(r.device_id)!]! |= FLAG_UNWEIGHTED;
  return { ids, owners, revoked, connectedMs, credited, flags, raw, slotCapped };
}

/** Close the next epoch if it is due at `nowMs`. */
export async function closeNextEpoch(store: Store, timing: EpochTiming, params: RewardParams, nowMs: number): Promise<CloseOutcome> {
  await ensureCursor(store, timing, params);
  return store.transaction(async (tx) => {
    const cur = (await tx.query<{ next_epoch: string }>('SELECT next_epoch::text AS next_epoch FROM epoch_cursor WHERE id FOR UPDATE'))[0];
    if (cur === undefined) throw new PulseError('EPOCH_CLOSE_FAILED', 'epoch cursor row is missing');
    const epoch = Number(cur.next_epoch);
    if (!isEpochDue(timing, epoch, nowMs)) return { kind: 'not-due', epoch, dueAtMs: epochEndMs(timing, epoch) + timing.graceMs };
    const window = epochWindow(timing, epoch);
    const endSlot = window.firstSlot + window.slotCount;
    const paramsHash = await recordParams(tx, params, epoch);
    const inputs = await readCloseInputs(tx, params, window);
    const settled = settleEpochColumns({ window, params, scoring: inputs.scoring, previous: inputs.leaves });
    if (!settled.ok) throw new PulseError('EPOCH_CLOSE_FAILED', `epoch ${epoch}: ${settled.code}: ${settled.message}`);
    const s = settled.value;
    const a = s.allocation;
    const sc = s.scores;
    const n = sc.ids.length;
    await tx.query(
      `INSERT INTO epochs (epoch, first_slot, slot_count, slot_ms, params_version, params_hash, scorer_version, emission, allocated,
                           unallocated, unallocated_parts, cumulative_total, root, devices, owners, heartbeats)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12, $13, $14, $15, $16)`,
      [String(epoch), String(window.firstSlot), window.slotCount, String(timing.slotMs), String(params.version), paramsHash, SCORER_VERSION,
        String(a.emission), String(a.allocated), String(a.unallocated), JSON.stringify(a.unallocatedParts.map((p) => ({ ...p, amount: String(p.amount) }))),
        String(s.cumulativeTotal), s.root, n, a.owners.length, String(inputs.heartbeats)],
    );
    if (n > 0) {
      // COPY, not INSERT … SELECT FROM json_to_recordset($3::json): one parameter of 30 MB cost a
      // JSON parse of the whole document (~0.8 s of a 100,000-device close) on top of the insert.
      // COPY parses each field straight into its column type; every constraint and trigger applies
      // as for INSERT (migrations/009_close_write_checks.sql). Rows are made from the score and allocation
      // columns (same positions, deviceId order) as the COPY streams them; a device that was paid
      // nothing has no amounts and writes 0.
      const e = String(epoch);
      const slots = String(window.slotCount);
      // Credited slots take at most slotCount + 1 values (scoreColumns checked the range), so their
      // text and the uptime's are made once per value seen, not once per device (and not up front:
      // slotCount has no upper bound).
      const creditedText: string[] = [];
      const uptimeText: string[] = [];
      const reasonsArray = reasonsLiterals();
      await tx.copyRows('epoch_device_scores', SCORE_COLUMNS, (function* () {
        for (let i = 0; i < n; i++) {
          const c = sc.credited[i]!;
          yield [e, sc.ids[i]!, sc.owners[i] ?? null, (creditedText[c] ??= String(c)), slots, (uptimeText[c] ??= String(Math.floor((c * 10000) / window.slotCount))), String(sc.connectedMs[i]!), sc.contribution.text(i),
            metricsJson(sc.metrics, i), sc.eligible[i] === 1 ? 't' : 'f', reasonsArray(sc.reasons[i]!), a.availability.text(i, '0'), a.contribution.text(i, '0')];
        }
      })());
    }
    const cumulativeBy = new Map(s.leaves.map((l) => [l.account, l.cumulative]));
    if (a.owners.length > 0) {
      await tx.query(
        'INSERT INTO epoch_rewards (epoch, owner, amount, cumulative) SELECT $1, o, x::numeric, c::numeric FROM unnest($2::text[], $3::text[], $4::text[]) AS t(o, x, c)',
        [String(epoch), a.owners.map((o) => o.owner), a.owners.map((o) => String(o.total)), a.owners.map((o) => String(cumulativeBy.get(o.owner) ?? o.total))],
      );
      await tx.query(
        `INSERT INTO cumulative_rewards (owner, cumulative, last_epoch)
         SELECT o, c::numeric, $1 FROM unnest($2::text[], $3::text[]) AS t(o, c)
         ON CONFLICT (owner) DO UPDATE SET cumulative = EXCLUDED.cumulative, last_epoch = EXCLUDED.last_epoch`,
        [String(epoch), a.owners.map((o) => o.owner), a.owners.map((o) => String(cumulativeBy.get(o.owner) ?? o.total))],
      );
    }
    if (s.tree !== null) await tx.query('INSERT INTO epoch_trees (epoch, dump) VALUES ($1, $2::jsonb)', [String(epoch), JSON.stringify(s.tree.dump())]);
    await tx.query('UPDATE epoch_cursor SET next_epoch = $1, next_first_slot = $2 WHERE id', [String(epoch + 1), String(endSlot)]);
    return { kind: 'closed', epoch, root: s.root, devices: n, owners: a.owners.length, allocated: a.allocated, cumulativeTotal: s.cumulativeTotal };
  });
}

/** Close every due epoch in order (catch-up after downtime). Returns the outcomes of the closed ones. */
export async function closeDueEpochs(store: Store, timing: EpochTiming, params: RewardParams, nowMs: number, onClosed?: (o: CloseOutcome) => void): Promise<CloseOutcome[]> {
  const closed: CloseOutcome[] = [];
  for (;;) {
    const o = await closeNextEpoch(store, timing, params, nowMs);
    if (o.kind === 'not-due') return closed;
    closed.push(o);
    onClosed?.(o);
  }
}
