// Paced QoS 1 load for the end-to-end benchmark (bench/e2e.ts). Like `drive` in
// broker/load-client.ts (pre-encoded frames, a window of unacknowledged PUBLISHes per connection,
// a token bucket for the total rate), but it records, per frame, the wall-clock time it was written
// to the socket and whether its PUBACK came back, so the workload can join every acknowledged
// (device, seq) with its committed row: latency publish → committed, and loss = acknowledged but
// not stored. A connection that closes early does not abort the run: its unacknowledged frames are
// simply not counted as acknowledged (MQTT-4.3.2: only a PUBACK transfers ownership).
import { packetIdOf, type RawConnection } from '../broker/load-client.ts';

export type RecordedDrive = {
  /** PUBACKs received over all connections. */
  readonly acked: number;
  /** Frames written (acknowledged or not). */
  readonly sent: number;
  /** First write to last PUBACK (or to the deadline), seconds. */
  readonly seconds: number;
  /** Wall clock (ms since the epoch, fractional) of the first write. */
  readonly startedAtMs: number;
  /** Per connection, per frame: wall-clock ms when written; NaN if never written. */
  readonly sentAtMs: readonly Float64Array[];
  /** Per connection, per frame: 1 if its PUBACK arrived. */
  readonly ackedFlags: readonly Uint8Array[];
  /** PUBACK latencies (ms) of the acknowledged frames, in arrival order. */
  readonly pubackMs: Float64Array;
};

/** Wall-clock milliseconds with sub-millisecond resolution (same clock as Date.now()). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Write `frames[i]` on `conns[i]` in order, at most `window` unacknowledged per connection, paced
 * to `ratePerSecond` in total. Resolves when every frame is acknowledged, every connection with
 * frames left has closed, or `deadlineMs` after the start (whichever comes first).
 */
export function driveRecorded(conns: readonly RawConnection[], frames: readonly (readonly Buffer[])[], window: number, ratePerSecond: number, deadlineMs: number): Promise<RecordedDrive> {
  const total = frames.reduce((n, f) => n + f.length, 0);
  const sentAtMs = frames.map((f) => new Float64Array(f.length).fill(NaN));
  const ackedFlags = frames.map((f) => new Uint8Array(f.length));
  const pubackMs = new Float64Array(total);
  let acked = 0;
  let sent = 0;
  const startedAtMs = wallMs();
  const t0 = performance.now();
  return new Promise((resolve) => {
    let budget = 0;
    let finished = false;
    // Packet id → frame index; ids are unique within a window (window < 65535).
    const state = conns.map(() => ({ next: 0, inflight: 0, indexOf: new Int32Array(65536).fill(-1), sentPerf: new Float64Array(65536) }));
    const done = () => {
      if (finished) return;
      finished = true;
      clearInterval(timer);
      clearTimeout(deadline);
      resolve({ acked, sent, seconds: (performance.now() - t0) / 1000, startedAtMs, sentAtMs, ackedFlags, pubackMs: pubackMs.subarray(0, acked) });
    };
    const settled = () => conns.every((c, i) => c.closed || (state[i]!.next === frames[i]!.length && state[i]!.inflight === 0));
    const pump = (i: number) => {
      const s = state[i]!;
      const f = frames[i]!;
      const c = conns[i]!;
      while (!c.closed && s.inflight < window && s.next < f.length && budget >= 1) {
        const k = s.next++;
        const frame = f[k]!;
        const id = packetIdOf(frame);
        s.indexOf[id] = k;
        s.sentPerf[id] = performance.now();
        sentAtMs[i]![k] = wallMs();
        s.inflight++;
        sent++;
        budget--;
        c.write(frame);
      }
    };
    conns.forEach((c, i) => {
      c.onAck = (id) => {
        const s = state[i]!;
        const k = s.indexOf[id]!;
        if (k < 0) return; // not ours (a stray or repeated PUBACK)
        s.indexOf[id] = -1;
        ackedFlags[i]![k] = 1;
        pubackMs[acked++] = performance.now() - s.sentPerf[id]!;
        s.inflight--;
        if (acked === total || settled()) done();
        else pump(i);
      };
      c.socket.once('close', () => {
        if (settled()) done();
      });
    });
    // Refill by elapsed time (a late timer on a loaded machine must not lower the offered rate),
    // capped at 50 ms worth so a stall is not followed by a burst far above the offered rate.
    let last = performance.now();
    let rotate = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      budget = Math.min(budget + (ratePerSecond * (now - last)) / 1000, (ratePerSecond * 50) / 1000 + 1);
      last = now;
      // Start at a rotating connection so every device gets its share of the budget.
      for (let j = 0; j < conns.length; j++) pump((j + rotate) % conns.length);
      rotate = (rotate + 1) % conns.length;
    }, 5);
    const deadline = setTimeout(done, deadlineMs);
  });
}
