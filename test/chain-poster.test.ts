// The idempotent root poster and the claim helpers on a real anvil node (docs/contracts.md §Posting):
// never two roots for one epoch, resume after a crash between signing and sending, fee bumps while
// the transaction is stuck, RPC outages survived with backoff, and a claim paying exactly the leaf.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Contract, JsonRpcProvider, Transaction, Wallet, ZeroHash, keccak256, toUtf8Bytes } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { startAnvil, type Anvil } from './support/anvil.ts';
import { deployPulseContracts, type Deployment } from '../oracle/chain/deploy.ts';
import { loadArtifact } from '../oracle/chain/artifacts.ts';
import { RootPoster, type RootPosterOptions } from '../oracle/chain/root-poster.ts';
import { FilePostJournal, MemoryPostJournal, type PostIntent, type PostJournal } from '../oracle/chain/post-journal.ts';
import { StorePostJournal } from '../oracle/epochs/store-post-journal.ts';
import { backends } from '../oracle/store/testing.ts';
import { claimCalldata, claimStatus, sendClaim } from '../oracle/chain/claim.ts';
import type { RootPayload } from '../oracle/chain/post-root-signature.ts';
import { buildRewardTree } from '../shared/merkle/reward-tree.ts';
import { PulseError, isPulseError } from '../shared/errors.ts';

const ok = await needs('anvil');

/** An HTTP JSON-RPC proxy in front of anvil whose connections can be cut, to play an RPC outage. */
async function flakyProxy(target: string): Promise<{ url: string; setDown(v: boolean): void; requests(): number; close(): Promise<void> }> {
  let down = false;
  let count = 0;
  const server: Server = createServer((req, res) => {
    count++;
    if (down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      fetch(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(chunks) })
        .then(async (r) => {
          res.writeHead(r.status, { 'content-type': 'application/json' });
          res.end(Buffer.from(await r.arrayBuffer()));
        })
        .catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    setDown: (v) => (down = v),
    requests: () => count,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

describe.skipIf(!ok)('RootPoster and claims on anvil', () => {
  let anvil: Anvil;
  let provider: JsonRpcProvider;
  let sender: Wallet;
  let oracle: Wallet;
  let dep: Deployment;
  let dist: Contract;
  const owners = [Wallet.createRandom().address, Wallet.createRandom().address];
  const tree1 = buildRewardTree([{ account: owners[0]!, cumulative: 700n }, { account: owners[1]!, cumulative: 300n }]);
  if (!tree1.ok) throw new Error(tree1.message);
  const t1 = tree1.value;

  const payload = (epoch: bigint, root: string, cumulativeTotal: bigint): RootPayload => ({
    epoch,
    root,
    cumulativeTotal,
    inputsHash: keccak256(toUtf8Bytes(`bundle ${epoch}`)),
    paramsHash: keccak256(toUtf8Bytes('params v1')),
    dataUri: `file:///bundles/${epoch}.json`,
  });
  const poster = (o: Partial<RootPosterOptions> = {}) =>
    new RootPoster({ provider, distributor: dep.distributor, sender, oracleSigners: [oracle], journal: new MemoryPostJournal(), pollMs: 50, bumpAfterMs: 5_000, ...o });
  const postedCount = async () => (await dist.getFunction('postedCount')()) as bigint;
  const rootOf = async (e: bigint) => ((await dist.getFunction('rootOf')(e)) as { root: string }).root;
  /** Posts the payloads in order through `journal`, then a reorg (evm_snapshot/evm_revert) drops them all. */
  const postThenReorg = async (journal: MemoryPostJournal, ...ps: RootPayload[]): Promise<void> => {
    const snapshot = await anvil.rpc<string>('evm_snapshot');
    for (const p of ps) await poster({ journal }).post(p);
    expect(await anvil.rpc<boolean>('evm_revert', [snapshot])).toBe(true);
  };
  /** Polls `done` every 25 ms, up to 5 s (the tests then assert what they waited for). */
  const until = async (done: () => Promise<boolean> | boolean): Promise<void> => {
    for (let i = 0; i < 200 && !(await done()); i++) await new Promise((r) => setTimeout(r, 25));
  };

  beforeAll(async () => {
    anvil = await startAnvil();
    provider = new JsonRpcProvider(anvil.url, undefined, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 100 });
    const admin = new Wallet(anvil.keys[0]!, provider);
    sender = new Wallet(anvil.keys[1]!, provider);
    oracle = new Wallet(anvil.keys[2]!, provider);
    dep = await deployPulseContracts(admin, {
      admin: admin.address,
      guardian: admin.address,
      oracleSigners: [oracle.address],
      threshold: 1,
      challengePeriodSeconds: 3600,
      maxIncreasePerEpoch: 10n ** 24n,
      mintToDistributor: 10n ** 24n,
    });
    dist = new Contract(dep.distributor, loadArtifact('RewardDistributor').abi, provider);
  });
  afterAll(async () => {
    provider?.destroy();
    await anvil?.stop();
  });

  it('posts once; posting the same epoch again is a no-op that reports the same transaction', async () => {
    const p = poster();
    const a = await p.post(payload(1n, t1.root, 1000n));
    expect(a.status).toBe('posted');
    const b = await poster().post(payload(1n, t1.root, 1000n));
    expect(b).toEqual({ epoch: 1n, status: 'already-posted', txHash: a.txHash, vetoed: false });
    expect(await postedCount()).toBe(1n);
  });

  it('refuses a different root for a posted epoch and an epoch older than the latest', async () => {
    const other = keccak256('0x99');
    await expect(poster().post(payload(1n, other, 1000n))).rejects.toSatisfy((e) => isPulseError(e, 'CHAIN_ROOT_CONFLICT'));
    await expect(poster().post(payload(0n, other, 1000n))).rejects.toSatisfy((e) => isPulseError(e, 'CHAIN_EPOCH_PASSED'));
    expect(await postedCount()).toBe(1n);
  });

  it('names the contract error when the chain refuses (signer not an oracle, increase over the cap)', async () => {
    const stranger = new Wallet(Wallet.createRandom().privateKey, provider);
    await expect(poster({ oracleSigners: [stranger] }).post(payload(2n, keccak256('0x02'), 1001n))).rejects.toThrow(/CHAIN_REVERTED.*SignerNotOracle/);
    await expect(poster().post(payload(2n, keccak256('0x02'), 10n ** 25n))).rejects.toThrow(/CHAIN_REVERTED.*IncreaseOverCap/);
  });

  it('resumes after a crash between signing and sending with the very same transaction', async () => {
    const journal = new MemoryPostJournal();
    let crash = true;
    // The journal persists the intent, then the "process dies" before broadcasting.
    const crashing = {
      load: (e: bigint) => journal.load(e),
      previous: (e: bigint) => journal.previous(e),
      save: async (i: PostIntent) => {
        await journal.save(i);
        if (crash) throw new Error('simulated crash after the journal write');
      },
    };
    const p = payload(2n, keccak256('0x02'), 1100n);
    await expect(poster({ journal: crashing }).post(p)).rejects.toThrow('simulated crash');
    expect(await postedCount()).toBe(1n);
    const saved = (await journal.load(2n))!;
    expect(saved.rawTxs).toHaveLength(1);
    crash = false;
    // The restarted oracle serves bundles at another address (a new port): the journaled transaction,
    // signed with the old URI, is still the one sent; no second intent for the epoch.
    const logs: Record<string, unknown>[] = [];
    const out = await poster({ journal: crashing, log: (e) => logs.push(e) }).post({ ...p, dataUri: 'https://moved.example/bundles/2.json' });
    expect(out.status).toBe('posted');
    expect(out.txHash).toBe(Transaction.from(saved.rawTxs[0]!).hash);
    expect(logs.find((l) => l['event'] === 'data-uri-kept')).toMatchObject({ journaled: p.dataUri, now: 'https://moved.example/bundles/2.json' });
    expect(await postedCount()).toBe(2n);
  });

  it('after a crash once the transaction was sent, the next run finds the root on chain', async () => {
    const journal = new MemoryPostJournal();
    const p = payload(3n, keccak256('0x03'), 1200n);
    const first = await poster({ journal }).post(p);
    // A "restarted" process with the same journal: nothing new is sent.
    const nonceBefore = await provider.getTransactionCount(sender.address);
    const again = await poster({ journal }).post(p);
    expect(again.status).toBe('already-posted');
    expect(again.txHash).toBe(first.txHash);
    expect(await provider.getTransactionCount(sender.address)).toBe(nonceBefore);
  });

  it('bumps the fee while the transaction is not mined, and exactly one version lands', async () => {
    await anvil.rpc('evm_setAutomine', [false]);
    const journal = new MemoryPostJournal();
    const p = payload(4n, keccak256('0x04'), 1300n);
    const done = poster({ journal, bumpAfterMs: 300 }).post(p);
    try {
      for (let i = 0; i < 200 && ((await journal.load(4n))?.rawTxs.length ?? 0) < 3; i++) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await anvil.rpc('evm_setAutomine', [true]);
      await anvil.rpc('evm_mine');
    }
    const out = await done;
    const intent = (await journal.load(4n))!;
    expect(intent.rawTxs.length).toBeGreaterThanOrEqual(3);
    const txs = intent.rawTxs.map((r) => Transaction.from(r));
    expect(new Set(txs.map((t) => t.nonce)).size).toBe(1);
    for (let i = 1; i < txs.length; i++) {
      expect(txs[i]!.maxFeePerGas! > txs[i - 1]!.maxFeePerGas!).toBe(true);
      expect(txs[i]!.maxPriorityFeePerGas! > txs[i - 1]!.maxPriorityFeePerGas!).toBe(true);
    }
    expect(txs.map((t) => t.hash)).toContain(out.txHash);
    expect(out.status).toBe('posted');
    expect(await postedCount()).toBe(4n);
  });

  it('survives an RPC outage with backoff, and gives up with CHAIN_RPC_UNAVAILABLE past its budget', async () => {
    const proxy = await flakyProxy(anvil.url);
    const flaky = new JsonRpcProvider(proxy.url, undefined, { staticNetwork: true, cacheTimeout: -1 });
    try {
      const p = payload(5n, keccak256('0x05'), 1400n);
      proxy.setDown(true);
      const logs: Record<string, unknown>[] = [];
      const done = poster({ provider: flaky, sender: sender.connect(flaky), rpcRetryBudgetMs: 30_000, log: (e) => logs.push(e) }).post(p);
      await new Promise((r) => setTimeout(r, 1500));
      const during = proxy.requests();
      expect(during).toBeGreaterThan(1);
      proxy.setDown(false);
      const out = await done;
      expect(out.status).toBe('posted');
      expect(logs.filter((l) => l['event'] === 'rpc-retry').length).toBeGreaterThan(1);
      expect(await postedCount()).toBe(5n);

      proxy.setDown(true);
      await expect(poster({ provider: flaky, sender: sender.connect(flaky), rpcRetryBudgetMs: 800 }).post(payload(6n, keccak256('0x06'), 1500n))).rejects.toSatisfy((e) =>
        isPulseError(e, 'CHAIN_RPC_UNAVAILABLE'),
      );
    } finally {
      flaky.destroy();
      await proxy.close();
    }
  });

  it('claims pay exactly the leaf amount after the challenge period; a second claim pays nothing', async () => {
    const claimer = new Wallet(anvil.keys[3]!, provider);
    const req = { distributor: dep.distributor, account: owners[0]!, cumulativeAmount: 700n, proof: t1.proof(t1.indexOf(owners[0]!)!) };
    // Every root is still inside its one-hour challenge period.
    await expect(sendClaim(claimer, req)).rejects.toThrow(/CHAIN_REVERTED.*NoClaimableRoot/);
    expect(claimCalldata(req).data.startsWith(dist.interface.getFunction('claim')!.selector)).toBe(true);
    // Post epoch 7 with t1's owners at higher amounts, then let it mature.
    const t7r = buildRewardTree([{ account: owners[0]!, cumulative: 900n }, { account: owners[1]!, cumulative: 300n }]);
    if (!t7r.ok) throw new Error(t7r.message);
    const t7 = t7r.value;
    await poster().post(payload(7n, t7.root, 1600n));
    await anvil.rpc('evm_increaseTime', [3601]);
    await anvil.rpc('evm_mine');
    const req7 = { ...req, cumulativeAmount: 900n, proof: t7.proof(t7.indexOf(owners[0]!)!) };
    const status = await claimStatus(provider, dep.distributor, owners[0]!, 900n);
    expect(status.claimableEpoch).toBe(7n);
    expect(status.payable).toBe(900n);
    const token = new Contract(dep.token, loadArtifact('PulseTestToken').abi, provider);
    // A proof for an older claimable root (epoch 1's tree) still pays, its smaller cumulative amount:
    // a proof fetched just before a newer root matured must not fail (RewardDistributor.claim).
    const older = await sendClaim(claimer, req);
    expect(older.amount).toBe(700n);
    expect(older.epoch).toBe(1n);
    const paid = await sendClaim(claimer, req7);
    expect(paid.amount).toBe(200n);
    expect(paid.epoch).toBe(7n);
    expect(await token.getFunction('balanceOf')(owners[0]!)).toBe(900n);
    await expect(sendClaim(claimer, req7)).rejects.toThrow(/CHAIN_REVERTED.*NothingToClaim/);
    expect(await token.getFunction('balanceOf')(owners[0]!)).toBe(900n);
    expect((await claimStatus(provider, dep.distributor, owners[0]!, 900n)).payable).toBe(0n);
  });

  it('after a reorg drops two mined posts, the next epoch queues behind their nonces instead of locking them out', async () => {
    const journal = new MemoryPostJournal();
    const logs: Record<string, unknown>[] = [];
    const p8 = payload(8n, keccak256('0x08'), 1700n);
    const p9 = payload(9n, keccak256('0x09'), 1800n);
    const p10 = payload(10n, keccak256('0x0a'), 1900n);
    const nonceBefore = (await provider.getTransactionCount(sender.address)) + 2;
    // The reorg: both blocks are gone, and with them the nonces of our two posts.
    await postThenReorg(journal, p8, p9);
    expect((await journal.load(9n))!.nonce).toBe(nonceBefore - 1);
    expect(await provider.getTransactionCount(sender.address)).toBe(nonceBefore - 2);
    expect(await rootOf(8n)).toBe(ZeroHash);

    // Epoch 10 is posted before the pipeline notices: it must not take epoch 8's free nonce.
    let vanishedChecks = 0;
    // A 100 ms fee clock would bump within the wait if queued posts bumped; maxBumps keeps the bound
    // on waiting behind the gap (bumpAfterMs × (maxBumps + 1) = 10 s) far from this test's pace.
    const later = poster({ journal, log: (e) => logs.push(e), bumpAfterMs: 100, maxBumps: 99 }).post(p10, async () => void vanishedChecks++);
    await until(async () => (await journal.load(10n)) !== undefined);
    expect((await journal.load(10n))!.nonce).toBe(nonceBefore);
    // The wait keeps asking the caller about earlier roots, and bumps no fee: none would help.
    await until(() => vanishedChecks >= 5);
    expect(vanishedChecks).toBeGreaterThanOrEqual(5);
    expect(await rootOf(10n)).toBe(ZeroHash); // queued behind nonces nonceBefore-2 and -1
    expect(logs.some((l) => l['event'] === 'nonce-after-previous')).toBe(true);
    expect(logs.filter((l) => l['event'] === 'fee-bump')).toEqual([]);

    // Re-posting 8 and 9 from the journal rebroadcasts their own transactions; 10 follows them.
    await poster({ journal }).post(p8);
    await poster({ journal }).post(p9);
    const out = await later;
    expect(out.status).toBe('posted');
    expect([await rootOf(8n), await rootOf(9n), await rootOf(10n)]).toEqual([p8.root, p9.root, p10.root]);
  });

  it('ends the wait with the precondition error when an earlier root is gone', async () => {
    const journal = new MemoryPostJournal();
    const p11 = payload(11n, keccak256('0x0b'), 2000n);
    const p12 = payload(12n, keccak256('0x0c'), 2100n);
    await postThenReorg(journal, p11);
    let calls = 0;
    const gone = async () => {
      // The first call is the poster's check before its attempt; the caller learns of the reorg later.
      if (calls++ > 0) throw new PulseError('CHAIN_ROOT_VANISHED', 'epoch 11 lost its root');
    };
    await expect(poster({ journal }).post(p12, gone)).rejects.toSatisfy((e) => isPulseError(e, 'CHAIN_ROOT_VANISHED'));
    expect(await rootOf(12n)).toBe(ZeroHash);
    await poster({ journal }).post(p11);
    // Epoch 12's queued transaction follows epoch 11's once it is back.
    await until(async () => (await rootOf(12n)) !== ZeroHash);
    expect(await rootOf(12n)).toBe(p12.root);
    expect((await poster({ journal }).post(p12)).status).toBe('already-posted');
  });

  it('refuses to post past an earlier journaled root of another sender that is off chain', async () => {
    const journal = new MemoryPostJournal();
    const p13 = payload(13n, keccak256('0x0d'), 2200n);
    const p14 = payload(14n, keccak256('0x0e'), 2300n);
    await postThenReorg(journal, p13);
    // A rotated key cannot be ordered after the old key's nonce: it waits for epoch 13 instead.
    const rotated = new Wallet(anvil.keys[4]!, provider);
    await expect(poster({ journal, sender: rotated }).post(p14)).rejects.toSatisfy((e) => isPulseError(e, 'CHAIN_ROOT_VANISHED'));
    expect(await rootOf(14n)).toBe(ZeroHash);
    await poster({ journal }).post(p13);
    expect((await poster({ journal, sender: rotated }).post(p14)).status).toBe('posted');
  });

  it('gives up with CHAIN_NOT_MINED when the earlier nonce it waits behind is never filled', async () => {
    const journal = new MemoryPostJournal();
    const p15 = payload(15n, keccak256('0x0f'), 2400n);
    const p16 = payload(16n, keccak256('0x10'), 2500n);
    await postThenReorg(journal, p15);
    const logs: Record<string, unknown>[] = [];
    await expect(poster({ journal, bumpAfterMs: 150, maxBumps: 1, log: (e) => logs.push(e) }).post(p16)).rejects.toThrow(/CHAIN_NOT_MINED.*waits behind an earlier nonce/);
    expect(logs.filter((l) => l['event'] === 'fee-bump')).toEqual([]);
    // Once epoch 15 is back, 16's journaled transaction follows it, and a second call finds it.
    await poster({ journal }).post(p15);
    await until(async () => (await rootOf(16n)) !== ZeroHash);
    expect((await poster({ journal }).post(p16)).status).toBe('already-posted');
  });
});

describe('FilePostJournal', () => {
  it('round-trips an intent through an atomically replaced file and reports a missing epoch as undefined', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-journal-'));
    try {
      const j = new FilePostJournal(join(dir, 'posts'));
      expect(await j.load(9n)).toBeUndefined();
      const intent: PostIntent = {
        epoch: '9', root: '0x' + '11'.repeat(32), cumulativeTotal: '123', inputsHash: '0x' + '22'.repeat(32), paramsHash: '0x' + '33'.repeat(32),
        dataUri: '', signatures: ['0x' + 'ab'.repeat(65)], from: '0x' + '44'.repeat(20), nonce: 7, rawTxs: [],
      };
      await j.save(intent);
      await j.save({ ...intent, rawTxs: ['0x02f8'] });
      expect(await new FilePostJournal(join(dir, 'posts')).load(9n)).toEqual({ ...intent, rawTxs: ['0x02f8'] });
      expect(readdirSync(join(dir, 'posts'))).toEqual(['post-9.json']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// `previous(epoch)` is what orders a new post's nonce after the last journaled one (RootPoster): every
// journal must answer it the same way, by epoch number (not by text: 10 comes after 9).
const journals: { name: string; open(): Promise<{ journal: PostJournal; close(): Promise<void> }> }[] = [
  { name: 'MemoryPostJournal', open: async () => ({ journal: new MemoryPostJournal(), close: async () => undefined }) },
  {
    name: 'FilePostJournal',
    open: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'pulse-journal-'));
      return { journal: new FilePostJournal(join(dir, 'posts')), close: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  ...backends(await needs('postgres')).map((b) => ({
    name: `StorePostJournal on ${b.name}`,
    open: async () => {
      const { store, cleanup } = await b.open();
      return { journal: new StorePostJournal(store), close: cleanup };
    },
  })),
];

describe.each(journals)('$name', ({ open }) => {
  it('previous(epoch) is the intent of the highest journaled epoch below it', async () => {
    const { journal, close } = await open();
    try {
      const intent = (epoch: number, nonce: number): PostIntent => ({
        epoch: String(epoch), root: '0x' + '11'.repeat(32), cumulativeTotal: '1', inputsHash: '0x' + '22'.repeat(32), paramsHash: '0x' + '33'.repeat(32),
        dataUri: '', signatures: [], from: '0x' + '44'.repeat(20), nonce, rawTxs: [],
      });
      expect(await journal.previous(5n)).toBeUndefined();
      for (const [e, n] of [[9, 1], [3, 0], [10, 2], [12, 3]] as const) await journal.save(intent(e, n));
      expect(await journal.previous(3n)).toBeUndefined();
      expect((await journal.previous(4n))?.epoch).toBe('3');
      expect((await journal.previous(10n))?.epoch).toBe('9');
      expect((await journal.previous(11n))?.nonce).toBe(2);
      expect((await journal.previous(100n))?.epoch).toBe('12');
    } finally {
      await close();
    }
  });
});
