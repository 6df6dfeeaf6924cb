// `pulse migrate`: apply the forward-only migrations in migrations/ (docs/storage.md §Migrations).
// `pulse oracle` runs the same step at start; this command exists for deploy pipelines that migrate
// before rolling out new oracle processes.
import { parseArgs } from 'node:util';
import { mkdirSync } from 'node:fs';
import { usageErrors } from './hb.ts';
import { loadOracleConfig } from '../../oracle/config.ts';

export const summary = 'Apply database migrations (PostgreSQL via DATABASE_URL, or the embedded PGlite data dir)';

const HELP = `Usage: pulse migrate [--database-url URL | --data-dir DIR]

Applies every migrations/NNN_*.sql not yet recorded in schema_migrations, each in its own
transaction, under a PostgreSQL advisory lock (two runners never race). Forward-only: an applied
file that was edited stops the run with MIGRATION_CHANGED.
  --database-url  PostgreSQL URL [DATABASE_URL]; empty uses embedded PGlite
  --data-dir      PGlite data directory [PULSE_DATA_DIR; default data/pglite]`;

export async function run(argv: string[]): Promise<number> {
  const { values } = usageErrors(() =>
    parseArgs({ args: argv, options: { 'database-url': { type: 'string' }, 'data-dir': { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true }),
  );
  if (values.help === true) {
    console.log(HELP);
    return 0;
  }
  const cfg = loadOracleConfig({ 'database-url': values['database-url'], 'data-dir': values['data-dir'] });
  const { openStore } = await import('../../oracle/store/open-store.ts');
  const { migrate } = await import('../../oracle/store/migrate.ts');
  if (cfg.databaseUrl === '' && cfg.dataDir !== 'memory://') mkdirSync(cfg.dataDir, { recursive: true });
  const store = await openStore({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir, maxConnections: 2 });
  try {
    const r = await migrate(store);
    const mode = await store.query<{ value: string }>("SELECT value FROM oracle_settings WHERE key = 'storage_mode'");
    console.log(JSON.stringify({ store: store.kind, applied: r.applied, alreadyApplied: r.alreadyApplied, storageMode: mode[0]?.value ?? null }));
    return 0;
  } finally {
    await store.close();
  }
}
