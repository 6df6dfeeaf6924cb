// Reward parameters, their validation and their hash (docs/rewards.md §Parameters, §Parameters hash).
// Every amount is an integer: token smallest units, basis points (1/10,000), metric units, so any
// implementation recomputes the same allocation bit for bit. The hash commits the whole parameter set
// and is posted on chain with each root (RewardDistributor.postRoot paramsHash).
import { keccak_256 } from '@noble/hashes/sha3.js';
import { toHex } from '../hex.ts';
import { err, ok, type Result } from '../result.ts';

export type MetricRule = {
  /** Wire metric id (u16, docs/protocol.md §Heartbeat). */
  readonly metricId: number;
  /** Contribution points per metric unit (after caps). Integer, 0 ≤ weight < 2^64. */
  readonly weight: bigint;
  /** At most this much of the metric counts in one slot (u64). */
  readonly capPerSlot: bigint;
  /** At most this much of the metric counts in one epoch, after the slot caps (u64). */
  readonly capPerEpoch: bigint;
};

export type RewardParams = {
  /** Parameter-set version (u32); a new set of values always gets a new version. */
  readonly version: number;
  /** Tokens minted per epoch, smallest unit (uint256). */
  readonly emissionPerEpoch: bigint;
  /** Share of the emission in the availability pool, basis points 0..10000; the rest is the contribution pool. */
  readonly availabilityBps: number;
  /** Minimum credited uptime to earn anything, basis points 0..10000. */
  readonly minUptimeBps: number;
  /** Weighted metrics, strictly increasing metricId. Metrics not listed earn nothing. */
  readonly metrics: readonly MetricRule[];
};

const U64 = (1n << 64n) - 1n;
const U256 = (1n << 256n) - 1n;

/** Checks every field; a Result rather than a throw because parameters come from files and config. */
export function validateRewardParams(p: RewardParams): Result<RewardParams, 'PARAMS_INVALID'> {
  const bad = (field: string, why: string) => err('PARAMS_INVALID' as const, `reward params ${field}: ${why}`);
  if (!Number.isInteger(p.version) || p.version < 0 || p.version > 0xffffffff) return bad('version', 'must be a u32');
  if (typeof p.emissionPerEpoch !== 'bigint' || p.emissionPerEpoch < 0n || p.emissionPerEpoch > U256) return bad('emissionPerEpoch', 'must be a uint256');
  if (!Number.isInteger(p.availabilityBps) || p.availabilityBps < 0 || p.availabilityBps > 10000) return bad('availabilityBps', 'must be 0..10000');
  if (!Number.isInteger(p.minUptimeBps) || p.minUptimeBps < 0 || p.minUptimeBps > 10000) return bad('minUptimeBps', 'must be 0..10000');
  if (!Array.isArray(p.metrics) || p.metrics.length > 0xffff) return bad('metrics', 'must be a list of at most 65535 rules');
  let prev = -1;
  for (const [i, m] of p.metrics.entries()) {
    if (!Number.isInteger(m.metricId) || m.metricId < 0 || m.metricId > 0xffff) return bad(`metrics[${i}].metricId`, 'must be a u16');
    if (m.metricId <= prev) return bad(`metrics[${i}].metricId`, 'metric ids must be strictly increasing');
    prev = m.metricId;
    for (const f of ['weight', 'capPerSlot', 'capPerEpoch'] as const) {
      const v = m[f];
      if (typeof v !== 'bigint' || v < 0n || v > U64) return bad(`metrics[${i}].${f}`, 'must be a u64');
    }
  }
  return ok(p);
}

function be(value: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = value;
  for (let i = bytes - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/** 'PULSE-RP' then encoding version 1 (docs/rewards.md §Parameters hash). */
const PARAMS_TAG = new TextEncoder().encode('PULSE-RP');
const PARAMS_ENCODING_VERSION = 1;

/**
 * Canonical encoding, all integers big-endian (docs/rewards.md §Parameters hash):
 * 'PULSE-RP' (8) ‖ encoding version u8 = 1 ‖ version u32 ‖ emissionPerEpoch u256 ‖ availabilityBps u16 ‖
 * minUptimeBps u16 ‖ metric count u16 ‖ per metric: metricId u16 ‖ weight u64 ‖ capPerSlot u64 ‖ capPerEpoch u64.
 * Fixed widths and a fixed order mean one byte string per parameter set.
 */
export function encodeRewardParams(p: RewardParams): Uint8Array {
  const parts: Uint8Array[] = [
    PARAMS_TAG,
    Uint8Array.of(PARAMS_ENCODING_VERSION),
    be(BigInt(p.version), 4),
    be(p.emissionPerEpoch, 32),
    be(BigInt(p.availabilityBps), 2),
    be(BigInt(p.minUptimeBps), 2),
    be(BigInt(p.metrics.length), 2),
  ];
  for (const m of p.metrics) parts.push(be(BigInt(m.metricId), 2), be(m.weight, 8), be(m.capPerSlot, 8), be(m.capPerEpoch, 8));
  const out = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
  let off = 0;
  for (const x of parts) {
    out.set(x, off);
    off += x.length;
  }
  return out;
}

/** keccak256(encodeRewardParams(p)) as 0x-prefixed hex: the bytes32 paramsHash posted on chain. */
export function rewardParamsHash(p: RewardParams): string {
  return '0x' + toHex(keccak_256(encodeRewardParams(p)));
}
