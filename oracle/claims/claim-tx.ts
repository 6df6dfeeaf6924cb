// Claim helpers (issue 6 part 3; docs/verify.md §Claims): get an owner's proof from the public API
// or from a bundle file, check it with both our verifier and @openzeppelin/merkle-tree, and build
// the RewardDistributor.claim(account, cumulativeAmount, proof) calldata that a wallet, a hardware
// wallet or `pulse claim --key` sends. The contract pays cumulativeAmount − claimed[account].
import { Interface } from 'ethers';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { PulseError } from '../../shared/errors.ts';
import { REWARD_LEAF_ENCODING, verifyRewardProof } from '../../shared/merkle/reward-tree.ts';
import { decodeBundle, uncompressBundle } from '../bundle/bundle-format.ts';
import { proofFromDump } from './proof-from-dump.ts';

/** claim() and the custom errors a claim can revert with (contracts/RewardDistributor.sol). */
export const CLAIM_ABI = [
  'function claim(address account, uint256 cumulativeAmount, bytes32[] proof) returns (uint256 amount)',
  'error NoClaimableRoot()',
  'error InvalidProof()',
  'error NothingToClaim(address account, uint256 cumulativeAmount, uint256 alreadyClaimed)',
] as const;

export const claimInterface = new Interface(CLAIM_ABI);

export type ClaimProof = {
  readonly epoch: number;
  readonly account: string;
  readonly cumulative: bigint;
  readonly amountThisEpoch: bigint | null;
  readonly proof: readonly string[];
  readonly root: string;
};

export function claimCalldata(p: Pick<ClaimProof, 'account' | 'cumulative' | 'proof'>): string {
  return claimInterface.encodeFunctionData('claim', [p.account, p.cumulative, p.proof]);
}

/** True when the proof leads to the root under both our verifier and @openzeppelin/merkle-tree. */
export function proofVerifies(p: Pick<ClaimProof, 'account' | 'cumulative' | 'proof' | 'root'>): boolean {
  let oz = false;
  try {
    oz = StandardMerkleTree.verify(p.root, [...REWARD_LEAF_ENCODING], [p.account, p.cumulative.toString()], [...p.proof]);
  } catch {
    oz = false;
  }
  return oz && verifyRewardProof(p.root, p.account, p.cumulative, p.proof);
}

/** GET <api>/api/epochs/<epoch>/proofs/<account>. */
export async function fetchProof(apiUrl: string, epoch: number, account: string, fetchImpl: typeof fetch = fetch): Promise<ClaimProof> {
  const url = `${apiUrl.replace(/\/+$/, '')}/api/epochs/${epoch}/proofs/${account}`;
  let res: Response;
  try {
    res = await fetchImpl(url);
  } catch (e) {
    throw new PulseError('BUNDLE_UNAVAILABLE', `GET ${url}: ${(e as Error).message}`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) {
    const e = body['error'] as { code?: string; message?: string } | undefined;
    if (e?.code === 'CLAIM_NO_LEAF') throw new PulseError('CLAIM_NO_LEAF', e.message ?? `no leaf for ${account}`);
    throw new PulseError('BUNDLE_UNAVAILABLE', `GET ${url}: HTTP ${res.status} ${e?.code ?? ''} ${e?.message ?? ''}`.trim());
  }
  const proof = body['proof'];
  if (typeof body['cumulative'] !== 'string' || typeof body['root'] !== 'string' || !Array.isArray(proof) || !proof.every((x) => typeof x === 'string')) {
    throw new PulseError('BUNDLE_UNAVAILABLE', `GET ${url}: the answer is not a proof`);
  }
  return {
    epoch,
    account: account.toLowerCase(),
    cumulative: BigInt(body['cumulative']),
    amountThisEpoch: typeof body['amountThisEpoch'] === 'string' ? BigInt(body['amountThisEpoch']) : null,
    proof: proof as string[],
    root: body['root'],
  };
}

/** The proof from a bundle file's tree dump (no API needed). */
export function proofFromBundle(file: Uint8Array, account: string): ClaimProof {
  const raw = uncompressBundle(file);
  if (!raw.ok) throw new PulseError('BUNDLE_MALFORMED', raw.message);
  const b = decodeBundle(raw.value);
  if (!b.ok) throw new PulseError('BUNDLE_MALFORMED', b.message);
  const tree = b.value.result.tree;
  if (tree === null) throw new PulseError('CLAIM_NO_LEAF', `epoch ${b.value.header.epoch} has no reward tree`);
  const p = proofFromDump(tree, account);
  if (!p.ok) {
    if (p.reason === 'no-leaf') throw new PulseError('CLAIM_NO_LEAF', `${account.toLowerCase()} has no leaf in the tree of epoch ${b.value.header.epoch}`);
    throw new PulseError('BUNDLE_MALFORMED', `the tree dump of epoch ${b.value.header.epoch} does not prove ${account.toLowerCase()}'s leaf`);
  }
  const reward = b.value.rewards.find((r) => r.owner === p.value.account);
  return { epoch: b.value.header.epoch, account: p.value.account, cumulative: p.value.cumulative, amountThisEpoch: BigInt(reward?.amount ?? '0'), proof: p.value.proof, root: p.value.root };
}

/** A readable reason for a reverted claim (the decoded custom error when there is one). */
export function describeClaimRevert(e: unknown): string {
  const data = (e as { data?: unknown; info?: { error?: { data?: unknown } } }).data ?? (e as { info?: { error?: { data?: unknown } } }).info?.error?.data;
  if (typeof data === 'string' && data.startsWith('0x')) {
    try {
      const parsed = claimInterface.parseError(data);
      if (parsed !== null) return `${parsed.name}(${parsed.args.map(String).join(', ')})`;
    } catch {
      // not one of ours: fall through to the message
    }
  }
  return (e as Error).message.slice(0, 300);
}
