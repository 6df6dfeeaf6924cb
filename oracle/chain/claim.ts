// Claim helpers for `pulse claim` and the API (docs/contracts.md §Claims): calldata for any wallet,
// a read of what a claim would pay now, and a sender that returns the amount actually paid (from
// the Claimed event). Reverts come back as CHAIN_REVERTED naming the contract error
// (NoClaimableRoot, InvalidProof, NothingToClaim).
import { Contract, type Provider, type Wallet } from 'ethers';
import { PulseError } from '../../shared/errors.ts';
import { distributorInterface, loadArtifact } from './artifacts.ts';
import { chainReverted, isTransient } from './chain-error.ts';

export type ClaimRequest = {
  readonly distributor: string;
  readonly account: string;
  readonly cumulativeAmount: bigint;
  readonly proof: readonly string[];
};

/** `{ to, data }` of RewardDistributor.claim, for any wallet or a multisig. */
export function claimCalldata(c: ClaimRequest): { readonly to: string; readonly data: string } {
  return { to: c.distributor, data: distributorInterface().encodeFunctionData('claim', [c.account, c.cumulativeAmount, [...c.proof]]) };
}

export type ClaimStatus = {
  /** Newest claimable epoch and root, if any root is past its challenge period. */
  readonly claimableEpoch: bigint | undefined;
  readonly claimableRoot: string | undefined;
  readonly alreadyClaimed: bigint;
  /** What a claim of `cumulativeAmount` would pay (0 when it is not more than what was claimed). */
  readonly payable: bigint;
};

export async function claimStatus(provider: Provider, distributor: string, account: string, cumulativeAmount: bigint): Promise<ClaimStatus> {
  const c = new Contract(distributor, loadArtifact('RewardDistributor').abi, provider);
  const [found, epoch, root] = (await c.getFunction('claimableRoot')()) as [boolean, bigint, string];
  const already = (await c.getFunction('claimed')(account)) as bigint;
  return {
    claimableEpoch: found ? epoch : undefined,
    claimableRoot: found ? root : undefined,
    alreadyClaimed: already,
    payable: cumulativeAmount > already ? cumulativeAmount - already : 0n,
  };
}

/** Sends the claim with `wallet` (which pays gas; tokens go to `account`) and waits for the receipt. */
export async function sendClaim(wallet: Wallet, c: ClaimRequest): Promise<{ readonly txHash: string; readonly amount: bigint; readonly epoch: bigint }> {
  const iface = distributorInterface();
  const { to, data } = claimCalldata(c);
  let receipt;
  try {
    const tx = await wallet.sendTransaction({ to, data });
    receipt = await tx.wait();
  } catch (e) {
    if (isTransient(e)) throw new PulseError('CHAIN_RPC_UNAVAILABLE', `claim for ${c.account}: ${(e as Error).message}`, { cause: e });
    throw chainReverted(iface, e, `claim(${c.account}, ${c.cumulativeAmount})`);
  }
  if (receipt === null || receipt.status !== 1) throw new PulseError('CHAIN_REVERTED', `claim(${c.account}) reverted in ${receipt?.hash ?? 'unknown tx'}`);
  for (const log of receipt.logs) {
    const parsed = iface.parseLog(log);
    if (parsed?.name === 'Claimed') return { txHash: receipt.hash, amount: parsed.args[1] as bigint, epoch: parsed.args[3] as bigint };
  }
  throw new PulseError('CHAIN_REVERTED', `claim(${c.account}) in ${receipt.hash} emitted no Claimed event`);
}
