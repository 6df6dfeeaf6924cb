// Prometheus metrics of session-report ingest (docs/storage.md §Session reports), on the oracle's own
// Registry (never the global one; CONTRIBUTING.md §Rules).
import { Counter, type Registry } from 'prom-client';

export type SessionIngestMetrics = {
  /** Report parts by outcome: counted, duplicate, malformed, deferred, store_error. */
  readonly reports: Counter<'outcome'>;
  /** Reported connected time by outcome: counted, epoch_closed, unknown_device, before_genesis, capped. */
  readonly connectedMs: Counter<'outcome'>;
};

export function createSessionIngestMetrics(registry: Registry): SessionIngestMetrics {
  return {
    reports: new Counter({
      name: 'pulse_ingest_session_reports_total',
      help: 'Broker session report parts consumed, by outcome: counted, duplicate (already counted), malformed (SESSION_BAD_REPORT, terminated), deferred (epoch layout not recorded yet, retried later), store_error (terminated).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    connectedMs: new Counter({
      name: 'pulse_ingest_session_connected_ms_total',
      help: 'Reported connected time, ms, by outcome: counted into an open epoch, or ignored: epoch_closed, unknown_device, before_genesis, capped (above the epoch length).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
