// Real child processes for the fault suite (issue 10): spawn, capture logs, wait for a log line or a
// /health answer, send SIGKILL/SIGSTOP/SIGCONT, restart with the same arguments, and always clean up.
// Every process started here is recorded in one registry; `killAll()` runs from afterAll hooks and a
// synchronous `exit` hook kills what is left, so a failed or interrupted scenario never leaves a
// private nats-server, postgres, broker or oracle running. Only processes started here are touched.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';

export type ProcessSpec = {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
};

const LOG_LIMIT = 256 * 1024;

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll `check` every `everyMs` until it returns a value other than undefined, or throw after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last !== undefined ? `: ${(last as Error).message}` : ''}`);
    await sleep(everyMs);
  }
}

const live = new Set<ManagedProcess>();
const exitHooks = new Set<() => void>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  // Synchronous last resort (the worker is exiting): SIGKILL every child we still own.
  process.on('exit', () => {
    for (const p of live) p.killNow();
    for (const h of exitHooks) {
      try {
        h();
      } catch {
        // best effort at exit
      }
    }
  });
}

/** Register a synchronous cleanup (e.g. `pg_ctl stop -m immediate`) for process exit. */
export function onExitSync(hook: () => void): () => void {
  hookExit();
  exitHooks.add(hook);
  return () => exitHooks.delete(hook);
}

export class ManagedProcess {
  private child: ChildProcess | undefined;
  private logText = '';
  private exitWaiters: Array<() => void> = [];
  /** Number of times this process was started. */
  starts = 0;

  constructor(readonly spec: ProcessSpec) {
    hookExit();
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the process wrote to stdout and stderr (the last 256 KiB), across restarts. */
  get log(): string {
    return this.logText;
  }

  start(): this {
    if (this.running) throw new Error(`${this.spec.name} is already running`);
    const child = spawn(this.spec.command, [...this.spec.args], {
      env: { ...process.env, ...this.spec.env },
      cwd: this.spec.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.starts++;
    live.add(this);
    const onData = (b: Buffer) => {
      this.logText += b.toString();
      if (this.logText.length > LOG_LIMIT) this.logText = this.logText.slice(-LOG_LIMIT / 2);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      this.logText += `\n[harness] ${this.spec.name} exited code=${code} signal=${signal}\n`;
      live.delete(this);
      for (const w of this.exitWaiters.splice(0)) w();
    });
    child.once('error', (e) => {
      this.logText += `\n[harness] ${this.spec.name} spawn error: ${e.message}\n`;
    });
    return this;
  }

  /** Wait until the log (since `from`, a log length) matches `pattern`; returns the match. */
  async waitForLog(pattern: RegExp, timeoutMs = 30_000, from = 0): Promise<RegExpExecArray> {
    return waitFor(
      `${this.spec.name} log ${pattern}`,
      () => {
        const m = pattern.exec(this.logText.slice(from));
        if (m) return m;
        if (!this.running) throw new Error(`${this.spec.name} is not running:\n${this.logText.slice(-3000)}`);
        return undefined;
      },
      timeoutMs,
      50,
    );
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child?.pid === undefined || !this.running) throw new Error(`${this.spec.name} is not running`);
    process.kill(this.child.pid, sig);
  }

  /** Resolve when the current child has exited (at once if none is running). */
  exited(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((r) => this.exitWaiters.push(r));
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    if (!this.running) return;
    const done = this.exited();
    // A stopped process still dies of SIGKILL; SIGCONT first is not needed.
    this.signal('SIGKILL');
    await done;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    const done = this.exited();
    try {
      this.signal('SIGCONT');
      this.signal('SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => this.killNow(), graceMs);
    await done;
    clearTimeout(t);
  }

  killNow(): void {
    if (this.child?.pid !== undefined && this.running) {
      try {
        process.kill(this.child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

/** Stop every process the harness started (afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.kill()));
}

/** GET a URL, resolving with the status (or undefined when nothing answers). */
export async function httpStatus(url: string, timeoutMs = 2_000): Promise<number | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return undefined;
  }
}
