// Workload `verify`: Ed25519 heartbeat verifications per second, native (node:crypto) and noble,
// on one thread and on every core, beside `openssl speed ed25519` measured in the same run.
import { cpus } from 'node:os';
import { startTsWorker } from '../cli/ts-worker.ts';
import { opensslVerifyRate } from './openssl.ts';
import { verifyLoop } from './verify-loop.ts';
import type { BenchFigure, BenchOptions } from './result.ts';

export const description = 'Ed25519 heartbeat verifies/s (native, noble; 1 thread and all cores) beside openssl speed ed25519';

function onThreads(impl: 'native' | 'noble', threads: number, seconds: number): Promise<number> {
  return Promise.all(
    Array.from({ length: threads }, () =>
      new Promise<{ count: number; seconds: number }>((resolve, reject) => {
        const w = startTsWorker(new URL('./verify-worker.ts', import.meta.url), { impl, seconds });
        w.once('message', (m: { count: number; seconds: number }) => {
          resolve(m);
          void w.terminate();
        });
        w.once('error', reject);
      }),
    ),
  ).then((rs) => rs.reduce((sum, r) => sum + r.count / r.seconds, 0));
}

export async function run(opts: BenchOptions): Promise<BenchFigure[]> {
  const secs = opts.quick ? 1 : 4;
  const cores = cpus().length;
  opts.log(`openssl speed ed25519 (1 process, then ${cores})`);
  const ssl1 = await opensslVerifyRate(secs);
  const sslN = await opensslVerifyRate(secs, cores);
  opts.log('native, main thread');
  const n1 = verifyLoop('native', secs);
  const native1 = n1.count / n1.seconds;
  opts.log(`native, ${cores} worker threads`);
  const nativeN = await onThreads('native', cores, secs);
  opts.log('noble, main thread');
  const b1 = verifyLoop('noble', secs);
  const noble1 = b1.count / b1.seconds;
  return [
    { name: 'verify: native heartbeat verifies/s, 1 thread', figure: native1, unit: 'verifies/s', comparison: { name: 'openssl speed, 1 process', figure: ssl1 } },
    { name: `verify: native heartbeat verifies/s, ${cores} threads`, figure: nativeN, unit: 'verifies/s', comparison: { name: `openssl speed -multi ${cores}`, figure: sslN } },
    { name: 'verify: noble heartbeat verifies/s, 1 thread', figure: noble1, unit: 'verifies/s', comparison: { name: 'openssl speed, 1 process', figure: ssl1 }, note: 'portable reference; never on a hot path' },
  ];
}
