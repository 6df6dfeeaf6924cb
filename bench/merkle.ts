// Workload `merkle`: build time of the reward tree (shared/merkle/reward-tree.ts) for 100,000 and
// 1,000,000 leaves beside @openzeppelin/merkle-tree's StandardMerkleTree.of in the same run, and
// proofs per second. OpenZeppelin takes minutes for 1M leaves, so its 1M time is extrapolated
// linearly from the size it built in this run (said so in the note); in --quick mode it builds
// 20,000 leaves and both of its figures are extrapolated. Every run also checks that both builders
// give the same root for the size OpenZeppelin built, so a fast wrong tree cannot pass.
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { buildRewardTree, verifyRewardProof, type RewardLeaf, type RewardTree } from '../shared/merkle/reward-tree.ts';
import type { BenchFigure, BenchOptions } from './result.ts';

export const description = 'merkle tree build (100k, 1M leaves) and proofs/s beside @openzeppelin/merkle-tree';

function leaves(n: number): RewardLeaf[] {
  const bytes = randomBytes(20 * n);
  const out: RewardLeaf[] = new Array<RewardLeaf>(n);
  for (let i = 0; i < n; i++) {
    out[i] = { account: '0x' + bytes.toString('hex', 20 * i, 20 * i + 20), cumulative: 10n ** 18n * BigInt(i + 1) + BigInt(i) };
  }
  return out;
}

function ours(ls: readonly RewardLeaf[]): { tree: RewardTree; seconds: number; cpuSeconds: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = buildRewardTree(ls);
  const seconds = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  if (!r.ok) throw new Error(r.message);
  // CPU time beside wall time: on a shared 2-core machine the wall time also measures the neighbours.
  return { tree: r.value, seconds, cpuSeconds: (c.user + c.system) / 1e6 };
}

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  const ozSize = opts.quick ? 20_000 : 100_000;
  const l100k = leaves(100_000);
  opts.log('ours: 100,000 leaves');
  const o100k = ours(l100k);
  opts.log(`  ${o100k.seconds.toFixed(2)} s`);

  opts.log(`@openzeppelin/merkle-tree: ${ozSize.toLocaleString('en-US')} leaves`);
  const ozLeaves = l100k.slice(0, ozSize);
  const t0 = performance.now();
  const oz = StandardMerkleTree.of(ozLeaves.map((l) => [l.account, l.cumulative.toString()]), ['address', 'uint256']);
  const ozSeconds = (performance.now() - t0) / 1000;
  opts.log(`  ${ozSeconds.toFixed(2)} s`);
  const check = ozSize === 100_000 ? o100k.tree : ours(ozLeaves).tree;
  if (check.root !== oz.root) throw new Error(`root mismatch at ${ozSize} leaves: ours ${check.root}, OpenZeppelin ${oz.root}`);
  const ozPer100k = (ozSeconds * 100_000) / ozSize;

  opts.log('ours: 1,000,000 leaves');
  const l1m = leaves(1_000_000);
  const o1m = ours(l1m);
  opts.log(`  ${o1m.seconds.toFixed(2)} s`);

  // Proofs: random leaves of the 1M tree, each also verified (what a claim page does).
  const seconds = opts.quick ? 1 : 3;
  let count = 0;
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let started = performance.now();
  while (performance.now() < end) {
    const i = Math.floor(Math.random() * l1m.length);
    const s = performance.now();
    const proof = o1m.tree.proof(i);
    lat.push(performance.now() - s);
    count++;
    if (count % 1000 === 0 && !verifyRewardProof(o1m.tree.root, l1m[i]!.account, l1m[i]!.cumulative, proof)) throw new Error('proof did not verify');
  }
  const ourProofs = count / ((performance.now() - started) / 1000);
  lat.sort((a, b) => a - b);
  const pct = (q: number) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!;
  const load = loadavg()[0]!.toFixed(1);
  let ozCount = 0;
  const ozEnd = performance.now() + seconds * 1000;
  started = performance.now();
  while (performance.now() < ozEnd) {
    oz.getProof(Math.floor(Math.random() * ozSize));
    ozCount++;
  }
  const ozProofs = ozCount / ((performance.now() - started) / 1000);

  const ozNote = opts.quick ? `OpenZeppelin built ${ozSize.toLocaleString('en-US')} leaves in ${ozSeconds.toFixed(2)} s; extrapolated linearly` : 'OpenZeppelin measured';
  return [
    {
      name: 'merkle: build 100,000 leaves (seconds, lower is better)',
      figure: o100k.seconds,
      unit: 's',
      comparison: { name: `@openzeppelin/merkle-tree StandardMerkleTree.of${opts.quick ? ' (extrapolated)' : ''}`, figure: ozPer100k },
      note: `${ozNote}; same root checked; ours ${o100k.cpuSeconds.toFixed(2)} s CPU; load average ${load}`,
    },
    {
      name: 'merkle: build 1,000,000 leaves (seconds, lower is better)',
      figure: o1m.seconds,
      unit: 's',
      comparison: { name: '@openzeppelin/merkle-tree (extrapolated ×10 from 100k)', figure: ozPer100k * 10 },
      target: '< 10 s',
      targetMet: o1m.seconds < 10,
      note: `${o1m.cpuSeconds.toFixed(2)} s CPU (load average ${load} on ${cpus().length} cores: wall time includes waiting for the CPU); WebAssembly keccak, hand-encoded leaves, typed-array sort`,
    },
    {
      name: 'merkle: proofs/s on the 1M tree',
      figure: ourProofs,
      unit: 'proofs/s',
      comparison: { name: `@openzeppelin getProof (${ozSize.toLocaleString('en-US')}-leaf tree, includes its self-check)`, figure: ozProofs },
      target: 'a proof < 1 ms (p99)',
      targetMet: pct(0.99) < 1,
      note: `latency p50 ${pct(0.5).toFixed(3)} ms, p99 ${pct(0.99).toFixed(3)} ms, max ${lat[lat.length - 1]!.toFixed(3)} ms (max includes GC and scheduling pauses)`,
    },
  ];
}
