// Profiling helper for issue 5's close target (not a workload: it exports no `run`, and its main
// only runs when started directly). It loads the bench/epoch.ts fixture into a database it keeps (or
// reuses one given with --db), then closes epoch 0 several times, each in a transaction that is
// rolled back instead of committed, timing every statement and the JavaScript between them. Figures
// are wall time and this process's CPU time; run it with `node --import tsx --cpu-prof` for a profile.
//
//   npx tsx bench/epoch-prof.ts [--devices 100000] [--db pulse_prof_epoch_xxxx] [--runs 3] [--drop]
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DATABASE_URL } from '../test/support/services.ts';
import { PgStore, pgSql } from '../oracle/store/pg-store.ts';
import type { Row, Sql, Store } from '../oracle/store/store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { closeNextEpoch } from '../oracle/epochs/close-epoch.ts';
import { epochEndMs } from '../shared/epoch-timing.ts';
import { loadEpochFixture, params, timing } from './epoch.ts';

type Step = { readonly what: string; readonly wallMs: number; readonly cpuMs: number };

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** A Store whose transactions always roll back, recording each statement and the gaps between them. */
function rollbackStore(store: PgStore, steps: Step[]): Store {
  let mark = { wall: performance.now(), cpu: cpuMs() };
  const lap = (what: string): void => {
    const now = { wall: performance.now(), cpu: cpuMs() };
    steps.push({ what, wallMs: now.wall - mark.wall, cpuMs: now.cpu - mark.cpu });
    mark = now;
  };
  const timed = (inner: Sql): Sql => ({
    query: async <R extends Row>(text: string, ps?: readonly unknown[]) => {
      lap('js');
      const out = await inner.query<R>(text, ps);
      lap(text.replace(/\s+/g, ' ').slice(0, 70));
      return out;
    },
    exec: (script: string) => inner.exec(script),
    copyRows: async (table, columns, rows) => {
      lap('js');
      const n = await inner.copyRows(table, columns, rows);
      lap(`COPY ${table}`);
      return n;
    },
  });
  return {
    kind: 'postgres',
    query: (text, ps) => store.query(text, ps),
    exec: (script) => store.exec(script),
    copyRows: (table, columns, rows) => store.copyRows(table, columns, rows),
    session: (fn) => store.session(fn),
    close: () => store.close(),
    transaction: async (fn) => {
      const client = await store.pool.connect();
      try {
        await client.query('BEGIN');
        mark = { wall: performance.now(), cpu: cpuMs() };
        try {
          const out = await fn(timed(pgSql(client)));
          lap('js');
          return out;
        } finally {
          await client.query('ROLLBACK');
        }
      } finally {
        client.release();
      }
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { devices: { type: 'string', default: '100000' }, db: { type: 'string' }, runs: { type: 'string', default: '3' }, drop: { type: 'boolean', default: false } } });
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  const name = values.db ?? `pulse_prof_epoch_${Date.now().toString(36)}`;
  const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  if (!exists) await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  const store = new PgStore({ url: url.toString(), maxConnections: 2 });
  try {
    if (!exists) {
      await migrate(store);
      await loadEpochFixture(store, Number(values.devices), (l) => console.log(l));
      console.log(`kept database ${name}; pass --db ${name} to reuse it`);
    }
    for (let r = 0; r < Number(values.runs); r++) {
      const steps: Step[] = [];
      const load = loadavg().map((x) => x.toFixed(2)).join(' ');
      const t0 = performance.now();
      const c0 = cpuMs();
      const out = await closeNextEpoch(rollbackStore(store, steps), timing, params, epochEndMs(timing, 0));
      const wall = performance.now() - t0;
      const cpu = cpuMs() - c0;
      if (out.kind !== 'closed') throw new Error('epoch 0 did not close');
      console.log(`run ${r + 1}: close ${(wall / 1000).toFixed(2)} s wall, ${(cpu / 1000).toFixed(2)} s CPU in node (load ${load}); root ${out.root}`);
      for (const s of steps) if (s.wallMs >= 5) console.log(`  ${s.wallMs.toFixed(0).padStart(6)} ms wall ${s.cpuMs.toFixed(0).padStart(6)} ms cpu  ${s.what}`);
    }
  } finally {
    await store.close();
    if (values.drop) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
