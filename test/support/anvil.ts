// A real anvil node (npm @foundry-rs/anvil) per test file, on a free port (CONTRIBUTING.md §Tests:
// listen on port 0, nothing shared between files). `startAnvil()` spawns node_modules/.bin/anvil
// with --port 0, reads the port and the dev private keys from its banner, and `stop()` ends exactly
// that child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export type Anvil = {
  readonly url: string;
  readonly port: number;
  readonly chainId: number;
  /** Funded dev accounts' private keys, in anvil's order. */
  readonly keys: readonly string[];
  readonly process: ChildProcess;
  /** JSON-RPC call straight to the node (evm_increaseTime, evm_mine, evm_setAutomine, …). */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  stop(): Promise<void>;
};

const ANVIL_BIN = fileURLToPath(new URL('../../node_modules/.bin/anvil', import.meta.url));

export async function startAnvil(extraArgs: readonly string[] = []): Promise<Anvil> {
  const child = spawn(ANVIL_BIN, ['--host', '127.0.0.1', '--port', '0', '--chain-id', '31337', '--accounts', '6', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = await new Promise<{ port: number; keys: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`anvil did not start within 20 s:\n${out}`)), 20_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /Listening on [\d.]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        const section = out.slice(out.indexOf('Private Keys'), out.indexOf('Wallet'));
        const keys = [...section.matchAll(/\(\d+\) (0x[0-9a-f]{64})/g)].map((k) => k[1]!);
        resolve({ port: Number(m[1]), keys });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`anvil exited with ${code}:\n${out}`));
    });
  });
  // Keep draining stdout so anvil never blocks on a full pipe.
  child.stdout!.resume();
  const url = `http://127.0.0.1:${ready.port}`;
  let id = 0;
  const rpc = async <T,>(method: string, params: unknown[] = []): Promise<T> => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }) });
    const body = (await res.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  };
  return {
    url,
    port: ready.port,
    chainId: 31337,
    keys: ready.keys,
    process: child,
    rpc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
