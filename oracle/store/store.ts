// The one storage interface of the oracle (docs/storage.md). Two implementations: PostgreSQL or
// TimescaleDB through `pg` (oracle/store/pg-store.ts) and embedded PGlite (oracle/store/pglite-store.ts),
// the default when DATABASE_URL is absent. Everything above this interface (migrations, ingest,
// registry) is plain parameterized SQL that runs on both, so the same test suite covers both.
//
// Value conventions, identical on both implementations (the code above relies on them):
// - parameters are always bound ($1, $2 …), never spliced into SQL text;
// - BIGINT and NUMERIC values are passed as decimal strings and read back with an explicit ::text
//   cast (pg returns int8 as strings, PGlite as number|bigint: the cast removes the difference);
// - BYTEA is passed and returned as Uint8Array.

import type { CopyValue } from './copy-text.ts';

export type Row = Record<string, unknown>;

export interface Sql {
  /** Run one parameterized statement and return its rows. */
  query<R extends Row = Row>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** Run a trusted multi-statement script without parameters (migrations only). */
  exec(script: string): Promise<void>;
  /**
   * Append rows to `table (columns)` with one COPY … FROM in text format (oracle/store/copy-text.ts):
   * for bulk writes, where a parameterized INSERT pays for building and parsing its parameters
   * (../../shared/DESIGN.md §Performance anchors: COPY ~150k rows/s, UNNEST ~90k).
   * Values follow the conventions above, as text or null; constraints, defaults and foreign keys
   * apply as for INSERT. Returns the number of rows written.
   */
  copyRows(table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number>;
}

export interface Store extends Sql {
  readonly kind: 'postgres' | 'pglite';
  /**
   * Run `fn` in one transaction on one connection: COMMIT when it resolves, ROLLBACK when it throws.
   * Isolation is READ COMMITTED (the PostgreSQL default); callers take row locks where they need them.
   */
  transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T>;
  /** Run `fn` on one dedicated connection (session-level advisory locks need that). */
  session<T>(fn: (conn: Sql) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
