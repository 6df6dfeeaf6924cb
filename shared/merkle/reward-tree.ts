// The cumulative-reward merkle tree in OpenZeppelin StandardMerkleTree format (docs/rewards.md
// §Merkle tree): leaf encoding ['address', 'uint256'], leaf = keccak256(keccak256(abi.encode(account,
// cumulative))), node = keccak256 of the two children in ascending byte order ("sorted pairs"),
// leaves sorted by hash, stored in OpenZeppelin's array layout (root at 0, children of i at 2i+1 and
// 2i+2, leaf k of the sorted order at index length-1-k). Root, proofs and dump are therefore
// byte-identical to @openzeppelin/merkle-tree's `StandardMerkleTree.of(values, ['address','uint256'])`
// for the same values in the same order, `StandardMerkleTree.load(tree.dump())` accepts our dump, and
// MerkleProof.sol verifies our proofs.
//
// Why not use the library directly: it hashes through a generic ABI encoder and hex strings and takes
// minutes for 1,000,000 leaves. Here the 64-byte leaf encoding is written by hand (12 zero bytes, 20
// address bytes, 32-byte big-endian amount; Solidity ABI spec §Formal Specification of the Encoding),
// hashing runs in the WebAssembly keccak of keccak-wasm.ts over one flat buffer, and leaves are sorted
// through a numeric typed-array sort of hash prefixes.
import { keccakWasm } from './keccak-wasm.ts';
import { keccak256Into } from './keccak.ts';
import { fromHex, toHex } from '../hex.ts';
import { err, ok, type Result } from '../result.ts';

export const REWARD_LEAF_ENCODING = ['address', 'uint256'] as const;

export type RewardLeaf = {
  /** 20-byte EVM address, 0x-prefixed hex (any case on input; the tree stores lowercase). */
  readonly account: string;
  /** Cumulative amount owed to the account across all epochs, token smallest unit, 0 ≤ x < 2^256. */
  readonly cumulative: bigint;
};

/** The dump format of @openzeppelin/merkle-tree (`StandardMerkleTreeData<[string, string]>`). */
export type StandardTreeDump = {
  readonly format: 'standard-v1';
  readonly leafEncoding: readonly string[];
  readonly tree: readonly string[];
  readonly values: readonly { readonly value: readonly [string, string]; readonly treeIndex: number }[];
};

export type MerkleCode = 'MERKLE_EMPTY' | 'MERKLE_BAD_ADDRESS' | 'MERKLE_BAD_AMOUNT' | 'MERKLE_DUPLICATE_ACCOUNT';

const MAX_UINT256 = (1n << 256n) - 1n;

/** A built tree. Nodes live in one flat buffer; hex strings are produced only on demand. */
export class RewardTree {
  /** (2n − 1) × 32 bytes, node i at [32i, 32i + 32). */
  readonly nodes: Uint8Array;
  /** Leaves in input order, account lowercase. */
  readonly leaves: readonly RewardLeaf[];
  /** treeIndex of leaf i (input order). */
  readonly treeIndex: Uint32Array;
  private byAccount: Map<string, number> | undefined;

  constructor(nodes: Uint8Array, leaves: readonly RewardLeaf[], treeIndex: Uint32Array) {
    this.nodes = nodes;
    this.leaves = leaves;
    this.treeIndex = treeIndex;
  }

  get length(): number {
    return this.leaves.length;
  }

  /** 0x-prefixed lowercase hex, as OpenZeppelin's `tree.root`. */
  get root(): string {
    return '0x' + toHex(this.nodes.subarray(0, 32));
  }

  /** Index (input order) of an account's leaf, or undefined. */
  indexOf(account: string): number | undefined {
    if (this.byAccount === undefined) {
      this.byAccount = new Map();
      this.leaves.forEach((l, i) => this.byAccount!.set(l.account, i));
    }
    return this.byAccount.get(account.toLowerCase());
  }

  /** Proof for leaf `index` (input order): sibling hashes from the leaf up, as OpenZeppelin's getProof. */
  proof(index: number): string[] {
    let i = this.treeIndex[index];
    if (i === undefined) throw new RangeError(`leaf index ${index} out of range 0..${this.length - 1}`);
    const out: string[] = [];
    while (i > 0) {
      // Sibling of i: i−1 for a right child (even index), i+1 for a left child (odd index).
      const s = i % 2 === 0 ? i - 1 : i + 1;
      out.push('0x' + toHex(this.nodes.subarray(32 * s, 32 * s + 32)));
      i = (i - 1) >> 1;
    }
    return out;
  }

  /** The @openzeppelin/merkle-tree dump; values are [lowercase address, decimal amount]. */
  dump(): StandardTreeDump {
    const count = this.nodes.length / 32;
    const tree: string[] = new Array<string>(count);
    // One native hex conversion of the whole buffer, then 64-character slices: ~10× faster than
    // converting 2M nodes one by one.
    const hex = Buffer.from(this.nodes.buffer, this.nodes.byteOffset, this.nodes.byteLength).toString('hex');
    for (let i = 0; i < count; i++) tree[i] = '0x' + hex.slice(64 * i, 64 * i + 64);
    const values = this.leaves.map((l, i) => ({
      value: [l.account, l.cumulative.toString()] as const,
      treeIndex: this.treeIndex[i]!,
    }));
    return { format: 'standard-v1', leafEncoding: [...REWARD_LEAF_ENCODING], tree, values };
  }
}

const HEX_NIBBLE = new Int8Array(128).fill(-1);
for (let c = 0; c < 10; c++) HEX_NIBBLE[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX_NIBBLE[97 + c] = 10 + c;
  HEX_NIBBLE[65 + c] = 10 + c;
}

/**
 * Parses a 0x-prefixed 40-hex-digit address into buf[off .. off+20). Returns -1 when malformed,
 * 1 when it had upper-case digits (so the caller stores a lowercase copy), 0 otherwise.
 */
function parseAddress(s: string, buf: Uint8Array, off: number): number {
  if (typeof s !== 'string' || s.length !== 42 || s.charCodeAt(0) !== 48 || (s.charCodeAt(1) | 0x20) !== 120) return -1;
  let upper = 0;
  for (let i = 0; i < 20; i++) {
    const c1 = s.charCodeAt(2 + 2 * i);
    const c2 = s.charCodeAt(3 + 2 * i);
    const hi = c1 < 128 ? HEX_NIBBLE[c1]! : -1;
    const lo = c2 < 128 ? HEX_NIBBLE[c2]! : -1;
    if (hi < 0 || lo < 0) return -1;
    if ((c1 >= 65 && c1 <= 70) || (c2 >= 65 && c2 <= 70)) upper = 1;
    buf[off + i] = (hi << 4) | lo;
  }
  return upper;
}

/**
 * Writes abi.encode(address, uint256) (64 bytes) into buf at off, the address taken from
 * addr[addrOff .. addrOff+20). The amount goes through one toString(16): cheaper than limb
 * arithmetic on bigints.
 */
function encodeLeaf(buf: Uint8Array, off: number, addr: Uint8Array, addrOff: number, amount: bigint): void {
  buf.fill(0, off, off + 12);
  buf.set(addr.subarray(addrOff, addrOff + 20), off + 12);
  buf.fill(0, off + 32, off + 64);
  const h = amount.toString(16);
  let p = off + 63;
  let i = h.length;
  for (; i >= 2; i -= 2) buf[p--] = (HEX_NIBBLE[h.charCodeAt(i - 2)]! << 4) | HEX_NIBBLE[h.charCodeAt(i - 1)]!;
  if (i === 1) buf[p] = HEX_NIBBLE[h.charCodeAt(0)]!;
}

function compare32(m: Uint8Array, a: number, b: number): number {
  for (let k = 0; k < 32; k++) {
    const d = m[a + k]! - m[b + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

type Checked = { readonly addresses: Uint8Array; readonly leaves: readonly RewardLeaf[] };

function validate(input: readonly RewardLeaf[]): Result<Checked, MerkleCode> {
  const n = input.length;
  if (n === 0) return err('MERKLE_EMPTY', 'a merkle tree needs at least one leaf');
  const addresses = new Uint8Array(20 * n);
  let leaves: RewardLeaf[] | undefined;
  for (let i = 0; i < n; i++) {
    const l = input[i]!;
    const upper = parseAddress(l.account, addresses, 20 * i);
    if (upper < 0) return err('MERKLE_BAD_ADDRESS', `leaf ${i}: ${JSON.stringify(l.account)} is not a 0x-prefixed 20-byte hex address`);
    if (typeof l.cumulative !== 'bigint' || l.cumulative < 0n || l.cumulative > MAX_UINT256) {
      return err('MERKLE_BAD_AMOUNT', `leaf ${i}: amount ${String(l.cumulative)} is not a uint256`);
    }
    if (upper === 1 || l.account.charCodeAt(1) === 88) {
      leaves ??= input.slice();
      leaves[i] = { account: '0x' + l.account.slice(2).toLowerCase(), cumulative: l.cumulative };
    }
  }
  // Duplicate accounts: open-addressing table over the address bytes (a Set of 1M strings costs
  // seconds here). One leaf per account, or a claim could not tell which amount is meant.
  const size = 2 ** Math.ceil(Math.log2(2 * n + 1));
  const table = new Int32Array(size).fill(-1);
  for (let i = 0; i < n; i++) {
    const o = 20 * i;
    // FNV-1a over all 20 bytes: owners choose their addresses, and vanity addresses share leading
    // bytes, so hashing only a prefix would let a shared prefix degrade the table to O(n²).
    let x = 0x811c9dc5;
    for (let k = 0; k < 20; k++) x = Math.imul(x ^ addresses[o + k]!, 0x01000193);
    let h = (x >>> 0) & (size - 1);
    for (;;) {
      const j = table[h]!;
      if (j < 0) {
        table[h] = i;
        break;
      }
      let same = true;
      for (let k = 0; k < 20; k++) {
        if (addresses[20 * j + k] !== addresses[o + k]) {
          same = false;
          break;
        }
      }
      if (same) return err('MERKLE_DUPLICATE_ACCOUNT', `leaf ${i}: ${(leaves ?? input)[i]!.account.toLowerCase()} appears twice; one leaf per account`);
      h = (h + 1) & (size - 1);
    }
  }
  return ok({ addresses, leaves: leaves ?? input });
}

/**
 * Build the tree. Leaves may come in any order: the root depends only on the set of leaves
 * (sorted by hash); the dump's `values` keep the input order, as OpenZeppelin's do.
 */
export function buildRewardTree(leaves: readonly RewardLeaf[]): Result<RewardTree, MerkleCode> {
  const checked = validate(leaves);
  if (!checked.ok) return checked;
  const { addresses } = checked.value;
  const n = leaves.length;
  const nodeCount = 2 * n - 1;
  // Memory layout: [nodes (2n−1)·32][leaf hashes n·32][encode scratch 64][tmp 32].
  const hashesAt = nodeCount * 32;
  const scratchAt = hashesAt + n * 32;
  const tmpAt = scratchAt + 64;
  const wasm = keccakWasm(tmpAt + 32);
  const mem = new Uint8Array(wasm.memory.buffer);

  // Leaf hashes (double keccak, OpenZeppelin standardLeafHash), in input order.
  for (let i = 0; i < n; i++) {
    encodeLeaf(mem, scratchAt, addresses, 20 * i, leaves[i]!.cumulative);
    wasm.hash64(scratchAt, tmpAt);
    wasm.hash32(tmpAt, hashesAt + 32 * i);
  }

  // Stable sort by hash. Pack (32-bit hash prefix, input index) into one float64 so V8 sorts the
  // typed array natively; equal prefixes (rare) are then ordered by the full hash, ties by index,
  // which is exactly Array.prototype.sort's stable order that OpenZeppelin relies on.
  const idxBits = Math.max(1, Math.ceil(Math.log2(n)));
  const keyBits = Math.min(32, 53 - idxBits);
  const idxScale = 2 ** idxBits;
  const packed = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = hashesAt + 32 * i;
    const prefix = ((mem[p]! << 24) | (mem[p + 1]! << 16) | (mem[p + 2]! << 8) | mem[p + 3]!) >>> 0;
    packed[i] = Math.floor(prefix / 2 ** (32 - keyBits)) * idxScale + i;
  }
  packed.sort();
  const order = new Uint32Array(n);
  for (let k = 0; k < n; k++) order[k] = packed[k]! % idxScale;
  for (let k = 0; k < n; ) {
    const key = Math.floor(packed[k]! / idxScale);
    let e = k + 1;
    while (e < n && Math.floor(packed[e]! / idxScale) === key) e++;
    if (e - k > 1) {
      const run = Array.from(order.subarray(k, e)).sort(
        (a, b) => compare32(mem, hashesAt + 32 * a, hashesAt + 32 * b) || a - b,
      );
      order.set(run, k);
    }
    k = e;
  }

  // Leaf k of the sorted order goes to tree index nodeCount−1−k (OpenZeppelin makeMerkleTree).
  const treeIndex = new Uint32Array(n);
  for (let k = 0; k < n; k++) {
    const v = order[k]!;
    const t = nodeCount - 1 - k;
    treeIndex[v] = t;
    mem.copyWithin(32 * t, hashesAt + 32 * v, hashesAt + 32 * v + 32);
  }
  // Internal nodes bottom-up; the children 2i+1 and 2i+2 are adjacent, so one 64-byte hash reads
  // both, swapped when the left child is the larger (sorted pairs).
  for (let i = nodeCount - 1 - n; i >= 0; i--) {
    const l = 32 * (2 * i + 1);
    if (compare32(mem, l, l + 32) <= 0) wasm.hash64(l, 32 * i);
    else wasm.hash64Swap(l, 32 * i);
  }
  const nodes = mem.slice(0, nodeCount * 32);
  return ok(new RewardTree(nodes, checked.value.leaves, treeIndex));
}

/** OpenZeppelin standardLeafHash for ['address','uint256'] (pure JS; for single leaves and checks). */
export function rewardLeafHash(account: string, cumulative: bigint): Uint8Array {
  const address = new Uint8Array(20);
  if (parseAddress(account, address, 0) < 0) throw new RangeError(`not an address: ${account}`);
  if (cumulative < 0n || cumulative > MAX_UINT256) throw new RangeError(`not a uint256: ${cumulative}`);
  const buf = new Uint8Array(64);
  encodeLeaf(buf, 0, address, 0, cumulative);
  const h = new Uint8Array(32);
  keccak256Into(buf, 0, 64, h, 0);
  keccak256Into(h, 0, 32, h, 0);
  return h;
}

/**
 * MerkleProof.verify with sorted pairs (what RewardDistributor.claim runs on chain): true when the
 * proof leads from (account, cumulative) to root. Malformed input gives false, never a throw.
 */
export function verifyRewardProof(root: string, account: string, cumulative: bigint, proof: readonly string[]): boolean {
  let node: Uint8Array;
  try {
    node = rewardLeafHash(account, cumulative);
  } catch {
    return false;
  }
  const pair = new Uint8Array(64);
  for (const p of proof) {
    const sib = /^0x[0-9a-fA-F]{64}$/.test(p) ? fromHex(p.slice(2), true) : undefined;
    if (sib === undefined) return false;
    if (compareBytes(node, sib) <= 0) {
      pair.set(node, 0);
      pair.set(sib, 32);
    } else {
      pair.set(sib, 0);
      pair.set(node, 32);
    }
    node = new Uint8Array(32);
    keccak256Into(pair, 0, 64, node, 0);
  }
  return '0x' + toHex(node) === root.toLowerCase();
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let k = 0; k < 32; k++) {
    const d = a[k]! - b[k]!;
    if (d !== 0) return d;
  }
  return 0;
}
