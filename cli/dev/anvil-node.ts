// A local anvil node (npm @foundry-rs/anvil, the real binary) as a child process, for `pulse dev`
// and the tests. With `stateFile` the chain persists across restarts (anvil --state loads the file
// if present and dumps to it every `stateIntervalSeconds` and on exit).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PulseError } from '../../shared/errors.ts';

export type AnvilNode = {
  readonly url: string;
  readonly port: number;
  readonly chainId: number;
  /** Funded dev accounts' private keys, in anvil's order (the default test mnemonic). */
  readonly keys: readonly string[];
  readonly process: ChildProcess;
  /** JSON-RPC straight to the node (evm_increaseTime, evm_mine, anvil_setCode, …). */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  stop(): Promise<void>;
};

export type AnvilOptions = {
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  readonly chainId?: number;
  readonly accounts?: number;
  readonly stateFile?: string;
  readonly stateIntervalSeconds?: number;
  /** Flag named in the PORT_IN_USE error. */
  readonly portFlag?: string;
  readonly extraArgs?: readonly string[];
};

export const ANVIL_BIN = fileURLToPath(new URL('../../node_modules/.bin/anvil', import.meta.url));

export async function startAnvilNode(o: AnvilOptions = {}): Promise<AnvilNode> {
  const host = o.host ?? '127.0.0.1';
  const chainId = o.chainId ?? 31337;
  const args = ['--host', host, '--port', String(o.port ?? 0), '--chain-id', String(chainId), '--accounts', String(o.accounts ?? 10)];
  if (o.stateFile !== undefined) args.push('--state', o.stateFile, '--state-interval', String(o.stateIntervalSeconds ?? 5));
  args.push(...(o.extraArgs ?? []));
  const child = spawn(ANVIL_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const ready = await new Promise<{ port: number; keys: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new PulseError('CHAIN_RPC_UNAVAILABLE', `anvil did not start within 30 s:\n${out.slice(-2000)}`));
    }, 30_000);
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /Listening on [\d.:[\]a-f]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        const section = out.slice(out.indexOf('Private Keys'), out.indexOf('Wallet'));
        resolve({ port: Number(m[1]), keys: [...section.matchAll(/\(\d+\) (0x[0-9a-f]{64})/g)].map((k) => k[1]!) });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new PulseError('CHAIN_RPC_UNAVAILABLE', `could not start anvil (${ANVIL_BIN}): ${e.message}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (/address already in use|Address in use/i.test(out))
        reject(new PulseError('PORT_IN_USE', `anvil RPC port ${o.port} is in use; change ${o.portFlag ?? '--rpc-port'}`));
      else reject(new PulseError('CHAIN_RPC_UNAVAILABLE', `anvil exited with ${code}:\n${out.slice(-2000)}`));
    });
  });
  child.stdout!.resume(); // keep draining so anvil never blocks on a full pipe
  const url = `http://${host}:${ready.port}`;
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
    chainId,
    keys: ready.keys,
    process: child,
    rpc,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM'); // anvil dumps --state on a clean exit
      }),
  };
}
