// Session reports of one broker process (docs/broker.md §Session reports): every report interval
// (--session-report-interval, default 30 s) and once more on graceful shutdown, cut the tracked device
// sessions (broker/session-tracker.ts) into a window [from, to) and publish ONE report of it to the
// bus, split into parts only when it is too large for one message (bus/session-report.ts).
//
// Identity and retries: a report part's id is (broker instance id, report seq, part). The instance id
// is fresh per process, so ids never repeat across restarts; a publish that failed is retried with
// the same id, so the bus's duplicate window and the oracle's session_reports table count it once.
// Reports wait in order while the bus refuses them, bounded in intervals (what costs memory, ~100
// bytes each): beyond maxPendingIntervals the oldest WAITING parts are dropped and counted. The part
// being published is never dropped from under its publish (it is held apart from the queue), so a
// late success is counted for the part that was sent, and each part is counted exactly once:
// published, or dropped (too many waiting, refused as malformed, or given up at shutdown).
//
// What is lost: a crash loses the window in progress (at most one interval of connected time) and
// any report the bus had not accepted yet. Connected time is informational, never paid
// (docs/rewards.md §Connected time), so losing it never changes a reward.
import { Counter, type Registry } from 'prom-client';
import type { SessionReport, SessionReportPublisher } from '../bus/bus.ts';
import { connectedMsOf, sessionReportId, sessionReportParts } from '../bus/session-report.ts';
import { isPulseError } from '../shared/errors.ts';
import { SessionTracker } from './session-tracker.ts';
import type { Logger } from './log.ts';

export type SessionReporterOptions = {
  /** This broker process's id: one NATS subject token, fresh per process. */
  readonly brokerId: string;
  readonly publisher: SessionReportPublisher;
  readonly intervalMs: number;
  /** Broker clock, unix ms. */
  readonly now: () => number;
  readonly log: Logger;
  /** The broker's own prom-client registry (broker/metrics.ts). */
  readonly registry: Registry;
  /**
   * Intervals held in report parts waiting for the bus; beyond this the oldest waiting parts are
   * dropped. Default 1,000,000 (about 100 MB): at most this plus the one part being published
   * (≤ MAX_INTERVALS_PER_PART). A broker of 10,000 devices reporting every 30 s holds 50 minutes.
   */
  readonly maxPendingIntervals?: number;
};

type ReporterMetrics = { reports: Counter<'outcome'>; connectedMs: Counter };

function metricsOn(registry: Registry): ReporterMetrics {
  // Reuse when a registry is shared by two reporters (tests start brokers on one metrics object).
  const existing = registry.getSingleMetric('pulse_broker_session_reports_total') as Counter<'outcome'> | undefined;
  const existingMs = registry.getSingleMetric('pulse_broker_session_connected_ms_total') as Counter | undefined;
  return {
    reports:
      existing ??
      new Counter({
        name: 'pulse_broker_session_reports_total',
        help: 'Session report parts by outcome: published (the bus holds it), retried (a failed publish attempt, retried), dropped (never published: too many pending, or shutdown).',
        labelNames: ['outcome'] as const,
        registers: [registry],
      }),
    connectedMs:
      existingMs ??
      new Counter({ name: 'pulse_broker_session_connected_ms_total', help: 'Device connected time in published session reports, milliseconds.', registers: [registry] }),
  };
}

const sleep = (ms: number) =>
  new Promise<void>((r) => {
    setTimeout(r, ms).unref();
  });

export class SessionReporter {
  private readonly tracker: SessionTracker<object>;
  private readonly metrics: ReporterMetrics;
  private readonly maxPendingIntervals: number;
  /** Parts waiting for the bus, oldest first; the one being published is `inFlight`, not here. */
  private readonly queue: SessionReport[] = [];
  private queuedIntervals = 0;
  private inFlight: SessionReport | undefined;
  private seq = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  private giveUp = false;
  private failing = false;

  constructor(private readonly o: SessionReporterOptions) {
    this.tracker = new SessionTracker(o.now());
    this.metrics = metricsOn(o.registry);
    this.maxPendingIntervals = o.maxPendingIntervals ?? 1_000_000;
  }

  /** An authenticated device session began (`key` identifies the connection). */
  connected(key: object, deviceId: string): void {
    if (!this.closed) this.tracker.connect(key, deviceId, this.o.now());
  }

  disconnected(key: object): void {
    if (!this.closed) this.tracker.disconnect(key, this.o.now());
  }

  /** Report parts not yet accepted by the bus: waiting, or being published. */
  get pending(): number {
    return this.queue.length + (this.inFlight === undefined ? 0 : 1);
  }

  /** Intervals in the parts not yet accepted by the bus. */
  get pendingIntervals(): number {
    return this.queuedIntervals + (this.inFlight?.intervals.length ?? 0);
  }

  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => this.report(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Cut the current window now and queue its report (nothing when no device was connected). */
  report(): void {
    const { clockStepBackMs, skippedMs } = this.tracker;
    const w = this.tracker.cut(this.o.now());
    // Not silent: time the wall clock took back (the tracker's clock stood still meanwhile) or a gap
    // longer than a report window (clock jumped forward, process suspended) is not connected time.
    if (this.tracker.clockStepBackMs > clockStepBackMs) this.o.log.warn('broker clock stepped back; connected time is not counted until it catches up', { ms: this.tracker.clockStepBackMs - clockStepBackMs });
    if (this.tracker.skippedMs > skippedMs) this.o.log.warn('gap between session reports longer than a report window (clock jumped forward, or the process was suspended); the rest of it is not reported', { skippedMs: this.tracker.skippedMs - skippedMs, window: { from: w.from, to: w.to } });
    if (w.intervals.length === 0) return;
    const parts = sessionReportParts({ brokerId: this.o.brokerId, seq: ++this.seq, from: w.from, to: w.to }, w.intervals);
    for (const p of parts) {
      this.queue.push(p);
      this.queuedIntervals += p.intervals.length;
    }
    // Drop the oldest waiting parts beyond the bound. The part being published is not in the queue:
    // dropping it would count as dropped a part the bus may accept, and drain() would then remove
    // a different, never-published part when that publish succeeds.
    let dropped = 0;
    let oldest: string | undefined;
    while (this.queuedIntervals > this.maxPendingIntervals && this.queue.length > 0) {
      const d = this.queue.shift()!;
      this.queuedIntervals -= d.intervals.length;
      oldest ??= sessionReportId(d);
      dropped++;
    }
    if (dropped > 0) {
      this.metrics.reports.inc({ outcome: 'dropped' }, dropped);
      this.o.log.warn('session reports dropped: the bus has refused them for too long', { dropped, oldest, pendingIntervals: this.pendingIntervals });
    }
    this.kick();
  }

  private kick(): void {
    if (this.sending !== undefined) return;
    this.sending = this.drain().finally(() => {
      this.sending = undefined;
      // A report queued between the loop's last check and here would otherwise wait for the next cut.
      if (this.queue.length > 0 && !this.giveUp) this.kick();
    });
  }

  /** The next part to publish: the one whose publish failed (retried with the same id), else the oldest waiting. */
  private take(): SessionReport | undefined {
    if (this.inFlight === undefined) {
      const next = this.queue.shift();
      if (next !== undefined) this.queuedIntervals -= next.intervals.length;
      this.inFlight = next;
    }
    return this.inFlight;
  }

  private async drain(): Promise<void> {
    let delay = 50;
    for (let next = this.take(); next !== undefined && !this.giveUp; next = this.take()) {
      try {
        await this.o.publisher.publish(next);
        this.inFlight = undefined;
        this.metrics.reports.inc({ outcome: 'published' });
        this.metrics.connectedMs.inc(connectedMsOf(next));
        if (this.failing) this.o.log.info('session reports are accepted again', { pending: this.pending });
        this.failing = false;
        delay = 50;
      } catch (e) {
        if (isPulseError(e, 'SESSION_BAD_REPORT')) {
          // A report this tracker built is always valid; should one not be, retrying cannot help.
          this.inFlight = undefined;
          this.metrics.reports.inc({ outcome: 'dropped' });
          this.o.log.error('session report refused as malformed', { id: sessionReportId(next), error: e });
          continue;
        }
        if (this.giveUp) break;
        this.metrics.reports.inc({ outcome: 'retried' });
        if (!this.failing) this.o.log.warn('session report publish failed; retrying', { id: sessionReportId(next), error: e });
        this.failing = true;
        await sleep(delay);
        delay = Math.min(delay * 2, 5_000);
      }
    }
    // Given up at shutdown: the part whose last publish failed (or was never sent) was not published.
    if (this.giveUp && this.inFlight !== undefined) {
      this.inFlight = undefined;
      this.metrics.reports.inc({ outcome: 'dropped' });
    }
  }

  /**
   * Graceful shutdown: report the last window (every session still open ends now) and wait up to
   * `graceMs` for the bus to take what is pending; the rest is dropped and counted.
   */
  async close(graceMs: number): Promise<void> {
    if (this.closed) return;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.report();
    this.closed = true;
    let t: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'late'>((r) => (t = setTimeout(() => r('late'), graceMs)));
    while (this.sending !== undefined) if ((await Promise.race([this.sending, deadline])) === 'late') break;
    clearTimeout(t);
    this.giveUp = true;
    // The waiting parts are dropped now. A part still being published is counted when its publish
    // settles (published if the bus took it after all, else dropped by drain()), never twice.
    if (this.queue.length > 0) {
      this.metrics.reports.inc({ outcome: 'dropped' }, this.queue.length);
      this.o.log.warn('session reports not published before shutdown', { dropped: this.queue.length, publishing: this.inFlight === undefined ? 0 : 1 });
      this.queue.length = 0;
      this.queuedIntervals = 0;
    }
  }
}
