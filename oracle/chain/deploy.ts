// Deploys and configures the contracts (`pulse chain deploy`, docs/contracts.md §Deploy):
// optionally a PulseTestToken for development, then RewardDistributor with its admin, guardian,
// oracle signers, threshold k, challenge period and per-epoch cap, then (optionally) funds it.
// Explicit nonces: ethers v6 against anvil fails back-to-back transactions with "nonce too low"
// otherwise (../shared/DESIGN.md §Performance anchors).
import { Contract, ContractFactory, NonceManager, type Signer } from 'ethers';
import { loadArtifact } from './artifacts.ts';

export type DeployOptions = {
  /** An existing ERC-20; omit to deploy a PulseTestToken. */
  readonly token?: string;
  readonly testToken?: { readonly name: string; readonly symbol: string };
  readonly admin: string;
  /** address(0) for none. */
  readonly guardian: string;
  readonly oracleSigners: readonly string[];
  readonly threshold: number;
  readonly challengePeriodSeconds: number;
  readonly maxIncreasePerEpoch: bigint;
  /** With a test token: mint this much to the distributor. */
  readonly mintToDistributor?: bigint;
};

export type Deployment = {
  readonly chainId: bigint;
  readonly distributor: string;
  readonly token: string;
  readonly testToken: boolean;
  readonly deployer: string;
  readonly blockNumber: number;
};

export async function deployPulseContracts(deployer: Signer, o: DeployOptions): Promise<Deployment> {
  const signer = deployer instanceof NonceManager ? deployer : new NonceManager(deployer);
  const provider = deployer.provider;
  if (provider === null) throw new Error('deployPulseContracts: the signer needs a provider');
  const from = await signer.getAddress();
  let tokenAddress = o.token;
  let testToken: Contract | undefined;
  if (tokenAddress === undefined) {
    const t = loadArtifact('PulseTestToken');
    const f = new ContractFactory(t.abi, t.bytecode, signer);
    const c = await f.deploy(o.testToken?.name ?? 'Pulse Test Token', o.testToken?.symbol ?? 'PULSE', from);
    await c.waitForDeployment();
    tokenAddress = await c.getAddress();
    testToken = new Contract(tokenAddress, t.abi, signer);
  }
  const d = loadArtifact('RewardDistributor');
  const f = new ContractFactory(d.abi, d.bytecode, signer);
  const c = await f.deploy(tokenAddress, o.admin, o.guardian, [...o.oracleSigners], o.threshold, o.challengePeriodSeconds, o.maxIncreasePerEpoch);
  const receipt = await c.deploymentTransaction()!.wait();
  const distributor = await c.getAddress();
  if (testToken !== undefined && o.mintToDistributor !== undefined && o.mintToDistributor > 0n) {
    const tx = (await testToken.getFunction('mint')(distributor, o.mintToDistributor)) as { wait(): Promise<unknown> };
    await tx.wait();
  }
  return {
    chainId: (await provider.getNetwork()).chainId,
    distributor,
    token: tokenAddress,
    testToken: testToken !== undefined,
    deployer: from,
    blockNumber: receipt?.blockNumber ?? 0,
  };
}
