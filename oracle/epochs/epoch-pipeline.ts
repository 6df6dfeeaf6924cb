// The epoch pipeline (issue 5 §1, §6; issue 6 §1): close → bundle → post, three separate idempotent
// steps driven by the epochs row's status, so a crash between any two resumes where it stopped:
//   closed  → (bundle: write the epoch bundle, store its hash)            → bundled
//   bundled → (post: postRoot on chain with inputsHash = bundle hash)     → posted
// A failed post keeps status 'failed' with the error and is retried on the next tick; epochs are
// posted strictly in order (the contract requires increasing epochs), so a failure holds back later
// epochs instead of skipping them. An epoch with no root (nobody has ever earned) is 'skipped'.
import type { Store } from '../store/store.ts';
import { closeDueEpochs, type CloseOutcome } from './close-epoch.ts';
import { PeriodicTask } from '../periodic-task.ts';
import { PulseError, isPulseError } from '../../shared/errors.ts';
import type { EpochTiming } from '../../shared/epoch-timing.ts';
import type { RewardParams } from '../../shared/rewards/reward-params.ts';

export type EpochToPost = {
  readonly epoch: number;
  readonly root: string;
  readonly cumulativeTotal: bigint;
  readonly inputsHash: string;
  readonly paramsHash: string;
  /**
   * Throws PulseError CHAIN_ROOT_VANISHED when an earlier posted root is no longer on chain; the
   * poster calls it before every attempt, so a reorg during its retries cannot let this later epoch
   * land first and lock the earlier one out (the contract takes increasing epochs only).
   */
  readonly predecessorsOnChain: () => Promise<void>;
};

export type EpochPipelineDeps = {
  readonly store: Store;
  readonly timing: EpochTiming;
  readonly params: RewardParams;
  /** Writes the bundle and records bundle_hash/status 'bundled' (oracle/bundle). */
  readonly bundle?: (epoch: number) => Promise<unknown>;
  /** Posts the root; resolves with the transaction hash once it is mined (oracle/chain). */
  readonly post?: (e: EpochToPost) => Promise<{ readonly txHash: string | undefined }>;
  /** Whether the chain still holds `root` for `epoch`; a posted root that vanished (a reorg) is posted again. */
  readonly onChain?: (epoch: number, root: string) => Promise<boolean>;
  readonly now?: () => number;
  readonly log?: (event: Record<string, unknown>) => void;
  readonly onClosed?: (o: CloseOutcome) => void;
  readonly onPostFailed?: (epoch: number, error: string) => void;
  readonly onPosted?: (epoch: number, txHash: string | undefined) => void;
};

export type TickReport = { readonly closed: number; readonly bundled: number; readonly posted: number; readonly failed: number };

export class EpochPipeline {
  private task: PeriodicTask | undefined;
  private running: Promise<TickReport> | undefined;
  private stopped = false;

  constructor(private readonly deps: EpochPipelineDeps) {}

  private log(event: Record<string, unknown>): void {
    this.deps.log?.({ component: 'epochs', ...event });
  }

  /** One pass of all three steps. Never runs twice at once. */
  tick(): Promise<TickReport> {
    if (this.running !== undefined) return this.running;
    this.running = this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * A reorg can drop a mined postRoot. Re-check the newest posted roots; one that is gone goes back
   * to 'bundled' and is posted again (the poster reads the chain first, so this is safe). Returns how
   * many vanished.
   */
  private async recheckPosted(): Promise<number> {
    if (this.deps.onChain === undefined) return 0;
    const posted = await this.deps.store.query<{ epoch: string; root: string }>("SELECT epoch::text, root FROM epochs WHERE status = 'posted' ORDER BY epoch DESC LIMIT 16");
    let vanished = 0;
    for (const r of posted.reverse()) {
      if (await this.deps.onChain(Number(r.epoch), r.root)) continue;
      await this.deps.store.query("UPDATE epochs SET status = 'bundled', tx_hash = NULL, posted_at = NULL, post_error = 'root no longer on chain (reorg): posting again' WHERE epoch = $1 AND status = 'posted'", [r.epoch]);
      this.log({ event: 'epoch-root-vanished', epoch: Number(r.epoch) });
      vanished++;
    }
    return vanished;
  }

  private async pass(): Promise<TickReport> {
    const { store } = this.deps;
    const now = (this.deps.now ?? Date.now)();
    const closed = await closeDueEpochs(store, this.deps.timing, this.deps.params, now, (o) => {
      this.log({ event: 'epoch-closed', ...o, allocated: o.kind === 'closed' ? String(o.allocated) : undefined, cumulativeTotal: o.kind === 'closed' ? String(o.cumulativeTotal) : undefined });
      this.deps.onClosed?.(o);
    });
    let bundled = 0;
    let posted = 0;
    let failed = 0;
    if (this.deps.bundle !== undefined) {
      for (const r of await store.query<{ epoch: string }>("SELECT epoch::text FROM epochs WHERE status = 'closed' ORDER BY epoch")) {
        if (this.stopped) break;
        await this.deps.bundle(Number(r.epoch));
        bundled++;
        this.log({ event: 'epoch-bundled', epoch: Number(r.epoch) });
      }
    }
    await this.recheckPosted();
    if (this.deps.post !== undefined) {
      const rows = await store.query<{ epoch: string; root: string | null; cumulative_total: string; bundle_hash: string; params_hash: string }>(
        "SELECT epoch::text, root, cumulative_total::text, bundle_hash, params_hash FROM epochs WHERE status IN ('bundled', 'failed') ORDER BY epoch",
      );
      for (const r of rows) {
        if (this.stopped) break;
        const epoch = Number(r.epoch);
        // Never post past a root that vanished (a reorg between passes): the contract takes epochs in
        // increasing order only, so a later root would lock the earlier epoch out for good.
        if ((await this.recheckPosted()) > 0) break;
        if (r.root === null) {
          await store.query("UPDATE epochs SET status = 'skipped' WHERE epoch = $1", [r.epoch]);
          this.log({ event: 'epoch-skipped', epoch, why: 'no owner has earned anything yet: there is no tree to post' });
          continue;
        }
        try {
          const predecessorsOnChain = async () => {
            if ((await this.recheckPosted()) > 0) throw new PulseError('CHAIN_ROOT_VANISHED', `an epoch before ${epoch} lost its root on chain; posting it again first`);
          };
          const { txHash } = await this.deps.post({ epoch, root: r.root, cumulativeTotal: BigInt(r.cumulative_total), inputsHash: r.bundle_hash, paramsHash: r.params_hash, predecessorsOnChain });
          await store.query("UPDATE epochs SET status = 'posted', tx_hash = $2, posted_at = now(), post_error = NULL WHERE epoch = $1", [r.epoch, txHash ?? null]);
          posted++;
          this.log({ event: 'epoch-posted', epoch, txHash });
          this.deps.onPosted?.(epoch, txHash);
        } catch (e) {
          const message = (e as Error).message.slice(0, 1000);
          if (isPulseError(e, 'CHAIN_ROOT_VANISHED')) break; // the next pass posts the vanished epoch first
          if (isPulseError(e, 'CHAIN_EPOCH_PASSED')) {
            // A later epoch's root is on chain (e.g. after a reorg dropped this one): the contract only
            // takes increasing epochs, and the later cumulative root already pays this epoch's rewards.
            await store.query("UPDATE epochs SET status = 'skipped', post_error = $2 WHERE epoch = $1", [r.epoch, `superseded: ${message}`]);
            this.log({ event: 'epoch-superseded', epoch, why: message });
            continue;
          }
          await store.query("UPDATE epochs SET status = 'failed', post_error = $2 WHERE epoch = $1", [r.epoch, message]);
          failed++;
          this.log({ event: 'epoch-post-failed', epoch, error: message });
          this.deps.onPostFailed?.(epoch, message);
          break; // later epochs wait: roots go on chain in order
        }
      }
    }
    return { closed: closed.length, bundled, posted, failed };
  }

  /** Tick every `intervalMs` until stop(); errors are logged and retried on the next tick. */
  start(intervalMs: number): void {
    this.task ??= new PeriodicTask(() => this.tick(), intervalMs, (e) => this.log({ event: 'epoch-pipeline-error', error: (e as Error).message }));
    this.task.start();
  }

  /** Stop ticking and wait for a pass in progress to finish (graceful shutdown). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.task?.stop();
  }
}
