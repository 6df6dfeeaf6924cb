// Read what the RewardDistributor holds for an epoch (contracts/RewardDistributor.sol rootOf), for
// `pulse verify --rpc --contract` and `pulse claim`. Only the view functions are declared here, in
// human-readable ABI, so the verifier does not depend on the compiled artifacts.
import { Contract, JsonRpcProvider, getAddress, isAddress } from 'ethers';
import { PulseError } from '../../shared/errors.ts';
import type { ChainRoot } from './verify-bundle.ts';

export const DISTRIBUTOR_VIEW_ABI = [
  'function rootOf(uint256 epoch) view returns (tuple(bytes32 root, uint256 cumulativeTotal, bytes32 inputsHash, bytes32 paramsHash, uint64 postedAt, uint64 claimableAt, bool vetoed))',
  'function claimableRoot() view returns (bool found, uint256 epoch, bytes32 root)',
  'function claimed(address account) view returns (uint256)',
  'function token() view returns (address)',
] as const;

const ZERO32 = `0x${'00'.repeat(32)}`;

export function distributorAt(rpcUrl: string, address: string): Contract {
  if (!isAddress(address)) throw new PulseError('CLI_USAGE', `--contract ${JSON.stringify(address)} is not an address`);
  const provider = new JsonRpcProvider(rpcUrl, undefined, { staticNetwork: true });
  return new Contract(getAddress(address), DISTRIBUTOR_VIEW_ABI, provider);
}

async function call<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const msg = (e as Error).message;
    if (/could not decode result data|BAD_DATA/.test(msg)) throw new PulseError('CHAIN_NOT_DEPLOYED', `${what}: no RewardDistributor at that address (${msg.slice(0, 120)})`);
    throw new PulseError('CHAIN_RPC_UNAVAILABLE', `${what}: ${msg.slice(0, 200)}`);
  }
}

/** rootOf(epoch), or null when the contract holds no root for it. */
export async function readChainRoot(contract: Contract, epoch: number): Promise<ChainRoot | null> {
  const r = (await call(`rootOf(${epoch})`, () => contract.getFunction('rootOf').staticCall(epoch))) as {
    root: string; cumulativeTotal: bigint; inputsHash: string; paramsHash: string; postedAt: bigint; vetoed: boolean;
  };
  if (r.root === ZERO32) return null;
  return { root: r.root, cumulativeTotal: r.cumulativeTotal, inputsHash: r.inputsHash, paramsHash: r.paramsHash, postedAt: Number(r.postedAt), vetoed: r.vetoed };
}

/** The newest claimable root (the one claim() proves against), or null. */
export async function readClaimableRoot(contract: Contract): Promise<{ epoch: number; root: string } | null> {
  const r = (await call('claimableRoot()', () => contract.getFunction('claimableRoot').staticCall())) as [boolean, bigint, string];
  return r[0] ? { epoch: Number(r[1]), root: r[2] } : null;
}

export async function readClaimed(contract: Contract, account: string): Promise<bigint> {
  return (await call(`claimed(${account})`, () => contract.getFunction('claimed').staticCall(account))) as bigint;
}
