// Per-device epoch scores (docs/rewards.md §Scores): credited uptime, capped weighted contribution,
// eligibility and reason codes. Pure: the epoch closer reads per-device-per-slot rollups and the
// registry from the database and passes them in; nothing here does IO.
import type { RewardCode } from '../error-codes.ts';
import { err, ok, type Result } from '../result.ts';
import type { RewardParams } from './reward-params.ts';
import { IntColumn } from './int-column.ts';

/** Which slots an epoch covers: [firstSlot, firstSlot + slotCount). A slot is floor(timestamp / interval). */
export type EpochWindow = {
  readonly epoch: number;
  readonly firstSlot: number;
  readonly slotCount: number;
};

/** One device, one slot: what the accepted heartbeats of that slot add up to (slot by the signed timestamp). */
export type SlotRollup = {
  readonly deviceId: string;
  readonly slot: number;
  /** Accepted heartbeats in the slot; ≥ 1 credits the slot. */
  readonly heartbeats: number;
  /** Sum per metric id over the slot's accepted heartbeats. */
  readonly metrics: readonly (readonly [metricId: number, value: bigint])[];
};

/** Registry facts about a device as of the epoch's end. */
export type DeviceInfo = {
  readonly deviceId: string;
  /** Owner EVM address (0x + 40 hex), or null when no owner is bound. */
  readonly owner: string | null;
  readonly revoked: boolean;
  /** Broker session time inside the epoch, reported beside the score and never paid. */
  readonly connectedMs?: number;
};

export type MetricScore = {
  readonly metricId: number;
  /** Sum of the reported values inside the epoch, before caps. */
  readonly raw: bigint;
  /** After the per-slot and per-epoch caps. */
  readonly capped: bigint;
  /** capped × weight. */
  readonly points: bigint;
};

export type DeviceScore = {
  readonly deviceId: string;
  /** Lowercase owner address or null. */
  readonly owner: string | null;
  /** Slots of the epoch with at least one accepted heartbeat. */
  readonly creditedSlots: number;
  readonly slotCount: number;
  /** floor(creditedSlots × 10000 / slotCount): for display; eligibility uses exact integers. */
  readonly uptimeBps: number;
  readonly connectedMs: number;
  /** Weighted metrics only, by metric id. */
  readonly metrics: readonly MetricScore[];
  /** Σ points over weighted metrics. */
  readonly contribution: bigint;
  /** Earns from the pools: owner bound, not revoked, credited uptime ≥ minimum. */
  readonly eligible: boolean;
  /** Why the device earns less than the maximum; empty for a device with nothing missing. */
  readonly reasons: readonly RewardCode[];
};

export type EpochScores = {
  readonly window: EpochWindow;
  /** Sorted by deviceId. */
  readonly devices: readonly DeviceScore[];
  /** Rollup rows whose slot lies outside the window: ignored, counted so the closer can log them. */
  readonly ignoredRollups: number;
};

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

type Acc = { slots: Set<number>; raw: Map<number, bigint>; capped: Map<number, bigint>; slotCapped: boolean; unweighted: boolean };

/**
 * What the scorer needs per device after the per-slot step (docs/rewards.md §Scores): credited slot
 * count, and per weighted metric the raw epoch sum and the sum after per-slot caps. `aggregateRollups`
 * builds it from slot rollups; the epoch closer reads the same numbers from the per-epoch counters
 * (oracle/epochs/close-epoch.ts), so closing an epoch never moves every rollup row into the process.
 * Both paths end in `scoreColumns`: this one through `scoringColumns`, the closer's with the columns
 * filled straight from its rows.
 */
export type DeviceAggregate = {
  readonly creditedSlots: number;
  /** Weighted metric id → sum of the values in the epoch. */
  readonly raw: ReadonlyMap<number, bigint>;
  /** Weighted metric id → Σ over slots of min(slot sum, capPerSlot). */
  readonly slotCapped: ReadonlyMap<number, bigint>;
  /** Some slot sum exceeded its capPerSlot. */
  readonly anySlotCapped: boolean;
  /** The device reported a metric id the parameters do not weight. */
  readonly unweighted: boolean;
};

function validWindow(w: EpochWindow): boolean {
  return Number.isSafeInteger(w.firstSlot) && w.firstSlot >= 0 && Number.isSafeInteger(w.slotCount) && w.slotCount >= 1 && Number.isSafeInteger(w.epoch) && w.epoch >= 0;
}

/** The SCORE_INPUT_INVALID error for a malformed window, or undefined for a valid one. */
export function windowError(w: EpochWindow): Result<never, 'SCORE_INPUT_INVALID'> | undefined {
  return validWindow(w) ? undefined : err('SCORE_INPUT_INVALID', `epoch window ${JSON.stringify(w)} needs integers epoch ≥ 0, firstSlot ≥ 0, slotCount ≥ 1`);
}

/**
 * The per-slot step: a rollup outside the window changes nothing (only slots of the epoch count),
 * duplicate rows for one (device, slot) are added together before the slot cap applies.
 */
export function aggregateRollups(
  window: EpochWindow,
  params: RewardParams,
  rollups: Iterable<SlotRollup>,
): Result<{ readonly aggregates: Map<string, DeviceAggregate>; readonly ignored: number }, 'SCORE_INPUT_INVALID'> {
  const w = window;
  const rules = new Map(params.metrics.map((m) => [m.metricId, m]));
  const end = w.firstSlot + w.slotCount;
  const acc = new Map<string, Acc>();
  const accFor = (id: string): Acc => {
    let a = acc.get(id);
    if (a === undefined) {
      a = { slots: new Set(), raw: new Map(), capped: new Map(), slotCapped: false, unweighted: false };
      acc.set(id, a);
    }
    return a;
  };
  // Per-slot sums first: duplicate rows for one (device, slot) must be capped together.
  const perSlot = new Map<string, Map<number, bigint>>();
  let ignored = 0;
  for (const r of rollups) {
    if (!Number.isSafeInteger(r.slot) || !Number.isSafeInteger(r.heartbeats) || r.heartbeats < 0) {
      return err('SCORE_INPUT_INVALID', `rollup for ${r.deviceId}: slot ${r.slot} / heartbeats ${r.heartbeats} are not valid integers`);
    }
    if (r.slot < w.firstSlot || r.slot >= end) {
      ignored++;
      continue;
    }
    const a = accFor(r.deviceId);
    if (r.heartbeats >= 1) a.slots.add(r.slot);
    for (const [id, value] of r.metrics) {
      if (typeof value !== 'bigint' || value < 0n) return err('SCORE_INPUT_INVALID', `rollup for ${r.deviceId} slot ${r.slot}: metric ${id} value ${String(value)} is not a non-negative integer`);
      if (!rules.has(id)) {
        a.unweighted = true;
        continue;
      }
      const key = `${r.deviceId}\u0000${r.slot}`;
      let m = perSlot.get(key);
      if (m === undefined) {
        m = new Map();
        perSlot.set(key, m);
      }
      m.set(id, (m.get(id) ?? 0n) + value);
    }
  }
  for (const [key, m] of perSlot) {
    const a = acc.get(key.slice(0, key.indexOf('\u0000')))!;
    for (const [id, sum] of m) {
      const cap = rules.get(id)!.capPerSlot;
      if (sum > cap) a.slotCapped = true;
      a.raw.set(id, (a.raw.get(id) ?? 0n) + sum);
      a.capped.set(id, (a.capped.get(id) ?? 0n) + (sum > cap ? cap : sum));
    }
  }
  const aggregates = new Map<string, DeviceAggregate>();
  for (const [id, a] of acc) aggregates.set(id, { creditedSlots: a.slots.size, raw: a.raw, slotCapped: a.capped, anySlotCapped: a.slotCapped, unweighted: a.unweighted });
  return ok({ aggregates, ignored });
}

/**
 * Scores every device that is registered or has rollups. A rollup outside the window changes nothing
 * (docs/rewards.md §Scores: only slots of the epoch count), duplicate rows for one (device, slot) are
 * added together, and metric values above a cap are cut (METRIC_CAPPED).
 */
export function scoreEpoch(input: {
  readonly window: EpochWindow;
  readonly params: RewardParams;
  readonly devices: readonly DeviceInfo[];
  readonly rollups: Iterable<SlotRollup>;
}): Result<EpochScores, 'SCORE_INPUT_INVALID'> {
  const bad = windowError(input.window);
  if (bad !== undefined) return bad;
  const agg = aggregateRollups(input.window, input.params, input.rollups);
  if (!agg.ok) return agg;
  return scoreAggregates({ window: input.window, params: input.params, devices: input.devices, aggregates: agg.value.aggregates, ignoredRollups: agg.value.ignored });
}

/**
 * Every device to score, once, in deviceId order (code units), beside its registry entry (the last
 * one when a device is listed twice; undefined for a device with counters but no registry row) and
 * its aggregate. The epoch closer passes the registry already sorted with unique ids and every
 * counter row belonging to a registered device: that case costs one comparison and one lookup per
 * device and sorts nothing. Anything else takes the general path, with the same result.
 */
function scoringOrder(
  devices: readonly DeviceInfo[],
  aggregates: ReadonlyMap<string, DeviceAggregate>,
): { ids: string[]; infos: readonly (DeviceInfo | undefined)[]; aggs: (DeviceAggregate | undefined)[] } {
  const n = devices.length;
  const ids = new Array<string>(n);
  const aggs = new Array<DeviceAggregate | undefined>(n);
  let matched = 0;
  let i = 0;
  for (; i < n; i++) {
    const id = devices[i]!.deviceId;
    if (i > 0 && !(ids[i - 1]! < id)) break;
    ids[i] = id;
    const a = aggregates.get(id);
    aggs[i] = a;
    if (a !== undefined) matched++;
  }
  if (i === n && matched === aggregates.size) return { ids, infos: devices, aggs };
  const info = new Map<string, DeviceInfo>();
  for (const d of devices) info.set(d.deviceId, d);
  const all = [...info.keys()];
  for (const id of aggregates.keys()) if (!info.has(id)) all.push(id);
  all.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return { ids: all, infos: all.map((id) => info.get(id)), aggs: all.map((id) => aggregates.get(id)) };
}

/**
 * The scorer's input as columns, one position per device (struct of arrays: a 100,000-device close
 * builds a few typed arrays instead of an object and two Maps per device). Positions are in deviceId
 * order with every id once; `scoringColumns` builds this from registry entries and aggregates, the
 * epoch closer builds it straight from its SQL rows (oracle/epochs/close-epoch.ts).
 */
export type ScoringColumns = {
  /** Every device to score, strictly increasing in code-unit order. */
  readonly ids: readonly string[];
  /** Owner address as registered (either case), or null when none is bound. */
  readonly owners: readonly (string | null)[];
  /** 1 for a revoked (not active) device. */
  readonly revoked: Uint8Array;
  readonly connectedMs: Float64Array;
  /** Credited slots (DeviceAggregate.creditedSlots; 0 for a device without counters). */
  readonly credited: Float64Array;
  /** FLAG_SLOT_CAPPED | FLAG_UNWEIGHTED per device. */
  readonly flags: Uint8Array;
  /** Per rule of params.metrics, in that order: the raw epoch sum; absent when the device reported none of that metric. */
  readonly raw: readonly IntColumn[];
  /** Per rule: Σ over slots of min(slot sum, capPerSlot); absent counts as 0 where raw is present. */
  readonly slotCapped: readonly IntColumn[];
};

/** ScoringColumns.flags: some slot sum exceeded its capPerSlot (DeviceAggregate.anySlotCapped). */
export const FLAG_SLOT_CAPPED = 1;
/** ScoringColumns.flags: the device reported a metric id the parameters do not weight. */
export const FLAG_UNWEIGHTED = 2;

/** One weighted metric's scores for every device; absent where the device reported none of it. */
export type MetricColumns = { readonly metricId: number; readonly raw: IntColumn; readonly capped: IntColumn; readonly points: IntColumn };

/** EpochScores as columns (see ScoringColumns); `scoresOf` turns it into DeviceScore objects. */
export type ScoreColumns = {
  readonly window: EpochWindow;
  /** Sorted by deviceId. */
  readonly ids: readonly string[];
  /** Lowercase owner address or null. */
  readonly owners: readonly (string | null)[];
  readonly credited: Float64Array;
  readonly connectedMs: Float64Array;
  /** 1 when the device earns from the pools. */
  readonly eligible: Uint8Array;
  /** Reason codes as a bit set: `reasonCodes(reasons[i])`. */
  readonly reasons: Uint8Array;
  readonly contribution: IntColumn;
  /** Per weighted metric, in params.metrics order. */
  readonly metrics: readonly MetricColumns[];
  readonly ignoredRollups: number;
};

// Reason bits in the order DeviceScore.reasons lists them (docs/rewards.md §Reason codes), so a bit
// set names one list and a close builds each distinct list once.
const REASON_ORDER: readonly RewardCode[] = ['REVOKED', 'NO_OWNER', 'LOW_UPTIME', 'PARTIAL_UPTIME', 'METRIC_CAPPED', 'NO_CONTRIBUTION', 'UNWEIGHTED_METRIC'];
const [R_REVOKED, R_NO_OWNER, R_LOW_UPTIME, R_PARTIAL_UPTIME, R_METRIC_CAPPED, R_NO_CONTRIBUTION, R_UNWEIGHTED] = REASON_ORDER.map((_, k) => 1 << k) as [number, number, number, number, number, number, number];
const reasonLists = new Map<number, readonly RewardCode[]>();

/** The reason codes of a ScoreColumns.reasons bit set, in DeviceScore order. Shared and frozen: do not modify. */
export function reasonCodes(mask: number): readonly RewardCode[] {
  let list = reasonLists.get(mask);
  if (list === undefined) reasonLists.set(mask, (list = Object.freeze(REASON_ORDER.filter((_, k) => (mask & (1 << k)) !== 0))));
  return list;
}

/**
 * Returns the address in lowercase when `s` is 0x followed by 40 hex digits (either case; the x in
 * lowercase, as the ADDRESS pattern), else undefined. Hand-written because it runs once per device
 * and returns `s` itself when it is already lowercase, which the registry's owners always are.
 */
function lowerAddress(s: string): string | undefined {
  if (s.length !== 42 || s.charCodeAt(0) !== 48 || s.charCodeAt(1) !== 120) return undefined;
  let upper = false;
  for (let k = 2; k < 42; k++) {
    const c = s.charCodeAt(k);
    if ((c >= 48 && c <= 57) || (c >= 97 && c <= 102)) continue;
    if (c >= 65 && c <= 70) upper = true;
    else return undefined;
  }
  return upper ? s.toLowerCase() : s;
}

const SAFE = Number.MAX_SAFE_INTEGER;
const SAFE_BIG = BigInt(SAFE);

/**
 * The per-epoch step on columns (docs/rewards.md §Scores): epoch caps, weights, eligibility and
 * reason codes. Arithmetic runs on doubles while every operand and result is below 2^53 (exact, see
 * int-column.ts) and on bigints for any device and metric where one is not, so results are exact for
 * any u64 parameters and any sums.
 */
export function scoreColumns(window: EpochWindow, params: RewardParams, input: ScoringColumns, ignoredRollups = 0): Result<ScoreColumns, 'SCORE_INPUT_INVALID'> {
  const w = window;
  const bad = windowError(w);
  if (bad !== undefined) return bad;
  const { ids } = input;
  const n = ids.length;
  const rules = params.metrics;
  const m = rules.length;
  if (input.owners.length !== n || input.revoked.length !== n || input.connectedMs.length !== n || input.credited.length !== n || input.flags.length !== n ||
    input.raw.length !== m || input.slotCapped.length !== m || input.raw.some((c) => c.length !== n) || input.slotCapped.some((c) => c.length !== n)) {
    return err('SCORE_INPUT_INVALID', `scoring columns do not all hold ${n} devices and ${m} metrics`);
  }
  const owners = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    if (i > 0 && !(ids[i - 1]! < ids[i]!)) return err('SCORE_INPUT_INVALID', `device ${ids[i]}: scoring columns must list each device once, sorted by deviceId`);
    const o = input.owners[i]!;
    if (o === null) {
      owners[i] = null;
      continue;
    }
    const lower = lowerAddress(o);
    if (lower === undefined) return err('SCORE_INPUT_INVALID', `device ${ids[i]}: owner ${JSON.stringify(o)} is not an address`);
    owners[i] = lower;
  }
  for (let i = 0; i < n; i++) {
    const c = input.credited[i]!;
    if (!Number.isSafeInteger(c) || c < 0 || c > w.slotCount) return err('SCORE_INPUT_INVALID', `device ${ids[i]}: ${c} credited slots in an epoch of ${w.slotCount}`);
  }
  // Per rule: the epoch cap and the weight as doubles. A cap above 2^53 can never cut a sum that is
  // below 2^53 (Infinity says so); a weight above 2^53 is NaN, which sends every product to bigints.
  const capEpoch = rules.map((r) => (r.capPerEpoch <= SAFE_BIG ? Number(r.capPerEpoch) : Infinity));
  const weight = rules.map((r) => (r.weight <= SAFE_BIG ? Number(r.weight) : NaN));
  const metrics: MetricColumns[] = rules.map((r, k) => ({ metricId: r.metricId, raw: input.raw[k]!, capped: new IntColumn(n), points: new IntColumn(n) }));
  const eligible = new Uint8Array(n);
  const reasons = new Uint8Array(n);
  const contribution = new IntColumn(n, true);
  const payContribution = rules.length > 0 && params.availabilityBps < 10000;
  const minUptime = params.minUptimeBps * w.slotCount;

  for (let i = 0; i < n; i++) {
    let capped = (input.flags[i]! & FLAG_SLOT_CAPPED) !== 0;
    // Σ points: a double while it stays below 2^53, a bigint (big) from the first sum that does not.
    let sum = 0;
    let big: bigint | undefined;
    for (let k = 0; k < m; k++) {
      const mc = metrics[k]!;
      if (!mc.raw.has(i)) continue;
      const sc = input.slotCapped[k]!;
      let c = sc.has(i) ? sc.safe(i) : 0;
      let p = NaN;
      if (!Number.isNaN(c)) {
        if (c > capEpoch[k]!) {
          c = capEpoch[k]!;
          capped = true;
        }
        mc.capped.setSafe(i, c);
        p = c * weight[k]!;
      }
      if (p <= SAFE) {
        mc.points.setSafe(i, p);
        if (big !== undefined) big += BigInt(p);
        else if (sum + p <= SAFE) sum += p;
        else big = BigInt(sum) + BigInt(p);
        continue;
      }
      // Exact path: a capped sum or a product of 2^53 or more.
      const rule = rules[k]!;
      let cb = sc.get(i) ?? 0n;
      if (cb > rule.capPerEpoch) {
        cb = rule.capPerEpoch;
        capped = true;
      }
      mc.capped.set(i, cb);
      const pb = cb * rule.weight;
      mc.points.set(i, pb);
      big = (big ?? BigInt(sum)) + pb;
    }
    if (big === undefined) contribution.setSafe(i, sum);
    else contribution.set(i, big);

    const credited = input.credited[i]!;
    const owner = owners[i]!;
    const revoked = input.revoked[i] === 1;
    // credited / slotCount ≥ minUptimeBps / 10000, in integers so no rounding decides eligibility.
    const uptimeOk = credited * 10000 >= minUptime;
    let r = 0;
    if (revoked) r |= R_REVOKED;
    if (owner === null) r |= R_NO_OWNER;
    if (!uptimeOk) r |= R_LOW_UPTIME;
    else if (credited < w.slotCount) r |= R_PARTIAL_UPTIME;
    if (capped) r |= R_METRIC_CAPPED;
    const ok_ = !revoked && owner !== null && uptimeOk;
    if (ok_ && payContribution && (big === undefined ? sum === 0 : big === 0n)) r |= R_NO_CONTRIBUTION;
    if ((input.flags[i]! & FLAG_UNWEIGHTED) !== 0) r |= R_UNWEIGHTED;
    eligible[i] = ok_ ? 1 : 0;
    reasons[i] = r;
  }
  return ok({ window: w, ids, owners, credited: input.credited, connectedMs: input.connectedMs, eligible, reasons, contribution, metrics, ignoredRollups });
}

/** Registry entries and per-device aggregates (in any order, ids possibly repeated) as scoring columns. */
export function scoringColumns(params: RewardParams, devices: readonly DeviceInfo[], aggregates: ReadonlyMap<string, DeviceAggregate>): ScoringColumns {
  const { ids, infos, aggs } = scoringOrder(devices, aggregates);
  const n = ids.length;
  const owners = new Array<string | null>(n);
  const revoked = new Uint8Array(n);
  const connectedMs = new Float64Array(n);
  const credited = new Float64Array(n);
  const flags = new Uint8Array(n);
  const raw = params.metrics.map(() => new IntColumn(n));
  const slotCapped = params.metrics.map(() => new IntColumn(n));
  for (let i = 0; i < n; i++) {
    const d = infos[i];
    owners[i] = d?.owner ? d.owner : null;
    revoked[i] = d?.revoked ? 1 : 0;
    connectedMs[i] = d?.connectedMs ?? 0;
    const a = aggs[i];
    if (a === undefined) continue;
    credited[i] = a.creditedSlots;
    flags[i] = (a.anySlotCapped ? FLAG_SLOT_CAPPED : 0) | (a.unweighted ? FLAG_UNWEIGHTED : 0);
    params.metrics.forEach((rule, k) => {
      const r = a.raw.get(rule.metricId);
      if (r === undefined) return;
      raw[k]!.set(i, r);
      const c = a.slotCapped.get(rule.metricId);
      if (c !== undefined) slotCapped[k]!.set(i, c);
    });
  }
  return { ids, owners, revoked, connectedMs, credited, flags, raw, slotCapped };
}

/** Scores as DeviceScore objects (for the bundle verifier, tests and every caller outside the close). */
export function scoresOf(s: ScoreColumns): EpochScores {
  const w = s.window;
  const devices: DeviceScore[] = [];
  for (let i = 0; i < s.ids.length; i++) {
    const metrics: MetricScore[] = [];
    for (const mc of s.metrics) {
      const raw = mc.raw.get(i);
      if (raw !== undefined) metrics.push({ metricId: mc.metricId, raw, capped: mc.capped.get(i)!, points: mc.points.get(i)! });
    }
    const credited = s.credited[i]!;
    devices.push({
      deviceId: s.ids[i]!,
      owner: s.owners[i]!,
      creditedSlots: credited,
      slotCount: w.slotCount,
      uptimeBps: Math.floor((credited * 10000) / w.slotCount),
      connectedMs: s.connectedMs[i]!,
      metrics,
      contribution: s.contribution.get(i)!,
      eligible: s.eligible[i] === 1,
      reasons: [...reasonCodes(s.reasons[i]!)],
    });
  }
  return { window: w, devices, ignoredRollups: s.ignoredRollups };
}

/** Registry entries and per-device aggregates, in any order (a device listed twice counts as its last entry). */
export type AggregatesInput = {
  readonly window: EpochWindow;
  readonly params: RewardParams;
  readonly devices: readonly DeviceInfo[];
  readonly aggregates: ReadonlyMap<string, DeviceAggregate>;
  readonly ignoredRollups?: number;
};

/** The per-epoch step: epoch caps, weights, eligibility and reason codes, from per-device aggregates. */
export function scoreAggregates(input: AggregatesInput): Result<EpochScores, 'SCORE_INPUT_INVALID'> {
  const s = scoreAggregateColumns(input);
  return s.ok ? ok(scoresOf(s.value)) : s;
}

/** scoreAggregates without building DeviceScore objects (settle-epoch.ts). */
export function scoreAggregateColumns(input: AggregatesInput): Result<ScoreColumns, 'SCORE_INPUT_INVALID'> {
  const { window: w, params } = input;
  const bad = windowError(w);
  if (bad !== undefined) return bad;
  // Checked here, in input order, so the first bad entry is the one reported whatever the order.
  for (const d of input.devices) {
    if (d.owner !== null && !ADDRESS.test(d.owner)) return err('SCORE_INPUT_INVALID', `device ${d.deviceId}: owner ${JSON.stringify(d.owner)} is not an address`);
  }
  for (const [id, a] of input.aggregates) {
    if (!Number.isSafeInteger(a.creditedSlots) || a.creditedSlots < 0 || a.creditedSlots > w.slotCount) {
      return err('SCORE_INPUT_INVALID', `device ${id}: ${a.creditedSlots} credited slots in an epoch of ${w.slotCount}`);
    }
  }
  return scoreColumns(w, params, scoringColumns(params, input.devices, input.aggregates), input.ignoredRollups ?? 0);
}
