// The fast reward tree (shared/merkle/) against @openzeppelin/merkle-tree, the format's reference
// implementation (docs/rewards.md §Merkle tree): same root, same proofs, identical dump, loadable with
// StandardMerkleTree.load, and the same root for any input order.
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { keccak_256 } from '@noble/hashes/sha3.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keccak256Into, keccak256Short } from '../shared/merkle/keccak.ts';
import { keccakWasm } from '../shared/merkle/keccak-wasm.ts';
import { buildRewardTree, rewardLeafHash, verifyRewardProof, type RewardLeaf } from '../shared/merkle/reward-tree.ts';
import { toHex } from '../shared/hex.ts';

const MAX = (1n << 256n) - 1n;
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => '0x' + toHex(b));
const amount = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n }), fc.bigInt({ min: 0n, max: MAX }), fc.constantFrom(0n, 1n, MAX));
const leafSet = fc.uniqueArray(fc.record({ account: address, cumulative: amount }), {
  minLength: 1,
  maxLength: 70,
  selector: (l) => l.account,
});

function oz(leaves: readonly RewardLeaf[]) {
  return StandardMerkleTree.of(leaves.map((l) => [l.account, l.cumulative.toString()]), ['address', 'uint256']);
}

function build(leaves: readonly RewardLeaf[]) {
  const r = buildRewardTree(leaves);
  if (!r.ok) throw new Error(r.message);
  return r.value;
}

describe('keccak256 (JS and WebAssembly) against @noble/hashes', () => {
  it('agrees for every single-block length 0..135', () => {
    for (let n = 0; n <= 135; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n * 7) & 0xff);
      expect(toHex(keccak256Short(b))).toBe(toHex(keccak_256(b)));
    }
    expect(() => keccak256Into(new Uint8Array(136), 0, 136, new Uint8Array(32), 0)).toThrow(RangeError);
  });

  it('agrees for random 32- and 64-byte inputs, including the swapped pair', () => {
    const w = keccakWasm(4096);
    const mem = new Uint8Array(w.memory.buffer);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), (b) => {
        mem.set(b, 0);
        w.hash32(0, 128);
        expect(toHex(mem.slice(128, 160))).toBe(toHex(keccak_256(b.subarray(0, 32))));
        w.hash64(0, 128);
        expect(toHex(mem.slice(128, 160))).toBe(toHex(keccak_256(b)));
        w.hash64Swap(0, 128);
        const swapped = new Uint8Array(64);
        swapped.set(b.subarray(32), 0);
        swapped.set(b.subarray(0, 32), 32);
        expect(toHex(mem.slice(128, 160))).toBe(toHex(keccak_256(swapped)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('buildRewardTree against @openzeppelin/merkle-tree', () => {
  it('same root, same proof for every leaf, identical dump, and StandardMerkleTree.load accepts it', () => {
    fc.assert(
      fc.property(leafSet, (leaves) => {
        const ours = build(leaves);
        const ref = oz(leaves);
        expect(ours.root).toBe(ref.root);
        const dump = ours.dump();
        expect(dump).toEqual(ref.dump());
        const loaded = StandardMerkleTree.load(JSON.parse(JSON.stringify(dump)) as never);
        expect(loaded.root).toBe(ref.root);
        for (let i = 0; i < leaves.length; i++) {
          const proof = ours.proof(i);
          expect(proof).toEqual(ref.getProof(i));
          expect(verifyRewardProof(ours.root, leaves[i]!.account, leaves[i]!.cumulative, proof)).toBe(true);
          expect(StandardMerkleTree.verify(ours.root, ['address', 'uint256'], [leaves[i]!.account, leaves[i]!.cumulative.toString()], proof)).toBe(true);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('gives the same root for the same leaves in any order', () => {
    fc.assert(
      fc.property(leafSet.chain((l) => fc.tuple(fc.constant(l), fc.shuffledSubarray(l, { minLength: l.length, maxLength: l.length }))), ([a, b]) => {
        expect(build(b).root).toBe(build(a).root);
      }),
      { numRuns: 100 },
    );
  });

  it('a proof does not verify for another amount, another account, or a tampered sibling', () => {
    fc.assert(
      fc.property(leafSet.filter((l) => l.length >= 2), fc.nat(), (leaves, pick) => {
        const t = build(leaves);
        const i = pick % leaves.length;
        const { account, cumulative } = leaves[i]!;
        const proof = t.proof(i);
        const other = leaves[(i + 1) % leaves.length]!;
        expect(verifyRewardProof(t.root, account, cumulative === MAX ? 0n : cumulative + 1n, proof)).toBe(false);
        expect(verifyRewardProof(t.root, other.account, cumulative, proof)).toBe(false);
        const bad = [...proof];
        bad[0] = bad[0]!.slice(0, -1) + (bad[0]!.endsWith('0') ? '1' : '0');
        expect(verifyRewardProof(t.root, account, cumulative, bad)).toBe(false);
        expect(verifyRewardProof(t.root, account, cumulative, ['0xzz'])).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('matches for mixed-case input (stored lowercase) and finds leaves by account', () => {
    const leaves = [
      { account: '0x5B38Da6a701c568545dCfcB03FcB875f56beddC4', cumulative: 10n ** 18n },
      { account: '0xab8483f64d9c6d1ecf9b849ae677dd3315835cb2', cumulative: 5n },
    ];
    const t = build(leaves);
    expect(t.root).toBe(oz(leaves.map((l) => ({ ...l, account: l.account.toLowerCase() }))).root);
    expect(t.leaves[0]!.account).toBe('0x5b38da6a701c568545dcfcb03fcb875f56beddc4');
    expect(t.indexOf('0x5B38DA6A701C568545DCFCB03FCB875F56BEDDC4')).toBe(0);
    expect(t.indexOf('0x0000000000000000000000000000000000000001')).toBeUndefined();
    expect(toHex(rewardLeafHash(leaves[1]!.account, 5n))).toBe(oz(leaves).leafHash([leaves[1]!.account, '5']).slice(2));
  });

  it('a single leaf is its own root with an empty proof', () => {
    const t = build([{ account: '0x' + '11'.repeat(20), cumulative: 7n }]);
    expect(t.proof(0)).toEqual([]);
    expect(t.root).toBe(oz([{ account: '0x' + '11'.repeat(20), cumulative: 7n }]).root);
    expect(() => t.proof(1)).toThrow(RangeError);
  });

  it('refuses bad input with a reason code instead of throwing', () => {
    const a = '0x' + '22'.repeat(20);
    const cases: [RewardLeaf[], string][] = [
      [[], 'MERKLE_EMPTY'],
      [[{ account: '0x1234', cumulative: 1n }], 'MERKLE_BAD_ADDRESS'],
      [[{ account: '0x' + 'zz'.repeat(20), cumulative: 1n }], 'MERKLE_BAD_ADDRESS'],
      [[{ account: a, cumulative: -1n }], 'MERKLE_BAD_AMOUNT'],
      [[{ account: a, cumulative: MAX + 1n }], 'MERKLE_BAD_AMOUNT'],
      [[{ account: a, cumulative: 1n }, { account: a.toUpperCase().replace('0X', '0x'), cumulative: 2n }], 'MERKLE_DUPLICATE_ACCOUNT'],
    ];
    for (const [leaves, code] of cases) {
      const r = buildRewardTree(leaves);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.code).toBe(code);
    }
  });
});
