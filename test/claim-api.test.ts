// Proofs, explanations, bundle serving and claims (issue 6 parts 3 and 4), through the public HTTP
// routes on a real node:http server, and on a real anvil chain: roots posted with k-of-n EIP-712
// signatures and inputsHash = bundle hash, `pulse verify` against the chain, and a claim from a
// fresh wallet using only the public API (`pulse claim --key`), plus a hardware-wallet style claim
// from printed calldata.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Contract, JsonRpcProvider, NonceManager, Wallet, parseEther, type TypedDataDomain } from 'ethers';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { needs } from './support/services.ts';
import { startAnvil, type Anvil } from './support/anvil.ts';
import { pgliteBackend } from '../oracle/store/testing.ts';
import { buildEpochFixture, loadBundle, type EpochFixture } from '../oracle/bundle/testing.ts';
import { createEpochApi } from '../oracle/claims/epoch-routes.ts';
import { claimCalldata, proofFromBundle } from '../oracle/claims/claim-tx.ts';
import { deployPulseContracts } from '../oracle/chain/deploy.ts';
import { loadArtifact } from '../oracle/chain/artifacts.ts';
import { postRootDomain, signPostRoot, type RootPayload } from '../oracle/chain/post-root-signature.ts';
import { run as verifyRun } from '../cli/commands/verify.ts';
import { run as claimRun } from '../cli/commands/claim.ts';

const anvilOk = await needs('anvil');

const ownerX = Wallet.createRandom();
const ownerY = Wallet.createRandom();
let fx: EpochFixture;
let server: Server;
let api = '';

beforeAll(async () => {
  fx = await buildEpochFixture(pgliteBackend, { x: ownerX.address, y: ownerY.address });
  const epochApi = createEpochApi({ store: fx.store });
  server = createServer((req, res) => {
    void epochApi.handle(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(404);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 90_000);
afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await fx?.cleanup();
  if (fx) rmSync(fx.dir, { recursive: true, force: true });
});

const get = async (path: string) => {
  const res = await fetch(`${api}${path}`);
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
};

describe('public epoch API', () => {
  it('serves the bundle file byte for byte with its hash as ETag', async () => {
    const res = await fetch(`${api}/api/epochs/0/bundle`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/gzip');
    expect(res.headers.get('etag')).toBe(`"${fx.bundles[0].hash}"`);
    expect(Buffer.compare(Buffer.from(await res.arrayBuffer()), readFileSync(fx.bundles[0].file))).toBe(0);
    const again = await fetch(`${api}/api/epochs/0/bundle`, { headers: { 'if-none-match': `"${fx.bundles[0].hash}"` } });
    expect(again.status).toBe(304);
    expect((await get('/api/epochs/9/bundle')).json).toMatchObject({ error: { code: 'BUNDLE_NOT_CLOSED' } });
    expect((await get('/api/epochs/x/bundle')).status).toBe(400);
  });

  it('serves proofs that @openzeppelin/merkle-tree verifies, with the amount of the epoch and the cumulative leaf', async () => {
    const b1 = loadBundle(fx.bundles[1].file);
    for (const owner of [ownerX.address, ownerY.address]) {
      const r = await get(`/api/epochs/1/proofs/${owner}`);
      expect(r.status).toBe(200);
      const leaf = b1.result.tree!.values.find((v) => v.value[0] === owner.toLowerCase())!;
      const reward = b1.rewards.find((x) => x.owner === owner.toLowerCase());
      expect(r.json).toMatchObject({ epoch: 1, account: owner.toLowerCase(), cumulative: leaf.value[1], amountThisEpoch: reward?.amount ?? '0', root: b1.result.root, inputsHash: fx.bundles[1].hash });
      expect(StandardMerkleTree.verify(b1.result.root!, ['address', 'uint256'], [owner, r.json['cumulative'] as string], r.json['proof'] as string[])).toBe(true);
      // The same proof comes out of the bundle alone.
      expect(proofFromBundle(readFileSync(fx.bundles[1].file), owner).proof).toEqual(r.json['proof']);
    }
    expect((await get(`/api/epochs/1/proofs/0x${'12'.repeat(20)}`)).json).toMatchObject({ error: { code: 'CLAIM_NO_LEAF' } });
    expect((await get('/api/epochs/1/proofs/0x1234')).status).toBe(400);
  });

  it('explains a device epoch slot by slot: evidence, reason codes, score parts, reward, leaf and proof', async () => {
    const { a, b, c, rotated, rotatedNew } = fx.devices;
    const ra = await get(`/api/devices/${a.deviceId}/epochs/0`);
    expect(ra.status).toBe(200);
    const slots = ra.json['slots'] as { slot: number; credited: boolean; heartbeats: { seq: string; keyId: string; metrics: Record<string, string> }[] }[];
    expect(slots).toHaveLength(10);
    expect(slots.every((s) => s.credited && s.heartbeats.length === 1)).toBe(true);
    expect(slots[0]).toMatchObject({ slot: fx.g, heartbeats: [{ seq: '1', keyId: a.deviceId, metrics: { '1': '10' } }] });
    // The forged heartbeat and the duplicate are shown as rejections with their codes.
    expect((ra.json['rejections'] as { reason: string }[]).map((x) => x.reason).sort()).toEqual(['HB_BAD_SIGNATURE', 'HB_DUPLICATE']);
    const leaf = ra.json['leaf'] as { account: string; cumulative: string; proof: string[]; root: string };
    expect(leaf.account).toBe(ownerX.address.toLowerCase());
    expect(StandardMerkleTree.verify(leaf.root, ['address', 'uint256'], [leaf.account, leaf.cumulative], leaf.proof)).toBe(true);
    const reward = ra.json['reward'] as { availability: string; contribution: string; total: string };
    expect(BigInt(reward.total)).toBe(BigInt(reward.availability) + BigInt(reward.contribution));
    expect(BigInt(reward.total)).toBeGreaterThan(0n);

    const rb = await get(`/api/devices/${b.deviceId}/epochs/0`);
    const reasons = rb.json['reasons'] as { code: string; summary: string }[];
    expect(reasons.map((x) => x.code)).toEqual(expect.arrayContaining(['PARTIAL_UPTIME', 'METRIC_CAPPED']));
    expect(reasons.find((x) => x.code === 'METRIC_CAPPED')!.summary).toMatch(/cap/);
    expect((rb.json['score'] as { metrics: { raw: string; capped: string }[] }).metrics[0]).toMatchObject({ raw: '3000', capped: '600' });
    expect((rb.json['slots'] as { credited: boolean }[]).filter((s) => s.credited)).toHaveLength(6);

    const rc = await get(`/api/devices/${c.deviceId}/epochs/0`);
    expect(rc.json['reasons']).toEqual([expect.objectContaining({ code: 'LOW_UPTIME' })]);
    expect(rc.json['reward']).toMatchObject({ total: '0' });
    // The rotated device: slots 0-4 on the first key, 5-9 on the new one.
    const rr = await get(`/api/devices/${rotated.deviceId}/epochs/0`);
    const keys = (rr.json['slots'] as { heartbeats: { keyId: string }[] }[]).map((s) => s.heartbeats[0]!.keyId);
    expect(keys).toEqual([...Array(5).fill(rotated.deviceId), ...Array(5).fill(rotatedNew.deviceId)]);

    expect((await get(`/api/devices/${'0'.repeat(64)}/epochs/0`)).json).toMatchObject({ error: { code: 'API_UNKNOWN_DEVICE' } });
    expect((await get(`/api/devices/nope/epochs/0`)).status).toBe(400);
    expect((await get(`/api/devices/${a.deviceId}/epochs/5`)).json).toMatchObject({ error: { code: 'BUNDLE_NOT_CLOSED' } });
  });
});

describe.skipIf(!anvilOk)('verify against the chain and claim on anvil', () => {
  let anvil: Anvil;
  let provider: JsonRpcProvider;
  let distributor: string;
  let token: Contract;
  let domain: TypedDataDomain;
  let oracle: Wallet;
  let relayer: NonceManager;

  const payload = (n: 0 | 1, over: Partial<RootPayload> = {}): RootPayload => {
    const b = loadBundle(fx.bundles[n].file);
    return { epoch: BigInt(n), root: b.result.root!, cumulativeTotal: BigInt(b.result.cumulativeTotal), inputsHash: fx.bundles[n].hash, paramsHash: b.header.paramsHash, dataUri: `${api}/api/epochs/${n}/bundle`, ...over };
  };
  async function post(address: string, p: RootPayload): Promise<void> {
    const d = new Contract(address, loadArtifact('RewardDistributor').abi, relayer);
    const sigs = await signPostRoot([oracle], postRootDomain(31337n, address), p);
    const tx = (await d.getFunction('postRoot')(p.epoch, p.root, p.cumulativeTotal, p.inputsHash, p.paramsHash, p.dataUri, sigs)) as { wait(): Promise<unknown> };
    await tx.wait();
  }
  async function deploy(): Promise<string> {
    const admin = new Wallet(anvil.keys[0]!, provider);
    const dep = await deployPulseContracts(admin, {
      admin: admin.address, guardian: new Wallet(anvil.keys[1]!).address, oracleSigners: [oracle.address], threshold: 1,
      challengePeriodSeconds: 0, maxIncreasePerEpoch: 10n ** 24n, mintToDistributor: 10n ** 9n,
    });
    return dep.distributor;
  }
  const cli = async (f: typeof verifyRun, argv: string[]) => {
    const lines: string[] = [];
    const code = await f(argv, { out: (l) => lines.push(l), err: () => undefined });
    return { code, out: lines.join('\n') };
  };

  beforeAll(async () => {
    anvil = await startAnvil();
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true });
    oracle = new Wallet(anvil.keys[2]!, provider);
    // ethers v6 on anvil: back-to-back transactions need a NonceManager (../shared/DESIGN.md).
    relayer = new NonceManager(new Wallet(anvil.keys[3]!, provider));
    distributor = await deploy();
    domain = postRootDomain(31337n, distributor);
    expect(domain.verifyingContract).toBe(distributor);
    token = new Contract(await new Contract(distributor, loadArtifact('RewardDistributor').abi, provider).getFunction('token')(), loadArtifact('PulseTestToken').abi, provider);
    await post(distributor, payload(0));
    await post(distributor, payload(1));
  }, 60_000);
  afterAll(async () => anvil?.stop());

  it('pulse verify PASSes against the chain, fetching the bundle from the public API', async () => {
    for (const n of [0, 1]) {
      const r = await cli(verifyRun, ['--epoch', String(n), '--bundle', `${api}/api/epochs/${n}/bundle`, '--rpc', anvil.url, '--contract', distributor, '--quiet']);
      expect(r.out).toMatch(new RegExp(`^PASS epoch ${n}: .*, matches the chain`));
      expect(r.code).toBe(0);
    }
  });

  it('pulse verify FAILs when the chain holds another root or another inputsHash', async () => {
    const other = await deploy();
    await post(other, payload(0, { inputsHash: fx.bundles[1].hash }));
    await post(other, payload(1, { root: `0x${'42'.repeat(32)}` }));
    const r0 = await cli(verifyRun, ['--epoch', '0', '--bundle', fx.bundles[0].file, '--rpc', anvil.url, '--contract', other, '--quiet']);
    expect(r0).toEqual({ code: 1, out: `FAIL VERIFY_HASH_MISMATCH: the bundle hashes to ${fx.bundles[0].hash}, the chain's inputsHash for epoch 0 is ${fx.bundles[1].hash}` });
    const r1 = await cli(verifyRun, ['--epoch', '1', '--bundle', fx.bundles[1].file, '--rpc', anvil.url, '--contract', other, '--quiet']);
    expect(r1.out).toBe(`FAIL VERIFY_CHAIN_MISMATCH: root: the chain holds 0x${'42'.repeat(32)}, the bundle recomputes to ${payload(1).root}`);
    const r2 = await cli(verifyRun, ['--epoch', '0', '--bundle', fx.bundles[0].file, '--rpc', anvil.url, '--contract', await deploy(), '--quiet']);
    expect(r2.out).toBe('FAIL VERIFY_CHAIN_MISMATCH: the contract holds no root for epoch 0');
  });

  it('a fresh wallet claims with `pulse claim --key` using only the public API; a second claim finds nothing left', async () => {
    // The owner's fresh wallet gets gas money and nothing else.
    const funder = new Wallet(anvil.keys[4]!, provider);
    await (await funder.sendTransaction({ to: ownerX.address, value: parseEther('1') })).wait();
    const keyFile = join(fx.dir, 'owner-x.key');
    writeFileSync(keyFile, `${ownerX.privateKey}\n`);
    const expected = BigInt(loadBundle(fx.bundles[1].file).result.tree!.values.find((v) => v.value[0] === ownerX.address.toLowerCase())!.value[1]);
    const r = await cli(claimRun, ['--address', ownerX.address, '--rpc', anvil.url, '--contract', distributor, '--api', api, '--key', keyFile]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(new RegExp(`^claimed ${expected} for ${ownerX.address} \\(cumulative ${expected}, epoch 1\\) in 0x[0-9a-f]{64}$`));
    expect(await token.getFunction('balanceOf')(ownerX.address)).toBe(expected);
    const again = await cli(claimRun, ['--address', ownerX.address, '--rpc', anvil.url, '--contract', distributor, '--api', api, '--key', keyFile]);
    expect(again.out).toBe(`nothing to claim: ${ownerX.address} has already claimed ${expected} of ${expected}`);
  });

  it('prints calldata for a hardware wallet that, sent as is, pays the owner', async () => {
    const r = await cli(claimRun, ['--address', ownerY.address, '--rpc', anvil.url, '--contract', distributor, '--bundle', fx.bundles[1].file, '--calldata', '--json']);
    expect(r.code).toBe(0);
    const tx = JSON.parse(r.out) as { to: string; data: string; amount: string; cumulative: string };
    const p = proofFromBundle(readFileSync(fx.bundles[1].file), ownerY.address);
    expect(tx.data).toBe(claimCalldata(p));
    expect(tx.to).toBe(distributor);
    // Anyone can relay the signed-by-nobody calldata; the tokens go to the leaf's account.
    const relay = new Wallet(anvil.keys[5]!, provider);
    await (await relay.sendTransaction({ to: tx.to, data: tx.data })).wait();
    expect(await token.getFunction('balanceOf')(ownerY.address)).toBe(BigInt(tx.amount));
    expect(tx.amount).toBe(tx.cumulative);
  });
});
