// The Store contract (oracle/store/store.ts) on both implementations: parameter binding, value
// conventions (BIGINT/NUMERIC as text, BYTEA as Uint8Array), commit and rollback, sessions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { ensureSetting } from '../oracle/store/settings.ts';
import { isPulseError } from '../shared/errors.ts';

const pgOk = await needs('postgres');

for (const backend of backends(pgOk)) {
  describe(`Store on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
      await store.exec('CREATE TABLE t (id bigint PRIMARY KEY, big numeric(40, 0), b bytea, s text)');
    });
    afterAll(async () => cleanup());

    it('binds parameters: metacharacters are data, BIGINT/NUMERIC round-trip as text, BYTEA as bytes', async () => {
      const evil = "'); DROP TABLE t; --\\";
      const bytes = Uint8Array.of(0, 39, 92, 255, 0);
      await store.query('INSERT INTO t (id, big, b, s) VALUES ($1, $2::numeric, $3, $4)', ['9223372036854775807', ((1n << 64n) * 3n).toString(), bytes, evil]);
      const [row] = await store.query<{ id: string; big: string; b: Uint8Array; s: string }>('SELECT id::text AS id, big::text AS big, b, s FROM t');
      expect(row!.id).toBe('9223372036854775807');
      expect(row!.big).toBe(((1n << 64n) * 3n).toString());
      expect([...row!.b]).toEqual([...bytes]);
      expect(row!.s).toBe(evil);
      await expect(store.query('INSERT INTO t (id, s) VALUES (2, $1)', ['nul\u0000inside'])).rejects.toThrow(); // text cannot hold NUL: callers refuse it first
    });

    it('commits on success and rolls back on throw', async () => {
      await store.transaction(async (tx) => {
        await tx.query('INSERT INTO t (id) VALUES (10)');
      });
      await expect(
        store.transaction(async (tx) => {
          await tx.query('INSERT INTO t (id) VALUES (11)');
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      const ids = await store.query<{ id: string }>('SELECT id::text AS id FROM t WHERE id BETWEEN 10 AND 11 ORDER BY id');
      expect(ids.map((r) => r.id)).toEqual(['10']);
    });

    it('sessions keep session state; settings are fixed once recorded', async () => {
      const v = await store.session(async (c) => {
        await c.query("SELECT set_config('pulse.test', 'x', false)");
        return c.query<{ v: string }>("SELECT current_setting('pulse.test') AS v");
      });
      expect(v[0]!.v).toBe('x');
      await ensureSetting(store, 'slot_interval_ms', '60000');
      await ensureSetting(store, 'slot_interval_ms', '60000');
      await expect(ensureSetting(store, 'slot_interval_ms', '30000')).rejects.toSatisfy((e: unknown) => isPulseError(e, 'STORE_SETTINGS_MISMATCH'));
    });
  });
}
