// `pulse oracle` and `pulse migrate` configuration (CONTRIBUTING.md §Config): every key has a flag,
// an environment variable, a default and a doc line; docs/configuration.md is generated from it.
// Keys shared with the broker (network, skew, bus, NATS) use the same environment variables, so one
// environment file configures both.
import { defineConfig, loadConfig, parse, type ConfigOf } from '../shared/config-schema.ts';
import { DEFAULT_SKEW_MS, DEFAULT_SLOT_INTERVAL_MS } from '../shared/protocol/constants.ts';

export const oracleConfigSection = defineConfig('Oracle (`pulse oracle`, `pulse migrate`)', {
  databaseUrl: { flag: 'database-url', env: 'DATABASE_URL', default: '', doc: 'PostgreSQL/TimescaleDB URL. Empty: embedded PGlite in --data-dir.', parse: parse.string, defaultDoc: '(none: embedded PGlite)' },
  dataDir: { flag: 'data-dir', env: 'PULSE_DATA_DIR', default: 'data/pglite', doc: 'PGlite data directory when DATABASE_URL is empty; `memory://` keeps the database in memory.', parse: parse.string },
  dbPool: { flag: 'db-pool', env: 'PULSE_DB_POOL', default: 10, doc: 'PostgreSQL connections the oracle may open.', parse: parse.int(1, 200) },
  networkId: { flag: 'network-id', env: 'PULSE_NETWORK_ID', default: 1, doc: 'Network id served; heartbeats and identity messages for another network are rejected.', parse: parse.int(0, 0xffffffff) },
  skewMs: { flag: 'skew', env: 'PULSE_SKEW', default: DEFAULT_SKEW_MS, doc: 'Allowed distance between a heartbeat timestamp and its broker receive time (HB_CLOCK_SKEW beyond).', parse: parse.durationMs, defaultDoc: '30s' },
  slotIntervalMs: { flag: 'slot-interval', env: 'PULSE_SLOT_INTERVAL', default: DEFAULT_SLOT_INTERVAL_MS, doc: 'Slot length: slot = floor(timestamp / interval). Fixed when the database is created (STORE_SETTINGS_MISMATCH if changed).', parse: parse.durationMs, defaultDoc: '60s' },
  maxPayload: { flag: 'max-payload', env: 'PULSE_MAX_PAYLOAD', default: 1024, doc: 'Largest heartbeat payload ingest accepts (HB_OVERSIZED above it).', parse: parse.int(128, 1 << 20) },
  bus: { flag: 'bus', env: 'PULSE_BUS', default: 'jetstream' as 'jetstream' | 'memory', doc: '`jetstream` (NATS, production) or `memory` (in-process; only useful when the broker runs in the same process).', parse: (raw: string) => {
    if (raw !== 'jetstream' && raw !== 'memory') throw new Error('expected jetstream or memory');
    return raw;
  } },
  natsUrl: { flag: 'nats-url', env: 'NATS_URL', default: 'nats://127.0.0.1:4222', doc: 'NATS server(s), comma separated.', parse: parse.string },
  streamName: { flag: 'stream', env: 'PULSE_STREAM', default: 'PULSE_HEARTBEATS', doc: 'JetStream stream holding accepted heartbeats.', parse: parse.string },
  subjectPrefix: { flag: 'subject-prefix', env: 'PULSE_SUBJECT_PREFIX', default: 'pulse', doc: 'Subjects are `<prefix>.hb.<deviceId>`.', parse: parse.string },
  durable: { flag: 'durable', env: 'PULSE_INGEST_DURABLE', default: 'pulse-ingest', doc: 'Durable consumer name; every oracle process with the same name shares the work.', parse: parse.string },
  ingestWorkers: { flag: 'ingest-workers', env: 'PULSE_INGEST_WORKERS', default: 2, doc: 'Concurrent ingest workers in this process (0 runs the API only).', parse: parse.int(0, 64) },
  batchSize: { flag: 'batch-size', env: 'PULSE_INGEST_BATCH', default: 500, doc: 'Bus messages per ingest transaction.', parse: parse.int(1, 10_000) },
  ackWaitMs: { flag: 'ack-wait', env: 'PULSE_INGEST_ACK_WAIT', default: 30_000, doc: 'A delivery not acked within this (a crashed worker) is redelivered. Applies when the durable is created.', parse: parse.durationMs, defaultDoc: '30s' },
  httpHost: { flag: 'http-host', env: 'PULSE_HTTP_HOST', default: '127.0.0.1', doc: 'Address of the HTTP API (/health, /metrics, /api).', parse: parse.string },
  httpPort: { flag: 'http-port', env: 'PULSE_HTTP_PORT', default: 8080, doc: 'Port of the HTTP API (0 picks a free port).', parse: parse.port },
  operatorToken: { flag: 'operator-token', env: 'PULSE_OPERATOR_TOKEN', default: '', doc: 'Bearer token for operator API writes (devices, makers, revocation). Empty disables them.', parse: parse.string, defaultDoc: '(none: operator writes disabled)' },
  shutdownGraceMs: { flag: 'shutdown-grace', env: 'PULSE_SHUTDOWN_GRACE', default: 10_000, doc: 'On SIGTERM/SIGINT, how long the batch in hand may take to commit before exiting.', parse: parse.durationMs, defaultDoc: '10s' },
});

export type OracleConfig = ConfigOf<typeof oracleConfigSection.schema>;

/** Resolve the oracle config: flag beats environment beats default. */
export function loadOracleConfig(flags: Readonly<Record<string, string | undefined>> = {}, env: Readonly<Record<string, string | undefined>> = process.env): OracleConfig {
  return loadConfig(oracleConfigSection, flags, env);
}
