// Per-device epoch scores (docs/rewards.md §Scores): credited uptime, capped weighted contribution,
// eligibility and reason codes. Pure: the epoch closer reads per-device-per-slot rollups and the
// registry from the database and passes them in; nothing here does IO.
import type { RewardCode } from '../error-codes.ts';
import { err, ok, type Result } from '../result.ts';
import type { RewardParams } from './reward-params.ts';

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
 * builds it from slot rollups; the epoch closer builds the same numbers with one SQL aggregate over
 * the rollup tables (oracle/epochs/close-epoch.ts), so closing an epoch never moves every rollup row
 * into the process. Both paths end in `scoreAggregates`.
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
  if (!validWindow(input.window)) {
    return err('SCORE_INPUT_INVALID', `epoch window ${JSON.stringify(input.window)} needs integers epoch ≥ 0, firstSlot ≥ 0, slotCount ≥ 1`);
  }
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

const EMPTY: DeviceAggregate = { creditedSlots: 0, raw: new Map(), slotCapped: new Map(), anySlotCapped: false, unweighted: false };

/** The per-epoch step: epoch caps, weights, eligibility and reason codes, from per-device aggregates. */
export function scoreAggregates(input: {
  readonly window: EpochWindow;
  readonly params: RewardParams;
  readonly devices: readonly DeviceInfo[];
  readonly aggregates: ReadonlyMap<string, DeviceAggregate>;
  readonly ignoredRollups?: number;
}): Result<EpochScores, 'SCORE_INPUT_INVALID'> {
  const { window: w, params } = input;
  if (!validWindow(w)) {
    return err('SCORE_INPUT_INVALID', `epoch window ${JSON.stringify(w)} needs integers epoch ≥ 0, firstSlot ≥ 0, slotCount ≥ 1`);
  }
  for (const d of input.devices) {
    if (d.owner !== null && !ADDRESS.test(d.owner)) return err('SCORE_INPUT_INVALID', `device ${d.deviceId}: owner ${JSON.stringify(d.owner)} is not an address`);
  }
  for (const [id, a] of input.aggregates) {
    if (!Number.isSafeInteger(a.creditedSlots) || a.creditedSlots < 0 || a.creditedSlots > w.slotCount) {
      return err('SCORE_INPUT_INVALID', `device ${id}: ${a.creditedSlots} credited slots in an epoch of ${w.slotCount}`);
    }
  }
  const { ids, infos, aggs } = scoringOrder(input.devices, input.aggregates);

  const devices: DeviceScore[] = [];
  for (let i = 0; i < ids.length; i++) {
    const deviceId = ids[i]!;
    const a = aggs[i] ?? EMPTY;
    const d = infos[i];
    const owner = d?.owner ? d.owner.toLowerCase() : null;
    const revoked = d?.revoked ?? false;
    const credited = a.creditedSlots;
    let capped = a.anySlotCapped;
    const metrics: MetricScore[] = [];
    let contribution = 0n;
    for (const rule of params.metrics) {
      const raw = a.raw.get(rule.metricId);
      if (raw === undefined) continue;
      let c = a.slotCapped.get(rule.metricId) ?? 0n;
      if (c > rule.capPerEpoch) {
        c = rule.capPerEpoch;
        capped = true;
      }
      const points = c * rule.weight;
      contribution += points;
      metrics.push({ metricId: rule.metricId, raw, capped: c, points });
    }
    // credited / slotCount ≥ minUptimeBps / 10000, in integers so no rounding decides eligibility.
    const uptimeOk = credited * 10000 >= params.minUptimeBps * w.slotCount;
    const reasons: RewardCode[] = [];
    if (revoked) reasons.push('REVOKED');
    if (owner === null) reasons.push('NO_OWNER');
    if (!uptimeOk) reasons.push('LOW_UPTIME');
    else if (credited < w.slotCount) reasons.push('PARTIAL_UPTIME');
    if (capped) reasons.push('METRIC_CAPPED');
    const eligible = !revoked && owner !== null && uptimeOk;
    if (eligible && contribution === 0n && params.metrics.length > 0 && params.availabilityBps < 10000) reasons.push('NO_CONTRIBUTION');
    if (a.unweighted) reasons.push('UNWEIGHTED_METRIC');
    devices.push({
      deviceId,
      owner,
      creditedSlots: credited,
      slotCount: w.slotCount,
      uptimeBps: Math.floor((credited * 10000) / w.slotCount),
      connectedMs: d?.connectedMs ?? 0,
      metrics,
      contribution,
      eligible,
      reasons,
    });
  }
  return ok({ window: w, devices, ignoredRollups: input.ignoredRollups ?? 0 });
}
