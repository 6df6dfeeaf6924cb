// Turns oracle state into alerts (issue 7 §3): device offline/online/flapping from the health monitor's
// committed transitions, a fleet-wide heartbeat-rate drop and rejection spikes by reason from the
// database every window, and failed epoch posts reported by the epoch poster (epochPostFailed).
//
// Never blocking ingest: this reads committed rows on its own timer and hands alerts to the webhook
// sender, whose send() only enqueues. With several oracle processes, a transaction-level advisory
// lock lets one of them evaluate each window (device alerts already come from the one monitor that
// recorded the transition), so an operator gets each alert once.
import type { Store } from '../store/store.ts';
import type { StoredHealthEvent } from '../health/health-monitor.ts';
import { RateDropDetector, RejectionSpikeDetector, type RateDropRules, type SpikeRules } from './alert-rules.ts';
import { makeAlert, type Alert } from './webhook-sender.ts';
import { PeriodicTask } from '../periodic-task.ts';

/** Advisory lock key: the ASCII bytes "PULSEALR" as a signed 64-bit integer. */
export const ALERT_LOCK_KEY = '5788616816582544466';

export type AlertSink = { send(alert: Alert): void };

export type AlertMonitorOptions = {
  readonly store: Store;
  readonly sink: AlertSink;
  readonly windowMs?: number;
  /**
   * Heartbeats are counted by device timestamp in a window that ends this long before now, so a
   * heartbeat still in flight (up to the skew window, docs/protocol.md §Replay and time rules) is
   * not mistaken for a drop.
   */
  readonly lagMs?: number;
  readonly rate?: Partial<RateDropRules>;
  readonly spike?: Partial<SpikeRules>;
  /** More device transitions than this in one health tick become one summary alert. */
  readonly maxDeviceAlerts?: number;
  readonly now?: () => number;
  readonly log?: (event: Record<string, unknown>) => void;
};

export class AlertMonitor {
  private readonly rate: RateDropDetector;
  private readonly spikes: RejectionSpikeDetector;
  private rejectionCursor: string | undefined;
  private readonly failedEpochs = new Set<number>();
  private task: PeriodicTask | undefined;
  private readonly now: () => number;
  private readonly log: (event: Record<string, unknown>) => void;

  constructor(private readonly opts: AlertMonitorOptions) {
    this.rate = new RateDropDetector({ dropRatio: 0.5, minBaseline: 10, warmupWindows: 5, alpha: 0.2, ...opts.rate });
    this.spikes = new RejectionSpikeDetector({ minCount: 20, factor: 5, alpha: 0.2, ...opts.spike });
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? ((event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component: 'alerts', ...event })}\n`));
  }

  start(): void {
    this.task ??= new PeriodicTask(() => this.check(), this.opts.windowMs ?? 60_000, (e) => this.log({ level: 'warn', msg: 'alert check failed', error: (e as Error).message }));
    this.task.start();
  }

  async stop(): Promise<void> {
    await this.task?.stop();
  }

  /** Health monitor listener (HealthMonitor.onEvents). */
  onHealthEvents(events: readonly StoredHealthEvent[]): void {
    const relevant = events.filter((e) => e.event === 'offline' || e.event === 'flapping' || (e.event === 'online' && e.from === 'offline'));
    const max = this.opts.maxDeviceAlerts ?? 50;
    if (relevant.length > max) {
      // A mass outage (a region, a broker) is one incident, not thousands of pages.
      const offline = relevant.filter((e) => e.event === 'offline');
      const online = relevant.filter((e) => e.event === 'online');
      this.opts.sink.send(
        makeAlert('devices.offline_many', offline.length > 0 ? 'critical' : 'info', Math.max(...relevant.map((e) => e.atMs)), `${offline.length} devices went offline and ${online.length} came back in one health check`, {
          offline: offline.length,
          online: online.length,
          flapping: relevant.filter((e) => e.event === 'flapping').length,
          sample: relevant.slice(0, 20).map((e) => ({ deviceId: e.deviceId, event: e.event, atMs: e.atMs })),
        }),
      );
      return;
    }
    for (const e of relevant) {
      const details = { deviceId: e.deviceId, from: e.from, to: e.to, atMs: e.atMs, lastSeq: e.lastSeq, lastTs: e.lastTs, reason: e.reason, eventId: e.id };
      if (e.event === 'offline') this.opts.sink.send(makeAlert('device.offline', 'warning', e.atMs, `device ${e.deviceId.slice(0, 12)}… is offline: ${e.reason}`, details));
      else if (e.event === 'online') this.opts.sink.send(makeAlert('device.online', 'info', e.atMs, `device ${e.deviceId.slice(0, 12)}… is back online`, details));
      else this.opts.sink.send(makeAlert('device.flapping', 'warning', e.atMs, `device ${e.deviceId.slice(0, 12)}… is flapping: ${e.reason}`, details));
    }
  }

  /**
   * The epoch pipeline reports a failed post. It retries failed epochs on its own schedule, so the
   * alert goes out once per epoch until that epoch is posted (epochPosted), not on every retry.
   */
  epochPostFailed(input: { readonly epoch: number; readonly error: string; readonly attempts?: number; readonly txHash?: string | null }): void {
    if (this.failedEpochs.has(input.epoch)) return;
    this.failedEpochs.add(input.epoch);
    this.opts.sink.send(makeAlert('epoch.post_failed', 'critical', this.now(), `epoch ${input.epoch}: posting the reward root failed: ${input.error.slice(0, 200)}`, { ...input }));
  }

  /** An epoch was posted after all: a later failure of it alerts again. */
  epochPosted(epoch: number): void {
    this.failedEpochs.delete(epoch);
  }

  /** One evaluation window: heartbeat rate and rejection counts (exposed for tests). */
  async check(): Promise<{ skipped: boolean; alerts: Alert[] }> {
    const nowMs = this.now();
    const windowMs = this.opts.windowMs ?? 60_000;
    const end = nowMs - (this.opts.lagMs ?? 30_000);
    const alerts: Alert[] = [];
    const skipped = await this.opts.store.transaction(async (tx) => {
      const [lock] = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', [ALERT_LOCK_KEY]);
      if (lock?.locked !== true) return true;

      const [hb] = await tx.query<{ n: string }>('SELECT count(*)::text AS n FROM heartbeats WHERE at > to_timestamp($1::bigint / 1000.0) AND at <= to_timestamp($2::bigint / 1000.0)', [
        String(end - windowMs),
        String(end),
      ]);
      const count = Number(hb?.n ?? 0);
      const v = this.rate.observe(count);
      const perMin = (n: number): string => ((n * 60_000) / windowMs).toFixed(1);
      if (v.kind === 'drop')
        alerts.push(
          makeAlert('fleet.heartbeat_rate_drop', 'critical', end, `fleet heartbeat rate dropped to ${perMin(v.count)}/min from a baseline of ${perMin(v.baseline)}/min`, {
            windowMs,
            count: v.count,
            baseline: v.baseline,
          }),
        );
      else if (v.kind === 'recovered')
        alerts.push(makeAlert('fleet.heartbeat_rate_recovered', 'info', end, `fleet heartbeat rate recovered to ${perMin(v.count)}/min`, { windowMs, count: v.count, baseline: v.baseline }));

      // Rejections since the last check, by id (the primary key), so none is counted twice.
      if (this.rejectionCursor === undefined) {
        const [c] = await tx.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM rejections');
        this.rejectionCursor = c?.id ?? '0';
      } else {
        const rows = await tx.query<{ reason: string; n: string; max_id: string }>(
          'SELECT reason, count(*)::text AS n, max(id)::text AS max_id FROM rejections WHERE id > $1::bigint GROUP BY reason',
          [this.rejectionCursor],
        );
        const counts = new Map(rows.map((r) => [r.reason, Number(r.n)]));
        for (const r of rows) if (BigInt(r.max_id) > BigInt(this.rejectionCursor)) this.rejectionCursor = r.max_id;
        for (const s of this.spikes.observe(counts))
          alerts.push(
            makeAlert('rejections.spike', 'warning', nowMs, `${s.count} rejections with reason ${s.reason} in the last window (baseline ${s.baseline.toFixed(1)})`, {
              reason: s.reason,
              count: s.count,
              baseline: s.baseline,
              windowMs,
            }),
          );
      }
      return false;
    });
    for (const a of alerts) this.opts.sink.send(a);
    return { skipped, alerts };
  }
}
