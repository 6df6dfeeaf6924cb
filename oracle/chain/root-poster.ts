// Posts one epoch's root on chain, idempotently (issue 5 §6, docs/contracts.md §Posting):
//  1. read the chain first: the same root already there → done (never a second root for an epoch);
//     a different root → CHAIN_ROOT_CONFLICT; a later epoch posted → CHAIN_EPOCH_PASSED;
//  2. resume the journaled intent if there is one (its signed raw transactions are rebroadcast byte
//     for byte), otherwise sign EIP-712 with the oracle signer keys, build and sign the transaction
//     with an explicit nonce, and save it in the journal BEFORE broadcasting;
//  3. wait for a receipt; when none arrives in `bumpAfterMs`, re-sign the same nonce with fees
//     raised by `bumpPercent` (journal first, then broadcast), up to `maxBumps` times;
//  4. an RPC failure anywhere restarts from step 1 after an exponential backoff, until
//     `rpcRetryBudgetMs` has passed without progress (CHAIN_RPC_UNAVAILABLE; the journal keeps the
//     intent, so the next run resumes it).
import { Contract, Transaction, ZeroHash, type JsonRpcProvider, type Signer, type TransactionRequest, type Wallet } from 'ethers';
import { PulseError, isPulseError } from '../../shared/errors.ts';
import { distributorInterface, loadArtifact } from './artifacts.ts';
import { chainReverted, isTransient } from './chain-error.ts';
import type { PostIntent, PostJournal } from './post-journal.ts';
import { postRootDomain, signPostRoot, type RootPayload } from './post-root-signature.ts';

export type RootPosterOptions = {
  readonly provider: JsonRpcProvider;
  readonly distributor: string;
  /** Signs and pays for the transaction. */
  readonly sender: Wallet;
  /** EIP-712 signers (k of the registered oracle signers); often the sender's key too. */
  readonly oracleSigners: readonly Signer[];
  readonly journal: PostJournal;
  readonly bumpAfterMs?: number;
  readonly maxBumps?: number;
  readonly bumpPercent?: number;
  readonly pollMs?: number;
  readonly rpcRetryBudgetMs?: number;
  readonly log?: (event: Record<string, unknown>) => void;
};

export type PostOutcome = {
  readonly epoch: bigint;
  /** 'posted': this call's transaction landed; 'already-posted': the chain held this root already. */
  readonly status: 'posted' | 'already-posted';
  /** The transaction that put the root on chain (undefined only if its log is no longer available). */
  readonly txHash: string | undefined;
  readonly vetoed: boolean;
};

type Step = { readonly done: PostOutcome } | { readonly retry: true };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export class RootPoster {
  private readonly o: Required<Omit<RootPosterOptions, 'log'>> & Pick<RootPosterOptions, 'log'>;
  private readonly dist: Contract;
  private chainId: bigint | undefined;

  constructor(options: RootPosterOptions) {
    this.o = { bumpAfterMs: 30_000, maxBumps: 5, bumpPercent: 25, pollMs: 1000, rpcRetryBudgetMs: 120_000, ...options };
    this.dist = new Contract(options.distributor, loadArtifact('RewardDistributor').abi, options.provider);
  }

  private log(event: Record<string, unknown>): void {
    this.o.log?.({ component: 'root-poster', ...event });
  }

  /** Post `p`; safe to call again for the same epoch at any time, from any process. */
  /**
   * @param precondition runs before every attempt (each retry re-reads the chain); a PulseError
   * from it ends the post. The oracle uses it to stop if an earlier root vanished in a reorg.
   */
  async post(p: RootPayload, precondition?: () => Promise<void>): Promise<PostOutcome> {
    let backoff = 250;
    let lastProgress = Date.now();
    for (;;) {
      try {
        await precondition?.();
        const step = await this.attempt(p, precondition);
        if ('done' in step) return step.done;
        lastProgress = Date.now();
      } catch (e) {
        if (isPulseError(e) || !isTransient(e)) throw e;
        if (Date.now() - lastProgress > this.o.rpcRetryBudgetMs) {
          throw new PulseError('CHAIN_RPC_UNAVAILABLE', `epoch ${p.epoch}: RPC failing for ${this.o.rpcRetryBudgetMs} ms: ${(e as Error).message}`, { cause: e });
        }
        this.log({ event: 'rpc-retry', epoch: p.epoch.toString(), backoffMs: backoff, error: String((e as Error).message).slice(0, 200) });
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private async rpc<T>(method: string, params: unknown[]): Promise<T> {
    return (await this.o.provider.send(method, params)) as T;
  }

  /** Step 1: what the chain says about this epoch. */
  private async readChain(p: RootPayload): Promise<PostOutcome | undefined> {
    const code = await this.rpc<string>('eth_getCode', [this.o.distributor, 'latest']);
    if (code === '0x') throw new PulseError('CHAIN_NOT_DEPLOYED', `no contract at ${this.o.distributor}`);
    const onChain = (await this.dist.getFunction('rootOf')(p.epoch)) as { root: string; cumulativeTotal: bigint; vetoed: boolean };
    if (onChain.root !== ZeroHash) {
      if (!same(onChain.root, p.root) || onChain.cumulativeTotal !== p.cumulativeTotal) {
        throw new PulseError('CHAIN_ROOT_CONFLICT', `epoch ${p.epoch} already has root ${onChain.root} (cumulative ${onChain.cumulativeTotal}) on chain, not ${p.root} (${p.cumulativeTotal})`);
      }
      return { epoch: p.epoch, status: 'already-posted', txHash: await this.postedTxHash(p.epoch), vetoed: onChain.vetoed };
    }
    const [posted, latest] = (await this.dist.getFunction('latestEpoch')()) as [boolean, bigint];
    if (posted && latest >= p.epoch) throw new PulseError('CHAIN_EPOCH_PASSED', `epoch ${latest} is already posted; epoch ${p.epoch} can no longer be posted`);
    return undefined;
  }

  /**
   * The transaction that posted `epoch`: our own journaled transactions first (no log query), then
   * the RootPosted log. Many RPC providers limit eth_getLogs ranges; without an answer the outcome
   * is still "already posted", with the hash unknown.
   */
  private async postedTxHash(epoch: bigint): Promise<string | undefined> {
    const intent = await this.o.journal.load(epoch);
    if (intent !== undefined) {
      const r = await this.findReceipt(intent);
      if (r?.status === '0x1') return r.hash;
    }
    try {
      const logs = await this.dist.queryFilter(this.dist.filters['RootPosted']!(epoch));
      return logs[0]?.transactionHash;
    } catch (e) {
      if (isTransient(e)) throw e;
      this.log({ event: 'posted-log-unavailable', epoch: epoch.toString(), error: String((e as Error).message).slice(0, 200) });
      return undefined;
    }
  }

  private async attempt(p: RootPayload, precondition: (() => Promise<void>) | undefined): Promise<Step> {
    const chain = await this.readChain(p);
    if (chain !== undefined) return { done: chain };
    this.chainId ??= BigInt(await this.rpc<string>('eth_chainId', []));
    let intent = await this.o.journal.load(p.epoch);
    if (intent !== undefined && (!same(intent.root, p.root) || intent.cumulativeTotal !== p.cumulativeTotal.toString() || !same(intent.paramsHash, p.paramsHash) || !same(intent.inputsHash, p.inputsHash))) {
      throw new PulseError('CHAIN_ROOT_CONFLICT', `the post journal holds a different intent for epoch ${p.epoch} (root ${intent.root}); refusing to sign a second root`);
    }
    if (intent !== undefined && intent.dataUri !== p.dataUri) {
      // Same epoch data, another address for its bundle (the oracle's public URL or port changed
      // since the intent was signed). The journaled transactions and signatures carry the old URI;
      // posting them keeps the one-intent-per-epoch rule, and the bundle's hash is what matters.
      this.log({ event: 'data-uri-kept', epoch: intent.epoch, journaled: intent.dataUri, now: p.dataUri });
    }
    const from = this.o.sender.address;
    if (intent !== undefined && intent.rawTxs.length > 0) {
      const mined = await this.findReceipt(intent);
      if (mined !== undefined) return this.afterReceipt(p, mined);
      const used = await this.nonce('latest');
      if (used > intent.nonce) {
        // Our nonce went to another transaction and none of ours landed: nothing of this intent
        // can land any more, so a new transaction (new nonce, same signatures) is safe.
        this.log({ event: 'intent-nonce-consumed', epoch: intent.epoch, nonce: intent.nonce });
        intent = { ...intent, nonce: await this.nonceFor(p.epoch), rawTxs: [] };
      } else {
        this.log({ event: 'resume', epoch: intent.epoch, nonce: intent.nonce, attempts: intent.rawTxs.length });
        for (const raw of intent.rawTxs) await this.broadcast(raw);
      }
    }
    if (intent === undefined) {
      const domain = postRootDomain(this.chainId, this.o.distributor);
      const signatures = await signPostRoot(this.o.oracleSigners, domain, p);
      intent = {
        epoch: p.epoch.toString(),
        root: p.root,
        cumulativeTotal: p.cumulativeTotal.toString(),
        inputsHash: p.inputsHash,
        paramsHash: p.paramsHash,
        dataUri: p.dataUri,
        signatures,
        from,
        nonce: await this.nonceFor(p.epoch),
        rawTxs: [],
      };
    }
    if (intent.rawTxs.length === 0) {
      const raw = await this.signTx(intent, undefined);
      intent = { ...intent, rawTxs: [raw] };
      await this.o.journal.save(intent); // durable before it can reach the network
      this.log({ event: 'send', epoch: intent.epoch, nonce: intent.nonce, tx: Transaction.from(raw).hash });
      await this.broadcast(raw);
    }
    return this.waitMined(p, intent, precondition);
  }

  private async nonce(tag: 'latest' | 'pending'): Promise<number> {
    return Number(BigInt(await this.rpc<string>('eth_getTransactionCount', [this.o.sender.address, tag])));
  }

  /**
   * The nonce for a new transaction of `epoch`. The contract takes strictly increasing epochs, so a
   * post must not land while the previous journaled epoch can still land but is not on chain: that
   * epoch would be locked out for good. This happens after a reorg drops our mined posts of epochs
   * 5..9 and hands their nonces back: a post of 10 signed just then with the next free nonce would
   * land first. So:
   *  - the previous epoch holds a root on chain (anyone's), or a later one does: nothing to wait for;
   *  - it was ours (same sender): take a nonce after its nonce. The chain itself then mines this
   *    post only after that one, which the pipeline re-posts from the journal, byte for byte;
   *  - it was another sender's (a rotated key, another oracle): no nonce can order the two, so
   *    refuse with CHAIN_ROOT_VANISHED and let the caller post the earlier epoch first.
   */
  private async nonceFor(epoch: bigint): Promise<number> {
    const next = await this.nonce('pending');
    const prev = await this.o.journal.previous(epoch);
    if (prev === undefined) return next;
    const prevEpoch = BigInt(prev.epoch);
    const [posted, latest] = (await this.dist.getFunction('latestEpoch')()) as [boolean, bigint];
    if (posted && latest >= prevEpoch) return next;
    if (!same(prev.from, this.o.sender.address)) {
      throw new PulseError('CHAIN_ROOT_VANISHED', `epoch ${prev.epoch} was journaled by ${prev.from} and is not on chain; it must be posted before epoch ${epoch}`);
    }
    if (next > prev.nonce) return next; // its transaction is pending ahead of ours (or its nonce went elsewhere)
    this.log({ event: 'nonce-after-previous', epoch: epoch.toString(), previousEpoch: prev.epoch, nonce: prev.nonce + 1, nextFree: next });
    return prev.nonce + 1;
  }

  private async signTx(intent: PostIntent, previous: Transaction | undefined): Promise<string> {
    const iface = distributorInterface();
    const data = iface.encodeFunctionData('postRoot', [
      BigInt(intent.epoch), intent.root, BigInt(intent.cumulativeTotal), intent.inputsHash, intent.paramsHash, intent.dataUri, intent.signatures,
    ]);
    const req: TransactionRequest = { to: this.o.distributor, data, nonce: intent.nonce, chainId: this.chainId!, from: intent.from };
    if (previous !== undefined) {
      req.gasLimit = previous.gasLimit;
    } else {
      try {
        const est = BigInt(await this.rpc<string>('eth_estimateGas', [{ from: intent.from, to: this.o.distributor, data }]));
        req.gasLimit = (est * 12n) / 10n;
      } catch (e) {
        if (isTransient(e)) throw e;
        throw chainReverted(iface, e, `postRoot(epoch ${intent.epoch})`);
      }
    }
    const fee = await this.o.provider.getFeeData();
    const bump = (x: bigint) => (x * BigInt(100 + this.o.bumpPercent)) / 100n + 1n;
    if (fee.maxFeePerGas !== null && fee.maxPriorityFeePerGas !== null) {
      let maxFee = fee.maxFeePerGas;
      let tip = fee.maxPriorityFeePerGas;
      if (previous !== undefined) {
        // A replacement must raise both fee fields (geth: by ≥ 10 %); take the larger of the bumped
        // old fees and what the network asks for now.
        maxFee = [bump(previous.maxFeePerGas ?? 0n), maxFee].reduce((a, b) => (a > b ? a : b));
        tip = [bump(previous.maxPriorityFeePerGas ?? 0n), tip].reduce((a, b) => (a > b ? a : b));
      }
      req.type = 2;
      req.maxFeePerGas = maxFee;
      req.maxPriorityFeePerGas = tip > maxFee ? maxFee : tip;
    } else {
      let price = fee.gasPrice ?? 1n;
      if (previous !== undefined) price = [bump(previous.gasPrice ?? 0n), price].reduce((a, b) => (a > b ? a : b));
      req.type = 0;
      req.gasPrice = price;
    }
    return this.o.sender.signTransaction(req);
  }

  private async broadcast(raw: string): Promise<void> {
    try {
      await this.rpc('eth_sendRawTransaction', [raw]);
    } catch (e) {
      if (isTransient(e)) throw e;
      // Already in the pool, already mined, or replaced: the receipt check decides what happened.
      const msg = String((e as Error).message);
      if (/already known|known transaction|nonce too low|underpriced|already imported|AlreadyKnown/i.test(msg)) {
        this.log({ event: 'broadcast-ignored', tx: Transaction.from(raw).hash, why: msg.slice(0, 160) });
        return;
      }
      throw e;
    }
  }

  private async findReceipt(intent: PostIntent): Promise<{ hash: string; status: string } | undefined> {
    for (const raw of intent.rawTxs) {
      const hash = Transaction.from(raw).hash!;
      const r = await this.rpc<{ status: string } | null>('eth_getTransactionReceipt', [hash]);
      if (r !== null) return { hash, status: r.status };
    }
    return undefined;
  }

  private async afterReceipt(p: RootPayload, r: { hash: string; status: string }): Promise<Step> {
    if (r.status === '0x1') {
      const onChain = (await this.dist.getFunction('rootOf')(p.epoch)) as { vetoed: boolean };
      this.log({ event: 'posted', epoch: p.epoch.toString(), tx: r.hash });
      return { done: { epoch: p.epoch, status: 'posted', txHash: r.hash, vetoed: onChain.vetoed } };
    }
    // Reverted on chain (e.g. someone else posted first, or the cap changed): re-read the chain;
    // if the root is not there, replay the call to name the reason.
    const chain = await this.readChain(p);
    if (chain !== undefined) return { done: chain };
    const intent = (await this.o.journal.load(p.epoch))!;
    const iface = distributorInterface();
    try {
      await this.rpc('eth_call', [{ from: intent.from, to: this.o.distributor, data: iface.encodeFunctionData('postRoot', [p.epoch, p.root, p.cumulativeTotal, p.inputsHash, p.paramsHash, intent.dataUri, intent.signatures]) }, 'latest']);
    } catch (e) {
      throw chainReverted(iface, e, `postRoot(epoch ${p.epoch}) reverted in ${r.hash}`);
    }
    throw new PulseError('CHAIN_REVERTED', `postRoot(epoch ${p.epoch}) reverted in ${r.hash}; a replay now succeeds, so the next run posts again`);
  }

  private async waitMined(p: RootPayload, start: PostIntent, precondition: (() => Promise<void>) | undefined): Promise<Step> {
    let intent = start;
    let since = Date.now();
    let queuedSince: number | undefined;
    for (;;) {
      const r = await this.findReceipt(intent);
      if (r !== undefined) return this.afterReceipt(p, r);
      if ((await this.nonce('latest')) < intent.nonce) {
        // Queued behind an earlier nonce of ours (nonceFor): no fee makes it land before that one.
        // The caller's precondition names an earlier root that has to go back on chain first; the
        // fee clock starts once the gap is filled, and a gap nobody fills ends the wait.
        await precondition?.();
        queuedSince ??= Date.now();
        if (Date.now() - queuedSince > this.o.bumpAfterMs * (this.o.maxBumps + 1)) {
          throw new PulseError('CHAIN_NOT_MINED', `epoch ${p.epoch}: nonce ${intent.nonce} still waits behind an earlier nonce of ${intent.from}; the journal keeps it for the next run`);
        }
        since = Date.now();
        await sleep(this.o.pollMs);
        continue;
      }
      queuedSince = undefined;
      if (Date.now() - since >= this.o.bumpAfterMs) {
        if (intent.rawTxs.length > this.o.maxBumps) {
          throw new PulseError('CHAIN_NOT_MINED', `epoch ${p.epoch}: not mined after ${intent.rawTxs.length} fee levels; the journal keeps nonce ${intent.nonce} for the next run`);
        }
        const raw = await this.signTx(intent, Transaction.from(intent.rawTxs[intent.rawTxs.length - 1]!));
        intent = { ...intent, rawTxs: [...intent.rawTxs, raw] };
        await this.o.journal.save(intent);
        const t = Transaction.from(raw);
        this.log({ event: 'fee-bump', epoch: intent.epoch, nonce: intent.nonce, tx: t.hash, maxFeePerGas: String(t.maxFeePerGas ?? t.gasPrice) });
        await this.broadcast(raw);
        since = Date.now();
      }
      await sleep(this.o.pollMs);
    }
  }
}
