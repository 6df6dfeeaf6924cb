// Splits one epoch's emission into owner amounts (docs/rewards.md §Allocation). Two pools:
// availability (by credited slots) and contribution (by capped, weighted contribution). Only eligible
// devices take part; each pool is divided among owners by largest remainder, so whenever a pool has a
// recipient it is paid out to the last unit, and a pool without recipients is reported as
// unallocated with a reason code. Per-device amounts split each owner's amount again the same way.
import type { EpochScores } from './score-epoch.ts';
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

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** One owner's eligible devices (positions in the sorted device list) and pool weights. */
type OwnerGroup = { readonly devices: number[]; slots: number; contribution: bigint };

/** The scored devices in deviceId order: as given when they already are (EpochScores promises it), else a sorted copy. */
function byDeviceId(devices: EpochScores['devices']): EpochScores['devices'] {
  for (let i = 1; i < devices.length; i++) {
    if (!(devices[i - 1]!.deviceId < devices[i]!.deviceId)) return [...devices].sort((x, y) => cmp(x.deviceId, y.deviceId));
  }
  return devices;
}

export function allocateRewards(scores: EpochScores, params: RewardParams): EpochAllocation {
  const emission = params.emissionPerEpoch;
  // floor for the availability pool; the contribution pool takes the rest, so pools sum to emission.
  const availabilityPool = (emission * BigInt(params.availabilityBps)) / 10000n;
  const contributionPool = emission - availabilityPool;
  const ds = byDeviceId(scores.devices);

  // One pass groups the eligible devices by owner and adds up each owner's weights. Credited slots
  // add up as numbers: at most slotCount per device, far below 2^53 for any registry.
  const groups = new Map<string, OwnerGroup>();
  let anyEligible = false;
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i]!;
    if (!d.eligible || d.owner === null) continue;
    anyEligible = true;
    let g = groups.get(d.owner);
    if (g === undefined) groups.set(d.owner, (g = { devices: [], slots: 0, contribution: 0n }));
    g.devices.push(i);
    g.slots += d.creditedSlots;
    g.contribution += d.contribution;
  }
  const ownerList = [...groups.keys()];
  const groupList = [...groups.values()];
  const avail = largestRemainderParts(availabilityPool, ownerList, groupList.map((g) => BigInt(g.slots)));
  const contrib = largestRemainderParts(contributionPool, ownerList, groupList.map((g) => g.contribution));
  const availPaid = groupList.some((g) => g.slots > 0);
  const contribPaid = groupList.some((g) => g.contribution > 0n);

  const unallocatedParts: UnallocatedPart[] = [];
  if (availabilityPool > 0n && !availPaid) {
    unallocatedParts.push({ pool: 'availability', amount: availabilityPool, code: 'UNALLOCATED_NO_ELIGIBLE' });
  }
  if (contributionPool > 0n && !contribPaid) {
    unallocatedParts.push({
      pool: 'contribution',
      amount: contributionPool,
      code: anyEligible ? 'UNALLOCATED_NO_CONTRIBUTION' : 'UNALLOCATED_NO_ELIGIBLE',
    });
  }

  // Each owner's two amounts split over their devices the same way (docs/rewards.md §Allocation 5);
  // parts land by position in the sorted device list, so the per-device list comes out sorted by
  // deviceId without a sort of 100,000 ids.
  const owners: OwnerReward[] = [];
  const deviceAvail = new Array<bigint | undefined>(ds.length);
  const deviceContrib = new Array<bigint>(ds.length);
  const order = ownerList.map((_, i) => i).sort((a, b) => cmp(ownerList[a]!, ownerList[b]!));
  for (const k of order) {
    const a = avail[k]!;
    const c = contrib[k]!;
    if (a + c === 0n) continue;
    owners.push({ owner: ownerList[k]!, availability: a, contribution: c, total: a + c });
    const mine = groupList[k]!.devices;
    const ids = mine.map((i) => ds[i]!.deviceId);
    const da = largestRemainderParts(a, ids, mine.map((i) => BigInt(ds[i]!.creditedSlots)));
    const dc = largestRemainderParts(c, ids, mine.map((i) => ds[i]!.contribution));
    for (let j = 0; j < mine.length; j++) {
      deviceAvail[mine[j]!] = da[j]!;
      deviceContrib[mine[j]!] = dc[j]!;
    }
  }
  const devices: DeviceReward[] = [];
  for (let i = 0; i < ds.length; i++) {
    const x = deviceAvail[i];
    if (x === undefined) continue;
    const y = deviceContrib[i]!;
    if (x + y > 0n) devices.push({ deviceId: ds[i]!.deviceId, owner: ds[i]!.owner!, availability: x, contribution: y, total: x + y });
  }
  let allocated = 0n;
  for (const o of owners) allocated += o.total;
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
