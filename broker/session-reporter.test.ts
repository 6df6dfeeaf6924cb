// SessionReporter (broker/session-reporter.ts) against a publisher the test settles by hand: the part
// being published is never dropped from under it, the pending reports are bounded in intervals, and
// the counters are exact: every part is counted once, published or dropped, and the connected time
// counted is that of the published parts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import type { SessionReport } from '../bus/bus.ts';
import { connectedMsOf, sessionReportId } from '../bus/session-report.ts';
import { PulseError } from '../shared/errors.ts';
import { SessionReporter } from './session-reporter.ts';

const dev = (n: number) => n.toString(16).padStart(64, '0');
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const settle = () => new Promise((r) => setImmediate(r));

/** A publisher whose calls wait until the test resolves or rejects them, oldest first. */
function handPublisher() {
  const calls: { report: SessionReport; resolve: () => void; reject: (e: unknown) => void }[] = [];
  const published: SessionReport[] = [];
  let auto = false;
  return {
    calls,
    published,
    publisher: {
      publish(report: SessionReport): Promise<void> {
        if (auto) {
          published.push(report);
          return Promise.resolve();
        }
        return new Promise<void>((resolve, reject) => {
          calls.push({ report, resolve: () => (published.push(report), resolve()), reject });
        });
      },
      async close() {},
    },
    /** Resolve (or reject with `error`) the oldest waiting call; false when none waits. */
    next(error?: unknown): boolean {
      const c = calls.shift();
      if (c === undefined) return false;
      if (error === undefined) c.resolve();
      else c.reject(error);
      return true;
    },
    autoResolve(): void {
      auto = true;
      while (this.next());
    },
  };
}

async function counters(registry: Registry) {
  const reports = (await registry.getSingleMetric('pulse_broker_session_reports_total')!.get()).values;
  const ms = (await registry.getSingleMetric('pulse_broker_session_connected_ms_total')!.get()).values;
  const by = (o: string) => reports.find((v) => v.labels['outcome'] === o)?.value ?? 0;
  return { published: by('published'), dropped: by('dropped'), retried: by('retried'), connectedMs: ms[0]?.value ?? 0 };
}

describe('SessionReporter', () => {
  // Review (reporter-race): the queue overflowed while report 1 was being published; the overflow
  // spliced report 1 out, and when its publish succeeded the reporter shifted report 2 instead: 2 was
  // never published but its time was counted, and 1 was counted dropped although the bus had it.
  it('never drops the part being published when the queue overflows, and counts each part once', async () => {
    let t = 1_000_000;
    const p = handPublisher();
    const registry = new Registry();
    const rep = new SessionReporter({ brokerId: 'b', publisher: p.publisher, intervalMs: 1e9, now: () => t, log: quiet, registry, maxPendingIntervals: 2 });
    rep.connected({}, dev(1));
    t += 1000; rep.report(); // 1: publish in flight (waits)
    t += 1000; rep.report(); // 2: waits behind it
    t += 1000; rep.report(); // 3: waits; 2 intervals wait, the bound
    await settle();
    expect(p.calls.map((c) => sessionReportId(c.report))).toEqual(['b:1:0']);
    t += 1000; rep.report(); // 4: over the bound: the oldest WAITING part (2) is dropped, not 1
    p.autoResolve(); // 1's publish succeeds after all; the rest go through
    await settle();
    t += 1000;
    await rep.close(1_000); // 5: the last window
    expect(p.published.map((r) => sessionReportId(r))).toEqual(['b:1:0', 'b:3:0', 'b:4:0', 'b:5:0']);
    expect(await counters(registry)).toEqual({ published: 4, dropped: 1, retried: 0, connectedMs: 4_000 });
  });

  it('bounds what waits in intervals, whatever the parts: the oldest waiting parts go first', async () => {
    let t = 1_000_000;
    const p = handPublisher();
    const registry = new Registry();
    const rep = new SessionReporter({ brokerId: 'b', publisher: p.publisher, intervalMs: 1e9, now: () => t, log: quiet, registry, maxPendingIntervals: 5 });
    const keys = [{}, {}, {}];
    keys.forEach((k, i) => rep.connected(k, dev(i + 1)));
    t += 1000; rep.report(); // 1 (3 intervals) in flight
    await settle();
    t += 1000; rep.report(); // 2 (3 intervals) waits
    t += 1000; rep.report(); // 3 (3) : 6 waiting > 5, 2 is dropped
    expect(rep.pending).toBe(2);
    expect(rep.pendingIntervals).toBe(6); // 3 in flight + 3 waiting
    rep.disconnected(keys[2]!);
    t += 1000; rep.report(); // 4 (2 intervals): 5 waiting, within the bound
    expect(rep.pendingIntervals).toBe(8);
    p.autoResolve();
    await settle();
    t += 1000;
    await rep.close(1_000); // 5 (2 intervals)
    expect(p.published.map((r) => sessionReportId(r))).toEqual(['b:1:0', 'b:3:0', 'b:4:0', 'b:5:0']);
    expect(await counters(registry)).toEqual({ published: 4, dropped: 1, retried: 0, connectedMs: 3_000 + 3_000 + 2_000 + 2_000 });
  });

  type Step = 'report' | 'ok' | 'fail' | 'bad';
  it('whatever the interleaving of reports, successes, failures and malformed refusals, counters are exact and nothing is published twice', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<Step>('report', 'report', 'ok', 'ok', 'fail', 'bad'), { maxLength: 30 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 10 }),
        async (steps, devices, maxPendingIntervals) => {
          let t = 1_000_000;
          const p = handPublisher();
          const registry = new Registry();
          const rep = new SessionReporter({ brokerId: 'b', publisher: p.publisher, intervalMs: 1e9, now: () => t, log: quiet, registry, maxPendingIntervals });
          for (let d = 1; d <= devices; d++) rep.connected({}, dev(d));
          let made = 0;
          let failures = 0;
          const refused: SessionReport[] = [];
          for (const s of steps) {
            if (s === 'report') {
              t += 1000;
              rep.report();
              made++;
              // What waits is within the bound; one more part (≤ `devices` intervals) may be in flight.
              expect(rep.pendingIntervals).toBeLessThanOrEqual(maxPendingIntervals + devices);
            } else if (s === 'fail') {
              if (p.next(new Error('bus down'))) failures++;
            } else if (s === 'bad') {
              const c = p.calls[0];
              if (c !== undefined && p.next(new PulseError('SESSION_BAD_REPORT', 'refused'))) refused.push(c.report);
            } else {
              p.next();
            }
            await settle();
          }
          t += 1000;
          made++; // close() reports the last window
          p.autoResolve();
          await rep.close(10_000);
          const ids = p.published.map((r) => sessionReportId(r));
          expect(new Set(ids).size).toBe(ids.length);
          const seqs = p.published.map((r) => r.seq);
          expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
          expect(refused.every((r) => !ids.includes(sessionReportId(r)))).toBe(true);
          expect(rep.pending).toBe(0);
          expect(await counters(registry)).toEqual({
            published: p.published.length,
            dropped: made - p.published.length,
            retried: failures,
            connectedMs: p.published.reduce((a, r) => a + connectedMsOf(r), 0),
          });
        },
      ),
      { numRuns: 60 },
    );
  });
});
