// Workload `verify-epoch` (issue 6 benchmark): heartbeats re-checked per second by `pulse verify`
// (oracle/bundle/verify-bundle.ts with signatures on every core), end to end from the gzip bundle
// file to PASS, beside `openssl speed -multi 2 ed25519` measured in the same run. Target: ≥ 80 % of
// OpenSSL's two-core verify rate.
//
// The bundle is a day-long epoch shape (one heartbeat per slot, many slots per device) built in
// memory with real signatures (oracle/bundle/synthetic-bundle.ts), so the figure covers what verify
// does per heartbeat (hex decode, strict Ed25519 check, replay and slot rules, rollups, settlement,
// tree) plus the one-off key-policy check per device key, and nothing of the database.
import { availableParallelism } from 'node:os';
import { opensslVerifyRate } from './openssl.ts';
import type { BenchFigure, BenchOptions } from './result.ts';
import { syntheticBundle } from '../oracle/bundle/synthetic-bundle.ts';
import { compressBundle, encodeBundle } from '../oracle/bundle/bundle-format.ts';
import { verifyBundleFile } from '../oracle/bundle/verify-bundle.ts';
import { startSignaturePool } from '../oracle/bundle/check-signatures.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';

export const description = 'pulse verify: heartbeats re-checked/s end to end (all cores) beside openssl speed -multi 2 ed25519';

const PARAMS: RewardParams = { version: 1, emissionPerEpoch: 10n ** 24n, availabilityBps: 6000, minUptimeBps: 5000, metrics: [{ metricId: 1, weight: 5n, capPerSlot: 30n, capPerEpoch: 20_000n }] };

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  // Large enough that the one-off worker start-up (loading TypeScript in each thread) is amortized,
  // as it is on a real day-long epoch (devices × 1440 one-minute slots).
  const devices = opts.quick ? 40 : 120;
  const slots = 1440;
  const threads = Math.min(2, availableParallelism());
  opts.log(`building a bundle: ${devices} devices × ${slots} slots = ${devices * slots} signed heartbeats`);
  const bundle = syntheticBundle({ devices, slots, owners: Math.max(1, devices / 4), params: PARAMS });
  const file = compressBundle(encodeBundle(bundle));
  opts.log(`bundle: ${file.length} bytes gzip`);

  // OpenSSL is measured before and after the verify run and averaged: on a shared machine the load
  // changes during the run, and bracketing keeps the ratio honest.
  const opensslSeconds = opts.quick ? 2 : 5;
  const before = await opensslVerifyRate(opensslSeconds, 2);
  let sigSeconds = 0;
  // As `pulse verify` does: the worker threads start with the run, overlapping the parse.
  const started = performance.now();
  const pool = startSignaturePool({ threads, minParallel: 0 });
  const outcome = await verifyBundleFile(file, {
    epoch: 0,
    checkSignatures: async (raws) => {
      const t = performance.now();
      const f = await pool.check(raws);
      sigSeconds = (performance.now() - t) / 1000;
      return f;
    },
  });
  await pool.close();
  const seconds = (performance.now() - started) / 1000;
  if (!outcome.ok) throw new Error(`the benchmark bundle did not verify: ${outcome.code} ${outcome.message}`);
  const total = bundle.heartbeats.length;
  const rate = total / seconds;
  const sigRate = total / sigSeconds;
  opts.log(`verify: ${total} heartbeats in ${seconds.toFixed(2)} s (signature phase ${sigSeconds.toFixed(2)} s on ${threads} threads)`);

  const after = await opensslVerifyRate(opensslSeconds, 2);
  const openssl = (before + after) / 2;
  opts.log(`openssl speed -multi 2 ed25519: ${Math.round(before)} verifies/s before, ${Math.round(after)} after; mean ${Math.round(openssl)}`);
  const comparison = { name: 'openssl speed -multi 2 ed25519', figure: openssl, unit: 'verifies/s' };
  return [
    {
      name: `verify-epoch: heartbeats re-checked/s, end to end (${devices} devices × ${slots} slots, ${threads} threads)`,
      figure: rate,
      unit: 'heartbeats/s',
      comparison,
      target: '>= 80% of openssl -multi 2',
      targetMet: rate >= 0.8 * openssl,
      note: `gunzip, hash, parse, signatures, replay rules, rescoring, tree; openssl before/after ${Math.round(before)}/${Math.round(after)} (shared machine)`,
    },
    {
      name: `verify-epoch: signature phase only (${threads} worker threads)`,
      figure: sigRate,
      unit: 'heartbeats/s',
      comparison,
      note: 'worker wall time, overlapped with the main thread\'s rules, hash and rescoring; includes one key-policy check per device key',
    },
  ];
}
