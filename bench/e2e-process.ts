// A `pulse <command>` child process for the end-to-end benchmark (bench/e2e.ts): spawned through
// bin/pulse.js exactly as an operator runs it, its JSON log lines kept (the last 256 KiB) so the
// workload can wait for "broker listening" / "ingest started" and show the tail on failure, and
// stopped with SIGTERM (graceful drain, docs/broker.md §Shutdown) then SIGKILL after a grace period.
// A synchronous exit hook SIGKILLs any child still running, so an interrupted run leaves nothing behind.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const PULSE = fileURLToPath(new URL('../bin/pulse.js', import.meta.url));
const LOG_LIMIT = 256 * 1024;
const live = new Set<PulseProcess>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const p of live) p.killNow();
  });
}

export class PulseProcess {
  private readonly child: ChildProcess;
  private text = '';
  private readonly exit: Promise<void>;

  constructor(readonly name: string, args: readonly string[], env: Readonly<Record<string, string>> = {}) {
    hookExit();
    this.child = spawn(process.execPath, [PULSE, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    const onData = (b: Buffer) => {
      this.text += b.toString();
      if (this.text.length > LOG_LIMIT) this.text = this.text.slice(-LOG_LIMIT / 2);
    };
    this.child.stdout!.on('data', onData);
    this.child.stderr!.on('data', onData);
    this.exit = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.text += `\n[e2e] ${name} exited code=${code} signal=${signal}\n`;
        live.delete(this);
        resolve();
      });
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The captured stdout+stderr (tail). */
  get log(): string {
    return this.text;
  }

  /** Resolve with the first match of `pattern` in the log; reject if the process exits or on timeout. */
  async waitForLog(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.text);
      if (m !== null) return m;
      if (!this.running) throw new Error(`${this.name} exited before logging ${pattern}:\n${this.text.slice(-3000)}`);
      if (Date.now() > deadline) throw new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.text.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.killNow(), graceMs);
    await this.exit;
    clearTimeout(t);
  }

  killNow(): void {
    if (this.running) this.child.kill('SIGKILL');
  }
}
