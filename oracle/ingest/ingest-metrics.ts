// Prometheus metrics for ingest, registered on the oracle's own Registry (never the global one;
// CONTRIBUTING.md §Rules).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type IngestMetrics = {
  readonly batches: Counter<'outcome'>;
  readonly rows: Counter;
  readonly rejections: Counter<'reason'>;
  readonly lag: Gauge;
  readonly batchSeconds: Histogram;
};

export function createIngestMetrics(registry: Registry): IngestMetrics {
  return {
    batches: new Counter({ name: 'pulse_ingest_batches_total', help: 'Ingest batches by outcome (committed, retried, split).', labelNames: ['outcome'], registers: [registry] }),
    rows: new Counter({ name: 'pulse_ingest_rows_total', help: 'Heartbeats stored (accepted and committed).', registers: [registry] }),
    rejections: new Counter({ name: 'pulse_ingest_rejections_total', help: 'Bus messages rejected, by reason code (docs/errors.md).', labelNames: ['reason'], registers: [registry] }),
    lag: new Gauge({ name: 'pulse_ingest_lag_seconds', help: 'Commit time minus broker receive time of the oldest message in the last committed batch.', registers: [registry] }),
    batchSeconds: new Histogram({
      name: 'pulse_ingest_batch_seconds',
      help: 'Time to verify and commit one batch.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}
