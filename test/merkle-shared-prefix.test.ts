// Owner addresses are chosen by owners, and vanity addresses share leading bytes: the tree's
// duplicate-account check must still find duplicates among them (and hashes every address byte, so
// a shared prefix cannot degrade it to quadratic time).
import { describe, expect, it } from 'vitest';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { buildRewardTree } from '../shared/merkle/reward-tree.ts';

const prefix = '0x' + 'ab'.repeat(17);
const addr = (i: number) => prefix + i.toString(16).padStart(6, '0');

describe('reward tree with addresses sharing a 17-byte prefix', () => {
  it('builds the same root as OpenZeppelin', () => {
    const leaves = Array.from({ length: 3000 }, (_, i) => ({ account: addr(i), cumulative: BigInt(i + 1) }));
    const t = buildRewardTree(leaves);
    if (!t.ok) throw new Error(t.message);
    expect(t.value.root).toBe(StandardMerkleTree.of(leaves.map((l) => [l.account, String(l.cumulative)]), ['address', 'uint256']).root);
  });

  it('finds a duplicate account among them, in any letter case', () => {
    const leaves = Array.from({ length: 20_000 }, (_, i) => ({ account: addr(i), cumulative: 1n }));
    leaves.push({ account: addr(12_345).toUpperCase().replace('0X', '0x'), cumulative: 2n });
    const t = buildRewardTree(leaves);
    expect(t.ok).toBe(false);
    if (!t.ok) expect(t.code).toBe('MERKLE_DUPLICATE_ACCOUNT');
  });
});
