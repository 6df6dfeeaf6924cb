// One call for the epoch closer (issue 5 part 1 wires it to the database): scores, allocation,
// cumulative leaves, the merkle tree and the parameters hash, i.e. everything an epoch close stores
// in its one transaction (docs/rewards.md §Epoch result). Pure.
import type { RewardCode } from '../error-codes.ts';
import { buildRewardTree, type RewardLeaf, type RewardTree } from '../merkle/reward-tree.ts';
import { err, ok, type Result } from '../result.ts';
import { allocateRewards, type EpochAllocation } from './allocate-rewards.ts';
import { accumulateRewards } from './cumulative-rewards.ts';
import { rewardParamsHash, validateRewardParams, type RewardParams } from './reward-params.ts';
import { scoreAggregates, scoreEpoch, type DeviceAggregate, type DeviceInfo, type EpochScores, type EpochWindow, type SlotRollup } from './score-epoch.ts';

export type EpochSettlement = {
  readonly scores: EpochScores;
  readonly allocation: EpochAllocation;
  readonly paramsHash: string;
  /** All owners' cumulative amounts after this epoch, sorted by account. */
  readonly leaves: readonly RewardLeaf[];
  readonly cumulativeTotal: bigint;
  /** null while no owner has ever earned anything (there is nothing to post). */
  readonly tree: RewardTree | null;
  readonly root: string | null;
};

export function settleEpoch(input: {
  readonly window: EpochWindow;
  readonly params: RewardParams;
  readonly devices: readonly DeviceInfo[];
  /** Per-slot rollups, or the same information already aggregated per device (score-epoch.ts DeviceAggregate). */
  readonly rollups?: Iterable<SlotRollup>;
  readonly aggregates?: ReadonlyMap<string, DeviceAggregate>;
  /** Cumulative leaves after the previous epoch (empty for the first). */
  readonly previous: Iterable<RewardLeaf>;
}): Result<EpochSettlement, RewardCode> {
  const p = validateRewardParams(input.params);
  if (!p.ok) return p;
  const scores =
    input.aggregates !== undefined
      ? scoreAggregates({ window: input.window, params: input.params, devices: input.devices, aggregates: input.aggregates })
      : scoreEpoch({ window: input.window, params: input.params, devices: input.devices, rollups: input.rollups ?? [] });
  if (!scores.ok) return scores;
  const allocation = allocateRewards(scores.value, input.params);
  const { leaves, total } = accumulateRewards(input.previous, allocation);
  let tree: RewardTree | null = null;
  if (leaves.length > 0) {
    const t = buildRewardTree(leaves);
    if (!t.ok) return err(t.code, t.message);
    tree = t.value;
  }
  return ok({
    scores: scores.value,
    allocation,
    paramsHash: rewardParamsHash(input.params),
    leaves,
    cumulativeTotal: total,
    tree,
    root: tree?.root ?? null,
  });
}
