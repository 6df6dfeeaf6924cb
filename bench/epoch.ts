// Workload `epoch`: close one epoch of N devices × 60 slots on PostgreSQL (issue 5 target: 100,000
// devices under 5 s), beside one SQL pass that only reads the same slot rollup rows (count and sums),
// measured in the same run: what any close that aggregates the rollups at close time pays before it
// has scored anything. Pulse's close reads the per-(device, epoch) counters ingest maintains instead.
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { freshDatabase } from '../test/support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { closeNextEpoch } from '../oracle/epochs/close-epoch.ts';
import { ensureCursor } from '../oracle/epochs/epoch-stats.ts';
import { epochEndMs, type EpochTiming } from '../shared/epoch-timing.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';
import type { BenchFigure, BenchOptions } from './result.ts';
import { loadAverage, ownCpuMs, procCpuMs } from './cpu-time.ts';

export const description = 'close an epoch of N devices × 60 slots on PostgreSQL (full: 100,000 devices) beside a bare read of the same rollups';

export const SLOTS = 60;
export const timing: EpochTiming = { genesisMs: 1_800_000_000_000 - (1_800_000_000_000 % 60_000), slotMs: 60_000, epochSlots: SLOTS, graceMs: 0 };
export const params: RewardParams = {
  version: 1,
  emissionPerEpoch: 10n ** 24n,
  availabilityBps: 7000,
  minUptimeBps: 5000,
  metrics: [{ metricId: 1, weight: 1n, capPerSlot: 1_000n, capPerEpoch: 50_000n }],
};

async function copyRows(client: pg.PoolClient, sql: string, rows: Iterable<string>): Promise<void> {
  const stream = client.query(copyFrom(sql));
  await pipeline(Readable.from(rows), stream);
}

function* lines<T>(n: number, f: (i: number) => T): Generator<T> {
  for (let i = 0; i < n; i++) yield f(i);
}

/**
 * Load `devices` devices × 60 slots of rollups into a migrated, empty store with COPY and build the
 * per-(device, epoch) counters, as the workload does before it closes (bench/epoch-prof.ts reuses it).
 */
export async function loadEpochFixture(store: PgStore, devices: number, log: (line: string) => void): Promise<void> {
  const id = (i: number) => i.toString(16).padStart(64, '0');
  // 20,000 distinct owners (several devices each), addresses spread like real ones.
  const owner = (i: number) => `\\\\x${createHash('sha256').update(String(i % 20_000)).digest('hex').slice(0, 40)}`;
  const g = timing.genesisMs / timing.slotMs;
  log(`loading ${devices.toLocaleString('en-US')} devices and ${(devices * SLOTS).toLocaleString('en-US')} slot rollups with COPY`);
  const client = await store.pool.connect();
  try {
    await copyRows(client, 'COPY devices (device_id, owner, registered_via) FROM STDIN', lines(devices, (i) => `${id(i)}\t${owner(i)}\toperator\n`));
    await copyRows(client, 'COPY device_keys (key_id, device_id) FROM STDIN', lines(devices, (i) => `${id(i)}\t${id(i)}\n`));
    // Uptime varies by device (every 7th device misses half its slots) so scores differ.
    const present = (i: number, s: number) => i % 7 !== 0 || s % 2 === 0;
    await copyRows(client, 'COPY slot_rollups (device_id, slot, heartbeats, first_seq, last_seq) FROM STDIN', (function* () {
      for (let i = 0; i < devices; i++) for (let s = 0; s < SLOTS; s++) if (present(i, s)) yield `${id(i)}\t${g + s}\t1\t${s + 1}\t${s + 1}\n`;
    })());
    await copyRows(client, 'COPY slot_metric_sums (device_id, slot, metric_id, total) FROM STDIN', (function* () {
      for (let i = 0; i < devices; i++) for (let s = 0; s < SLOTS; s++) if (present(i, s)) yield `${id(i)}\t${g + s}\t1\t${(i * 31 + s * 17) % 1500}\n`;
    })());
    await client.query('ANALYZE');
  } finally {
    client.release();
  }
  // Ingest keeps the per-(device, epoch) counters as heartbeats arrive (oracle/epochs/epoch-stats.ts);
  // rows loaded with COPY bypass ingest, so build the counters the way ensureCursor does when it
  // first records the layout: one rebuild from the rollups, part of loading, not of the close.
  log('building the per-device epoch counters from the rollups (what ingest maintains as heartbeats arrive)');
  const t = performance.now();
  await ensureCursor(store, timing, params);
  log(`counters built in ${((performance.now() - t) / 1000).toFixed(1)} s`);
}

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  const devices = opts.quick ? 5_000 : 100_000;
  const db = await freshDatabase('pulse_bench_epoch');
  const store = new PgStore({ url: db.url, maxConnections: 4 });
  try {
    await migrate(store);
    await loadEpochFixture(store, devices, opts.log);
    const g = timing.genesisMs / timing.slotMs;
    opts.log('floor: one aggregate pass over the same rollups');
    let t = performance.now();
    await store.query(`SELECT count(*), count(DISTINCT r.device_id), sum(m.total) FROM slot_rollups r JOIN slot_metric_sums m USING (device_id, slot) WHERE r.slot >= $1 AND r.slot < $2`, [String(g), String(g + SLOTS)]);
    const floorMs = performance.now() - t;
    opts.log('closing the epoch');
    // CPU time beside the wall time (the machine is shared): this process's, and that of the one
    // PostgreSQL backend the close runs on: a store of one connection, used just before, so the
    // pool hands the close that same connection.
    const closer = new PgStore({ url: db.url, maxConnections: 1 });
    let cpu: { node: number; pg: number };
    let load: string;
    let closeMs: number;
    let out: Awaited<ReturnType<typeof closeNextEpoch>>;
    try {
      const backend = (await closer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;
      load = loadAverage();
      const cpu0 = { node: ownCpuMs(), pg: procCpuMs(backend) ?? NaN };
      t = performance.now();
      out = await closeNextEpoch(closer, timing, params, epochEndMs(timing, 0));
      closeMs = performance.now() - t;
      const still = (await closer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid'))[0]!.pid;
      if (still !== backend) throw new Error('the close ran on another PostgreSQL connection than the one measured');
      cpu = { node: (ownCpuMs() - cpu0.node) / 1000, pg: ((procCpuMs(backend) ?? NaN) - cpu0.pg) / 1000 }; // NaN: PostgreSQL is not on this machine
    } finally {
      await closer.close();
    }
    if (out.kind !== 'closed') throw new Error('epoch did not close');
    opts.log(`closed: ${out.devices} devices, ${out.owners} owners, root ${out.root}`);
    const cpuNote = `CPU during the close: ${cpu.node.toFixed(2)} s in node, ${cpu.pg.toFixed(2)} s in PostgreSQL; load average ${load} before it`;
    opts.log(cpuNote);
    return [{
      name: `epoch: close ${devices.toLocaleString('en-US')} devices × ${SLOTS} slots (PostgreSQL)`,
      figure: closeMs / 1000,
      unit: 's',
      comparison: { name: 'bare aggregate read of the same rollups', figure: floorMs / 1000 },
      target: devices === 100_000 ? '< 5 s' : undefined,
      ...(devices === 100_000 ? { targetMet: closeMs < 5000, note: cpuNote } : { note: `quick mode: 5,000 devices; the target applies to 100,000. ${cpuNote}` }),
    } as BenchFigure];
  } finally {
    await store.close();
    await db.drop();
  }
}
