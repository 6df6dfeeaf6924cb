// Re-check every heartbeat signature of a bundle (issue 6 part 2) on every core: the heartbeats are
// packed once into shared memory and split into contiguous ranges, one worker thread each (the
// bundle is sorted by device, so each worker sees mostly its own devices and the per-key cache of
// the native verifier, which holds the costly key-policy check, is not duplicated). A pool can be
// started before the bundle is read so thread start-up overlaps the parse (`pulse verify` does).
// Small inputs are checked on the calling thread, where starting workers would cost more than it saves.
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { startTsWorker } from '../../cli/ts-worker.ts';
import { verifyHeartbeat } from '../../shared/protocol/heartbeat.ts';
import { nativeVerifier } from '../../shared/crypto/native.ts';

export type SignatureFailure = { readonly index: number; readonly code: string; readonly message: string };

export type SignatureCheckOptions = {
  /** Worker threads; default: every core. 1 checks on the calling thread. */
  readonly threads?: number;
  /** Below this many heartbeats the calling thread does the work (default 4000). */
  readonly minParallel?: number;
  readonly onProgress?: (done: number, total: number) => void;
};

type Msg = { kind: 'ready' | 'progress' | 'done'; done: number; failures?: SignatureFailure[] };

export type SignaturePool = {
  readonly threads: number;
  /** Check once; the pool is single-use. */
  check(raws: readonly Uint8Array[]): Promise<SignatureFailure[]>;
  /** Terminate the workers (idempotent). */
  close(): Promise<void>;
};

function checkHere(raws: readonly Uint8Array[], onProgress?: (done: number, total: number) => void): SignatureFailure[] {
  const failures: SignatureFailure[] = [];
  for (let i = 0; i < raws.length; i++) {
    const r = verifyHeartbeat(raws[i]!, { verifier: nativeVerifier });
    if (!r.ok) failures.push({ index: i, code: r.code, message: r.message });
    if ((i + 1) % 2000 === 0) onProgress?.(i + 1, raws.length);
  }
  onProgress?.(raws.length, raws.length);
  return failures;
}

/** Start the worker threads now; `check` hands them the work when the heartbeats are known. */
export function startSignaturePool(opts: SignatureCheckOptions = {}): SignaturePool {
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), 64));
  const minParallel = opts.minParallel ?? 4000;
  const workers: Worker[] = threads === 1 ? [] : Array.from({ length: threads }, () => startTsWorker(new URL('./signature-worker.ts', import.meta.url)));
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(workers.map((w) => w.terminate()));
  };
  return {
    threads,
    close,
    async check(raws) {
      const total = raws.length;
      if (workers.length === 0 || total < minParallel) {
        await close();
        return checkHere(raws, opts.onProgress);
      }
      const size = raws.reduce((n, r) => n + r.length, 0);
      const bytes = new SharedArrayBuffer(size);
      const offsetsBuf = new SharedArrayBuffer(8 * (total + 1));
      const view = new Uint8Array(bytes);
      const offsets = new Float64Array(offsetsBuf);
      let at = 0;
      for (let i = 0; i < total; i++) {
        offsets[i] = at;
        view.set(raws[i]!, at);
        at += raws[i]!.length;
      }
      offsets[total] = at;
      const per = Math.ceil(total / workers.length);
      const doneBy = new Array<number>(workers.length).fill(0);
      try {
        const parts = await Promise.all(
          workers.map((worker, w) => {
            const start = Math.min(total, w * per);
            const end = Math.min(total, start + per);
            return new Promise<SignatureFailure[]>((resolve, reject) => {
              if (start >= end) return resolve([]);
              worker.on('message', (m: Msg) => {
                if (m.kind === 'ready') return;
                doneBy[w] = m.done;
                opts.onProgress?.(doneBy.reduce((a, b) => a + b, 0), total);
                if (m.kind === 'done') resolve(m.failures ?? []);
              });
              worker.once('error', reject);
              worker.once('exit', (code) => reject(new Error(`signature worker exited with code ${code} before finishing`)));
              worker.postMessage({ bytes, offsets: offsetsBuf, start, end });
            });
          }),
        );
        return parts.flat().sort((a, b) => a.index - b.index);
      } finally {
        await close();
      }
    },
  };
}

/** Failures sorted by index; an empty list means every signature verifies. */
export async function checkSignatures(raws: readonly Uint8Array[], opts: SignatureCheckOptions = {}): Promise<SignatureFailure[]> {
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), 64));
  if (threads === 1 || raws.length < (opts.minParallel ?? 4000)) return checkHere(raws, opts.onProgress);
  return startSignaturePool(opts).check(raws);
}
