// Store on embedded PGlite (PostgreSQL compiled to WASM, in-process): the zero-dependency default
// when DATABASE_URL is absent (../../shared/DESIGN.md §Real components). PGlite is a single
// connection; it serializes statements and transactions itself (a statement issued while a
// transaction runs waits for it), which gives the same isolation the code above expects from
// PostgreSQL row locks.
import { PGlite } from '@electric-sql/pglite';
import type { Row, Sql, Store } from './store.ts';
import { copyStatement, copyTextChunks, type CopyValue } from './copy-text.ts';

type Queryable = Pick<PGlite, 'query'>;

/**
 * PGlite has no COPY FROM STDIN; it reads COPY … FROM '/dev/blob' from a Blob passed with the query
 * (PGlite docs, API › query options › blob). The rows are encoded whole first: the Blob is one value.
 */
async function copyOn(db: Queryable, table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number> {
  const blob = new Blob([...copyTextChunks(columns.length, rows)]);
  const res = await db.query(copyStatement(table, columns, "'/dev/blob'"), [], { blob });
  return res.affectedRows ?? 0;
}

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

  async copyRows(table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number> {
    return copyOn(this.db, table, columns, rows);
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) =>
      fn({
        query: async <R extends Row>(text: string, params: readonly unknown[] = []) => (await tx.query<R>(text, params as unknown[])).rows,
        exec: async (script: string) => {
          await tx.exec(script);
        },
        copyRows: (table, columns, rows) => copyOn(tx, table, columns, rows),
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
