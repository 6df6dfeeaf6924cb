// Splits one epoch's emission into owner amounts (docs/rewards.md §Allocation). Two pools:
// availability (by credited slots) and contribution (by capped, weighted contribution). Only eligible
// devices take part; each pool is divided among owners by largest remainder, so whenever a pool has a
// recipient it is paid out to the last unit, and a pool without recipients is reported as
// unallocated with a reason code. Per-device amounts split each owner's amount again the same way.
import type { EpochScores } from './score-epoch.ts';
import { IntColumn, SAFE, SAFE_BIG } from './int-column.ts';
import { largestRemainderParts } from './largest-remainder.ts';
import type { RewardParams } from './reward-params.ts';

export type PoolName = 'availability' | 'contribution';

export type OwnerReward = {
  /** Lowercase address. */
  readonly owner: string;
  readonly availability: bigint;
  readonly contribution: bigint;
  readonly total: bigint;
};

export type DeviceReward = {
  readonly deviceId: string;
  readonly owner: string;
  readonly availability: bigint;
  readonly contribution: bigint;
  readonly total: bigint;
};

export type UnallocatedPart = {
  readonly pool: PoolName;
  readonly amount: bigint;
  readonly code: 'UNALLOCATED_NO_ELIGIBLE' | 'UNALLOCATED_NO_CONTRIBUTION';
};

export type EpochAllocation = {
  readonly epoch: number;
  readonly emission: bigint;
  readonly availabilityPool: bigint;
  readonly contributionPool: bigint;
  /** Owners with a non-zero amount, sorted by address. */
  readonly owners: readonly OwnerReward[];
  /** Eligible devices with a non-zero amount, sorted by deviceId. */
  readonly devices: readonly DeviceReward[];
  readonly allocated: bigint;
  /** emission − allocated, with one part per pool that had no recipient. */
  readonly unallocated: bigint;
  readonly unallocatedParts: readonly UnallocatedPart[];
};

/**
 * What the allocation reads per scored device, as columns by position in deviceId order
 * (score-epoch.ts ScoreColumns has this shape).
 */
export type AllocationInput = {
  readonly window: { readonly epoch: number };
  readonly ids: readonly string[];
  /** Lowercase owner address or null. */
  readonly owners: readonly (string | null)[];
  readonly eligible: Uint8Array;
  readonly credited: Float64Array;
  readonly contribution: IntColumn;
};

/** EpochAllocation with the per-device amounts as columns (same positions as the input). */
export type AllocationColumns = Omit<EpochAllocation, 'devices'> & {
  /** A device's availability part; absent when its owner was paid nothing or it is not eligible. */
  readonly availability: IntColumn;
  /** A device's contribution part; present exactly where `availability` is. */
  readonly contribution: IntColumn;
};

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** floor(√(2^53)): with a weight total S up to this, every R·w below (R < S, w ≤ S) is below 2^53. */
const SPLIT_MAX = 94_906_265;

/** The scored devices in deviceId order: as given when they already are (EpochScores promises it), else a sorted copy. */
function byDeviceId(devices: EpochScores['devices']): EpochScores['devices'] {
  for (let i = 1; i < devices.length; i++) {
    if (!(devices[i - 1]!.deviceId < devices[i]!.deviceId)) return [...devices].sort((x, y) => cmp(x.deviceId, y.deviceId));
  }
  return devices;
}

export function allocateRewards(scores: EpochScores, params: RewardParams): EpochAllocation {
  const ds = byDeviceId(scores.devices);
  const n = ds.length;
  const ids = new Array<string>(n);
  const owners = new Array<string | null>(n);
  const eligible = new Uint8Array(n);
  const credited = new Float64Array(n);
  const contribution = new IntColumn(n, true);
  for (let i = 0; i < n; i++) {
    const d = ds[i]!;
    ids[i] = d.deviceId;
    owners[i] = d.owner;
    eligible[i] = d.eligible ? 1 : 0;
    credited[i] = d.creditedSlots;
    // Only eligible devices' contributions are weights (the others stay 0 and are never read).
    if (d.eligible && d.owner !== null) contribution.set(i, d.contribution);
  }
  return allocationOf({ ids, owners }, allocateColumns({ window: scores.window, ids, owners, eligible, credited, contribution }, params));
}

/** The AllocationColumns as EpochAllocation: one DeviceReward per device with a non-zero amount, in position order. */
export function allocationOf(scored: { readonly ids: readonly string[]; readonly owners: readonly (string | null)[] }, a: AllocationColumns): EpochAllocation {
  const av = a.availability;
  const co = a.contribution;
  const devices: DeviceReward[] = [];
  for (let i = 0; i < scored.ids.length; i++) {
    const x = av.get(i);
    if (x === undefined) continue;
    const y = co.get(i)!;
    if (x + y > 0n) devices.push({ deviceId: scored.ids[i]!, owner: scored.owners[i]!, availability: x, contribution: y, total: x + y });
  }
  return {
    epoch: a.epoch,
    emission: a.emission,
    availabilityPool: a.availabilityPool,
    contributionPool: a.contributionPool,
    owners: a.owners,
    devices,
    allocated: a.allocated,
    unallocated: a.unallocated,
    unallocatedParts: a.unallocatedParts,
  };
}

/** Adds 1 to a present value. */
function bump(col: IntColumn, i: number): void {
  const x = col.safe(i);
  if (x < SAFE) col.setSafe(i, x + 1);
  else col.set(i, col.get(i)! + 1n);
}

/**
 * largestRemainderParts(total, keys of the members, weights) for weights that are safe integers with
 * a sum S ≤ SPLIT_MAX (an owner's devices: credited slots, capped contributions), without bigints per
 * device. With total = Q·S + R (0 ≤ R < S): total·w = Q·S·w + R·w, so floor(total·w / S) =
 * Q·w + floor(R·w / S) and (total·w) mod S = (R·w) mod S. R·w < S² ≤ 2^53 is exact in a double, so
 * parts and remainders equal the bigint ones, and the units left over go by the same order.
 */
function splitSmall(total: bigint, members: Int32Array, from: number, count: number, w: Float64Array, sum: number, ids: readonly string[], out: IntColumn, rem: Float64Array): void {
  if (sum === 0) {
    for (let j = 0; j < count; j++) out.setSafe(members[from + j]!, 0);
    return;
  }
  const s = BigInt(sum);
  const q0 = total / s;
  const r0 = Number(total - q0 * s);
  const q0Small = q0 <= SAFE_BIG ? Number(q0) : NaN;
  let left = r0;
  const order: number[] = [];
  for (let j = 0; j < count; j++) {
    const pos = members[from + j]!;
    const wj = w[j]!;
    if (wj === 0) {
      out.setSafe(pos, 0);
      continue;
    }
    const num = r0 * wj;
    // num / sum rounds, but never up to the next integer k while S ≤ SPLIT_MAX: k − num/S ≥ 1/S, and
    // k·S < num + S ≤ S² < 2^53 makes 1/S more than half an ulp of k. The exact remainder checks it.
    let q = Math.floor(num / sum);
    let r = num - q * sum;
    if (r < 0) {
      q--;
      r += sum;
    } else if (r >= sum) {
      q++;
      r -= sum;
    }
    left -= q;
    rem[j] = r;
    order.push(j);
    const p = q0Small * wj + q;
    if (p <= SAFE) out.setSafe(pos, p);
    else out.set(pos, q0 * BigInt(wj) + BigInt(q));
  }
  if (left > 0) {
    // Largest remainder first, ties to the smaller key (largest-remainder.ts); remainders are exact.
    order.sort((a, b) => rem[b]! - rem[a]! || cmp(ids[members[from + a]!]!, ids[members[from + b]!]!));
    for (let t = 0; t < left; t++) bump(out, members[from + order[t]!]!);
  }
}

/** Splits `total` over the members by weight (largestRemainderParts), into `out` at their positions. */
function split(total: bigint, members: Int32Array, from: number, count: number, weightOf: (pos: number) => number, exactWeightOf: (pos: number) => bigint, ids: readonly string[], out: IntColumn, w: Float64Array, rem: Float64Array): void {
  let sum = 0;
  let small = true;
  for (let j = 0; j < count; j++) {
    const x = weightOf(members[from + j]!);
    w[j] = x;
    sum += x;
    if (!Number.isSafeInteger(x) || x < 0) small = false;
  }
  if (small && sum <= SPLIT_MAX) {
    splitSmall(total, members, from, count, w, sum, ids, out, rem);
    return;
  }
  const keys = new Array<string>(count);
  const weights = new Array<bigint>(count);
  for (let j = 0; j < count; j++) {
    const pos = members[from + j]!;
    keys[j] = ids[pos]!;
    weights[j] = exactWeightOf(pos);
  }
  const parts = largestRemainderParts(total, keys, weights);
  for (let j = 0; j < count; j++) out.set(members[from + j]!, parts[j]!);
}

/**
 * The allocation (docs/rewards.md §Allocation) on columns: per-device weights and amounts stay in
 * typed arrays, and an owner's split over their devices runs on exact doubles (splitSmall) whenever
 * the weights allow, so a 100,000-device close makes no object and only a few bigints per device.
 */
export function allocateColumns(s: AllocationInput, params: RewardParams): AllocationColumns {
  const emission = params.emissionPerEpoch;
  // floor for the availability pool; the contribution pool takes the rest, so pools sum to emission.
  const availabilityPool = (emission * BigInt(params.availabilityBps)) / 10000n;
  const contributionPool = emission - availabilityPool;
  const { ids, owners: ownerOf, eligible, credited, contribution } = s;
  const n = ids.length;

  // One pass groups the eligible devices by owner (groups numbered by first appearance) and adds up
  // each owner's weights. Credited slots add up as numbers: at most slotCount per device, far below
  // 2^53 for any registry; contributions as doubles while the sum stays below 2^53, else bigints.
  const groupIndex = new Map<string, number>();
  const ownerList: string[] = [];
  const slots: number[] = [];
  const sums: number[] = [];
  const bigSums: (bigint | undefined)[] = [];
  const sizes: number[] = [];
  const groupOf = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const o = ownerOf[i]!;
    if (eligible[i] !== 1 || o === null) continue;
    let g = groupIndex.get(o);
    if (g === undefined) {
      g = ownerList.length;
      groupIndex.set(o, g);
      ownerList.push(o);
      slots.push(0);
      sums.push(0);
      bigSums.push(undefined);
      sizes.push(0);
    }
    groupOf[i] = g;
    sizes[g]!++;
    slots[g]! += credited[i]!;
    const c = contribution.safe(i);
    const b = bigSums[g];
    if (b === undefined && sums[g]! + c <= SAFE) sums[g]! += c;
    else bigSums[g] = (b ?? BigInt(sums[g]!)) + contribution.get(i)!;
  }
  const groups = ownerList.length;
  // Members of each group, by position (so in deviceId order), in one array: group g at [start[g], start[g+1]).
  const start = new Int32Array(groups + 1);
  for (let g = 0; g < groups; g++) start[g + 1] = start[g]! + sizes[g]!;
  const members = new Int32Array(start[groups]!);
  const fill = start.slice(0, groups);
  for (let i = 0; i < n; i++) {
    const g = groupOf[i]!;
    if (g >= 0) members[fill[g]!++] = i;
  }
  const groupContribution = (g: number): bigint => bigSums[g] ?? BigInt(sums[g]!);
  const avail = largestRemainderParts(availabilityPool, ownerList, slots.map((x) => BigInt(x)));
  const contrib = largestRemainderParts(contributionPool, ownerList, ownerList.map((_, g) => groupContribution(g)));
  const availPaid = slots.some((x) => x > 0);
  const contribPaid = ownerList.some((_, g) => bigSums[g] !== undefined || sums[g]! > 0);

  const unallocatedParts: UnallocatedPart[] = [];
  if (availabilityPool > 0n && !availPaid) {
    unallocatedParts.push({ pool: 'availability', amount: availabilityPool, code: 'UNALLOCATED_NO_ELIGIBLE' });
  }
  if (contributionPool > 0n && !contribPaid) {
    unallocatedParts.push({
      pool: 'contribution',
      amount: contributionPool,
      code: groups > 0 ? 'UNALLOCATED_NO_CONTRIBUTION' : 'UNALLOCATED_NO_ELIGIBLE',
    });
  }

  // Each owner's two amounts split over their devices the same way (docs/rewards.md §Allocation 5);
  // parts land by position, so the per-device amounts come out in deviceId order without a sort.
  const owners: OwnerReward[] = [];
  const availability = new IntColumn(n);
  const deviceContribution = new IntColumn(n);
  let widest = 0;
  for (const x of sizes) widest = Math.max(widest, x);
  const w = new Float64Array(widest);
  const rem = new Float64Array(widest);
  const creditedOf = (pos: number): number => credited[pos]!;
  const exactCreditedOf = (pos: number): bigint => BigInt(credited[pos]!);
  const contributionOf = (pos: number): number => contribution.safe(pos);
  const exactContributionOf = (pos: number): bigint => contribution.get(pos)!;
  const order = ownerList.map((_, i) => i).sort((a, b) => cmp(ownerList[a]!, ownerList[b]!));
  for (const k of order) {
    const a = avail[k]!;
    const c = contrib[k]!;
    if (a + c === 0n) continue;
    owners.push({ owner: ownerList[k]!, availability: a, contribution: c, total: a + c });
    split(a, members, start[k]!, sizes[k]!, creditedOf, exactCreditedOf, ids, availability, w, rem);
    split(c, members, start[k]!, sizes[k]!, contributionOf, exactContributionOf, ids, deviceContribution, w, rem);
  }
  let allocated = 0n;
  for (const o of owners) allocated += o.total;
  return {
    epoch: s.window.epoch,
    emission,
    availabilityPool,
    contributionPool,
    owners,
    availability,
    contribution: deviceContribution,
    allocated,
    unallocated: emission - allocated,
    unallocatedParts,
  };
}
