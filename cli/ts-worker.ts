// Start a worker thread running a TypeScript module (no build step; see cli/ts-worker-boot.js).
import { Worker } from 'node:worker_threads';

export function startTsWorker(moduleUrl: URL, data: Record<string, unknown> = {}): Worker {
  return new Worker(new URL('./ts-worker-boot.js', import.meta.url), { workerData: { ...data, module: moduleUrl.href } });
}
