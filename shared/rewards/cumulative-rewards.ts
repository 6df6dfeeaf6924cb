// Cumulative amounts per owner across epochs (docs/rewards.md §Cumulative amounts): the merkle leaf
// is (owner, everything ever allocated to that owner), so a claim pays cumulative minus claimed and
// an owner who skips epochs loses nothing. Owners never drop out: an owner with no reward this epoch
// keeps their previous leaf.
import type { RewardLeaf } from '../merkle/reward-tree.ts';
import type { EpochAllocation } from './allocate-rewards.ts';

export type CumulativeRewards = {
  /** Sorted by account (lowercase). */
  readonly leaves: readonly RewardLeaf[];
  /** Σ cumulative: the cumulativeTotal posted with the root. */
  readonly total: bigint;
};

export function accumulateRewards(previous: Iterable<RewardLeaf>, allocation: Pick<EpochAllocation, 'owners'>): CumulativeRewards {
  const m = new Map<string, bigint>();
  for (const l of previous) {
    const k = l.account.toLowerCase();
    m.set(k, (m.get(k) ?? 0n) + l.cumulative);
  }
  for (const o of allocation.owners) m.set(o.owner, (m.get(o.owner) ?? 0n) + o.total);
  const leaves = [...m]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([account, cumulative]) => ({ account, cumulative }));
  return { leaves, total: leaves.reduce((s, l) => s + l.cumulative, 0n) };
}
