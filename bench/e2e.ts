// Workload `e2e` (issue 9): simulated devices → `pulse broker` (child process; device directory in
// PostgreSQL, JetStream bus) → NATS JetStream → `pulse oracle` (child process; ingest workers) →
// PostgreSQL, at a paced offered rate. Reports accepted-and-committed heartbeats/s, latency from
// publish to committed row (p50/p99), and loss: every (device, seq) a device saw acknowledged
// (PUBACK, MQTT-4.3.2) must have a committed row. Beside it, measured in the same run: the same
// load against the same broker with the oracle not running (PUBACK throughput into JetStream).
//
// What the latency is, exactly: from the wall-clock time the PUBLISH frame was written to the
// device socket, to the time this process received the NOTIFY that a statement-level trigger
// (added to this run's database only) queues in the ingest transaction that inserted the row.
// PostgreSQL delivers a NOTIFY only after its transaction commits, so that instant is "the row is
// committed and visible", observed from a client. Rows are matched to their transaction by xmin.
// The broker's receive time (heartbeats.received_at, ms) and the ingest transaction's start
// (heartbeats.stored_at = now()) are reported beside it to split the path.
//
// Protocol rules the load respects (docs/protocol.md §Replay and time rules, docs/broker.md
// §Limits): heartbeats are pre-signed before the timed phases, so their device timestamps are
// older than the receive time by up to the signing time plus the run; the broker and the oracle run
// with a larger --skew (printed in the note). Seq is strictly increasing per device (the oracle
// phase continues where the broker-only phase stopped). The per-device publish rate limit and
// the per-address connect limit are raised, because every simulated device sends from 127.0.0.1 at
// several heartbeats a second instead of one a minute.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { connect as natsConnect, type NatsConnection } from 'nats';
import type { BenchFigure, BenchOptions } from './result.ts';
import { RawConnection, benchConnect, benchDevice, benchHeartbeats, percentile } from '../broker/load-client.ts';
import { driveRecorded, wallMs } from './e2e-drive.ts';
import { PulseProcess } from './e2e-process.ts';
import { freshDatabase, uniqueName, NATS_URL } from '../test/support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';

export const description = 'e2e: devices → pulse broker → JetStream → pulse oracle → PostgreSQL: committed heartbeats/s, publish → committed p50/p99, zero loss; beside broker-only PUBACKs/s';

const NETWORK = 79;
const WINDOW = 16;
const CHANNEL = 'pulse_bench_e2e';

type Plan = { readonly rate: number; readonly seconds: number; readonly devices: number; readonly skew: string };

function plan(quick: boolean): Plan {
  // Full: the target, 10,000 heartbeats/s for 60 s. Quick: a few seconds at a lower rate.
  return quick ? { rate: 2_000, seconds: 5, devices: 200, skew: '5m' } : { rate: 10_000, seconds: 60, devices: 2_000, skew: '15m' };
}

type Device = ReturnType<typeof benchDevice>;

function sortedOf(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

async function openConnections(port: number, devices: readonly Device[]): Promise<RawConnection[]> {
  const conns: RawConnection[] = [];
  const now = Date.now();
  // In parallel groups: every CONNECT is a token check-and-set in PostgreSQL at the broker.
  for (let i = 0; i < devices.length; i += 50) {
    const group = devices.slice(i, i + 50);
    conns.push(...(await Promise.all(group.map((d, j) => RawConnection.open('127.0.0.1', port, benchConnect(d, NETWORK, now + i + j))))));
  }
  return conns;
}

/** Poll the row count until it reaches `want`, or no progress for `stallMs`. */
async function waitForRows(client: pg.Client, want: number, stallMs: number, log: (l: string) => void): Promise<number> {
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const { rows } = await client.query<{ n: number }>('SELECT count(*)::integer AS n FROM heartbeats');
    const n = rows[0]!.n;
    if (n >= want) return n;
    if (n !== last) {
      last = n;
      lastChange = Date.now();
    } else if (Date.now() - lastChange > stallMs) {
      log(`no new rows for ${stallMs / 1000} s at ${n}/${want}; stopping the wait`);
      return n;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Schema, then the probe: one NOTIFY per ingest transaction carrying its transaction id (32-bit, to
 * match xmin). Statement-level without transition tables, so it costs one small NOTIFY per batch,
 * not per row. Then the fleet, registered in one batched statement (operator registration; the
 * broker's directory reads devices + device_keys, docs/storage.md §Registry), and its heartbeats,
 * signed up front: seq 1..n for the broker-only phase, n+1..2n for the end-to-end phase.
 */
async function prepare(url: string, p: Plan, perDevice: number, log: (l: string) => void): Promise<{ devices: Device[]; ids: string[]; framesA: Buffer[][]; framesB: Buffer[][] }> {
  const store = new PgStore({ url, maxConnections: 2 });
  try {
    await migrate(store);
    await store.query(`CREATE FUNCTION bench_e2e_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_notify('${CHANNEL}', (txid_current() % 4294967296)::text); RETURN NULL; END $$`);
    await store.query('CREATE TRIGGER bench_e2e_notify AFTER INSERT ON heartbeats FOR EACH STATEMENT EXECUTE FUNCTION bench_e2e_notify()');
    log(`registering ${p.devices} devices; signing ${(2 * perDevice * p.devices).toLocaleString('en-US')} heartbeats (broker-only phase + end-to-end phase)`);
    const devices = Array.from({ length: p.devices }, () => benchDevice(randomBytes(32)));
    const ids = devices.map((d) => d.id);
    await store.query("INSERT INTO devices (device_id, registered_via) SELECT unnest($1::text[]), 'operator'", [ids]);
    await store.query('INSERT INTO device_keys (key_id, device_id) SELECT k, k FROM unnest($1::text[]) AS k', [ids]);
    const framesA = devices.map((d) => benchHeartbeats(d, NETWORK, perDevice, 1));
    const framesB = devices.map((d) => benchHeartbeats(d, NETWORK, perDevice, 1 + perDevice));
    return { devices, ids, framesA, framesB };
  } finally {
    await store.close();
  }
}

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  const p = plan(opts.quick);
  const perDevice = Math.ceil((p.rate * p.seconds) / p.devices);
  const db = await freshDatabase('pulse_bench_e2e');
  const stream = uniqueName('PULSE_E2E');
  const prefix = uniqueName('e2e');
  const durable = 'pulse-ingest-e2e';
  let broker: PulseProcess | undefined;
  let oracle: PulseProcess | undefined;
  let nc: NatsConnection | undefined;
  let conns: RawConnection[] = [];
  const listener = new pg.Client({ connectionString: db.url });
  let listening = false;
  // Idempotent: runs from `finally`, or from SIGINT/SIGTERM (Ctrl-C would otherwise end this
  // process without running `finally`, leaving the stream and the database behind).
  let cleaning: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const c of conns) c.close();
      await oracle?.stop(15_000);
      await broker?.stop(15_000);
      if (listening) await listener.query(`UNLISTEN ${CHANNEL}`).catch(() => undefined);
      await listener.end().catch(() => undefined);
      if (nc === undefined) nc = await natsConnect({ servers: NATS_URL.split(','), name: 'pulse-bench-e2e' }).catch(() => undefined);
      if (nc !== undefined) {
        const jsm = await nc.jetstreamManager().catch(() => undefined);
        await jsm?.streams.delete(stream).catch((e: unknown) => opts.log(`stream ${stream} not deleted: ${(e as Error).message}`));
        await nc.close().catch(() => undefined);
      }
      await db.drop().catch((e: unknown) => opts.log(`database not dropped: ${(e as Error).message}`));
    })());
  const onSignal = (signal: NodeJS.Signals) => {
    opts.log(`${signal}: stopping the oracle and broker, deleting the stream and the database`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const { devices, ids, framesA, framesB } = await prepare(db.url, p, perDevice, opts.log);
    const signedAt = Date.now();

    const common = ['--database-url', db.url, '--bus', 'jetstream', '--nats-url', NATS_URL, '--stream', stream, '--subject-prefix', prefix, '--network-id', String(NETWORK), '--skew', p.skew];
    broker = new PulseProcess('broker', [
      'broker', ...common,
      '--mqtt-host', '127.0.0.1', '--mqtt-port', '0', '--ws-port', 'off', '--tls-port', 'off', '--wss-port', 'off', '--metrics-port', 'off',
      '--publish-rate', '1000000', '--publish-burst', '1000000', '--connect-rate', '1000000', '--connect-burst', '1000000',
      '--log-level', 'info',
    ]);
    const port = Number((await broker.waitForLog(/"msg":"broker listening".*?"mqtt":"[^"]*:(\d+)"/, 60_000))[1]);
    conns = await openConnections(port, devices);
    opts.log(`broker pid ${broker.pid} on port ${port}; ${conns.length} device connections`);

    // Bounded: a phase stops at this deadline even if the pipeline is far slower than offered
    // (frames not written by then are reported as not sent).
    const deadlineMs = Math.max(120, p.seconds * 6) * 1000;
    // Phase A: broker only (no oracle consuming): PUBACK = JetStream PubAck received.
    const a = await driveRecorded(conns, framesA, WINDOW, p.rate, deadlineMs);
    const aRate = a.acked / a.seconds;
    const aSorted = sortedOf(a.pubackMs);
    opts.log(`broker only: ${a.acked}/${a.sent} acknowledged, ${Math.round(aRate)} PUBACKs/s, PUBACK p50 ${percentile(aSorted, 50).toFixed(1)} ms p99 ${percentile(aSorted, 99).toFixed(1)} ms`);

    // Empty the stream so the oracle sees only the end-to-end phase.
    nc = await natsConnect({ servers: NATS_URL.split(','), name: 'pulse-bench-e2e' });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.purge(stream);

    await listener.connect();
    const commitAt = new Map<number, number>();
    listener.on('notification', (n) => {
      if (n.channel === CHANNEL && n.payload !== undefined) commitAt.set(Number(n.payload), wallMs());
    });
    await listener.query(`LISTEN ${CHANNEL}`);
    listening = true;

    oracle = new PulseProcess('oracle', ['oracle', ...common, '--durable', durable, '--ingest-workers', '2', '--http-host', '127.0.0.1', '--http-port', '0']);
    await oracle.waitForLog(/"msg":"ingest started"/, 60_000);
    opts.log(`oracle pid ${oracle.pid}: 2 ingest workers, batch 500 (defaults); end-to-end phase at ${p.rate}/s for ${p.seconds} s`);

    // Phase B: end to end.
    const b = await driveRecorded(conns, framesB, WINDOW, p.rate, deadlineMs);
    const bDriveRate = b.acked / b.seconds;
    opts.log(`end to end: ${b.acked}/${b.sent} acknowledged in ${b.seconds.toFixed(1)} s (${Math.round(bDriveRate)} PUBACKs/s); waiting for the oracle to commit them`);
    const stored = await waitForRows(listener, b.acked, opts.quick ? 20_000 : 60_000, opts.log);
    // Something is wrong when acknowledged heartbeats stay uncommitted: show what the oracle said.
    if (stored < b.acked) opts.log(`oracle log (tail):\n${oracle.log.slice(-3000)}`);
    const { rows } = await listener.query<{ device_id: string; seq: string; x: string; stored_ms: number; received_at: string }>(
      'SELECT device_id, seq::text AS seq, xmin::text AS x, extract(epoch FROM stored_at)::float8 * 1000 AS stored_ms, received_at::text AS received_at FROM heartbeats',
    );
    // A NOTIFY can arrive just after the count saw its rows.
    const xids = new Set(rows.map((r) => Number(r.x)));
    for (let i = 0; i < 50 && [...xids].some((x) => !commitAt.has(x)); i++) await new Promise((r) => setTimeout(r, 100));
    const [rej] = (await listener.query<{ n: number }>('SELECT count(*)::integer AS n FROM rejections')).rows;

    // Join acknowledged frames with rows: loss, latencies, committed rate.
    const indexOf = new Map(ids.map((id, i) => [id, i]));
    const firstSeqB = 1 + perDevice;
    const storedFlags = devices.map(() => new Uint8Array(perDevice));
    const commitLatency: number[] = [];
    const startLatency: number[] = [];
    const brokerLatency: number[] = [];
    let lastCommit = 0;
    let noNotify = 0;
    for (const r of rows) {
      const i = indexOf.get(r.device_id);
      const k = Number(r.seq) - firstSeqB;
      if (i === undefined || k < 0 || k >= perDevice) continue;
      storedFlags[i]![k] = 1;
      const sent = b.sentAtMs[i]![k]!;
      const c = commitAt.get(Number(r.x));
      if (c === undefined) noNotify++;
      else {
        commitLatency.push(c - sent);
        lastCommit = Math.max(lastCommit, c);
      }
      startLatency.push(r.stored_ms - sent);
      brokerLatency.push(Number(r.received_at) - sent);
    }
    let lost = 0;
    let storedNotAcked = 0;
    for (let i = 0; i < devices.length; i++)
      for (let k = 0; k < perDevice; k++) {
        if (b.ackedFlags[i]![k] === 1 && storedFlags[i]![k] === 0) lost++;
        if (b.ackedFlags[i]![k] === 0 && storedFlags[i]![k] === 1) storedNotAcked++;
      }
    const committed = commitLatency.length + noNotify;
    const committedRate = lastCommit > 0 ? committed / ((lastCommit - b.startedAtMs) / 1000) : 0;
    const cs = sortedOf(commitLatency);
    const ss = sortedOf(startLatency);
    const rs = sortedOf(brokerLatency);
    const bs = sortedOf(b.pubackMs);
    const fmt = (ms: number) => (ms >= 100 ? Math.round(ms).toString() : ms.toFixed(1));
    opts.log(`committed ${committed} rows (${stored} counted), ${rej?.n ?? 0} rejections, lost ${lost}, stored-not-acked ${storedNotAcked}; ${Math.round(committedRate)}/s`);
    opts.log(`publish → broker receive p50 ${fmt(percentile(rs, 50))} ms; → ingest tx start p50 ${fmt(percentile(ss, 50))} p99 ${fmt(percentile(ss, 99))} ms; → committed p50 ${fmt(percentile(cs, 50))} p99 ${fmt(percentile(cs, 99))} ms; PUBACK p50 ${fmt(percentile(bs, 50))} p99 ${fmt(percentile(bs, 99))} ms`);

    const full = !opts.quick;
    const load = `${p.devices} devices × ${perDevice} heartbeats, offered ${p.rate.toLocaleString('en-US')}/s for ${p.seconds} s, window ${WINDOW}; --skew ${p.skew} on broker and oracle (pre-signed ${Math.round((Date.now() - signedAt) / 1000)} s before the end), publish/connect limits raised`;
    const sustained = committedRate >= 10_000 && b.seconds >= 55 && b.acked === b.sent;
    const p99 = percentile(cs, 99);
    return [
      {
        name: 'e2e: accepted-and-committed heartbeats/s (devices → broker → JetStream → oracle → PostgreSQL)',
        figure: committedRate,
        unit: 'heartbeats/s',
        comparison: { name: 'same load, same broker, oracle not running: PUBACKs/s into JetStream', figure: aRate },
        ...(full ? { target: '>= 10000 for 60 s', targetMet: sustained } : {}),
        note: `${opts.quick ? 'quick run (target applies to the full run); ' : ''}${load}; committed rows ÷ (last commit − first publish); end-to-end phase PUBACKs ${Math.round(bDriveRate)}/s`,
      },
      {
        name: 'e2e: publish → committed row p50',
        figure: percentile(cs, 50),
        unit: 'ms',
        comparison: { name: 'broker-only PUBACK p50', figure: percentile(aSorted, 50) },
        note: `socket write → NOTIFY from the inserting transaction received (commit visible); → broker receive ${fmt(percentile(rs, 50))} ms, → ingest tx start ${fmt(percentile(ss, 50))} ms`,
      },
      {
        name: 'e2e: publish → committed row p99',
        figure: p99,
        unit: 'ms',
        comparison: { name: 'broker-only PUBACK p99', figure: percentile(aSorted, 99) },
        ...(full ? { target: '<= 250', targetMet: p99 <= 250 } : {}),
        note: `→ ingest tx start p99 ${fmt(percentile(ss, 99))} ms; end-to-end phase PUBACK p99 ${fmt(percentile(bs, 99))} ms`,
      },
      {
        name: 'e2e: heartbeats lost (acknowledged to the device, no committed row)',
        figure: lost,
        unit: 'heartbeats',
        comparison: { name: 'acknowledged', figure: b.acked },
        target: '0',
        targetMet: lost === 0 && b.acked > 0,
        note: `${b.sent} of ${p.devices * perDevice} sent, ${b.acked} acknowledged, ${committed} committed, ${storedNotAcked} committed but not acknowledged (allowed: at least once), ${rej?.n ?? 0} rejected`,
      },
    ];
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}
