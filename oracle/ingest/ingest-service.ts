// Run N ingest workers on one durable consumer and stop them gracefully (issue 4 §Ingest), and one
// session-report worker on its own durable `<durable>-sessions` (docs/storage.md §Session reports).
import type { Bus } from '../../bus/bus.ts';
import type { Store } from '../store/store.ts';
import { ensureSetting } from '../store/settings.ts';
import { IngestWorker } from './ingest-worker.ts';
import type { IngestRules } from './classify.ts';
import type { IngestMetrics } from './ingest-metrics.ts';
import { SessionIngestWorker } from './session-ingest.ts';
import type { SessionIngestMetrics } from './session-metrics.ts';

export type IngestServiceOptions = {
  readonly store: Store;
  readonly bus: Bus;
  readonly rules: IngestRules;
  readonly durable: string;
  readonly workers: number;
  readonly batchSize?: number;
  readonly metrics?: IngestMetrics;
  readonly sessionMetrics?: SessionIngestMetrics;
  readonly log?: (event: Record<string, unknown>) => void;
};

export type IngestService = { stop(): Promise<void> };

export async function startIngest(opts: IngestServiceOptions): Promise<IngestService> {
  // Slots and networks are fixed per database (oracle/store/settings.ts).
  await ensureSetting(opts.store, 'slot_interval_ms', String(opts.rules.slotIntervalMs));
  await ensureSetting(opts.store, 'network_id', String(opts.rules.networkId));
  const workers: IngestWorker[] = [];
  for (let i = 0; i < opts.workers; i++) {
    const w = new IngestWorker({
      store: opts.store,
      consumer: opts.bus.consumer(opts.durable),
      rules: opts.rules,
      ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
      ...(opts.metrics !== undefined ? { metrics: opts.metrics } : {}),
      ...(opts.log !== undefined ? { log: opts.log } : {}),
    });
    w.start();
    workers.push(w);
  }
  // Session reports are a handful of messages a minute: one worker per process is plenty.
  const sessions = new SessionIngestWorker({
    store: opts.store,
    consumer: opts.bus.sessionConsumer(`${opts.durable}-sessions`),
    ...(opts.sessionMetrics !== undefined ? { metrics: opts.sessionMetrics } : {}),
    ...(opts.log !== undefined ? { log: opts.log } : {}),
  });
  sessions.start();
  return { stop: async () => void (await Promise.all([...workers.map((w) => w.stop()), sessions.stop()])) };
}
