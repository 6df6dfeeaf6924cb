// Forward-only numbered migrations (migrations/NNN_name.sql), applied by `pulse migrate` and at
// oracle start. A session-level advisory lock serializes runners, so two oracles starting at once
// never race: the second waits, then finds nothing left to apply. Each file runs in its own
// transaction together with its schema_migrations row, so a failure leaves no half-applied file.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Store } from './store.ts';
import { PulseError } from '../../shared/errors.ts';

/** Advisory lock key: the ASCII bytes "PULSEMIG" as a signed 64-bit integer. */
export const MIGRATION_LOCK_KEY = '5788616816583330119';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));

export type Migration = { readonly version: number; readonly name: string; readonly sql: string; readonly checksum: string };

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const m = /^(\d{3})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) continue;
    const sql = readFileSync(join(dir, file), 'utf8');
    out.push({ version: Number(m[1]), name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  out.forEach((mig, i) => {
    if (mig.version !== i + 1) throw new PulseError('MIGRATION_FAILED', `migrations must be numbered 001, 002, … without gaps; found ${mig.name} at position ${i + 1}`);
  });
  return out;
}

export type MigrateResult = { readonly applied: readonly string[]; readonly alreadyApplied: number };

export async function migrate(store: Store, migrations: readonly Migration[] = loadMigrations()): Promise<MigrateResult> {
  return store.session(async (conn) => {
    await conn.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    try {
      await conn.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY CHECK (version >= 1),
        name text NOT NULL,
        checksum text NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = await conn.query<{ version: number; name: string; checksum: string }>('SELECT version, name, checksum FROM schema_migrations ORDER BY version');
      const byVersion = new Map(done.map((r) => [r.version, r]));
      for (const row of done) {
        const mig = migrations.find((m) => m.version === row.version);
        if (mig !== undefined && mig.checksum !== row.checksum)
          throw new PulseError('MIGRATION_CHANGED', `${row.name} was applied with checksum ${row.checksum.slice(0, 12)}… but the file now hashes to ${mig.checksum.slice(0, 12)}…`);
      }
      const applied: string[] = [];
      for (const mig of migrations) {
        if (byVersion.has(mig.version)) continue;
        await conn.exec('BEGIN');
        try {
          await conn.exec(mig.sql);
          await conn.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [mig.version, mig.name, mig.checksum]);
          await conn.exec('COMMIT');
        } catch (e) {
          await conn.exec('ROLLBACK').catch(() => undefined);
          throw new PulseError('MIGRATION_FAILED', `${mig.name}: ${(e as Error).message}`, { cause: e });
        }
        applied.push(mig.name);
      }
      return { applied, alreadyApplied: done.length };
    } finally {
      await conn.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    }
  });
}
