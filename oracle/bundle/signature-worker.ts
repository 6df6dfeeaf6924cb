// Worker thread of check-signatures.ts: waits for jobs, each a contiguous range of the packed
// heartbeats in shared memory, and re-verifies them with the native (OpenSSL) verifier under the
// project's strict rules (docs/protocol.md §Signatures: key policy, S < L, cofactorless equation on
// torsion-free points), reporting progress as it goes. Started before the bundle is parsed, so the
// thread's start-up (loading TypeScript) overlaps the parse.
import { parentPort } from 'node:worker_threads';
import { verifyHeartbeat } from '../../shared/protocol/heartbeat.ts';
import { nativeVerifier } from '../../shared/crypto/native.ts';
import { FastHeartbeatCheck } from './fast-heartbeat-check.ts';

type Job = { readonly bytes: SharedArrayBuffer; readonly offsets: SharedArrayBuffer; readonly start: number; readonly end: number };
const STEP = 2000;
const fast = new FastHeartbeatCheck();

parentPort!.on('message', (job: Job) => {
  const bytes = new Uint8Array(job.bytes);
  const offsets = new Float64Array(job.offsets);
  const failures: { index: number; code: string; message: string }[] = [];
  let reported = 0;
  for (let i = job.start; i < job.end; i++) {
    const view = bytes.subarray(offsets[i]!, offsets[i + 1]!);
    if (!fast.ok(view)) {
      // Not a plain valid heartbeat: the reference path gives the exact reason code (on a private
      // copy, so the decoded fields do not alias shared memory).
      const r = verifyHeartbeat(view.slice(), { verifier: nativeVerifier });
      if (!r.ok) failures.push({ index: i, code: r.code, message: r.message });
    }
    if (i - job.start + 1 - reported >= STEP) {
      reported = i - job.start + 1;
      parentPort!.postMessage({ kind: 'progress', done: reported });
    }
  }
  parentPort!.postMessage({ kind: 'done', done: job.end - job.start, failures });
});
parentPort!.postMessage({ kind: 'ready', done: 0 });
