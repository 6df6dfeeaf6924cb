// `pulse oracle`: migrate, then run ingest workers on the bus (NATS JetStream, or in-memory) and the
// HTTP API (/health, /metrics, registry). SIGINT/SIGTERM: stop fetching, let the batch in hand commit
// and ack (bounded by --shutdown-grace), close the API, the bus and the database, exit 0.
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { usageErrors } from './hb.ts';
import type { KeySpec } from '../../shared/config-schema.ts';
import type { Bus } from '../../bus/bus.ts';
import { oracleConfigSection, loadOracleConfig, type OracleConfig } from '../../oracle/config.ts';

export const summary = 'Oracle: migrations, ingest workers (bus → database), registry API, /health and /metrics';

function help(): string {
  const lines = ['Usage: pulse oracle [options]', '', 'Options (each also an environment variable):'];
  for (const spec of Object.values(oracleConfigSection.schema) as KeySpec<unknown>[]) {
    lines.push(`  --${spec.flag.padEnd(16)} ${spec.doc} [${spec.env}; default ${spec.defaultDoc ?? String(spec.default)}]`);
  }
  lines.push('', 'Logs are JSON lines on stderr. See docs/storage.md.');
  return lines.join('\n');
}

function logger(component: string): (event: Record<string, unknown>) => void {
  return (event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component, level: 'info', ...event })}\n`);
}

async function openBus(cfg: OracleConfig, log: (e: Record<string, unknown>) => void): Promise<Bus> {
  if (cfg.bus === 'memory') {
    log({ level: 'warn', msg: 'in-memory bus: only a broker in this same process can feed it' });
    const { MemoryBus } = await import('../../bus/memory.ts');
    return new MemoryBus({ ackWaitMs: cfg.ackWaitMs });
  }
  const { JetStreamBus } = await import('../../bus/jetstream.ts');
  return JetStreamBus.connect({
    servers: cfg.natsUrl,
    stream: cfg.streamName,
    subjectPrefix: cfg.subjectPrefix,
    ackWaitMs: cfg.ackWaitMs,
    name: 'pulse-oracle',
    onStatus: (s) => log({ msg: 'nats status', type: s.type }),
  });
}

export async function run(argv: string[]): Promise<number> {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const spec of Object.values(oracleConfigSection.schema)) options[spec.flag] = { type: 'string' };
  const { values } = usageErrors(() => parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  if (values['help'] === true) {
    console.log(help());
    return 0;
  }
  const flags = Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
  const cfg = loadOracleConfig(flags);
  const log = logger('oracle');

  const { openStore } = await import('../../oracle/store/open-store.ts');
  const { migrate } = await import('../../oracle/store/migrate.ts');
  const { Registry } = await import('../../oracle/registry/registry.ts');
  const { createOracleHttpServer } = await import('../../oracle/http/server.ts');
  const { startIngest } = await import('../../oracle/ingest/ingest-service.ts');
  const { createIngestMetrics } = await import('../../oracle/ingest/ingest-metrics.ts');
  const { nativeVerifier } = await import('../../shared/crypto/native.ts');
  const { Registry: PromRegistry } = await import('prom-client');

  if (cfg.databaseUrl === '' && cfg.dataDir !== 'memory://') mkdirSync(cfg.dataDir, { recursive: true });
  const store = await openStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, maxConnections: cfg.dbPool });
  const closers: (() => Promise<void>)[] = [() => store.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch((e: unknown) => log({ level: 'warn', msg: 'close failed', error: (e as Error).message }));
  };
  try {
    const m = await migrate(store);
    log({ msg: 'migrations', store: store.kind, applied: m.applied, alreadyApplied: m.alreadyApplied });

    const metrics = new PromRegistry();
    const registry = new Registry({ store, networkId: cfg.networkId });
    const http = createOracleHttpServer({ store, registry, operatorToken: cfg.operatorToken, metrics, log: logger('http') });
    const port = await http.listen(cfg.httpPort, cfg.httpHost);
    closers.push(() => http.close());
    log({ msg: 'listening', host: cfg.httpHost, port, operatorWrites: cfg.operatorToken !== '' });

    let stopIngest: (() => Promise<void>) | undefined;
    if (cfg.ingestWorkers > 0) {
      const bus = await openBus(cfg, log);
      closers.push(() => bus.close());
      const ingest = await startIngest({
        store,
        bus,
        rules: { networkId: cfg.networkId, skewMs: cfg.skewMs, slotIntervalMs: cfg.slotIntervalMs, maxPayloadBytes: cfg.maxPayload, verifier: nativeVerifier },
        durable: cfg.durable,
        workers: cfg.ingestWorkers,
        batchSize: cfg.batchSize,
        metrics: createIngestMetrics(metrics),
        log: logger('ingest'),
      });
      stopIngest = () => ingest.stop();
      log({ msg: 'ingest started', bus: bus.kind, workers: cfg.ingestWorkers, durable: cfg.durable });
    }

    const signal = await new Promise<string>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    log({ msg: 'shutting down', signal });
    if (stopIngest !== undefined) {
      // Let the batch in hand commit and ack; unacked deliveries are redelivered after the ack wait.
      const grace = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), cfg.shutdownGraceMs).unref());
      if ((await Promise.race([stopIngest().then(() => 'done' as const), grace])) === 'timeout') log({ level: 'warn', msg: 'ingest did not stop within the grace period' });
    }
    await closeAll();
    log({ msg: 'stopped' });
    return 0;
  } catch (e) {
    await closeAll();
    throw e;
  }
}
