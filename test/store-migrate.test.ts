// Migrations: forward-only, recorded, checksummed, serialized by an advisory lock; the schema's
// CHECK constraints hold on both PostgreSQL and PGlite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { backends, postgresBackend } from '../oracle/store/testing.ts';
import { loadMigrations, migrate } from '../oracle/store/migrate.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import type { Store } from '../oracle/store/store.ts';
import { isPulseError } from '../shared/errors.ts';

const pgOk = await needs('postgres');

const EPOCH_ROW = `INSERT INTO epochs (epoch, first_slot, slot_count, slot_ms, params_version, params_hash, scorer_version, emission, allocated, unallocated,
                                       unallocated_parts, cumulative_total, root, devices, owners, heartbeats)
                   VALUES ($1, 0, 60, 60000, 1, '0x${'0'.repeat(64)}', 'pulse-scorer/1', 1, 1, 0, '[]', 1, NULL, 1, 1, 1)`;
const SCORE_ROW = `INSERT INTO epoch_device_scores (epoch, device_id, owner, credited_slots, slot_count, uptime_bps, contribution, metrics, eligible, reasons,
                                                    availability_reward, contribution_reward)
                   VALUES ($1, $2, $3, 0, 60, 0, 0, '[]', false, '{}', 0, 0)`;

for (const backend of backends(pgOk)) {
  describe(`migrations on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open({ migrate: false }));
    });
    afterAll(async () => cleanup());

    it('applies every file once, records it, and is a no-op the second time', async () => {
      const files = loadMigrations();
      const first = await migrate(store);
      expect(first.applied).toEqual(files.map((f) => f.name));
      const second = await migrate(store);
      expect(second.applied).toEqual([]);
      expect(second.alreadyApplied).toBe(files.length);
      const rows = await store.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(files.map((f) => f.version));
      const mode = await store.query<{ value: string }>("SELECT value FROM oracle_settings WHERE key = 'storage_mode'");
      expect(mode[0]?.value).toBe('plain'); // no TimescaleDB on these machines (docs/storage.md)
    });

    it('refuses an edited, already applied migration', async () => {
      const files = loadMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'f'.repeat(64) } : m));
      await expect(migrate(store, files)).rejects.toSatisfy((e: unknown) => isPulseError(e, 'MIGRATION_CHANGED'));
    });

    it('rolls back a failing migration completely', async () => {
      const files = [...loadMigrations(), { version: 99, name: '099_broken.sql', sql: 'CREATE TABLE half_done (a int); SELECT 1/0;', checksum: 'a'.repeat(64) }];
      await expect(migrate(store, files)).rejects.toSatisfy((e: unknown) => isPulseError(e, 'MIGRATION_FAILED'));
      const t = await store.query("SELECT 1 FROM information_schema.tables WHERE table_name = 'half_done'");
      expect(t).toHaveLength(0);
      const v = await store.query('SELECT 1 FROM schema_migrations WHERE version = 99');
      expect(v).toHaveLength(0);
    });

    it('enforces invariants with CHECK constraints', async () => {
      const id = 'ab'.repeat(32);
      await expect(store.query("INSERT INTO devices (device_id, registered_via) VALUES ('NOT-HEX', 'operator')")).rejects.toThrow();
      await expect(store.query('INSERT INTO devices (device_id, registered_via, owner) VALUES ($1, $2, $3)', [id, 'operator', new Uint8Array(20)])).rejects.toThrow();
      await expect(store.query("INSERT INTO devices (device_id, registered_via) VALUES ($1, 'onboarding')", [id])).rejects.toThrow(); // onboarding needs maker, model, owner
      await store.query("INSERT INTO devices (device_id, registered_via) VALUES ($1, 'operator')", [id]);
      await expect(store.query("UPDATE devices SET status = 'gone' WHERE device_id = $1", [id])).rejects.toThrow();
      await expect(store.query('UPDATE devices SET owner_nonce = $2 WHERE device_id = $1', [id, (1n << 64n).toString()])).rejects.toThrow();
      await store.query('UPDATE devices SET owner_nonce = $2 WHERE device_id = $1', [id, ((1n << 64n) - 1n).toString()]);
      await expect(store.query("INSERT INTO rejections (reason, detail, raw, raw_length, received_at) VALUES ('bad reason', '', '\\x'::bytea, 0, 0)")).rejects.toThrow();
      await expect(store.query('INSERT INTO slot_metric_sums (device_id, slot, metric_id, total) VALUES ($1, 1, 70000, 1)', [id])).rejects.toThrow();
      // 006 rewrote the hex-format checks of the bulk-written tables without regexes: same rule.
      const hb = (device: string, key: string) =>
        store.query("INSERT INTO heartbeats (device_id, seq, key_id, ts, at, slot, received_at, raw, metrics) VALUES ($1, 1, $2, 0, now(), 0, 0, $3, '{}')", [device, key, new Uint8Array(119)]);
      for (const bad of ['AB'.repeat(32), 'ab'.repeat(31), `${'ab'.repeat(32)}0`, `${'ab'.repeat(31)}a\n`, `${'ab'.repeat(31)}é`]) {
        await expect(hb(bad, id), bad).rejects.toThrow(/heartbeats_device_id_check/);
        await expect(hb(id, bad), bad).rejects.toThrow(/heartbeats_key_id_check/);
      }
      await hb(id, id);
      for (const bad of [`0x${'A'.repeat(40)}`, `0X${'a'.repeat(40)}`, `0x${'a'.repeat(41)}`, `0x${'a'.repeat(39)}`])
        await expect(store.query('INSERT INTO cumulative_rewards (owner, cumulative, last_epoch) VALUES ($1, 1, 0)', [bad]), bad).rejects.toThrow(/cumulative_rewards_owner_check/);
      await store.query('INSERT INTO cumulative_rewards (owner, cumulative, last_epoch) VALUES ($1, 1, 0)', [`0x${'a'.repeat(40)}`]);
      // 009 rewrote them again as "C"-collation regexes (cheaper still): the same rule on every table.
      const badIds = ['AB'.repeat(32), 'ab'.repeat(31), `${'ab'.repeat(32)}0`, `${'ab'.repeat(31)}a\n`, `${'ab'.repeat(31)}é`, `${'ab'.repeat(31)}ag`, `${'ab'.repeat(31)}a `];
      const badOwners = [`0x${'A'.repeat(40)}`, `0X${'a'.repeat(40)}`, `0x${'a'.repeat(41)}`, `0x${'a'.repeat(39)}`, `0x${'a'.repeat(38)}é`, `1x${'a'.repeat(40)}`];
      for (const bad of badIds) await expect(store.query("INSERT INTO devices (device_id, registered_via) VALUES ($1, 'operator')", [bad]), bad).rejects.toThrow(/devices_device_id_check/);
      await store.query("INSERT INTO reward_params (version, params, params_hash, first_epoch) VALUES (1, '{}', $1, 0)", [`0x${'0'.repeat(64)}`]);
      await store.query(EPOCH_ROW, ['0']);
      const score = (device: string, owner: string | null) => store.query(SCORE_ROW, ['0', device, owner]);
      for (const bad of badIds) await expect(score(bad, null), bad).rejects.toThrow(/epoch_device_scores_device_id_check/);
      for (const bad of badOwners) {
        await expect(score(id, bad), bad).rejects.toThrow(/epoch_device_scores_owner_check/);
        await expect(store.query('INSERT INTO epoch_rewards (epoch, owner, amount, cumulative) VALUES (0, $1, 1, 1)', [bad]), bad).rejects.toThrow(/epoch_rewards_owner_check/);
        await expect(store.query('INSERT INTO cumulative_rewards (owner, cumulative, last_epoch) VALUES ($1, 1, 0)', [bad]), bad).rejects.toThrow(/cumulative_rewards_owner_check/);
      }
      await score(id, `0x${'0123456789abcdef'.repeat(3).slice(0, 40)}`);
    });

    // 009 checks the epoch reference of scores and rewards once per statement instead of once per
    // row (a foreign key): the same outcomes, with the foreign key's SQLSTATE.
    it('refuses scores and rewards of an unknown epoch, and an epoch deleted or renumbered under them', async () => {
      const id = 'cd'.repeat(32);
      const owner = `0x${'c'.repeat(40)}`;
      await store.query(EPOCH_ROW, ['5']);
      await expect(store.query(SCORE_ROW, ['6', id, null])).rejects.toMatchObject({ code: '23503' });
      await expect(store.copyRows('epoch_rewards', ['epoch', 'owner', 'amount', 'cumulative'], [['5', owner, '1', '1'], ['7', owner, '1', '1']])).rejects.toMatchObject({ code: '23503' });
      await expect(store.query('UPDATE epoch_device_scores SET epoch = 8 WHERE epoch = 0')).rejects.toMatchObject({ code: '23503' });
      expect(await store.query('SELECT 1 FROM epoch_rewards WHERE epoch = 5')).toHaveLength(0); // the whole COPY was refused
      await store.copyRows('epoch_rewards', ['epoch', 'owner', 'amount', 'cumulative'], [['5', owner, '1', '1']]);
      await store.query(SCORE_ROW, ['5', id, owner]);
      await expect(store.query('DELETE FROM epochs WHERE epoch = 5')).rejects.toMatchObject({ code: '23503' });
      await expect(store.query('UPDATE epochs SET epoch = 9 WHERE epoch = 5')).rejects.toMatchObject({ code: '23503' });
      await store.query("UPDATE epochs SET status = 'bundled' WHERE epoch = 5"); // other columns change freely
      await store.query('DELETE FROM epoch_device_scores WHERE epoch = 5');
      await expect(store.query('DELETE FROM epochs WHERE epoch = 5')).rejects.toMatchObject({ code: '23503' }); // its rewards remain
      await store.query('DELETE FROM epoch_rewards WHERE epoch = 5');
      await store.query('DELETE FROM epochs WHERE epoch = 5');
      expect(await store.query('SELECT 1 FROM epochs WHERE epoch = 5')).toHaveLength(0);
    });

    it('keeps the epoch checks when a temporary table shadows epochs, under REPEATABLE READ, and on TRUNCATE', async () => {
      // A temporary "epochs" holding epoch 777 comes first on a default search_path; the trigger's
      // own search_path ignores it.
      await expect(
        store.transaction(async (tx) => {
          await tx.query('CREATE TEMP TABLE epochs (epoch bigint) ON COMMIT DROP');
          await tx.query('INSERT INTO epochs VALUES (777)');
          await tx.query(SCORE_ROW, ['777', 'ef'.repeat(32), null]);
        }),
      ).rejects.toMatchObject({ code: '23503' });
      await store.query(EPOCH_ROW, ['6']);
      await expect(
        store.transaction(async (tx) => {
          await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
          await tx.query('DELETE FROM epochs WHERE epoch = 6');
        }),
      ).rejects.toThrow(/needs READ COMMITTED/);
      await expect(store.query('TRUNCATE epochs CASCADE')).rejects.toThrow(/cannot truncate epochs/);
      expect(await store.query('SELECT 1 FROM epochs WHERE epoch = 6')).toHaveLength(1);
    });
  });
}

describe.skipIf(!pgOk)('migrations race on PostgreSQL', () => {
  it('two runners at once: the advisory lock lets exactly one apply each file', async () => {
    const { store, url, cleanup } = await postgresBackend.open({ migrate: false });
    const other = new PgStore({ url: url! });
    try {
      const [a, b] = await Promise.all([migrate(store), migrate(other)]);
      const total = loadMigrations().length;
      expect(a.applied.length + b.applied.length).toBe(total);
      expect([a.applied.length, b.applied.length].sort()).toEqual([0, total]);
    } finally {
      await other.close();
      await cleanup();
    }
  });
});
