// Splits one epoch's emission into owner amounts (docs/rewards.md §Allocation). Two pools:
// availability (by credited slots) and contribution (by capped, weighted contribution). Only eligible
// devices take part; each pool is divided among owners by largest remainder, so whenever a pool has a
// recipient it is paid out to the last unit, and a pool without recipients is reported as
// unallocated with a reason code. Per-device amounts split each owner's amount again the same way.
import type { EpochScores } from './score-epoch.ts';
import { largestRemainder } from './largest-remainder.ts';
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

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function allocateRewards(scores: EpochScores, params: RewardParams): EpochAllocation {
  const emission = params.emissionPerEpoch;
  // floor for the availability pool; the contribution pool takes the rest, so pools sum to emission.
  const availabilityPool = (emission * BigInt(params.availabilityBps)) / 10000n;
  const contributionPool = emission - availabilityPool;
  const eligible = scores.devices.filter((d) => d.eligible && d.owner !== null);

  const byOwner = (weight: (d: (typeof eligible)[number]) => bigint) => {
    const m = new Map<string, bigint>();
    for (const d of eligible) m.set(d.owner!, (m.get(d.owner!) ?? 0n) + weight(d));
    return [...m].map(([key, w]) => ({ key, weight: w }));
  };
  const availWeight = (d: (typeof eligible)[number]) => BigInt(d.creditedSlots);
  const contribWeight = (d: (typeof eligible)[number]) => d.contribution;
  const avail = largestRemainder(availabilityPool, byOwner(availWeight));
  const contrib = largestRemainder(contributionPool, byOwner(contribWeight));

  const unallocatedParts: UnallocatedPart[] = [];
  if (availabilityPool > 0n && avail.size === 0) {
    unallocatedParts.push({ pool: 'availability', amount: availabilityPool, code: 'UNALLOCATED_NO_ELIGIBLE' });
  }
  if (contributionPool > 0n && contrib.size === 0) {
    unallocatedParts.push({
      pool: 'contribution',
      amount: contributionPool,
      code: eligible.length === 0 ? 'UNALLOCATED_NO_ELIGIBLE' : 'UNALLOCATED_NO_CONTRIBUTION',
    });
  }

  // Each owner's eligible devices, grouped once (a scan per owner would be owners × devices).
  const byOwnerDevices = new Map<string, (typeof eligible)[number][]>();
  for (const d of eligible) {
    const list = byOwnerDevices.get(d.owner!);
    if (list === undefined) byOwnerDevices.set(d.owner!, [d]);
    else list.push(d);
  }
  const ownerKeys = [...new Set([...avail.keys(), ...contrib.keys()])].sort(cmp);
  const owners: OwnerReward[] = [];
  const devices: DeviceReward[] = [];
  for (const owner of ownerKeys) {
    const a = avail.get(owner) ?? 0n;
    const c = contrib.get(owner) ?? 0n;
    if (a + c === 0n) continue;
    owners.push({ owner, availability: a, contribution: c, total: a + c });
    const mine = byOwnerDevices.get(owner) ?? [];
    const da = largestRemainder(a, mine.map((d) => ({ key: d.deviceId, weight: availWeight(d) })));
    const dc = largestRemainder(c, mine.map((d) => ({ key: d.deviceId, weight: contribWeight(d) })));
    for (const d of mine) {
      const x = da.get(d.deviceId) ?? 0n;
      const y = dc.get(d.deviceId) ?? 0n;
      if (x + y > 0n) devices.push({ deviceId: d.deviceId, owner, availability: x, contribution: y, total: x + y });
    }
  }
  devices.sort((x, y) => cmp(x.deviceId, y.deviceId));
  const allocated = owners.reduce((s, o) => s + o.total, 0n);
  return {
    epoch: scores.window.epoch,
    emission,
    availabilityPool,
    contributionPool,
    owners,
    devices,
    allocated,
    unallocated: emission - allocated,
    unallocatedParts,
  };
}
