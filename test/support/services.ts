// Real services for tests (../shared/DESIGN.md §Real components). A suite that needs PostgreSQL,
// NATS, anvil or Chromium calls `await needs('postgres')` at module top level and wraps its tests
// in `describe.skipIf(!available)`. Locally a missing service skips the suite with a note; under
// CI=true it throws, so CI can never pass with a real-service suite silently skipped.
import { connect as netConnect } from 'node:net';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export type Service = 'postgres' | 'nats' | 'anvil' | 'chromium';

export const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222';
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

function tcpOpen(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host, port });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function probe(service: Service): Promise<string | undefined> {
  switch (service) {
    case 'postgres': {
      const c = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 2000 });
      try {
        await c.connect();
        await c.query('select 1');
        return undefined;
      } catch (e) {
        return `PostgreSQL at ${DATABASE_URL}: ${(e as Error).message}`;
      } finally {
        await c.end().catch(() => undefined);
      }
    }
    case 'nats': {
      const u = new URL(NATS_URL);
      return (await tcpOpen(u.hostname, Number(u.port || 4222))) ? undefined : `NATS at ${NATS_URL} is not reachable`;
    }
    case 'anvil':
      return existsSync(new URL('../../node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil', import.meta.url)) ||
        existsSync(new URL('../../node_modules/.bin/anvil', import.meta.url))
        ? undefined
        : 'the anvil binary from @foundry-rs/anvil is not installed';
    case 'chromium':
      return existsSync(CHROMIUM_PATH) ? undefined : `Chromium not found at ${CHROMIUM_PATH} (apt-get install chromium)`;
  }
}

/** True when every service is there; false (skip) locally; throws under CI=true. */
export async function needs(...services: Service[]): Promise<boolean> {
  const missing: string[] = [];
  for (const s of services) {
    const why = await probe(s);
    if (why !== undefined) missing.push(why);
  }
  if (missing.length === 0) return true;
  if (process.env['CI'] === 'true') throw new Error(`CI=true and a required service is missing: ${missing.join('; ')}`);
  console.warn(`skipping suite: ${missing.join('; ')}`);
  return false;
}

/**
 * A fresh, empty PostgreSQL database for one test file, dropped by the returned cleanup. Tests never
 * share a database, so suites run in parallel and leave nothing behind.
 */
export async function freshDatabase(prefix = 'pulse_test'): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A unique name for NATS streams, consumers and subjects in one test. */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}
