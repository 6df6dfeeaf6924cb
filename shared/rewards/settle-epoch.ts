// One call for the epoch closer (issue 5 part 1 wires it to the database): scores, allocation,
// cumulative leaves, the merkle tree and the parameters hash, i.e. everything an epoch close stores
// in its one transaction (docs/rewards.md §Epoch result). Pure.
import type { RewardCode } from '../error-codes.ts';
import { buildRewardTree, type RewardLeaf, type RewardTree } from '../merkle/reward-tree.ts';
import { err, ok, type Result } from '../result.ts';
import { allocateColumns, allocationOf, type AllocationColumns, type EpochAllocation } from './allocate-rewards.ts';
import { accumulateRewards } from './cumulative-rewards.ts';
import { rewardParamsHash, validateRewardParams, type RewardParams } from './reward-params.ts';
import { aggregateRollups, scoreAggregateColumns, scoresOf, type DeviceAggregate, type DeviceInfo, type EpochScores, type EpochWindow, type SlotRollup } from './score-epoch.ts';
import { scoreColumns, windowError, type ScoreColumns, type ScoringColumns } from './score-columns.ts';

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

/** EpochSettlement with per-device scores and amounts as columns (what the epoch closer writes with COPY). */
export type EpochSettlementColumns = Omit<EpochSettlement, 'scores' | 'allocation'> & {
  readonly scores: ScoreColumns;
  readonly allocation: AllocationColumns;
};

/** The settlement from scores onwards: allocation, cumulative leaves, tree, hash. */
function settleScores(params: RewardParams, scores: ScoreColumns, previous: Iterable<RewardLeaf>): Result<EpochSettlementColumns, RewardCode> {
  const allocation = allocateColumns(scores, params);
  const { leaves, total } = accumulateRewards(previous, allocation);
  let tree: RewardTree | null = null;
  if (leaves.length > 0) {
    const t = buildRewardTree(leaves);
    if (!t.ok) return err(t.code, t.message);
    tree = t.value;
  }
  return ok({ scores, allocation, paramsHash: rewardParamsHash(params), leaves, cumulativeTotal: total, tree, root: tree?.root ?? null });
}

/**
 * settleEpoch for input already in columns (score-epoch.ts ScoringColumns), with the result in
 * columns: the epoch closer's path, which builds no object per device.
 */
export function settleEpochColumns(input: {
  readonly window: EpochWindow;
  readonly params: RewardParams;
  readonly scoring: ScoringColumns;
  /** Cumulative leaves after the previous epoch (empty for the first). */
  readonly previous: Iterable<RewardLeaf>;
}): Result<EpochSettlementColumns, RewardCode> {
  const p = validateRewardParams(input.params);
  if (!p.ok) return p;
  const scores = scoreColumns(input.window, input.params, input.scoring);
  if (!scores.ok) return scores;
  return settleScores(input.params, scores.value, input.previous);
}

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
  let aggregates = input.aggregates;
  let ignoredRollups = 0;
  if (aggregates === undefined) {
    // scoreEpoch's order of checks: the window first, then the rollups.
    const bad = windowError(input.window);
    if (bad !== undefined) return bad;
    const agg = aggregateRollups(input.window, input.params, input.rollups ?? []);
    if (!agg.ok) return agg;
    aggregates = agg.value.aggregates;
    ignoredRollups = agg.value.ignored;
  }
  const scores = scoreAggregateColumns({ window: input.window, params: input.params, devices: input.devices, aggregates, ignoredRollups });
  if (!scores.ok) return scores;
  const s = settleScores(input.params, scores.value, input.previous);
  if (!s.ok) return s;
  return ok({ ...s.value, scores: scoresOf(s.value.scores), allocation: allocationOf(s.value.scores, s.value.allocation) });
}
