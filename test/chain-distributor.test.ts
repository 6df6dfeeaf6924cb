// RewardDistributor on a real anvil node (docs/contracts.md): posting with k-of-n EIP-712 signatures,
// the challenge period and guardian veto, claims that pay cumulative minus claimed, and every revert.
import { Contract, JsonRpcProvider, Wallet, ZeroAddress, ZeroHash, keccak256, toUtf8Bytes, type TypedDataDomain } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { startAnvil, type Anvil } from './support/anvil.ts';
import { deployPulseContracts } from '../oracle/chain/deploy.ts';
import { distributorInterface, loadArtifact } from '../oracle/chain/artifacts.ts';
import { decodeRevert, revertData } from '../oracle/chain/chain-error.ts';
import { postRootDigest, postRootDomain, signPostRoot, type RootPayload } from '../oracle/chain/post-root-signature.ts';
import { buildRewardTree, type RewardTree } from '../shared/merkle/reward-tree.ts';

const ok = await needs('anvil');
const DAY = 86_400;
const CAP = 10n ** 24n;

async function reverts(p: Promise<unknown>, name: string): Promise<unknown[]> {
  try {
    await p;
  } catch (e) {
    const d = decodeRevert(distributorInterface(), revertData(e));
    expect(d?.name, `expected revert ${name}, got ${String((e as Error).message).slice(0, 300)}`).toBe(name);
    return [...d!.args];
  }
  throw new Error(`expected revert ${name}, but the call succeeded`);
}

function tree(entries: [string, bigint][]): RewardTree {
  const t = buildRewardTree(entries.map(([account, cumulative]) => ({ account, cumulative })));
  if (!t.ok) throw new Error(t.message);
  return t.value;
}

describe.skipIf(!ok)('RewardDistributor on anvil', () => {
  let anvil: Anvil;
  let provider: JsonRpcProvider;
  let admin: Wallet, guardian: Wallet, relayer: Wallet;
  let oracles: Wallet[];
  let outsider: Wallet;
  let owners: string[];
  let dist: Contract;
  let token: Contract;
  let domain: TypedDataDomain;

  // Plain wallets (nonce from the node per transaction): every test awaits each receipt, and a
  // NonceManager would count a nonce for a call whose gas estimate reverts, leaving a gap.
  const signer = (k: string) => new Wallet(k, provider);
  const asFrom = (s: Wallet) => dist.connect(s) as Contract;
  const payload = (epoch: bigint, root: string, cumulativeTotal: bigint, dataUri = `ipfs://epoch-${epoch}`): RootPayload => ({
    epoch,
    root,
    cumulativeTotal,
    inputsHash: keccak256(toUtf8Bytes(`inputs ${epoch}`)),
    paramsHash: keccak256(toUtf8Bytes('params v1')),
    dataUri,
  });
  const args = (p: RootPayload, sigs: string[]) => [p.epoch, p.root, p.cumulativeTotal, p.inputsHash, p.paramsHash, p.dataUri, sigs] as const;
  async function post(p: RootPayload, signers: Wallet[] = [oracles[0]!]) {
    const sigs = await signPostRoot(signers, domain, p);
    const tx = (await asFrom(relayer).getFunction('postRoot')(...args(p, sigs))) as { wait(): Promise<{ logs: unknown[] }> };
    return tx.wait();
  }
  async function increaseTime(seconds: number) {
    await anvil.rpc('evm_increaseTime', [seconds]);
    await anvil.rpc('evm_mine');
  }

  beforeAll(async () => {
    anvil = await startAnvil();
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    const k = anvil.keys;
    admin = signer(k[0]!);
    guardian = signer(k[1]!);
    relayer = signer(k[2]!);
    oracles = [new Wallet(k[3]!, provider), new Wallet(k[4]!, provider), new Wallet(Wallet.createRandom().privateKey, provider)];
    outsider = new Wallet(Wallet.createRandom().privateKey, provider);
    owners = [Wallet.createRandom().address, Wallet.createRandom().address, Wallet.createRandom().address];
    const dep = await deployPulseContracts(admin, {
      admin: await admin.getAddress(),
      guardian: await guardian.getAddress(),
      oracleSigners: [oracles[0]!.address],
      threshold: 1,
      challengePeriodSeconds: DAY,
      maxIncreasePerEpoch: CAP,
      mintToDistributor: 10n ** 27n,
    });
    dist = new Contract(dep.distributor, loadArtifact('RewardDistributor').abi, provider);
    token = new Contract(dep.token, loadArtifact('PulseTestToken').abi, provider);
    domain = postRootDomain(dep.chainId, dep.distributor);
  });
  afterAll(async () => {
    provider?.destroy();
    await anvil?.stop();
  });

  it('is configured: roles, threshold, challenge period, cap, token balance, and the digest matches EIP-712', async () => {
    expect(await dist.getFunction('threshold')()).toBe(1n);
    expect(await dist.getFunction('challengePeriod')()).toBe(BigInt(DAY));
    expect(await dist.getFunction('maxIncreasePerEpoch')()).toBe(CAP);
    expect(await dist.getFunction('hasRole')(await dist.getFunction('ORACLE_ROLE')(), oracles[0]!.address)).toBe(true);
    expect(await dist.getFunction('hasRole')(await dist.getFunction('GUARDIAN_ROLE')(), await guardian.getAddress())).toBe(true);
    expect(await token.getFunction('balanceOf')(await dist.getAddress())).toBe(10n ** 27n);
    const p = payload(1n, keccak256('0x01'), 5n);
    expect(await dist.getFunction('postRootDigest')(p.epoch, p.root, p.cumulativeTotal, p.inputsHash, p.paramsHash, p.dataUri)).toBe(postRootDigest(domain, p));
    expect(await dist.getFunction('claimableRoot')()).toEqual([false, 0n, ZeroHash]);
    expect(await dist.getFunction('latestEpoch')()).toEqual([false, 0n]);
  });

  it('posts a root, lets nobody claim during the challenge period, then pays exactly the leaf amount once', async () => {
    const t1 = tree([[owners[0]!, 1000n], [owners[1]!, 2500n]]);
    const p = payload(10n, t1.root, 3500n);
    const receipt = await post(p);
    const logs = receipt.logs.map((l) => dist.interface.parseLog(l as never)).filter((x) => x !== null);
    const posted = logs.find((l) => l.name === 'RootPosted')!;
    expect(posted.args.epoch).toBe(10n);
    expect(posted.args.root).toBe(t1.root);
    expect(posted.args.dataUri).toBe('ipfs://epoch-10');
    expect(logs.find((l) => l.name === 'RootSigned')!.args.signers).toEqual([oracles[0]!.address]);
    expect(await dist.getFunction('latestEpoch')()).toEqual([true, 10n]);
    const stored = await dist.getFunction('rootOf')(10n);
    expect(stored.root).toBe(t1.root);
    expect(stored.cumulativeTotal).toBe(3500n);
    expect(stored.vetoed).toBe(false);

    const i0 = t1.indexOf(owners[0]!)!;
    await reverts(asFrom(relayer).getFunction('claim')(owners[0]!, 1000n, t1.proof(i0)), 'NoClaimableRoot');
    await increaseTime(DAY);
    expect((await dist.getFunction('claimableRoot')())[1]).toBe(10n);

    const before = (await token.getFunction('balanceOf')(owners[0]!)) as bigint;
    const tx = (await asFrom(relayer).getFunction('claim')(owners[0]!, 1000n, t1.proof(i0))) as { wait(): Promise<{ logs: unknown[] }> };
    const r = await tx.wait();
    expect((await token.getFunction('balanceOf')(owners[0]!)) - before).toBe(1000n);
    const claimed = r.logs.map((l) => dist.interface.parseLog(l as never)).find((x) => x?.name === 'Claimed')!;
    expect([claimed.args.account, claimed.args.amount, claimed.args.cumulativeAmount, claimed.args.epoch]).toEqual([owners[0]!, 1000n, 1000n, 10n]);
    expect(await dist.getFunction('claimed')(owners[0]!)).toBe(1000n);
    // The second claim pays nothing.
    const again = await reverts(asFrom(relayer).getFunction('claim')(owners[0]!, 1000n, t1.proof(i0)), 'NothingToClaim');
    expect(again).toEqual([owners[0]!, 1000n, 1000n]);
    expect((await token.getFunction('balanceOf')(owners[0]!)) - before).toBe(1000n);
    // Wrong amount, wrong account, or a proof for another leaf: InvalidProof.
    await reverts(asFrom(relayer).getFunction('claim')(owners[0]!, 1001n, t1.proof(i0)), 'InvalidProof');
    await reverts(asFrom(relayer).getFunction('claim')(owners[2]!, 1000n, t1.proof(i0)), 'InvalidProof');
    await reverts(asFrom(relayer).getFunction('claim')(owners[1]!, 2500n, []), 'InvalidProof');
  });

  it('a later epoch pays only the increase of the cumulative amount', async () => {
    const t2 = tree([[owners[0]!, 1600n], [owners[1]!, 2500n], [owners[2]!, 50n]]);
    await post(payload(11n, t2.root, 4150n));
    await increaseTime(DAY);
    const before = (await token.getFunction('balanceOf')(owners[0]!)) as bigint;
    await ((await asFrom(relayer).getFunction('claim')(owners[0]!, 1600n, t2.proof(t2.indexOf(owners[0]!)!))) as { wait(): Promise<unknown> }).wait();
    expect((await token.getFunction('balanceOf')(owners[0]!)) - before).toBe(600n);
    // owner 1 never claimed epoch 10 and gets everything at once.
    await ((await asFrom(relayer).getFunction('claim')(owners[1]!, 2500n, t2.proof(t2.indexOf(owners[1]!)!))) as { wait(): Promise<unknown> }).wait();
    expect(await token.getFunction('balanceOf')(owners[1]!)).toBe(2500n);
  });

  it('refuses bad posts: empty root, epoch not increasing, cumulative decreasing, increase over the cap', async () => {
    const root = keccak256('0xbeef');
    await reverts(post(payload(12n, ZeroHash, 4150n)), 'EmptyRoot');
    expect(await reverts(post(payload(11n, root, 4150n)), 'EpochNotIncreasing')).toEqual([11n, 11n]);
    await reverts(post(payload(3n, root, 4150n)), 'EpochNotIncreasing');
    expect(await reverts(post(payload(12n, root, 4149n)), 'CumulativeDecreased')).toEqual([4149n, 4150n]);
    expect(await reverts(post(payload(12n, root, 4150n + CAP + 1n)), 'IncreaseOverCap')).toEqual([CAP + 1n, CAP]);
    // The cap scales with the epochs since the last standing root: two epochs later, twice the cap.
    expect(await reverts(post(payload(13n, root, 4150n + 2n * CAP + 1n)), 'IncreaseOverCap')).toEqual([2n * CAP + 1n, 2n * CAP]);
  });

  it('refuses bad signatures: none, malformed, from a non-oracle, for another payload, duplicated', async () => {
    const p = payload(12n, keccak256('0x12'), 4200n);
    await reverts(asFrom(relayer).getFunction('postRoot')(...args(p, [])), 'InsufficientSignatures');
    await reverts(asFrom(relayer).getFunction('postRoot')(...args(p, ['0x' + '11'.repeat(65)])), 'InvalidSignature');
    await reverts(asFrom(relayer).getFunction('postRoot')(...args(p, ['0x1234'])), 'InvalidSignature');
    expect(await reverts(post(p, [outsider]), 'SignerNotOracle')).toEqual([outsider.address]);
    // A signature over another payload recovers some other address: not an oracle.
    const sigOther = await signPostRoot([oracles[0]!], domain, { ...p, cumulativeTotal: 4201n });
    await reverts(asFrom(relayer).getFunction('postRoot')(...args(p, sigOther)), 'SignerNotOracle');
    // A signature for another contract (domain) is refused the same way.
    const sigDomain = await signPostRoot([oracles[0]!], { ...domain, verifyingContract: ZeroAddress }, p);
    await reverts(asFrom(relayer).getFunction('postRoot')(...args(p, sigDomain)), 'SignerNotOracle');
    const [s] = await signPostRoot([oracles[0]!], domain, p);
    expect(await reverts(asFrom(relayer).getFunction('postRoot')(...args(p, [s!, s!])), 'SignersNotAscending')).toEqual([1n]);
  });

  it('k of n: with threshold 2 one signature is not enough, two ascending are, descending are refused', async () => {
    const role = await dist.getFunction('ORACLE_ROLE')();
    await reverts(asFrom(admin).getFunction('setThreshold')(2n), 'InvalidThreshold');
    await ((await asFrom(admin).getFunction('grantRole')(role, oracles[1]!.address)) as { wait(): Promise<unknown> }).wait();
    await ((await asFrom(admin).getFunction('grantRole')(role, oracles[2]!.address)) as { wait(): Promise<unknown> }).wait();
    await ((await asFrom(admin).getFunction('setThreshold')(2n)) as { wait(): Promise<unknown> }).wait();
    await reverts(asFrom(admin).getFunction('setThreshold')(0n), 'InvalidThreshold');
    await reverts(asFrom(admin).getFunction('setThreshold')(4n), 'InvalidThreshold');
    const p = payload(12n, keccak256('0x12'), 4200n);
    expect(await reverts(post(p, [oracles[0]!]), 'InsufficientSignatures')).toEqual([1n, 2n]);
    const sorted = await signPostRoot([oracles[1]!, oracles[2]!], domain, p);
    await reverts(asFrom(relayer).getFunction('postRoot')(...args(p, [...sorted].reverse())), 'SignersNotAscending');
    const receipt = await post(p, [oracles[2]!, oracles[1]!]);
    const signed = receipt.logs.map((l) => dist.interface.parseLog(l as never)).find((x) => x?.name === 'RootSigned')!;
    const expected = [oracles[1]!.address, oracles[2]!.address].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
    expect(signed.args.signers).toEqual(expected);
    await ((await asFrom(admin).getFunction('setThreshold')(1n)) as { wait(): Promise<unknown> }).wait();
  });

  it('a guardian veto inside the challenge period makes the root unclaimable; the older root stays claimable', async () => {
    const t = tree([[owners[2]!, 999n]]);
    await post(payload(13n, t.root, 4300n));
    await reverts(asFrom(relayer).getFunction('veto')(13n), 'AccessControlUnauthorizedAccount');
    await reverts(asFrom(guardian).getFunction('veto')(99n), 'UnknownEpoch');
    const r = await ((await asFrom(guardian).getFunction('veto')(13n)) as { wait(): Promise<{ logs: unknown[] }> }).wait();
    const ev = r.logs.map((l) => dist.interface.parseLog(l as never)).find((x) => x?.name === 'RootVetoed')!;
    expect([ev.args.epoch, ev.args.guardian]).toEqual([13n, await guardian.getAddress()]);
    await reverts(asFrom(guardian).getFunction('veto')(13n), 'AlreadyVetoed');
    await increaseTime(DAY);
    // Epoch 12 (posted before) is the newest claimable root; 13 never becomes claimable.
    expect((await dist.getFunction('claimableRoot')())[1]).toBe(12n);
    await reverts(asFrom(relayer).getFunction('claim')(owners[2]!, 999n, t.proof(0)), 'InvalidProof');
    // A vetoed epoch number is used up (never two roots for one epoch); the cap compares with the
    // last standing root (epoch 12, 4200).
    await reverts(post(payload(13n, t.root, 4300n)), 'EpochNotIncreasing');
    expect(await reverts(post(payload(14n, t.root, 4199n)), 'CumulativeDecreased')).toEqual([4199n, 4200n]);
    // Once the challenge period is over, a veto is too late.
    await post(payload(14n, t.root, 4300n));
    await increaseTime(DAY);
    expect(await reverts(asFrom(guardian).getFunction('veto')(14n), 'ChallengePeriodOver')).toEqual([14n]);
  });

  it('admin-only setters and constructor checks', async () => {
    await reverts(asFrom(relayer).getFunction('setThreshold')(1n), 'AccessControlUnauthorizedAccount');
    await reverts(asFrom(relayer).getFunction('setMaxIncreasePerEpoch')(1n), 'AccessControlUnauthorizedAccount');
    await reverts(asFrom(relayer).getFunction('setChallengePeriod')(1n), 'AccessControlUnauthorizedAccount');
    await reverts(asFrom(relayer).getFunction('grantRole')(await dist.getFunction('ORACLE_ROLE')(), await relayer.getAddress()), 'AccessControlUnauthorizedAccount');
    try {
      await (token.connect(relayer) as Contract).getFunction('mint')(await relayer.getAddress(), 1n);
      throw new Error('mint by a non-owner should have failed');
    } catch (e) {
      expect(decodeRevert(token.interface, revertData(e))?.name).toBe('OwnableUnauthorizedAccount');
    }
    const r = await ((await asFrom(admin).getFunction('setChallengePeriod')(60n)) as { wait(): Promise<{ logs: unknown[] }> }).wait();
    expect(r.logs.map((l) => dist.interface.parseLog(l as never)?.name)).toContain('ChallengePeriodChanged');
    const r2 = await ((await asFrom(admin).getFunction('setMaxIncreasePerEpoch')(CAP)) as { wait(): Promise<{ logs: unknown[] }> }).wait();
    expect(r2.logs.map((l) => dist.interface.parseLog(l as never)?.name)).toContain('MaxIncreasePerEpochChanged');
    const base = { admin: await admin.getAddress(), guardian: ZeroAddress, challengePeriodSeconds: 1, maxIncreasePerEpoch: 1n };
    await reverts(deployPulseContracts(admin, { ...base, oracleSigners: [oracles[0]!.address], threshold: 0 }), 'InvalidThreshold');
    await reverts(deployPulseContracts(admin, { ...base, oracleSigners: [oracles[0]!.address], threshold: 2 }), 'InvalidThreshold');
    await reverts(deployPulseContracts(admin, { ...base, oracleSigners: [ZeroAddress], threshold: 1 }), 'ZeroAddress');
    await reverts(deployPulseContracts(admin, { ...base, token: ZeroAddress, oracleSigners: [oracles[0]!.address], threshold: 1 }), 'ZeroAddress');
    await reverts(deployPulseContracts(admin, { ...base, admin: ZeroAddress, oracleSigners: [oracles[0]!.address], threshold: 1 }), 'ZeroAddress');
  });

  it('a claim fails when the distributor holds too little of the token', async () => {
    const big = 10n ** 27n + 1n;
    const rich = Wallet.createRandom().address;
    const t = tree([[rich, big]]);
    // Epoch 20: six epochs after 14, cap 6 × 10^24 is too small for 10^27: raise the cap first.
    await ((await asFrom(admin).getFunction('setMaxIncreasePerEpoch')(10n ** 30n)) as { wait(): Promise<unknown> }).wait();
    await post(payload(20n, t.root, 4300n + big));
    await increaseTime(120);
    try {
      await asFrom(relayer).getFunction('claim')(rich, big, t.proof(0));
      throw new Error('claim should have failed');
    } catch (e) {
      const tokenIface = new Contract(ZeroAddress, loadArtifact('PulseTestToken').abi).interface;
      expect(decodeRevert(tokenIface, revertData(e))?.name).toBe('ERC20InsufficientBalance');
    }
  });
});
