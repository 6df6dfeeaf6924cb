// Connected time of the devices on one broker process (issue 5 §Scores: connected time is reported
// beside credited uptime and never paid; docs/broker.md §Session reports). Pure: the caller passes
// every time (the broker clock), so the clipping and merging rules are tested without sockets.
//
// The tracker keeps the live sessions and the sessions that ended in the current report window.
// cut(at) closes the window [from, at): every session that overlapped it contributes the part of it
// inside the window, and the next window starts at `at`. A device's intervals are merged (union)
// within a window, so two overlapping sessions of one device (a reconnect racing the old
// connection's close, MQTT-3.1.4-2 takeover) never count one millisecond twice.
import type { SessionInterval } from '../bus/bus.ts';
import { MAX_REPORT_WINDOW_MS } from '../bus/session-report.ts';

/** Sort by device then start, and merge overlapping or touching intervals of the same device. */
export function mergeIntervals(intervals: readonly SessionInterval[]): SessionInterval[] {
  const sorted = intervals.filter((i) => i.to > i.from).sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.from - b.from));
  const out: SessionInterval[] = [];
  for (const i of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && last.deviceId === i.deviceId && i.from <= last.to) {
      if (i.to > last.to) out[out.length - 1] = { ...last, to: i.to };
    } else {
      out.push(i);
    }
  }
  return out;
}

export type SessionWindow = {
  readonly from: number;
  readonly to: number;
  /** Merged per device, sorted, each inside [from, to). */
  readonly intervals: readonly SessionInterval[];
};

export type SessionTrackerOptions = {
  /**
   * Longest window a cut returns, ms (default MAX_REPORT_WINDOW_MS, which the bus refuses to exceed).
   * Reached only when the clock jumps forward or the process was suspended between two cuts.
   */
  readonly maxWindowMs?: number;
};

export class SessionTracker<K> {
  private readonly live = new Map<K, { readonly deviceId: string; readonly since: number }>();
  private ended: SessionInterval[] = [];
  private windowStart: number;
  /** The latest time seen: the tracker's clock never runs backwards. */
  private latest: number;
  /** The last raw stamp passed in, to measure each backward step once. */
  private lastStamp: number;
  private readonly maxWindowMs: number;
  private steppedBack = 0;
  private skipped = 0;

  constructor(start: number, options: SessionTrackerOptions = {}) {
    this.windowStart = start;
    this.latest = start;
    this.lastStamp = start;
    this.maxWindowMs = options.maxWindowMs ?? MAX_REPORT_WINDOW_MS;
  }

  /** Start of the current report window. */
  get since(): number {
    return this.windowStart;
  }

  get liveSessions(): number {
    return this.live.size;
  }

  /**
   * Total size of the backward steps of the clock seen so far, ms. While the wall clock runs behind
   * the latest time seen, the tracker's clock stands still, so about this much connected time is not
   * counted (it cannot be measured on a clock that repeats itself); the reporter logs it.
   */
  get clockStepBackMs(): number {
    return this.steppedBack;
  }

  /** Window time left out because a gap between cuts exceeded maxWindowMs, ms (see cut). */
  get skippedMs(): number {
    return this.skipped;
  }

  /**
   * A stamp on the tracker's clock: max(stamp, latest seen). A wall clock that steps back (NTP, a
   * manual change) would otherwise stamp a disconnect before the window start and drop the session's
   * time, or stamp a cut before the window start and drop the sessions that ended in it.
   */
  private clock(at: number): number {
    if (at < this.lastStamp) this.steppedBack += this.lastStamp - at;
    this.lastStamp = at;
    if (at > this.latest) this.latest = at;
    return this.latest;
  }

  /** An authenticated device session began at `at`. A key that is already live is ended first. */
  connect(key: K, deviceId: string, at: number): void {
    const t = this.clock(at);
    if (this.live.has(key)) this.end(key, t);
    this.live.set(key, { deviceId, since: t });
  }

  /** The session ended at `at`. Unknown keys are ignored (closed before they were tracked). */
  disconnect(key: K, at: number): void {
    this.end(key, this.clock(at));
  }

  private end(key: K, t: number): void {
    const s = this.live.get(key);
    if (s === undefined) return;
    this.live.delete(key);
    // Only the part inside the current window: what came before was reported by earlier cuts.
    // t ≥ windowStart always holds on the tracker's clock.
    const from = Math.max(s.since, this.windowStart);
    if (t > from) this.ended.push({ deviceId: s.deviceId, from, to: t });
  }

  /**
   * Close the current window at `at` (on the tracker's clock, so never before its start) and start
   * the next one there. A window is at most maxWindowMs long: a longer gap (the clock jumped forward,
   * or the process was suspended) is reported up to from + maxWindowMs, the rest of the gap is
   * skipped and counted (skippedMs), and the next window starts at `at`. Whether the gap was real
   * time cannot be told from the wall clock, and the bus refuses longer windows.
   */
  cut(at: number): SessionWindow {
    const now = this.clock(at);
    const from = this.windowStart;
    const to = Math.min(now, from + this.maxWindowMs);
    this.skipped += now - to;
    const pieces: SessionInterval[] = [];
    const clip = (deviceId: string, a: number, b: number) => {
      const x = Math.max(a, from);
      const y = Math.min(b, to);
      if (y > x) pieces.push({ deviceId, from: x, to: y });
    };
    for (const i of this.ended) clip(i.deviceId, i.from, i.to);
    for (const s of this.live.values()) clip(s.deviceId, s.since, to);
    this.ended = [];
    this.windowStart = now;
    return { from, to, intervals: mergeIntervals(pieces) };
  }
}
