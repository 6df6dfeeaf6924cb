// SessionTracker (broker/session-tracker.ts): windows are contiguous, every reported interval lies in
// its window, one device's intervals never overlap, and summed over all windows each device's
// reported time equals the measure of the union of its sessions (fast-check against a brute-force
// model that counts milliseconds one by one).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SessionTracker, mergeIntervals, type SessionWindow } from './session-tracker.ts';
import { checkSessionReport } from '../bus/session-report.ts';

const dev = (n: number) => n.toString(16).padStart(64, '0');

describe('SessionTracker', () => {
  it('clips sessions to report windows and carries live ones over', () => {
    const t = new SessionTracker<string>(100);
    t.connect('c1', dev(1), 120);
    t.connect('c2', dev(2), 130);
    t.disconnect('c2', 150);
    expect(t.cut(200)).toEqual({ from: 100, to: 200, intervals: [{ deviceId: dev(1), from: 120, to: 200 }, { deviceId: dev(2), from: 130, to: 150 }] });
    t.disconnect('c1', 250);
    expect(t.cut(300)).toEqual({ from: 200, to: 300, intervals: [{ deviceId: dev(1), from: 200, to: 250 }] });
    expect(t.cut(400)).toEqual({ from: 300, to: 400, intervals: [] });
    expect(t.liveSessions).toBe(0);
  });

  it('merges overlapping sessions of one device (a reconnect racing the old close)', () => {
    const t = new SessionTracker<string>(0);
    t.connect('old', dev(1), 10);
    t.connect('new', dev(1), 40);
    t.disconnect('old', 45);
    t.disconnect('new', 60);
    t.connect('again', dev(1), 60); // touching: one interval
    expect(t.cut(100).intervals).toEqual([{ deviceId: dev(1), from: 10, to: 100 }]);
  });

  it('ignores unknown disconnects', () => {
    const t = new SessionTracker<string>(1000);
    t.disconnect('never', 1100);
    expect(t.cut(1300)).toEqual({ from: 1000, to: 1300, intervals: [] });
  });

  // Backward wall-clock steps (review): the tracker's time never goes back, so a stamp from before a
  // step counts as the latest time seen; nothing already seen is dropped and nothing is negative.
  it('a disconnect stamped before the window start (clock stepped back) still reports the session up to the latest time seen', () => {
    const t = new SessionTracker<string>(1000);
    t.connect('c', dev(1), 1200);
    t.connect('other', dev(2), 1500); // the tracker saw 1500 while c was connected
    t.disconnect('c', 900); // the clock stepped back 600 ms, to before the window start
    expect(t.cut(1600)).toEqual({ from: 1000, to: 1600, intervals: [{ deviceId: dev(1), from: 1200, to: 1500 }, { deviceId: dev(2), from: 1500, to: 1600 }] });
    expect(t.clockStepBackMs).toBe(600);
  });

  it('a cut stamped before the window start (clock stepped back) reports the ended sessions instead of clearing them', () => {
    const t = new SessionTracker<string>(1000);
    t.connect('c', dev(1), 1200);
    t.disconnect('c', 1600);
    t.connect('d', dev(2), 1700);
    expect(t.cut(900)).toEqual({ from: 1000, to: 1700, intervals: [{ deviceId: dev(1), from: 1200, to: 1600 }] });
    expect(t.clockStepBackMs).toBe(800);
    // Time stands still until the clock passes 1700 again; then d is counted from there.
    expect(t.cut(1500)).toEqual({ from: 1700, to: 1700, intervals: [] });
    expect(t.cut(1800)).toEqual({ from: 1700, to: 1800, intervals: [{ deviceId: dev(2), from: 1700, to: 1800 }] });
    expect(t.clockStepBackMs).toBe(800); // one step, counted once: the 800 ms the clock stood still
  });

  it('cuts a window longer than maxWindowMs (clock stepped forward, process suspended) and counts the gap it skips', () => {
    const t = new SessionTracker<string>(0, { maxWindowMs: 100 });
    t.connect('c', dev(1), 10);
    t.connect('e', dev(2), 20);
    t.disconnect('e', 50);
    expect(t.cut(1000)).toEqual({ from: 0, to: 100, intervals: [{ deviceId: dev(1), from: 10, to: 100 }, { deviceId: dev(2), from: 20, to: 50 }] });
    expect(t.skippedMs).toBe(900);
    expect(t.cut(1050)).toEqual({ from: 1000, to: 1050, intervals: [{ deviceId: dev(1), from: 1000, to: 1050 }] });
    expect(t.skippedMs).toBe(900);
  });

  it('mergeIntervals sorts by device then time and drops empty intervals', () => {
    expect(
      mergeIntervals([
        { deviceId: dev(2), from: 5, to: 9 },
        { deviceId: dev(1), from: 7, to: 8 },
        { deviceId: dev(1), from: 1, to: 3 },
        { deviceId: dev(1), from: 3, to: 3 },
        { deviceId: dev(1), from: 2, to: 4 },
      ]),
    ).toEqual([
      { deviceId: dev(1), from: 1, to: 4 },
      { deviceId: dev(1), from: 7, to: 8 },
      { deviceId: dev(2), from: 5, to: 9 },
    ]);
  });

  type Event = { kind: 'connect'; key: number; device: number } | { kind: 'disconnect'; key: number } | { kind: 'cut' };
  const event: fc.Arbitrary<Event> = fc.oneof(
    fc.record({ kind: fc.constant('connect' as const), key: fc.integer({ min: 0, max: 5 }), device: fc.integer({ min: 1, max: 3 }) }),
    fc.record({ kind: fc.constant('disconnect' as const), key: fc.integer({ min: 0, max: 5 }) }),
    fc.record({ kind: fc.constant('cut' as const) }),
  );

  it('reports exactly the union of each device’s sessions, in contiguous valid windows', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(event, fc.integer({ min: 0, max: 7 })), { maxLength: 60 }), (events) => {
        const start = 1000;
        const t = new SessionTracker<number>(start);
        const windows: SessionWindow[] = [];
        // Model: per connection key, its device and [since, until) sessions.
        const live = new Map<number, { device: number; since: number }>();
        const sessions: { device: number; from: number; to: number }[] = [];
        let now = start;
        for (const [e, step] of events) {
          now += step;
          if (e.kind === 'connect') {
            const prev = live.get(e.key);
            if (prev !== undefined) sessions.push({ device: prev.device, from: prev.since, to: now });
            live.set(e.key, { device: e.device, since: now });
            t.connect(e.key, dev(e.device), now);
          } else if (e.kind === 'disconnect') {
            const prev = live.get(e.key);
            if (prev !== undefined) sessions.push({ device: prev.device, from: prev.since, to: now });
            live.delete(e.key);
            t.disconnect(e.key, now);
          } else {
            windows.push(t.cut(now));
          }
        }
        now += 1;
        windows.push(t.cut(now));
        for (const s of live.values()) sessions.push({ device: s.device, from: s.since, to: now });

        let expectFrom = start;
        for (const [i, w] of windows.entries()) {
          expect(w.from).toBe(expectFrom);
          expectFrom = w.to;
          if (w.to > w.from) expect(checkSessionReport({ brokerId: 'b', seq: i + 1, part: 0, parts: 1, from: w.from, to: w.to, intervals: w.intervals }).ok).toBe(true);
          else expect(w.intervals).toEqual([]);
        }
        expect(expectFrom).toBe(now);
        for (const d of [1, 2, 3]) {
          const reported = windows.flatMap((w) => w.intervals).filter((i) => i.deviceId === dev(d)).reduce((a, i) => a + (i.to - i.from), 0);
          let union = 0;
          for (let ms = start; ms < now; ms++) if (sessions.some((s) => s.device === d && s.from <= ms && ms < s.to)) union++;
          expect(reported).toBe(union);
        }
      }),
    );
  });

  it('with a clock that steps back and forth and a bounded window: each device gets the union of its sessions on the clamped timeline, within the windows, and every skipped or stood-still millisecond is counted', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(event, fc.integer({ min: -12, max: 9 })), { maxLength: 60 }), fc.integer({ min: 1, max: 25 }), (events, maxWindowMs) => {
        const start = 1000;
        const t = new SessionTracker<number>(start, { maxWindowMs });
        const windows: SessionWindow[] = [];
        // Model on the clamped timeline: a stamp counts as max(stamp, latest stamp seen).
        const live = new Map<number, { device: number; since: number }>();
        const sessions: { device: number; from: number; to: number }[] = [];
        let raw = start;
        let clock = start;
        let stepBack = 0;
        let lastCut = start;
        const tick = (step: number) => {
          const next = raw + step;
          if (next < raw) stepBack += raw - next;
          raw = next;
          clock = Math.max(clock, raw);
        };
        for (const [e, step] of events) {
          tick(step);
          if (e.kind === 'connect') {
            const prev = live.get(e.key);
            if (prev !== undefined) sessions.push({ device: prev.device, from: prev.since, to: clock });
            live.set(e.key, { device: e.device, since: clock });
            t.connect(e.key, dev(e.device), raw);
          } else if (e.kind === 'disconnect') {
            const prev = live.get(e.key);
            if (prev !== undefined) sessions.push({ device: prev.device, from: prev.since, to: clock });
            live.delete(e.key);
            t.disconnect(e.key, raw);
          } else {
            const w = t.cut(raw);
            expect(w.from).toBe(lastCut);
            lastCut = clock;
            windows.push(w);
          }
        }
        tick(1);
        const last = t.cut(raw);
        expect(last.from).toBe(lastCut);
        windows.push(last);
        for (const s of live.values()) sessions.push({ device: s.device, from: s.since, to: clock });

        let covered = 0;
        for (const [i, w] of windows.entries()) {
          expect(w.to - w.from).toBeGreaterThanOrEqual(0);
          expect(w.to - w.from).toBeLessThanOrEqual(maxWindowMs);
          covered += w.to - w.from;
          if (w.to > w.from) expect(checkSessionReport({ brokerId: 'b', seq: i + 1, part: 0, parts: 1, from: w.from, to: w.to, intervals: w.intervals }).ok).toBe(true);
          else expect(w.intervals).toEqual([]);
        }
        // Every millisecond of the clamped timeline is in a window or counted as skipped.
        expect(covered + t.skippedMs).toBe(clock - start);
        expect(t.clockStepBackMs).toBe(stepBack);
        const inWindow = (ms: number) => windows.some((w) => w.from <= ms && ms < w.to);
        for (const d of [1, 2, 3]) {
          const reported = windows.flatMap((w) => w.intervals).filter((i) => i.deviceId === dev(d)).reduce((a, i) => a + (i.to - i.from), 0);
          let union = 0;
          for (let ms = start; ms < clock; ms++) if (inWindow(ms) && sessions.some((s) => s.device === d && s.from <= ms && ms < s.to)) union++;
          expect(reported).toBe(union);
        }
      }),
    );
  });
});
