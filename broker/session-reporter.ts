// Session reports of one broker process (docs/broker.md §Session reports): every report interval
// (--session-report-interval, default 30 s) and once more on graceful shutdown, cut the tracked device
// sessions (broker/session-tracker.ts) into a window [from, to) and publish ONE report of it to the
// bus, split into parts only when it is too large for one message (bus/session-report.ts).
//
// Identity and retries: a report part's id is (broker instance id, report seq, part). The instance id
// is fresh per process, so ids never repeat across restarts; a publish that failed is retried with
// the same id, so the bus's duplicate window and the oracle's session_reports table count it once.
// Reports wait in order while the bus refuses them (bounded; the oldest are dropped and counted).
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
  /** Report parts held while the bus refuses them; beyond this the oldest are dropped. Default 1,000. */
  readonly maxPending?: number;
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
  private readonly maxPending: number;
  private readonly queue: SessionReport[] = [];
  private seq = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  private giveUp = false;
  private failing = false;

  constructor(private readonly o: SessionReporterOptions) {
    this.tracker = new SessionTracker(o.now());
    this.metrics = metricsOn(o.registry);
    this.maxPending = o.maxPending ?? 1_000;
  }

  /** An authenticated device session began (`key` identifies the connection). */
  connected(key: object, deviceId: string): void {
    if (!this.closed) this.tracker.connect(key, deviceId, this.o.now());
  }

  disconnected(key: object): void {
    if (!this.closed) this.tracker.disconnect(key, this.o.now());
  }

  /** Report parts waiting for the bus. */
  get pending(): number {
    return this.queue.length;
  }

  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => this.report(), this.o.intervalMs);
    this.timer.unref();
  }

  /** Cut the current window now and queue its report (nothing when no device was connected). */
  report(): void {
    const w = this.tracker.cut(this.o.now());
    if (w.intervals.length === 0) return;
    const parts = sessionReportParts({ brokerId: this.o.brokerId, seq: ++this.seq, from: w.from, to: w.to }, w.intervals);
    this.queue.push(...parts);
    if (this.queue.length > this.maxPending) {
      const dropped = this.queue.splice(0, this.queue.length - this.maxPending);
      this.metrics.reports.inc({ outcome: 'dropped' }, dropped.length);
      this.o.log.warn('session reports dropped: the bus has refused them for too long', { dropped: dropped.length, oldest: sessionReportId(dropped[0]!) });
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

  private async drain(): Promise<void> {
    let delay = 50;
    while (this.queue.length > 0 && !this.giveUp) {
      const next = this.queue[0]!;
      try {
        await this.o.publisher.publish(next);
        this.queue.shift();
        this.metrics.reports.inc({ outcome: 'published' });
        this.metrics.connectedMs.inc(connectedMsOf(next));
        if (this.failing) this.o.log.info('session reports are accepted again', { pending: this.queue.length });
        this.failing = false;
        delay = 50;
      } catch (e) {
        if (isPulseError(e, 'SESSION_BAD_REPORT')) {
          // A report this tracker built is always valid; should one not be, retrying cannot help.
          this.queue.shift();
          this.metrics.reports.inc({ outcome: 'dropped' });
          this.o.log.error('session report refused as malformed', { id: sessionReportId(next), error: e });
          continue;
        }
        this.metrics.reports.inc({ outcome: 'retried' });
        if (!this.failing) this.o.log.warn('session report publish failed; retrying', { id: sessionReportId(next), error: e });
        this.failing = true;
        if (this.giveUp) break;
        await sleep(delay);
        delay = Math.min(delay * 2, 5_000);
      }
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
    if (this.queue.length > 0) {
      this.metrics.reports.inc({ outcome: 'dropped' }, this.queue.length);
      this.o.log.warn('session reports not published before shutdown', { dropped: this.queue.length });
      this.queue.length = 0;
    }
  }
}
