// Worker-thread entry: loader hooks are per thread, so each worker registers tsx before importing
// its TypeScript module (workerData.module, a file URL). See cli/ts-worker.ts.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.module);
