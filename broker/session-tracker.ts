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

export class SessionTracker<K> {
  private readonly live = new Map<K, { readonly deviceId: string; readonly since: number }>();
  private ended: SessionInterval[] = [];
  private windowStart: number;

  constructor(start: number) {
    this.windowStart = start;
  }

  /** Start of the current report window. */
  get since(): number {
    return this.windowStart;
  }

  get liveSessions(): number {
    return this.live.size;
  }

  /** An authenticated device session began at `at`. A key that is already live is ended first. */
  connect(key: K, deviceId: string, at: number): void {
    if (this.live.has(key)) this.disconnect(key, at);
    this.live.set(key, { deviceId, since: at });
  }

  /** The session ended at `at`. Unknown keys are ignored (closed before they were tracked). */
  disconnect(key: K, at: number): void {
    const s = this.live.get(key);
    if (s === undefined) return;
    this.live.delete(key);
    // Only the part inside the current window: what came before was reported by earlier cuts.
    const from = Math.max(s.since, this.windowStart);
    if (at > from) this.ended.push({ deviceId: s.deviceId, from, to: at });
  }

  /**
   * Close the current window at `at` and start the next one there. A clock that stepped back gives
   * an empty window rather than a negative one.
   */
  cut(at: number): SessionWindow {
    const from = this.windowStart;
    const to = Math.max(at, from);
    const pieces: SessionInterval[] = [];
    const clip = (deviceId: string, a: number, b: number) => {
      const x = Math.max(a, from);
      const y = Math.min(b, to);
      if (y > x) pieces.push({ deviceId, from: x, to: y });
    };
    for (const i of this.ended) clip(i.deviceId, i.from, i.to);
    for (const s of this.live.values()) clip(s.deviceId, s.since, to);
    this.ended = [];
    this.windowStart = to;
    return { from, to, intervals: mergeIntervals(pieces) };
  }
}
