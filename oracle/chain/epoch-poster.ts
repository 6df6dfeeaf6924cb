// The `post` dependency of the epoch pipeline (oracle/epochs/epoch-pipeline.ts): one closed epoch in,
// the transaction hash out, through the idempotent RootPoster. The data URI names where the epoch's
// bundle is published (docs/contracts.md §Posting); `{epoch}` in the template is replaced.
import { Wallet, type JsonRpcProvider } from 'ethers';
import type { PostJournal } from './post-journal.ts';
import { RootPoster, type RootPosterOptions } from './root-poster.ts';

export type EpochPosterOptions = {
  readonly provider: JsonRpcProvider;
  readonly distributor: string;
  /** Oracle key: signs the EIP-712 message and pays for the transaction. */
  readonly key: string;
  readonly journal: PostJournal;
  /** e.g. "https://bundles.example.org/epoch-{epoch}.json"; empty by default. */
  readonly dataUriTemplate?: string;
  readonly tuning?: Pick<RootPosterOptions, 'bumpAfterMs' | 'maxBumps' | 'bumpPercent' | 'pollMs' | 'rpcRetryBudgetMs'>;
  readonly log?: (event: Record<string, unknown>) => void;
};

export type EpochToPost = {
  readonly epoch: number;
  readonly root: string;
  readonly cumulativeTotal: bigint;
  readonly inputsHash: string;
  readonly paramsHash: string;
};

export function epochPoster(o: EpochPosterOptions): (e: EpochToPost) => Promise<{ readonly txHash: string }> {
  const wallet = new Wallet(o.key, o.provider);
  const poster = new RootPoster({
    provider: o.provider,
    distributor: o.distributor,
    sender: wallet,
    oracleSigners: [wallet],
    journal: o.journal,
    ...o.tuning,
    ...(o.log !== undefined ? { log: o.log } : {}),
  });
  return async (e) => {
    const out = await poster.post({
      epoch: BigInt(e.epoch),
      root: e.root,
      cumulativeTotal: e.cumulativeTotal,
      inputsHash: e.inputsHash,
      paramsHash: e.paramsHash,
      dataUri: (o.dataUriTemplate ?? '').replaceAll('{epoch}', String(e.epoch)),
    });
    // An already-posted root whose log the node no longer serves still counts as posted.
    return { txHash: out.txHash ?? '' };
  };
}
