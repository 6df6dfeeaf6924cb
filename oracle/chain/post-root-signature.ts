// EIP-712 signatures over a root (docs/contracts.md §Signatures). The oracle signers sign the typed
// struct PostRoot(epoch, root, cumulativeTotal, inputsHash, paramsHash, dataUri) under the domain
// ("Pulse RewardDistributor", "1", chainId, distributor address); RewardDistributor.postRoot
// recovers each signer and wants them in strictly ascending address order (that is how duplicates
// are refused), so `signPostRoot` returns the signatures sorted by signer.
import { TypedDataEncoder, type Signer, type TypedDataDomain } from 'ethers';

export type RootPayload = {
  readonly epoch: bigint;
  /** bytes32 hex. */
  readonly root: string;
  readonly cumulativeTotal: bigint;
  readonly inputsHash: string;
  readonly paramsHash: string;
  readonly dataUri: string;
};

export const POST_ROOT_TYPES = {
  PostRoot: [
    { name: 'epoch', type: 'uint256' },
    { name: 'root', type: 'bytes32' },
    { name: 'cumulativeTotal', type: 'uint256' },
    { name: 'inputsHash', type: 'bytes32' },
    { name: 'paramsHash', type: 'bytes32' },
    { name: 'dataUri', type: 'string' },
  ],
};

export function postRootDomain(chainId: bigint, distributor: string): TypedDataDomain {
  return { name: 'Pulse RewardDistributor', version: '1', chainId, verifyingContract: distributor };
}

/** The digest the contract's postRootDigest returns. */
export function postRootDigest(domain: TypedDataDomain, p: RootPayload): string {
  return TypedDataEncoder.hash(domain, POST_ROOT_TYPES, { ...p });
}

/** Every signer signs; signatures come back ordered by signer address ascending. */
export async function signPostRoot(signers: readonly Signer[], domain: TypedDataDomain, p: RootPayload): Promise<string[]> {
  const signed = await Promise.all(
    signers.map(async (s) => ({ address: BigInt(await s.getAddress()), sig: await s.signTypedData(domain, POST_ROOT_TYPES, { ...p }) })),
  );
  signed.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  return signed.map((s) => s.sig);
}
