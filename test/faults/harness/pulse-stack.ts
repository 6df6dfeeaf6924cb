// One scenario's private Pulse deployment (issue 10): a private PostgreSQL cluster, private NATS (one
// node or a three-node JetStream cluster), `pulse broker` and `pulse oracle` child processes
// (node bin/pulse.js …, exactly what an operator runs), the device registry filled through the
// oracle's Registry, and a simulated fleet (device-sim/start-fleet.ts) whose outbox log records every
// heartbeat a device saw acknowledged. Nothing here touches the machine's shared services.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect as natsConnect, nanos, RetentionPolicy, StorageType, DiscardPolicy } from 'nats';
import { PgStore } from '../../../oracle/store/pg-store.ts';
import { migrate } from '../../../oracle/store/migrate.ts';
import { Registry } from '../../../oracle/registry/registry.ts';
import { SimState } from '../../../device-sim/sim-state.ts';
import { startFleet, type FleetHandle, type FleetOptions } from '../../../device-sim/start-fleet.ts';
import { ManagedProcess, httpStatus, waitFor } from './processes.ts';
import { PrivatePostgres } from './private-postgres.ts';
import { PrivateNats } from './private-nats.ts';
import { auditA1, type A1Report } from '../auditor.ts';
import { parseBusMessage } from '../../../bus/jetstream.ts';

const SUBJECT_PREFIX = 'pulse';
const PULSE = fileURLToPath(new URL('../../../bin/pulse.js', import.meta.url));
export const FAULT_NETWORK = 77;

export class PulseBroker {
  mqttPort = 0;
  metricsPort = 0;
  constructor(readonly process: ManagedProcess) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.mqttPort}`;
  }

  /** Start (or restart) and wait for "broker listening"; ports come from that log line (port 0). */
  async start(): Promise<void> {
    const from = this.process.log.length;
    this.process.start();
    const m = await this.process.waitForLog(/"msg":"broker listening"[^\n]*/, 60_000, from);
    const line = JSON.parse(m[0].startsWith('{') ? m[0] : `{${m[0]}`) as Record<string, string>;
    this.mqttPort = Number(line['mqtt']!.split(':').pop());
    this.metricsPort = Number(line['metrics']!.split(':').pop());
  }

  health(): Promise<number | undefined> {
    return httpStatus(`http://127.0.0.1:${this.metricsPort}/health`);
  }

  /**
   * A counter from the broker's /metrics, summed over the series whose labels contain `labels`
   * (e.g. counter('pulse_broker_connects_total', 'outcome="accepted"')); 0 when it has no series yet.
   */
  async counter(name: string, labels = ''): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`, { signal: AbortSignal.timeout(3_000) })).text();
    let sum = 0;
    for (const line of text.split('\n')) {
      const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
      if (m?.[1] === name && (m[2] ?? '').includes(labels)) sum += Number(m[3]);
    }
    return sum;
  }
}

export class PulseOracle {
  httpPort = 0;
  constructor(readonly process: ManagedProcess) {}

  async start(): Promise<void> {
    const from = this.process.log.length;
    this.process.start();
    // {"msg":"listening","url":"http://127.0.0.1:<port>",…} (oracle/oracle-service.ts)
    const m = await this.process.waitForLog(/"msg":"listening","url":"http:\/\/[^"]*:(\d+)"/, 60_000, from);
    this.httpPort = Number(m[1]);
    await this.process.waitForLog(/"msg":"ingest started"/, 60_000, from);
  }

  health(): Promise<number | undefined> {
    return httpStatus(`http://127.0.0.1:${this.httpPort}/health`);
  }
}

export type StackOptions = {
  readonly natsNodes?: 1 | 3;
  /** Create the stream with this many replicas before any Pulse process starts (R3 for scenario 9). */
  readonly streamReplicas?: 1 | 3;
  /** Extra environment for brokers and oracles. */
  readonly env?: Readonly<Record<string, string>>;
};

export class PulseStack {
  readonly brokers: PulseBroker[] = [];
  readonly oracles: PulseOracle[] = [];
  readonly fleets: FleetHandle[] = [];
  readonly outboxes: string[] = [];
  private constructor(
    readonly pg: PrivatePostgres,
    readonly nats: PrivateNats,
    readonly dir: string,
    readonly databaseUrl: string,
    readonly store: PgStore,
    readonly stream: string,
    readonly env: Readonly<Record<string, string>>,
  ) {}

  static async create(o: StackOptions = {}): Promise<PulseStack> {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-faults-'));
    const [pgServer, nats] = await Promise.all([PrivatePostgres.create(), PrivateNats.start(o.natsNodes ?? 1)]);
    const databaseUrl = await pgServer.createDatabase('pulse_faults');
    const store = new PgStore({ url: databaseUrl, maxConnections: 4, applicationName: 'pulse-faults-auditor' });
    await migrate(store);
    const stream = 'PULSE_FAULTS';
    if ((o.streamReplicas ?? 1) > 1) {
      // pulse's JetStreamBus creates a missing stream with one replica; an operator running a
      // cluster creates it replicated beforehand (docs/reliability.md §Production settings), and the
      // bus then uses it as it is.
      const nc = await natsConnect({ servers: nats.servers.split(',') });
      const jsm = await nc.jetstreamManager();
      await jsm.streams.add({
        name: stream,
        subjects: ['pulse.hb.*'],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        duplicate_window: nanos(120_000),
        max_age: nanos(7 * 24 * 3_600_000),
        num_replicas: o.streamReplicas ?? 1,
      });
      await nc.close();
    }
    const env: Record<string, string> = {
      DATABASE_URL: databaseUrl,
      NATS_URL: nats.servers,
      PULSE_BUS: 'jetstream',
      PULSE_STREAM: stream,
      PULSE_SUBJECT_PREFIX: SUBJECT_PREFIX,
      PULSE_NETWORK_ID: String(FAULT_NETWORK),
      PULSE_LOG_LEVEL: 'info',
      ...o.env,
    };
    return new PulseStack(pgServer, nats, dir, databaseUrl, store, stream, env);
  }

  async addBroker(extra: Readonly<Record<string, string>> = {}): Promise<PulseBroker> {
    const name = `broker-${this.brokers.length + 1}`;
    const b = new PulseBroker(
      new ManagedProcess({
        name,
        command: process.execPath,
        args: [PULSE, 'broker'],
        env: {
          ...this.env,
          PULSE_MQTT_HOST: '127.0.0.1',
          PULSE_MQTT_PORT: '0',
          PULSE_WS_PORT: 'off',
          PULSE_TLS_PORT: 'off',
          PULSE_WSS_PORT: 'off',
          PULSE_BROKER_METRICS_HOST: '127.0.0.1',
          PULSE_BROKER_METRICS_PORT: '0',
          // The fleet sends several heartbeats a second per device and reconnects in bursts after
          // each fault; the production defaults (1/s, 20 connects/s per address) would reject that
          // load as abuse, which is not what these scenarios test.
          // No HB_RATE_LIMITED here: rate-limited heartbeats are rejected, never stored, so the
          // audit would cover fewer heartbeats for no gain.
          PULSE_PUBLISH_RATE: '1000',
          PULSE_PUBLISH_BURST: '10000',
          PULSE_CONNECT_RATE: '1000',
          PULSE_CONNECT_BURST: '1000',
          PULSE_DIRECTORY_TTL: '2s',
          PULSE_SHUTDOWN_GRACE: '2s',
          ...extra,
        },
      }),
    );
    this.brokers.push(b); // before start: a broker that fails to start still shows its log in the evidence
    await b.start();
    return b;
  }

  async addOracle(extra: Readonly<Record<string, string>> = {}): Promise<PulseOracle> {
    const name = `oracle-${this.oracles.length + 1}`;
    const oracle = new PulseOracle(
      new ManagedProcess({
        name,
        command: process.execPath,
        args: [PULSE, 'oracle'],
        env: {
          ...this.env,
          PULSE_HTTP_PORT: '0',
          PULSE_INGEST_WORKERS: '2',
          PULSE_INGEST_BATCH: '200',
          PULSE_INGEST_DURABLE: 'pulse-ingest',
          // A SIGKILLed worker's deliveries come back after this (the durable is created with it).
          PULSE_INGEST_ACK_WAIT: '3s',
          PULSE_DB_POOL: '4',
          PULSE_SHUTDOWN_GRACE: '3s',
          PULSE_BUNDLE_DIR: join(this.dir, `bundles-${this.oracles.length + 1}`),
          ...extra,
        },
      }),
    );
    this.oracles.push(oracle);
    await oracle.start();
    return oracle;
  }

  /**
   * Register `devices` simulated devices (keys persisted in a state directory) through the
   * Registry, then start them against `brokerUrl` with an outbox log.
   */
  async startFleet(devices: number, brokerUrl: string, options: Partial<FleetOptions> = {}): Promise<FleetHandle> {
    const index = this.fleets.length + 1;
    const stateDir = join(this.dir, `fleet-${index}`);
    const state = await SimState.open(stateDir, FAULT_NETWORK, devices);
    const registry = new Registry({ store: this.store, networkId: FAULT_NETWORK });
    for (let i = 0; i < devices; i++) {
      const owner = `0x${(i % 4 + 1).toString(16).padStart(2, '0').repeat(20)}`;
      const r = await registry.addDevice({ id: state.devices[i]!.deviceId, owner });
      if (!r.ok && r.code !== 'REG_DEVICE_EXISTS') throw new Error(`register: ${r.code} ${r.message}`);
    }
    const outboxPath = join(this.dir, `outbox-${index}.jsonl`);
    const fleet = await startFleet({
      devices,
      brokerUrl,
      networkId: FAULT_NETWORK,
      intervalMs: 250,
      mix: { honest: 100 },
      stateDir,
      outboxPath,
      seed: 1000 + index,
      connectRate: 200,
      tuning: { reconnectPeriodMs: 500, keepaliveSeconds: 5, maxPending: 400 },
      onError: () => undefined,
      ...options,
    });
    this.fleets.push(fleet);
    this.outboxes.push(outboxPath);
    return fleet;
  }

  /** Acknowledged heartbeats so far, over every fleet. */
  acknowledged(): number {
    return this.fleets.reduce((n, f) => n + f.stats().acknowledged, 0);
  }

  async storedCount(): Promise<number> {
    return (await this.store.query<{ n: number }>('SELECT count(*)::integer AS n FROM heartbeats'))[0]!.n;
  }

  /** Wait until the acknowledged count grows by `n` (the system is taking load). */
  async waitAcked(n: number, timeoutMs = 60_000): Promise<void> {
    const start = this.acknowledged();
    await waitFor(`${n} more acknowledged heartbeats`, () => (this.acknowledged() >= start + n ? true : undefined), timeoutMs, 100);
  }

  /**
   * Stop the fleets (flushing their outboxes), wait until ingest has stored every acknowledged
   * heartbeat or `timeoutMs` passes, and audit A1.
   */
  async drainAndAuditA1(timeoutMs = 60_000): Promise<A1Report> {
    await Promise.all(this.fleets.map((f) => f.stop(3_000)));
    const deadline = Date.now() + timeoutMs;
    let report = await auditA1(this.databaseUrl, this.outboxes);
    while (report.missing.some((m) => m.rejectedAs === undefined) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000));
      report = await auditA1(this.databaseUrl, this.outboxes);
    }
    return report;
  }

  /**
   * Which of the given heartbeats JetStream still holds (evidence for a failed A1: stranded in the
   * stream means ingest stopped consuming; absent means the bus lost an acknowledged message).
   */
  async inStream(keys: readonly { deviceId: string; seq: string }[]): Promise<{ inStream: number; absent: number; streamMessages: number }> {
    const nc = await natsConnect({ servers: this.nats.servers.split(','), timeout: 3_000 });
    try {
      const jsm = await nc.jetstreamManager();
      const si = await jsm.streams.info(this.stream);
      const ids = new Set<string>();
      for (let seq = si.state.first_seq; seq <= si.state.last_seq && seq - si.state.first_seq < 50_000; seq++) {
        const m = await jsm.streams.getMessage(this.stream, { seq }).catch(() => undefined);
        // Read as ingest reads it (bus/jetstream.ts), so the harness never disagrees on the format.
        const hb = m === undefined ? undefined : parseBusMessage({ subject: m.subject, data: m.data, headers: m.header }, SUBJECT_PREFIX);
        if (hb !== undefined) ids.add(`${hb.deviceId}:${hb.seq}`);
      }
      const inStream = keys.filter((k) => ids.has(`${k.deviceId}:${k.seq}`)).length;
      return { inStream, absent: keys.length - inStream, streamMessages: si.state.messages };
    } finally {
      await nc.close();
    }
  }

  /**
   * Write the evidence of a failed scenario to $PULSE_FAULTS_ARTIFACTS (default
   * /tmp/pulse-faults-artifacts): a summary, every broker's rejection and violation counters, the
   * fleets' counters, and the last lines of every process log. Returns the file path.
   */
  async evidence(name: string, summary: unknown = {}): Promise<string> {
    const dir = process.env['PULSE_FAULTS_ARTIFACTS'] ?? join(tmpdir(), 'pulse-faults-artifacts');
    const file = join(dir, `${name.replace(/\W+/g, '-')}-${Date.now()}.txt`);
    const metrics: string[] = [];
    for (const b of this.brokers) {
      const text = await fetch(`http://127.0.0.1:${b.metricsPort}/metrics`, { signal: AbortSignal.timeout(2_000) })
        .then((r) => r.text())
        .catch((e: unknown) => `unavailable: ${(e as Error).message}`);
      metrics.push(`--- ${b.process.spec.name} metrics\n${text.split('\n').filter((l) => /rejected|violations|bus_errors|accepted|received/.test(l) && !l.startsWith('#')).join('\n')}`);
    }
    const fleets = this.fleets.map((f, i) => `--- fleet ${i + 1}: ${JSON.stringify({ ...f.stats(), byBehaviour: undefined })}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(summary, null, 1)}\n${fleets.join('\n')}\n${metrics.join('\n')}\n${this.logs(300)}`);
    return file;
  }

  /** Last lines of every process log, for failure messages. */
  logs(lines = 15): string {
    const all = [...this.brokers.map((b) => b.process), ...this.oracles.map((o) => o.process), ...this.nats.nodes.map((n) => n.process)];
    return all.map((p) => `--- ${p.spec.name}\n${p.log.split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  async destroy(): Promise<void> {
    await Promise.all(this.fleets.map((f) => f.stop(0).catch(() => undefined)));
    await Promise.all([...this.brokers.map((b) => b.process.stop(3_000)), ...this.oracles.map((o) => o.process.stop(3_000))]);
    await this.store.close().catch(() => undefined);
    await this.nats.destroy();
    await this.pg.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
