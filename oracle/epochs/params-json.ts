// JSON form of reward parameters (config files, the reward_params table, epoch bundles): bigints as
// decimal strings so no value loses precision.
import { validateRewardParams, type RewardParams } from '../../shared/rewards/reward-params.ts';
import { err, type Result } from '../../shared/result.ts';

export type RewardParamsJson = {
  version: number;
  emissionPerEpoch: string;
  availabilityBps: number;
  minUptimeBps: number;
  metrics: { metricId: number; weight: string; capPerSlot: string; capPerEpoch: string }[];
};

export function paramsToJson(p: RewardParams): RewardParamsJson {
  return {
    version: p.version,
    emissionPerEpoch: String(p.emissionPerEpoch),
    availabilityBps: p.availabilityBps,
    minUptimeBps: p.minUptimeBps,
    metrics: p.metrics.map((m) => ({ metricId: m.metricId, weight: String(m.weight), capPerSlot: String(m.capPerSlot), capPerEpoch: String(m.capPerEpoch) })),
  };
}

export function paramsFromJson(j: unknown): Result<RewardParams, 'PARAMS_INVALID'> {
  try {
    const o = j as RewardParamsJson;
    const big = (v: unknown) => {
      if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error(`expected a decimal string, got ${JSON.stringify(v)}`);
      return BigInt(v);
    };
    return validateRewardParams({
      version: o.version,
      emissionPerEpoch: big(o.emissionPerEpoch),
      availabilityBps: o.availabilityBps,
      minUptimeBps: o.minUptimeBps,
      metrics: (o.metrics ?? []).map((m) => ({ metricId: m.metricId, weight: big(m.weight), capPerSlot: big(m.capPerSlot), capPerEpoch: big(m.capPerEpoch) })),
    });
  } catch (e) {
    return err('PARAMS_INVALID', `reward params: ${(e as Error).message}`);
  }
}
