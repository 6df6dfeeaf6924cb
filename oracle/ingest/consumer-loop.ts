// The fetch loop shared by the oracle's bus consumers (heartbeat ingest, oracle/ingest/ingest-worker.ts,
// and session-report ingest, oracle/ingest/session-ingest.ts): fetch a batch, hand it over, repeat;
// back off exponentially while the bus or the database fails; stop gracefully after the batch in
// hand (docs/storage.md §Ingest). Each worker decides what a batch means; this only keeps it going.
import type { BusConsumer, BusDelivery } from '../../bus/bus.ts';

export type ConsumerLoopOptions<M> = {
  readonly consumer: BusConsumer<M>;
  readonly batchSize: number;
  readonly fetchWaitMs: number;
  /** Process one batch: commit, then ack/nak/term every delivery. */
  readonly process: (deliveries: BusDelivery<M>[]) => Promise<unknown>;
  readonly log: (event: Record<string, unknown>) => void;
};

/** 100 ms doubling to at most 5 s. */
const MAX_BACKOFF_MS = 5_000;

export class ConsumerLoop<M> {
  private running = false;
  private loop: Promise<void> | undefined;
  private failures = 0;

  constructor(private readonly o: ConsumerLoopOptions<M>) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Graceful stop: finish (commit and ack) the batch in hand, then stop fetching. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.o.consumer.close();
  }

  /** The next retry delay after a failure; grows until `succeeded()`. */
  backoff(): number {
    return Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(this.failures++, 6));
  }

  succeeded(): void {
    this.failures = 0;
  }

  private async run(): Promise<void> {
    while (this.running) {
      let deliveries: BusDelivery<M>[];
      try {
        deliveries = await this.o.consumer.fetch(this.o.batchSize, this.o.fetchWaitMs);
      } catch (e) {
        this.o.log({ level: 'error', msg: 'bus fetch failed', error: (e as Error).message });
        await sleep(this.backoff());
        continue;
      }
      if (deliveries.length === 0) continue;
      try {
        await this.o.process(deliveries);
      } catch (e) {
        // Workers handle database errors themselves; anything else is a bug, and the loop must
        // survive it: the deliveries are redelivered after the ack wait.
        this.o.log({ level: 'error', msg: 'batch failed unexpectedly', error: (e as Error).message });
        await sleep(this.backoff());
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
