// One thread of the `verify` workload: verify a fixed heartbeat signature for `seconds` with the
// requested verifier and report the count.
import { parentPort, workerData } from 'node:worker_threads';
import { verifyLoop } from './verify-loop.ts';

const { impl, seconds } = workerData as { impl: 'native' | 'noble'; seconds: number };
parentPort!.postMessage(verifyLoop(impl, seconds));
