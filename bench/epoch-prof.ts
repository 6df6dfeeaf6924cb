// Profiling helper for issue 5's close target (not a workload: it exports no `run`, and its main
// only runs when started directly). It loads the bench/epoch.ts fixture into a database it keeps (or
// reuses one given with --db), then closes epoch 0 several times, each in a transaction that is
// rolled back instead of committed, timing every statement and the JavaScript between them. Figures
// are wall time, this process's CPU time and the PostgreSQL backend's (from /proc); before the
// rollback it prints digests of every table the close wrote, so a change can be checked for
// sameness. Run it with `node --import tsx --cpu-prof` for a profile.
//
//   npx tsx bench/epoch-prof.ts [--devices 100000] [--db pulse_prof_epoch_xxxx] [--runs 3] [--drop]
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { DATABASE_URL } from '../test/support/services.ts';
import { PgStore, pgSql } from '../oracle/store/pg-store.ts';
import type { Row, Sql, Store } from '../oracle/store/store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { closeNextEpoch } from '../oracle/epochs/close-epoch.ts';
import { epochEndMs } from '../shared/epoch-timing.ts';
import { loadEpochFixture, params, timing } from './epoch.ts';
import { loadAverage, ownCpuMs, procCpuMs } from './cpu-time.ts';

type Step = { readonly what: string; readonly wallMs: number; readonly cpuMs: number; readonly pgCpuMs: number };

const DIGEST = `
  SELECT 'epochs' AS what, md5(string_agg((to_jsonb(t) - 'closed_at')::text, E'\\n' ORDER BY epoch)) AS md5 FROM epochs t
  UNION ALL SELECT 'epoch_device_scores', md5(string_agg(t::text, E'\\n' ORDER BY epoch, device_id)) FROM epoch_device_scores t
  UNION ALL SELECT 'epoch_rewards', md5(string_agg(t::text, E'\\n' ORDER BY epoch, owner)) FROM epoch_rewards t
  UNION ALL SELECT 'cumulative_rewards', md5(string_agg(t::text, E'\\n' ORDER BY owner)) FROM cumulative_rewards t
  UNION ALL SELECT 'epoch_trees', md5(string_agg(t::text, E'\\n' ORDER BY epoch)) FROM epoch_trees t
  UNION ALL SELECT 'epoch_cursor', md5(string_agg(t::text, E'\\n')) FROM epoch_cursor t`;

/** A Store whose transactions always roll back, recording each statement and the gaps between them. */
function rollbackStore(store: PgStore, steps: Step[], digests: string[]): Store {
  let backend = 0;
  const now = () => ({ wall: performance.now(), cpu: ownCpuMs(), pg: backend === 0 ? 0 : (procCpuMs(backend) ?? NaN) });
  let mark = now();
  const lap = (what: string): void => {
    const t = now();
    steps.push({ what, wallMs: t.wall - mark.wall, cpuMs: t.cpu - mark.cpu, pgCpuMs: t.pg - mark.pg });
    mark = t;
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
        backend = Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
        await client.query('BEGIN');
        mark = now();
        try {
          const out = await fn(timed(pgSql(client)));
          lap('js');
          // What the close wrote, hashed before the rollback: equal digests mean identical results.
          const d = await client.query<{ what: string; md5: string }>(DIGEST);
          digests.push(...d.rows.map((r) => `${r.what} ${r.md5}`));
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
      const digests: string[] = [];
      const load = loadAverage();
      const t0 = performance.now();
      const c0 = ownCpuMs();
      const out = await closeNextEpoch(rollbackStore(store, steps, digests), timing, params, epochEndMs(timing, 0));
      const wall = performance.now() - t0;
      const cpu = ownCpuMs() - c0;
      if (out.kind !== 'closed') throw new Error('epoch 0 did not close');
      const pgCpu = steps.reduce((x, s) => x + s.pgCpuMs, 0);
      console.log(`run ${r + 1}: close ${(wall / 1000).toFixed(2)} s wall, ${(cpu / 1000).toFixed(2)} s CPU in node, ${(pgCpu / 1000).toFixed(2)} s CPU in the PostgreSQL backend (load ${load}); root ${out.root}`);
      console.log('    wall ms   node cpu   pg cpu');
      if (r === 0) console.log(`  digests of what the close wrote:\n    ${digests.join('\n    ')}`);
      for (const s of steps) if (s.wallMs >= 5) console.log(`  ${[s.wallMs, s.cpuMs, s.pgCpuMs].map((x) => x.toFixed(0).padStart(8)).join(' ')}  ${s.what}`);
    }
  } finally {
    await store.close();
    if (values.drop) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) await main();
