// Storage per accepted heartbeat on this schema (docs/scaling.md §Storage anchor), measured on plain
// PostgreSQL: a fresh database, a fleet sending one heartbeat a minute (so each heartbeat opens its
// own slot rollup, as in production with the default 60 s slot), written through the real ingest
// transaction (oracle/ingest/write-batch.ts), then pg_total_relation_size (heap + indexes + TOAST)
// of every table ingest writes, divided by the heartbeats stored. Not a timed workload (no
// `run`/`description`, so `npm run bench` skips it); run it with `npx tsx bench/e2e-storage.ts`.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { benchDevice } from '../broker/load-client.ts';
import { signHeartbeat, decodeHeartbeat } from '../shared/protocol/heartbeat.ts';
import { freshDatabase } from '../test/support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { writeBatch } from '../oracle/ingest/write-batch.ts';
import type { Candidate } from '../oracle/ingest/classify.ts';
import type { Store } from '../oracle/store/store.ts';
import { toHex } from '../shared/hex.ts';

export type StorageFigures = {
  readonly heartbeats: number;
  readonly rawBytesPerHeartbeat: number;
  /** Bytes per stored heartbeat, by table (heap + indexes + TOAST). */
  readonly perTable: Readonly<Record<string, number>>;
  readonly totalPerHeartbeat: number;
};

const TABLES = ['heartbeats', 'slot_rollups', 'slot_metric_sums'] as const;

/** Bytes per stored heartbeat of the tables ingest writes, in the database behind `store`. */
export async function storagePerHeartbeat(store: Store): Promise<StorageFigures> {
  const [h] = await store.query<{ n: number; raw: number }>('SELECT count(*)::integer AS n, coalesce(avg(octet_length(raw)), 0)::float8 AS raw FROM heartbeats');
  const n = h!.n;
  const perTable: Record<string, number> = {};
  let total = 0;
  for (const t of TABLES) {
    const [r] = await store.query<{ bytes: string }>('SELECT pg_total_relation_size($1::regclass)::text AS bytes', [t]);
    const per = n > 0 ? Number(r!.bytes) / n : 0;
    perTable[t] = per;
    total += per;
  }
  return { heartbeats: n, rawBytesPerHeartbeat: h!.raw, perTable, totalPerHeartbeat: total };
}

/** Fill a fresh database with `devices` × `perDevice` heartbeats one minute apart, `metrics` metrics each, and measure. */
export async function measureStorage(devices: number, perDevice: number, metrics: number): Promise<StorageFigures> {
  const db = await freshDatabase('pulse_bench_storage');
  const store = new PgStore({ url: db.url, maxConnections: 2 });
  try {
    await migrate(store);
    const fleet = Array.from({ length: devices }, () => benchDevice(randomBytes(32)));
    const ids = fleet.map((d) => d.id);
    await store.query("INSERT INTO devices (device_id, registered_via) SELECT unnest($1::text[]), 'operator'", [ids]);
    await store.query('INSERT INTO device_keys (key_id, device_id) SELECT k, k FROM unnest($1::text[]) AS k', [ids]);
    const t0 = Math.floor(Date.now() / 60_000) * 60_000 - perDevice * 60_000;
    for (let s = 1; s <= perDevice; s++) {
      const ts = t0 + s * 60_000 + 1_000;
      const batch: Candidate[] = fleet.map((d) => {
        const raw = signHeartbeat(
          { networkId: 1, publicKey: d.publicKey, seq: BigInt(s), timestamp: BigInt(ts), metrics: Array.from({ length: metrics }, (_, i) => ({ id: i + 1, value: BigInt(1 + ((s * 7 + i) % 500)) })) },
          d.sign,
        );
        const hb = decodeHeartbeat(raw);
        if (!hb.ok) throw new Error(hb.message);
        return { heartbeat: hb.value, slot: BigInt(Math.floor(ts / 60_000)), receivedAt: ts + 20 };
      });
      const out = await writeBatch(store, batch, []);
      if (out.inserted !== batch.length) throw new Error(`stored ${out.inserted} of ${batch.length}`);
    }
    await store.query('VACUUM ANALYZE heartbeats, slot_rollups, slot_metric_sums');
    return await storagePerHeartbeat(store);
  } finally {
    await store.close();
    await db.drop();
  }
}

/**
 * Bytes per heartbeat of the `hb` lines of an epoch bundle (docs/bundle.md §hb: sorted by device,
 * then seq; one JSON line each), uncompressed and gzipped: `devices` × `slots` heartbeats, one a minute.
 */
export function bundleBytesPerHeartbeat(devices: number, slots: number, metrics: number): { readonly plain: number; readonly gzip: number } {
  const fleet = Array.from({ length: devices }, () => benchDevice(randomBytes(32))).sort((a, b) => (a.id < b.id ? -1 : 1));
  const t0 = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const lines: string[] = [];
  for (const d of fleet)
    for (let s = 1; s <= slots; s++) {
      const ts = t0 + (s - 1) * 60_000 + 1_000;
      const raw = signHeartbeat({ networkId: 1, publicKey: d.publicKey, seq: BigInt(s), timestamp: BigInt(ts), metrics: Array.from({ length: metrics }, (_, i) => ({ id: i + 1, value: BigInt(1 + ((s * 7 + i) % 500)) })) }, d.sign);
      lines.push(`${JSON.stringify({ t: 'hb', device: d.id, receivedAt: ts + 20, raw: toHex(raw) })}\n`);
    }
  const text = Buffer.from(lines.join(''));
  return { plain: text.length / lines.length, gzip: gzipSync(text).length / lines.length };
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const metrics of [1, 2]) {
    const f = await measureStorage(500, 40, metrics);
    const tables = Object.entries(f.perTable).map(([t, b]) => `${t} ${Math.round(b)} B`).join(', ');
    const b = bundleBytesPerHeartbeat(200, 60, metrics);
    console.log(`${metrics} metric(s): ${f.heartbeats} heartbeats, raw ${Math.round(f.rawBytesPerHeartbeat)} B; per heartbeat: ${tables}; total ${Math.round(f.totalPerHeartbeat)} B; bundle hb line ${Math.round(b.plain)} B, gzip ${Math.round(b.gzip)} B`);
  }
}
