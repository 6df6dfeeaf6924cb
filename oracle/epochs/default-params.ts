// The reward parameters a network starts with when no --reward-params file is given
// (docs/rewards.md §Parameters). Metric ids follow the simulator and the protocol examples:
// 1 = bytes relayed, 2 = seconds of service, both amounts since the previous heartbeat.
import type { RewardParams } from '../../shared/rewards/reward-params.ts';

export const DEFAULT_REWARD_PARAMS: RewardParams = Object.freeze({
  version: 1,
  /** 1,000 tokens of 18 decimals per epoch. */
  emissionPerEpoch: 1_000n * 10n ** 18n,
  availabilityBps: 7000,
  minUptimeBps: 5000,
  metrics: Object.freeze([
    Object.freeze({ metricId: 1, weight: 1n, capPerSlot: 2_000_000n, capPerEpoch: 120_000_000n }),
    Object.freeze({ metricId: 2, weight: 1000n, capPerSlot: 60n, capPerEpoch: 3600n }),
  ]),
});
