// Workload `ingest`: bus → committed heartbeat rows per second on PostgreSQL (issue 4 §Benchmark),
// beside a plain COPY of the same rows into a table of the same shape, measured in the same run.
// The ingest path re-verifies every Ed25519 signature (docs/protocol.md §Heartbeat), so the
// verify-only rate of the same heartbeats is shown too, on one thread and through the ingest's own
// stateless checks on the threadpool (every core): it bounds ingest on this machine.
//
// Each database records the epoch layout and per-slot caps first (ensureCursor, as `pulse oracle`
// does when it starts), so ingest maintains the per-(device, epoch) counters as it does in production.
// On a shared machine wall-clock rates move with the load, so every figure also carries CPU time per
// row: this process (main thread and threadpool) and the PostgreSQL backends of the bench database,
// read from /proc when the server runs on this machine.
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { IngestWorker } from '../oracle/ingest/ingest-worker.ts';
import { MemoryBus } from '../bus/memory.ts';
import { heartbeatMessage, newDevice, TEST_NETWORK, type TestDevice } from '../oracle/ingest/testing.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import { decodeHeartbeat, verifyHeartbeat } from '../shared/protocol/heartbeat.ts';
import { writeBatch } from '../oracle/ingest/write-batch.ts';
import type { Candidate } from '../oracle/ingest/classify.ts';
import { toHex } from '../shared/hex.ts';
import type { BusHeartbeat } from '../bus/bus.ts';
import type { BenchFigure, BenchOptions } from './result.ts';
import { loadAverage, procCpuMs } from './cpu-time.ts';
import { connect as netConnect } from 'node:net';
import { JetStreamBus } from '../bus/jetstream.ts';
import { classifyAsync, type IngestRules } from '../oracle/ingest/classify.ts';
import { ensureCursor } from '../oracle/epochs/epoch-stats.ts';
import { DEFAULT_REWARD_PARAMS } from '../oracle/epochs/default-params.ts';
import { Registry } from 'prom-client';
import { createIngestMetrics } from '../oracle/ingest/ingest-metrics.ts';
import type { Store } from '../oracle/store/store.ts';

export const description = 'Ingest: bus → committed heartbeat rows/s on PostgreSQL (verify + rules + rollups) beside a plain COPY of the same rows';

const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
const TARGET = 50_000;

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `pulse_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  try {
    return await fn(url.toString());
  } finally {
    const c = new pg.Client({ connectionString: DATABASE_URL });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await c.end();
  }
}

/** Devices, their keys and the epoch layout: what a running oracle has before the first heartbeat. */
async function prepare(store: Store, ids: readonly string[], now: number): Promise<void> {
  await migrate(store);
  await store.query("INSERT INTO devices (device_id, registered_via) SELECT unnest($1::text[]), 'operator'", [ids]);
  await store.query('INSERT INTO device_keys (key_id, device_id) SELECT k, k FROM unnest($1::text[]) AS k', [ids]);
  // The oracle's defaults (oracle/epochs/epoch-config.ts): 1 h epochs of 60 s slots, genesis at the
  // start of the current epoch, the built-in reward parameters' caps.
  const epochMs = 3_600_000;
  await ensureCursor(store, { genesisMs: Math.floor(now / epochMs) * epochMs, slotMs: 60_000, epochSlots: epochMs / 60_000, graceMs: 120_000 }, DEFAULT_REWARD_PARAMS);
}

type CpuSample = { readonly node: NodeJS.CpuUsage; readonly backends: ReadonlyMap<number, number> | undefined };

/** This process's CPU and, when PostgreSQL runs on this machine, its backends' for the bench database. */
async function sampleCpu(store: Store): Promise<CpuSample> {
  const node = process.cpuUsage();
  const rows = await store.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
  const backends = new Map<number, number>();
  for (const r of rows) {
    const ms = procCpuMs(r.pid);
    if (ms === undefined) return { node, backends: undefined };
    backends.set(r.pid, ms);
  }
  return { node, backends };
}

type CpuPerRow = { readonly nodeUs: number; readonly backendUs: number | undefined };

/**
 * CPU µs per row between two samples. A backend that started in between counts whole (it did only
 * this work); one that ended in between is lost, so the backend figure is a lower bound.
 */
function cpuPerRow(a: CpuSample, b: CpuSample, rows: number): CpuPerRow {
  let backendUs: number | undefined;
  if (a.backends !== undefined && b.backends !== undefined) {
    let ms = 0;
    for (const [pid, end] of b.backends) ms += end - (a.backends.get(pid) ?? 0);
    backendUs = (ms * 1000) / rows;
  }
  return { nodeUs: (b.node.user - a.node.user + b.node.system - a.node.system) / rows, backendUs };
}

function cpuNote(c: CpuPerRow): string {
  return `CPU per row: ${c.nodeUs.toFixed(0)} µs this process${c.backendUs === undefined ? '' : `, ${c.backendUs.toFixed(0)} µs PostgreSQL backends`}`;
}

function loadNote(): string {
  return `load average ${loadAverage()}`;
}

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  const total = opts.quick ? 15_000 : 150_000;
  const deviceCount = opts.quick ? 300 : 2_000;
  return withDatabase(async (url) => {
    const store = new PgStore({ url, maxConnections: 6 });
    try {
      opts.log(`registering ${deviceCount} devices, signing ${total} heartbeats`);
      const devices: TestDevice[] = Array.from({ length: deviceCount }, () => newDevice());
      const ids = devices.map((d) => d.deviceId);
      const now = Date.now();
      await prepare(store, ids, now);
      const messages: BusHeartbeat[] = [];
      const perDevice = Math.ceil(total / deviceCount);
      for (let s = 1; s <= perDevice && messages.length < total; s++)
        for (const d of devices) {
          if (messages.length >= total) break;
          messages.push(heartbeatMessage(d, s, { receivedAt: now + s, ts: now + s, metrics: [{ id: 1, value: 3n }, { id: 2, value: 1000n }] }));
        }

      // Verify-only rate of the same heartbeats (the CPU bound of ingest): on this thread, then the
      // ingest's stateless checks (classifyAsync: decode, rules, signature on the threadpool) in
      // batches of 1000 as a worker runs them. The first pass also fills the verifier's key cache,
      // as a running oracle has it.
      const rules: IngestRules = { networkId: TEST_NETWORK, skewMs: 30_000, slotIntervalMs: 60_000, maxPayloadBytes: 1024, verifier: nativeVerifier };
      const v0 = performance.now();
      for (const m of messages) verifyHeartbeat(m.raw, { verifier: nativeVerifier, networkId: TEST_NETWORK });
      const verifyRate = messages.length / ((performance.now() - v0) / 1000);
      const vc0 = process.cpuUsage();
      const va0 = performance.now();
      for (let i = 0; i < messages.length; i += 1000) {
        const out = await Promise.all(messages.slice(i, i + 1000).map((m) => classifyAsync(m, rules, Number(m.receivedAt))));
        if (out.some((c) => c.kind !== 'candidate')) throw new Error('a bench heartbeat failed the stateless checks');
      }
      const classifyRate = messages.length / ((performance.now() - va0) / 1000);
      const vc = process.cpuUsage(vc0);
      const classifyCpuUs = (vc.user + vc.system) / messages.length;

      // Ingest: memory bus → 2 workers → PostgreSQL, timed from the first fetch to the last commit.
      const bus = new MemoryBus();
      const pub = bus.publisher();
      for (const m of messages) await pub.publish(m);
      const workers = [0, 1].map(() => new IngestWorker({ store, consumer: bus.consumer('ingest'), rules, batchSize: 1000, fetchWaitMs: 50, log: () => undefined }));
      opts.log('ingest: memory bus → PostgreSQL, 2 workers, batch 1000');
      const ingestCpu0 = await sampleCpu(store);
      const t0 = performance.now();
      workers.forEach((w) => w.start());
      while (bus.size > 0) await new Promise((r) => setTimeout(r, 5));
      const ingestSeconds = (performance.now() - t0) / 1000;
      const ingestCpu = cpuPerRow(ingestCpu0, await sampleCpu(store), messages.length);
      const ingestLoad = loadNote();
      await Promise.all(workers.map((w) => w.stop()));
      const [stored] = await store.query<{ n: number }>('SELECT count(*)::integer AS n FROM heartbeats');
      if (stored!.n !== messages.length) throw new Error(`ingest stored ${stored!.n} of ${messages.length}`);
      const ingestRate = messages.length / ingestSeconds;

      // Plain COPY of the same rows into a table of the same shape (no verify, no rules, no rollups).
      await store.query('CREATE TABLE heartbeats_copy (LIKE heartbeats INCLUDING ALL)');
      const lines = messages.map((m) => {
        const ts = Number(m.receivedAt);
        return `${m.deviceId}\t${m.seq}\t${m.deviceId}\t${ts}\t${new Date(ts).toISOString()}\t${Math.floor(ts / 60_000)}\t${m.receivedAt}\t\\\\x${toHex(m.raw)}\t{"1":3,"2":1000}\n`;
      });
      opts.log('plain COPY of the same rows');
      const copy = await timedCopy(url, lines);
      const copyCpu = copy.cpu;
      const copyRate = messages.length / copy.seconds;

      // The database half alone: the same rows through writeBatch (rules, rollups, UNNEST) in a
      // second database, already decoded, no bus and no signature check, one writer.
      opts.log('write path only: writeBatch, batch 1000, no verify, second database');
      const write = await withDatabase(async (url2) => {
        const s2 = new PgStore({ url: url2, maxConnections: 2 });
        try {
          await prepare(s2, ids, now);
          const candidates: Candidate[] = messages.map((m) => {
            const hb = decodeHeartbeat(m.raw);
            if (!hb.ok) throw new Error(hb.message);
            return { heartbeat: hb.value, slot: hb.value.timestamp / 60_000n, receivedAt: m.receivedAt };
          });
          const cpu0 = await sampleCpu(s2);
          const w0 = performance.now();
          for (let i = 0; i < candidates.length; i += 1000) await writeBatch(s2, candidates.slice(i, i + 1000), []);
          const rate = candidates.length / ((performance.now() - w0) / 1000);
          return { rate, cpu: cpuPerRow(cpu0, await sampleCpu(s2), candidates.length), load: loadNote() };
        } finally {
          await s2.close();
        }
      });

      const js = await jetStreamRun(messages, ids, now, rules, opts);

      return [
        ...(js === undefined
          ? []
          : [
              {
                name: 'ingest: JetStream → committed heartbeats/s on PostgreSQL (re-verify, replay rules, rollups, 2 workers)',
                figure: js.ingestRate,
                unit: 'rows/s',
                comparison: { name: 'plain COPY of the same rows, same run', figure: copyRate },
                target: `>= ${TARGET}`,
                targetMet: js.ingestRate >= TARGET,
                note: `stream filled first (publish with a window of acks: ${Math.round(js.publishRate)}/s), then drained; ${cpuNote(js.cpu)}; ${js.load}`,
              } satisfies BenchFigure,
            ]),
        {
          name: 'ingest: memory bus → committed heartbeats/s on PostgreSQL (re-verify, replay rules, rollups, 2 workers)',
          figure: ingestRate,
          unit: 'rows/s',
          comparison: { name: 'plain COPY of the same rows, same run', figure: copyRate },
          target: `>= ${TARGET}`,
          targetMet: ingestRate >= TARGET,
          note:
            `${messages.length} heartbeats, ${deviceCount} devices, memory bus; ${cpuNote(ingestCpu)}; ${ingestLoad}; ` +
            `Ed25519 verify alone of the same heartbeats: ${Math.round(verifyRate)}/s on one thread; ` +
            `the ingest's stateless checks (classifyAsync, threadpool): ${Math.round(classifyRate)}/s, ${classifyCpuUs.toFixed(0)} µs CPU per row`,
        },
        {
          name: 'ingest: write path only, rows/s (rules, rollups, counters; decoded, no verify, 1 writer)',
          figure: write.rate,
          unit: 'rows/s',
          comparison: { name: 'plain COPY of the same rows, same run', figure: copyRate },
          note: `the database share of the ingest cost; ${cpuNote(write.cpu)}; ${write.load}; the COPY: ${cpuNote(copyCpu)}`,
        },
      ];
    } finally {
      await store.close();
    }
  });
}

async function natsReachable(): Promise<boolean> {
  const u = new URL(NATS_URL);
  return new Promise((resolve) => {
    const sock = netConnect({ host: u.hostname, port: Number(u.port || 4222) });
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(1500, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** The same heartbeats through NATS JetStream into a fresh database; undefined when NATS is down. */
async function jetStreamRun(
  messages: BusHeartbeat[],
  ids: string[],
  now: number,
  rules: IngestRules,
  opts: BenchOptions,
): Promise<{ ingestRate: number; publishRate: number; cpu: CpuPerRow; load: string } | undefined> {
  if (!(await natsReachable())) {
    opts.log(`NATS at ${NATS_URL} is not reachable: skipping the JetStream figure`);
    return undefined;
  }
  const stream = `PULSE_BENCH_${randomBytes(4).toString('hex')}`;
  const bus = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: stream.toLowerCase(), name: 'pulse-bench' });
  try {
    opts.log(`JetStream: publishing ${messages.length} heartbeats to ${stream}`);
    const pub = bus.publisher();
    const p0 = performance.now();
    await Promise.all(messages.map((m) => pub.publish(m)));
    const publishRate = messages.length / ((performance.now() - p0) / 1000);
    return await withDatabase(async (url) => {
      const store = new PgStore({ url, maxConnections: 4 });
      try {
        await prepare(store, ids, now);
        opts.log('ingest: JetStream → PostgreSQL, 2 workers, batch 1000');
        // Progress comes from the workers' own committed-rows counter: polling count(*) on the growing
        // table every 20 ms (as this bench did) cost the database more CPU than a core's share.
        const metrics = createIngestMetrics(new Registry());
        const workers = [0, 1].map(() => new IngestWorker({ store, consumer: bus.consumer('bench'), rules, batchSize: 1000, fetchWaitMs: 50, metrics, log: () => undefined }));
        const cpu0 = await sampleCpu(store);
        const t0 = performance.now();
        workers.forEach((w) => w.start());
        const deadline = Date.now() + 600_000;
        for (;;) {
          const committed = (await metrics.rows.get()).values[0]?.value ?? 0;
          if (committed >= messages.length) break;
          if (Date.now() > deadline) throw new Error(`JetStream ingest committed ${committed} of ${messages.length} in 10 minutes`);
          await new Promise((res) => setTimeout(res, 20));
        }
        const ingestRate = messages.length / ((performance.now() - t0) / 1000);
        const cpu = cpuPerRow(cpu0, await sampleCpu(store), messages.length);
        const load = loadNote();
        await Promise.all(workers.map((w) => w.stop()));
        const [stored] = await store.query<{ n: number }>('SELECT count(*)::integer AS n FROM heartbeats');
        if (stored!.n !== messages.length) throw new Error(`JetStream ingest stored ${stored!.n} of ${messages.length}`);
        return { ingestRate, publishRate, cpu, load };
      } finally {
        await store.close();
      }
    });
  } finally {
    await bus.jsm.streams.delete(stream).catch(() => undefined);
    await bus.close();
  }
}

/** Seconds for the COPY, and CPU per row (this process, and its backend when readable). */
async function timedCopy(url: string, lines: string[]): Promise<{ seconds: number; cpu: CpuPerRow }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const [{ pid }] = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
    const backend0 = procCpuMs(pid);
    const node0 = process.cpuUsage();
    const t0 = performance.now();
    const stream = client.query(copyFrom('COPY heartbeats_copy (device_id, seq, key_id, ts, at, slot, received_at, raw, metrics) FROM STDIN'));
    await pipeline(Readable.from(chunk(lines, 5000)), stream);
    const seconds = (performance.now() - t0) / 1000;
    const node = process.cpuUsage(node0);
    const backend1 = procCpuMs(pid);
    const backendUs = backend0 === undefined || backend1 === undefined ? undefined : ((backend1 - backend0) * 1000) / lines.length;
    return { seconds, cpu: { nodeUs: (node.user + node.system) / lines.length, backendUs } };
  } finally {
    await client.end();
  }
}

function* chunk(lines: string[], size: number): Generator<string> {
  for (let i = 0; i < lines.length; i += size) yield lines.slice(i, i + size).join('');
}
