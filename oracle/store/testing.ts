// Test fixture: the same suites run on both Store implementations (issue 4: one storage interface,
// the same test suite on both). PostgreSQL gets a fresh database per store; PGlite runs in memory.
import { freshDatabase } from '../../test/support/services.ts';
import { PgStore } from './pg-store.ts';
import { PgliteStore } from './pglite-store.ts';
import { migrate } from './migrate.ts';
import type { Store } from './store.ts';

export type Backend = {
  readonly name: 'postgres' | 'pglite';
  /** A new, migrated, empty store and its cleanup. */
  open(options?: { readonly migrate?: boolean }): Promise<{ store: Store; url?: string; cleanup: () => Promise<void> }>;
};

export const pgliteBackend: Backend = {
  name: 'pglite',
  async open(options = {}) {
    const store = await PgliteStore.open();
    if (options.migrate !== false) await migrate(store);
    return { store, cleanup: () => store.close() };
  },
};

export const postgresBackend: Backend = {
  name: 'postgres',
  async open(options = {}) {
    const db = await freshDatabase();
    const store = new PgStore({ url: db.url, maxConnections: 8 });
    if (options.migrate !== false) await migrate(store);
    return {
      store,
      url: db.url,
      cleanup: async () => {
        await store.close();
        await db.drop();
      },
    };
  },
};

/** Backends to run: PGlite always, PostgreSQL when it is reachable (see needs()). */
export function backends(postgresAvailable: boolean): Backend[] {
  return postgresAvailable ? [postgresBackend, pgliteBackend] : [pgliteBackend];
}
