// Store on embedded PGlite (PostgreSQL compiled to WASM, in-process): the zero-dependency default
// when DATABASE_URL is absent (../../shared/DESIGN.md §Real components). PGlite is a single
// connection; it serializes statements and transactions itself (a statement issued while a
// transaction runs waits for it), which gives the same isolation the code above expects from
// PostgreSQL row locks.
import { PGlite } from '@electric-sql/pglite';
import type { Row, Sql, Store } from './store.ts';

export type PgliteStoreOptions = {
  /** A data directory; undefined (or 'memory://') keeps everything in memory. */
  readonly dataDir?: string;
};

export class PgliteStore implements Store {
  readonly kind = 'pglite' as const;
  private readonly db: PGlite;

  private constructor(db: PGlite) {
    this.db = db;
  }

  static async open(options: PgliteStoreOptions = {}): Promise<PgliteStore> {
    const db = options.dataDir === undefined || options.dataDir === 'memory://' ? new PGlite() : new PGlite(options.dataDir);
    await db.waitReady;
    return new PgliteStore(db);
  }

  async query<R extends Row = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    return (await this.db.query<R>(text, params as unknown[])).rows;
  }

  async exec(script: string): Promise<void> {
    await this.db.exec(script);
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) =>
      fn({
        query: async <R extends Row>(text: string, params: readonly unknown[] = []) => (await tx.query<R>(text, params as unknown[])).rows,
        exec: async (script: string) => {
          await tx.exec(script);
        },
      }),
    );
  }

  async session<T>(fn: (conn: Sql) => Promise<T>): Promise<T> {
    // One connection only: the session is the database itself.
    return fn(this);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
