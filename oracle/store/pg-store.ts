// Store on PostgreSQL (or TimescaleDB) through node-postgres. node-postgres cannot pipeline, so the
// code above batches with UNNEST (../../shared/DESIGN.md §Performance anchors).
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Row, Sql, Store } from './store.ts';
import { copyStatement, copyTextChunks, type CopyValue } from './copy-text.ts';
import { PulseError } from '../../shared/errors.ts';

export type PgStoreOptions = { readonly url: string; readonly maxConnections?: number; readonly applicationName?: string };

/** COPY … FROM STDIN on one client: rows are encoded while they stream, so PostgreSQL parses one chunk while the next is built. */
async function copyOn(client: pg.ClientBase, table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number> {
  const stream = client.query(copyFrom(copyStatement(table, columns, 'STDIN')));
  await pipeline(Readable.from(copyTextChunks(columns.length, rows)), stream);
  return stream.rowCount;
}

/** The Sql of one checked-out client (a transaction's or a session's). */
export function pgSql(client: pg.ClientBase): Sql {
  return {
    query: async <R extends Row>(text: string, params: readonly unknown[] = []) => (await client.query<R>(text, params as unknown[])).rows,
    exec: async (script: string) => {
      // No parameters: node-postgres uses the simple query protocol, which allows several statements.
      await client.query(script);
    },
    copyRows: (table, columns, rows) => copyOn(client, table, columns, rows),
  };
}

export class PgStore implements Store {
  readonly kind = 'postgres' as const;
  readonly pool: pg.Pool;

  constructor(options: PgStoreOptions) {
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      application_name: options.applicationName ?? 'pulse-oracle',
    });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined);
  }

  async query<R extends Row = Row>(text: string, params: readonly unknown[] = []): Promise<R[]> {
    try {
      return (await this.pool.query<R>(text, params as unknown[])).rows;
    } catch (e) {
      throw storeError(e);
    }
  }

  async exec(script: string): Promise<void> {
    await this.session((conn) => conn.exec(script));
  }

  async copyRows(table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number> {
    return this.session((conn) => conn.copyRows(table, columns, rows));
  }

  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return this.withClient(async (client, markBroken) => {
      await client.query('BEGIN');
      try {
        const out = await fn(pgSql(client));
        await client.query('COMMIT');
        return out;
      } catch (e) {
        // A connection that cannot even roll back must not go back to the pool.
        await client.query('ROLLBACK').catch((rollbackError: unknown) => markBroken(rollbackError as Error));
        throw e;
      }
    });
  }

  async session<T>(fn: (conn: Sql) => Promise<T>): Promise<T> {
    return this.withClient((client) => fn(pgSql(client)));
  }

  private async withClient<T>(fn: (client: pg.PoolClient, markBroken: (e: Error) => void) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw storeError(e);
    }
    let broken: Error | undefined;
    // A checked-out client whose connection dies (PostgreSQL stopped, network cut) emits 'error';
    // the pool listens only on idle clients, and an unhandled 'error' event would end the process.
    // Record it instead: the query in flight rejects, and the client is discarded on release.
    const onError = (e: Error) => {
      broken = e;
    };
    client.on('error', onError);
    try {
      return await fn(client, (e) => {
        broken = e;
      });
    } catch (e) {
      // node-postgres reports a lost connection as an Error without a SQLSTATE.
      if (e instanceof Error && (e as { code?: unknown }).code === undefined && /connection|terminat|ECONN|socket/i.test(e.message)) broken = e;
      throw e;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function storeError(e: unknown): unknown {
  if (e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string') return e; // a PostgreSQL error: keep its SQLSTATE
  return new PulseError('STORE_UNAVAILABLE', `PostgreSQL: ${(e as Error).message}`, { cause: e });
}
