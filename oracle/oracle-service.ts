// The oracle as one composable service (issue 8 §3: production mode is the same code with real
// services). `pulse oracle` runs it against PostgreSQL/TimescaleDB, NATS JetStream and an EVM RPC;
// `pulse dev` runs it in-process against PGlite, the in-memory bus and a local anvil. It wires:
// store + migrations, registry, HTTP API (/health, /metrics, registry, operator API, dashboard,
// epochs, bundles, proofs), ingest workers, and the epoch pipeline (close → bundle → post).
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Registry as PromRegistry, Counter } from 'prom-client';
import { Contract, JsonRpcProvider, Wallet } from 'ethers';
import type { Bus } from '../bus/bus.ts';
import type { OracleConfig } from './config.ts';
import type { OperatorConfig } from './api/operator-surface.ts';
import { startOperatorSurface, type OperatorSurface } from './api/operator-surface.ts';
import { deviceStatusHandler } from './api/operator-api.ts';
import { timingOf, rewardParamsOf, type EpochConfig } from './epochs/epoch-config.ts';
import { ensureCursor } from './epochs/epoch-stats.ts';
import { openStore } from './store/open-store.ts';
import { migrate } from './store/migrate.ts';
import { ensureSetting } from './store/settings.ts';
import type { Store } from './store/store.ts';
import { Registry } from './registry/registry.ts';
import { createOracleHttpServer, type OracleHttpServer } from './http/server.ts';
import { errorResponse, type ApiRequest, type ApiResponse } from './http/router.ts';
import { startIngest, type IngestService } from './ingest/ingest-service.ts';
import { createIngestMetrics } from './ingest/ingest-metrics.ts';
import { createSessionIngestMetrics } from './ingest/session-metrics.ts';
import { addEpochRoutes } from './epochs/epoch-routes.ts';
import { EpochPipeline } from './epochs/epoch-pipeline.ts';
import { StorePostJournal } from './epochs/store-post-journal.ts';
import { buildEpochBundle } from './bundle/build-bundle.ts';
import { createEpochApi } from './claims/epoch-routes.ts';
import { RootPoster } from './chain/root-poster.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import { PulseError } from '../shared/errors.ts';
import type { EpochTiming } from '../shared/epoch-timing.ts';

export type Log = (event: Record<string, unknown>) => void;

export type OracleServiceOptions = {
  readonly oracle: OracleConfig;
  readonly operator: OperatorConfig;
  readonly epochs: EpochConfig;
  /** The bus to consume; when omitted one is opened from `oracle.bus` (JetStream or memory). */
  readonly bus?: Bus;
  readonly logFor: (component: string) => Log;
  readonly now?: () => number;
  /** Runs after migrations and before the epoch pipeline starts (dev: re-post after a chain reset). */
  readonly beforePipeline?: (store: Store) => Promise<void>;
};

export type OracleService = {
  readonly store: Store;
  readonly registry: Registry;
  readonly http: OracleHttpServer;
  readonly port: number;
  readonly timing: EpochTiming;
  readonly pipeline: EpochPipeline;
  readonly surface: OperatorSurface;
  stop(): Promise<void>;
};

async function openBus(cfg: OracleConfig, log: Log): Promise<Bus> {
  if (cfg.bus === 'memory') {
    const { MemoryBus } = await import('../bus/memory.ts');
    return new MemoryBus({ ackWaitMs: cfg.ackWaitMs });
  }
  const { JetStreamBus } = await import('../bus/jetstream.ts');
  return JetStreamBus.connect({
    servers: cfg.natsUrl,
    stream: cfg.streamName,
    subjectPrefix: cfg.subjectPrefix,
    ackWaitMs: cfg.ackWaitMs,
    name: 'pulse-oracle',
    onStatus: (s) => log({ msg: 'nats status', type: s.type }),
  });
}

function signerKey(c: EpochConfig): string {
  const raw = c.signerKeyFile !== '' ? readFileSync(c.signerKeyFile, 'utf8').trim() : c.signerKey.trim();
  const hex = raw.startsWith('0x') ? raw : `0x${raw}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(hex)) throw new PulseError('CHAIN_BAD_KEY', 'the oracle signer key (--signer-key-file / PULSE_SIGNER_KEY_FILE or PULSE_SIGNER_KEY) must be 32 bytes of hex');
  return hex;
}

export async function startOracleService(o: OracleServiceOptions): Promise<OracleService> {
  const cfg = o.oracle;
  const log = o.logFor('oracle');
  if (cfg.databaseUrl === '' && cfg.dataDir !== 'memory://') mkdirSync(cfg.dataDir, { recursive: true });
  const store = await openStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, maxConnections: cfg.dbPool });
  const closers: (() => Promise<void>)[] = [() => store.close()];
  const closeAll = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch((e: unknown) => log({ level: 'warn', msg: 'close failed', error: (e as Error).message }));
  };
  try {
    const m = await migrate(store);
    log({ msg: 'migrations', store: store.kind, applied: m.applied, alreadyApplied: m.alreadyApplied });
    const recorded = (await store.query<{ value: string }>("SELECT value FROM oracle_settings WHERE key = 'genesis_ms'"))[0];
    const timing = timingOf(o.epochs, cfg.slotIntervalMs, recorded === undefined ? undefined : Number(recorded.value), (o.now ?? Date.now)());
    const params = rewardParamsOf(o.epochs);
    // The timing is part of every slot and epoch number in the database: fixed at creation.
    await ensureSetting(store, 'genesis_ms', String(timing.genesisMs));
    await ensureSetting(store, 'epoch_slots', String(timing.epochSlots));
    // Record the epoch layout and per-slot caps before ingest starts, so ingest keeps the epoch
    // counters from its first batch (oracle/epochs/epoch-stats.ts).
    await ensureCursor(store, timing, params);

    const metrics = new PromRegistry();
    const registry = new Registry({ store, networkId: cfg.networkId, verifier: nativeVerifier });
    const http = createOracleHttpServer({
      store, registry, operatorToken: cfg.operatorToken, metrics, log: o.logFor('http'),
      // GET /api/devices/:id serves the full device document: registry record plus health.
      deviceDocument: deviceStatusHandler({ store, registry, slotIntervalMs: cfg.slotIntervalMs, ...(o.now !== undefined ? { now: o.now } : {}) }),
    });
    closers.push(() => http.close());
    const surface = await startOperatorSurface({
      store, registry, http, metrics, config: o.operator, slotIntervalMs: cfg.slotIntervalMs, log: o.logFor('operator'),
      ...(o.now !== undefined ? { now: o.now } : {}),
    });
    // Closed in reverse order: the surface stops before the server closes, because open live-feed
    // streams would keep server.close() waiting.
    closers.push(() => surface.stop());
    addEpochRoutes(http.router, { store, timing, challengeSeconds: o.epochs.challengeSeconds, ...(o.now !== undefined ? { now: o.now } : {}) });
    // Bundles (binary), proofs and per-device explanations (issue 6): public routes answered by the
    // epoch API, which writes the response itself.
    const epochApi = createEpochApi({ store, log: o.logFor('http') });
    const viaEpochApi = async (req: ApiRequest): Promise<ApiResponse> => {
      if (!(await epochApi.handle(req.raw, req.res))) return errorResponse(404, 'API_NOT_FOUND', `no route for ${req.method} ${req.path}`);
      return { status: 0, handled: true };
    };
    for (const pattern of ['/api/epochs/:n/bundle', '/api/epochs/:n/proofs/:address', '/api/devices/:id/epochs/:n']) http.router.add('GET', pattern, viaEpochApi);
    const port = await http.listen(cfg.httpPort, cfg.httpHost);
    const publicUrl = o.epochs.publicUrl !== '' ? o.epochs.publicUrl.replace(/\/$/, '') : `http://${cfg.httpHost}:${port}`;
    log({ msg: 'listening', url: publicUrl, operatorWrites: cfg.operatorToken !== '' });

    let ingest: IngestService | undefined;
    if (cfg.ingestWorkers > 0) {
      const bus = o.bus ?? (await openBus(cfg, log));
      if (o.bus === undefined) closers.push(() => bus.close());
      ingest = await startIngest({
        store,
        bus,
        rules: { networkId: cfg.networkId, skewMs: cfg.skewMs, slotIntervalMs: cfg.slotIntervalMs, maxPayloadBytes: cfg.maxPayload, verifier: nativeVerifier },
        durable: cfg.durable,
        workers: cfg.ingestWorkers,
        batchSize: cfg.batchSize,
        metrics: createIngestMetrics(metrics),
        sessionMetrics: createSessionIngestMetrics(metrics),
        log: o.logFor('ingest'),
      });
      log({ msg: 'ingest started', bus: bus.kind, workers: cfg.ingestWorkers });
    }

    const epochMetric = new Counter({ name: 'pulse_epochs_total', help: 'Epochs closed, bundled, posted and failed posts.', labelNames: ['step'], registers: [metrics] });
    const bundleDir = resolve(o.epochs.bundleDir);
    let post: ConstructorParameters<typeof EpochPipeline>[0]['post'];
    let onChain: ConstructorParameters<typeof EpochPipeline>[0]['onChain'];
    if (o.epochs.rpcUrl !== '') {
      if (o.epochs.distributor === '') throw new PulseError('CONFIG_INVALID', '--rpc-url is set but --distributor / PULSE_DISTRIBUTOR is not');
      const provider = new JsonRpcProvider(o.epochs.rpcUrl, undefined, { staticNetwork: false, pollingInterval: 1000 });
      const sender = new Wallet(signerKey(o.epochs), provider);
      const poster = new RootPoster({ provider, distributor: o.epochs.distributor, sender, oracleSigners: [sender], journal: new StorePostJournal(store), log: o.logFor('chain') });
      const distributor = new Contract(o.epochs.distributor, ['function rootOf(uint256) view returns ((bytes32 root, uint256 cumulativeTotal, bytes32 inputsHash, bytes32 paramsHash, uint64 postedAt, uint64 claimableAt, bool vetoed))'], provider);
      onChain = async (epoch, root) => {
        const r = (await distributor.getFunction('rootOf')(epoch)) as { root: string };
        return r.root.toLowerCase() === root.toLowerCase();
      };
      post = async (e) => {
        const out = await poster.post(
          { epoch: BigInt(e.epoch), root: e.root, cumulativeTotal: e.cumulativeTotal, inputsHash: e.inputsHash, paramsHash: e.paramsHash, dataUri: `${publicUrl}/api/epochs/${e.epoch}/bundle` },
          e.predecessorsOnChain,
        );
        // undefined when the chain holds the root but its RootPosted log is no longer available.
        return { txHash: out.txHash };
      };
      closers.push(async () => provider.destroy());
    } else {
      log({ level: 'warn', msg: 'no --rpc-url: epochs are closed and bundled but not posted on chain' });
    }
    const pipeline = new EpochPipeline({
      store,
      timing,
      params,
      bundle: async (epoch) => buildEpochBundle(store, epoch, { dir: bundleDir, timing, networkId: cfg.networkId, skewMs: cfg.skewMs }),
      ...(post !== undefined ? { post } : {}),
      ...(onChain !== undefined ? { onChain } : {}),
      ...(o.now !== undefined ? { now: o.now } : {}),
      log: o.logFor('epochs'),
      onClosed: (c) => {
        epochMetric.inc({ step: 'closed' });
        surface.epochEvent({ epoch: c.epoch, status: 'closed' });
      },
      onPosted: (epoch) => {
        epochMetric.inc({ step: 'posted' });
        surface.epochEvent({ epoch, status: 'posted' });
      },
      onPostFailed: (epoch, error) => {
        epochMetric.inc({ step: 'failed' });
        surface.epochEvent({ epoch, status: 'failed', error });
      },
    });
    await o.beforePipeline?.(store);
    pipeline.start(o.epochs.epochTickMs);

    return {
      store,
      registry,
      http,
      port,
      timing,
      pipeline,
      surface,
      async stop() {
        await pipeline.stop();
        if (ingest !== undefined) await ingest.stop();
        await closeAll();
      },
    };
  } catch (e) {
    await closeAll();
    throw e;
  }
}
