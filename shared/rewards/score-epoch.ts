// Per-device epoch scores (docs/rewards.md §Scores): credited uptime, capped weighted contribution,
// eligibility and reason codes, as objects. The per-slot step (aggregateRollups) turns slot rollups
// into per-device aggregates; the per-epoch step runs on columns in score-columns.ts, which the epoch
// closer feeds straight from its SQL rows; this file converts to and from objects for everyone else
// (verify, bundles, tests). Pure: nothing here does IO.
import type { RewardCode } from '../error-codes.ts';
import { err, ok, type Result } from '../result.ts';
import type { RewardParams } from './reward-params.ts';
import { IntColumn } from './int-column.ts';
import { FLAG_SLOT_CAPPED, FLAG_UNWEIGHTED, reasonCodes, scoreColumns, scoringOrder, windowError, type ScoreColumns, type ScoringColumns } from './score-columns.ts';

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

/** Registry entries and per-device aggregates (in any order, ids possibly repeated) as scoring columns. */
export function scoringColumns(params: RewardParams, devices: readonly DeviceInfo[], aggregates: ReadonlyMap<string, DeviceAggregate>): ScoringColumns {
  const { ids, at } = scoringOrder(
    devices.map((d) => d.deviceId),
    () => aggregates.keys(),
  );
  const n = ids.length;
  const owners = new Array<string | null>(n).fill(null);
  const revoked = new Uint8Array(n);
  const connectedMs = new Float64Array(n);
  const credited = new Float64Array(n);
  const flags = new Uint8Array(n);
  const raw = params.metrics.map(() => new IntColumn(n));
  const slotCapped = params.metrics.map(() => new IntColumn(n));
  // A device listed twice counts as its last entry.
  for (const d of devices) {
    const i = at.get(d.deviceId)!;
    owners[i] = d.owner ? d.owner : null;
    revoked[i] = d.revoked ? 1 : 0;
    connectedMs[i] = d.connectedMs ?? 0;
  }
  for (let i = 0; i < n; i++) {
    const a = aggregates.get(ids[i]!);
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
