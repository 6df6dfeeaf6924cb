// Where the root poster keeps its intent between signing and confirmation (docs/contracts.md
// §Posting). The poster writes the signed raw transaction here BEFORE broadcasting it, so a crash
// at any point leaves either nothing sent or a transaction the next run can find, rebroadcast
// byte for byte and wait for: never a second, different transaction for one epoch from a fresh
// nonce while the first may still land. The caller provides the storage (the oracle keeps it in
// its database; `FilePostJournal` is for the CLI and single-host setups).
import { mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type PostIntent = {
  /** Decimal epoch. */
  readonly epoch: string;
  readonly root: string;
  /** Decimal. */
  readonly cumulativeTotal: string;
  readonly inputsHash: string;
  readonly paramsHash: string;
  readonly dataUri: string;
  /** EIP-712 signatures, ascending by signer. */
  readonly signatures: readonly string[];
  /** Transaction sender and the nonce every attempt of this intent uses. */
  readonly from: string;
  readonly nonce: number;
  /** Signed raw transactions for that nonce, oldest first; each fee bump appends one. */
  readonly rawTxs: readonly string[];
};

export interface PostJournal {
  load(epoch: bigint): Promise<PostIntent | undefined>;
  /**
   * The intent of the highest epoch below `epoch`, if any: the poster orders its nonces after it so
   * that the chain itself keeps roots in epoch order (root-poster.ts, `nonceFor`).
   */
  previous(epoch: bigint): Promise<PostIntent | undefined>;
  /** Must be durable when it resolves: the poster broadcasts right after. */
  save(intent: PostIntent): Promise<void>;
}

function latestBelow(intents: Iterable<PostIntent>, epoch: bigint): PostIntent | undefined {
  let best: PostIntent | undefined;
  for (const i of intents) if (BigInt(i.epoch) < epoch && (best === undefined || BigInt(i.epoch) > BigInt(best.epoch))) best = i;
  return best;
}

/** In memory: for tests and for callers that persist the intent themselves through `save`. */
export class MemoryPostJournal implements PostJournal {
  readonly intents = new Map<string, PostIntent>();
  async load(epoch: bigint): Promise<PostIntent | undefined> {
    return this.intents.get(epoch.toString());
  }
  async previous(epoch: bigint): Promise<PostIntent | undefined> {
    return latestBelow(this.intents.values(), epoch);
  }
  async save(intent: PostIntent): Promise<void> {
    this.intents.set(intent.epoch, intent);
  }
}

/** One JSON file per epoch in a directory, replaced atomically (write, then rename). */
export class FilePostJournal implements PostJournal {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }
  private path(epoch: string): string {
    return join(this.dir, `post-${epoch}.json`);
  }
  async load(epoch: bigint): Promise<PostIntent | undefined> {
    try {
      return JSON.parse(readFileSync(this.path(epoch.toString()), 'utf8')) as PostIntent;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
  async previous(epoch: bigint): Promise<PostIntent | undefined> {
    const below = readdirSync(this.dir)
      .map((f) => /^post-(\d+)\.json$/.exec(f)?.[1])
      .filter((e): e is string => e !== undefined)
      .map(BigInt)
      .filter((e) => e < epoch);
    if (below.length === 0) return undefined;
    return this.load(below.reduce((a, b) => (a > b ? a : b)));
  }
  async save(intent: PostIntent): Promise<void> {
    const p = this.path(intent.epoch);
    writeFileSync(`${p}.tmp`, JSON.stringify(intent, null, 2) + '\n', { flush: true });
    renameSync(`${p}.tmp`, p);
  }
}
