// An ingest worker (issue 4 §Ingest): pull a batch from a durable bus consumer, run the stateless
// checks (classify), write accepted rows, rollups and rejections in one transaction, and only then
// ack the deliveries. Several workers may share one durable consumer (same name), in one process or
// many: the transaction locks device rows in a fixed order and the unique (device_id, seq) key makes
// redelivery idempotent, so there is no duplicate and no loss.
//
// Failure handling, so a bad message can never wedge the stream:
// - a rejected message is recorded with its code and acked; an undecodable one is terminated;
// - a transient database failure (connection, serialization, deadlock) naks the whole batch with a
//   backoff: the bus redelivers it;
// - any other database error splits the batch in halves until the one message that causes it is
//   isolated; that message is recorded as INGEST_STORE_ERROR and terminated.
import type { BusConsumer, BusDelivery, BusHeartbeat } from '../../bus/bus.ts';
import { ConsumerLoop } from './consumer-loop.ts';
import type { Store } from '../store/store.ts';
import { classify, classifyAsync, cleanDetail, type Candidate, type IngestRules, type Rejection } from './classify.ts';
import { writeBatch, type BatchOutcome } from './write-batch.ts';
import type { IngestMetrics } from './ingest-metrics.ts';
import { isPulseError } from '../../shared/errors.ts';

export type IngestWorkerOptions = {
  readonly store: Store;
  readonly consumer: BusConsumer;
  readonly rules: IngestRules;
  /** Deliveries per batch (one transaction). */
  readonly batchSize?: number;
  /** How long one fetch waits for the first message. */
  readonly fetchWaitMs?: number;
  readonly metrics?: IngestMetrics;
  /** Structured log sink; defaults to JSON lines on stderr. */
  readonly log?: (event: Record<string, unknown>) => void;
};

export type BatchStats = { readonly delivered: number; readonly accepted: number; readonly rejected: number };

export function isTransient(e: unknown): boolean {
  if (isPulseError(e, 'STORE_UNAVAILABLE')) return true;
  const code = (e as { code?: unknown } | null)?.code;
  // SQLSTATE classes 08 (connection), 40 (serialization failure, deadlock), 53 (resources),
  // 57 (operator intervention, e.g. shutdown), 55P03 (lock not available).
  if (typeof code === 'string' && /^(08|40|53|57)/.test(code)) return true;
  if (code === '55P03') return true;
  // Node socket errors (ECONNRESET, EPIPE, …) and node-postgres "Connection terminated" (no code).
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  return code === undefined && !(e instanceof TypeError) && !(e instanceof RangeError);
}

export class IngestWorker {
  private readonly log: (event: Record<string, unknown>) => void;
  private readonly loop: ConsumerLoop<BusHeartbeat>;

  constructor(private readonly opts: IngestWorkerOptions) {
    this.log = opts.log ?? ((event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component: 'ingest', ...event })}\n`));
    this.loop = new ConsumerLoop({
      consumer: opts.consumer, batchSize: opts.batchSize ?? 500, fetchWaitMs: opts.fetchWaitMs ?? 250, log: this.log,
      process: (deliveries) => this.processBatch(deliveries),
    });
  }

  start(): void {
    this.loop.start();
  }

  /** Graceful stop: finish (commit and ack) the batch in hand, then stop fetching. */
  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** Process one batch end to end (exposed for tests and the benchmark). */
  async processBatch(deliveries: readonly BusDelivery[]): Promise<BatchStats> {
    const started = performance.now();
    const candidates: Candidate[] = [];
    const candidateDeliveries: BusDelivery[] = [];
    const rejected: Rejection[] = [];
    const poison: BusDelivery[] = [];
    const settled: BusDelivery[] = [];
    // Stateless checks for the whole batch at once: signatures verify in parallel on the threadpool.
    const classified = await Promise.all(deliveries.map((d) => classifyAsync(d.message, this.opts.rules)));
    for (let i = 0; i < deliveries.length; i++) {
      const d = deliveries[i]!;
      const c = classified[i]!;
      if (c.kind === 'candidate') {
        candidates.push(c.candidate);
        candidateDeliveries.push(d);
      } else {
        rejected.push(c.rejection);
        (c.poison ? poison : settled).push(d);
      }
    }
    let out: BatchOutcome;
    try {
      out = await writeBatch(this.opts.store, candidates, rejected);
      this.loop.succeeded();
    } catch (e) {
      return this.handleFailure(deliveries, e);
    }
    // Ack only after COMMIT (bus/bus.ts): a crash before this line redelivers the batch. An ack that
    // fails now is harmless: the redelivered copy is recorded as HB_DUPLICATE.
    {
      const acks = await Promise.allSettled([...candidateDeliveries, ...settled].map((d) => d.ack()));
      const failedAcks = acks.filter((a) => a.status === 'rejected').length;
      if (failedAcks > 0) this.log({ level: 'warn', msg: 'acks failed after commit; the bus will redeliver them as duplicates', failed: failedAcks });
      for (const d of poison) d.term();
      const allRejections = [...rejected, ...out.verdicts.filter((v): v is Rejection => v !== undefined)];
      const m = this.opts.metrics;
      if (m !== undefined) {
        m.batches.inc({ outcome: 'committed' });
        m.rows.inc(out.inserted);
        for (const r of allRejections) m.rejections.inc({ reason: r.reason });
        const oldest = Math.min(...deliveries.map((d) => (Number.isFinite(d.message.receivedAt) ? d.message.receivedAt : Date.now())));
        m.lag.set(Math.max(0, (Date.now() - oldest) / 1000));
        m.batchSeconds.observe((performance.now() - started) / 1000);
      }
      return { delivered: deliveries.length, accepted: out.inserted, rejected: allRejections.length };
    }
  }

  private async handleFailure(deliveries: readonly BusDelivery[], e: unknown): Promise<BatchStats> {
    if (isTransient(e) || deliveries.length === 0) {
      const delay = this.loop.backoff();
      this.log({ level: 'warn', msg: 'batch failed, redelivering', error: (e as Error).message, size: deliveries.length, retryMs: delay });
      this.opts.metrics?.batches.inc({ outcome: 'retried' });
      for (const d of deliveries) d.nak(delay);
      return { delivered: deliveries.length, accepted: 0, rejected: 0 };
    }
    if (deliveries.length > 1) {
      // A data error: bisect to find the message that causes it; the others still get stored.
      this.opts.metrics?.batches.inc({ outcome: 'split' });
      const half = Math.ceil(deliveries.length / 2);
      const a = await this.processBatch(deliveries.slice(0, half));
      const b = await this.processBatch(deliveries.slice(half));
      return { delivered: a.delivered + b.delivered, accepted: a.accepted + b.accepted, rejected: a.rejected + b.rejected };
    }
    return this.recordStoreError(deliveries[0]!, e);
  }

  private async recordStoreError(d: BusDelivery, e: unknown): Promise<BatchStats> {
    const c = classify(d.message, this.opts.rules);
    const base = c.kind === 'reject' ? c.rejection : { deviceId: c.candidate.heartbeat.deviceId, seq: c.candidate.heartbeat.seq, raw: c.candidate.heartbeat.raw, receivedAt: c.candidate.receivedAt };
    const r: Rejection = { ...base, reason: 'INGEST_STORE_ERROR', detail: cleanDetail(`storing failed: ${(e as Error).message}`) };
    this.log({ level: 'error', msg: 'message failed to store on its own; recorded and terminated', error: (e as Error).message });
    try {
      await writeBatch(this.opts.store, [], [r]);
      d.term();
      this.opts.metrics?.rejections.inc({ reason: r.reason });
      return { delivered: 1, accepted: 0, rejected: 1 };
    } catch (e2) {
      d.nak(1000);
      this.log({ level: 'error', msg: 'could not record the store error either; redelivering', error: (e2 as Error).message });
      return { delivered: 1, accepted: 0, rejected: 0 };
    }
  }
}
