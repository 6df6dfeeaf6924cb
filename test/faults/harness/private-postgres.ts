// A private PostgreSQL 15 cluster per scenario (issue 10 §3: stopping PostgreSQL under load must
// never touch the machine's shared server on 5432, which other engineers and CI use). initdb into a
// fresh temporary directory owned by the postgres user, trust auth, a free port, unix socket in the
// data directory; start/stop through pg_ctl run as the postgres user. `stop('immediate')` is the
// crash-like stop the scenario needs (no checkpoint, clients cut). `destroy()` stops it and removes
// the directory; a synchronous exit hook does the same if the test process dies first.
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import pg from 'pg';
import { freePort, onExitSync, waitFor } from './processes.ts';

const BIN = '/usr/lib/postgresql/15/bin';

function asPostgres(cmd: string, args: readonly string[], timeoutMs = 60_000): string {
  const full = userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', join(BIN, cmd), ...args]] as const : [join(BIN, cmd), args] as const;
  return execFileSync(full[0], [...full[1]], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
}

function postgresUid(): { uid: number; gid: number } {
  const out = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
  const gid = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
  return { uid: Number(out), gid: Number(gid) };
}

export class PrivatePostgres {
  private removeExitHook: (() => void) | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** postgres://postgres@127.0.0.1:<port>/<db> */
  url(db = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${db}`;
  }

  static async create(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'pulse-faults-pg-'));
    if (userInfo().uid === 0) {
      const { uid, gid } = postgresUid();
      chownSync(dir, uid, gid);
    }
    const p = new PrivatePostgres(dir, await freePort());
    asPostgres('initdb', ['-D', p.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
    p.removeExitHook = onExitSync(() => {
      try {
        asPostgres('pg_ctl', ['stop', '-D', p.dataDir, '-m', 'immediate', '-w', '-t', '10'], 15_000);
      } catch {
        // not running
      }
      rmSync(dir, { recursive: true, force: true });
    });
    await p.start();
    return p;
  }

  /** Start (or restart) the server on the same port and data directory; waits until it accepts queries. */
  async start(): Promise<void> {
    const opts = [
      `-p ${this.port}`,
      '-c listen_addresses=127.0.0.1',
      `-c unix_socket_directories=${this.dir}`,
      '-c max_connections=60',
      '-c shared_buffers=32MB',
      // Durability as in production (docs/reliability.md): a commit is on disk before it is acknowledged.
      '-c synchronous_commit=on',
      '-c fsync=on',
    ].join(' ');
    asPostgres('pg_ctl', ['start', '-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', '-o', opts], 90_000);
    await waitFor('private postgres accepting queries', async () => {
      const c = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 1_000 });
      try {
        await c.connect();
        await c.query('SELECT 1');
        return true;
      } finally {
        await c.end().catch(() => undefined);
      }
    }, 30_000);
  }

  /** Stop: `immediate` aborts like a crash (clients are cut, recovery on the next start). */
  stop(mode: 'immediate' | 'fast' = 'immediate'): void {
    asPostgres('pg_ctl', ['stop', '-D', this.dataDir, '-m', mode, '-w', '-t', '30'], 40_000);
  }

  get running(): boolean {
    try {
      asPostgres('pg_ctl', ['status', '-D', this.dataDir], 10_000);
      return true;
    } catch {
      return false;
    }
  }

  async createDatabase(name: string): Promise<string> {
    const c = new pg.Client({ connectionString: this.url() });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
    return this.url(name);
  }

  async destroy(): Promise<void> {
    if (this.running) this.stop('immediate');
    rmSync(this.dir, { recursive: true, force: true });
    this.removeExitHook?.();
  }
}
