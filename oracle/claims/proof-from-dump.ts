// Proofs straight from a stored tree dump (@openzeppelin/merkle-tree `standard-v1` layout, docs/rewards.md
// §Merkle tree): the sibling of node i is i−1 (i even) or i+1 (i odd), its parent (i−1)/2. Reading the
// dump avoids StandardMerkleTree.load, which rehashes the whole tree on every request (~14 s per 100k
// leaves). The result is checked with verifyRewardProof before it is returned, so a corrupted dump
// yields no proof rather than a wrong one.
import type { StandardTreeDump } from '../../shared/merkle/reward-tree.ts';
import { verifyRewardProof } from '../../shared/merkle/reward-tree.ts';

export type DumpProof = {
  readonly account: string;
  readonly cumulative: bigint;
  readonly proof: readonly string[];
  readonly root: string;
};

export type ProofLookup = { readonly ok: true; readonly value: DumpProof } | { readonly ok: false; readonly reason: 'no-leaf' | 'corrupt' };

export function proofFromDump(dump: StandardTreeDump, account: string): ProofLookup {
  const who = account.toLowerCase();
  const entry = dump.values.find((v) => String(v.value[0]).toLowerCase() === who);
  if (entry === undefined) return { ok: false, reason: 'no-leaf' };
  const proof: string[] = [];
  let i = entry.treeIndex;
  if (!Number.isInteger(i) || i < 0 || i >= dump.tree.length) return { ok: false, reason: 'corrupt' };
  while (i > 0) {
    const sibling = dump.tree[i % 2 === 0 ? i - 1 : i + 1];
    if (sibling === undefined) return { ok: false, reason: 'corrupt' };
    proof.push(sibling);
    i = (i - 1) >> 1;
  }
  const root = dump.tree[0];
  let cumulative: bigint;
  try {
    cumulative = BigInt(String(entry.value[1]));
  } catch {
    return { ok: false, reason: 'corrupt' };
  }
  if (root === undefined || !verifyRewardProof(root, who, cumulative, proof)) return { ok: false, reason: 'corrupt' };
  return { ok: true, value: { account: who, cumulative, proof, root } };
}
