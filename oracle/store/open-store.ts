// Pick the store from config: PostgreSQL when a database URL is set, embedded PGlite otherwise
// (docs/storage.md §Choosing a store).
import { PgStore } from './pg-store.ts';
import { PgliteStore } from './pglite-store.ts';
import type { Store } from './store.ts';

export type StoreConfig = {
  /** postgres://… ; empty means embedded PGlite. */
  readonly databaseUrl: string;
  /** PGlite data directory; empty or 'memory://' means in memory. */
  readonly dataDir: string;
  readonly maxConnections?: number;
};

export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.databaseUrl !== '') {
    return new PgStore({ url: config.databaseUrl, ...(config.maxConnections !== undefined ? { maxConnections: config.maxConnections } : {}) });
  }
  return PgliteStore.open(config.dataDir === '' ? {} : { dataDir: config.dataDir });
}
