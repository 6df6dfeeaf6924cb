// GET /api/fleet (issue 7 §1): device counts by health status, heartbeats per second, rejections per
// second by reason, and a per-minute heartbeat series for the dashboard chart. Everything is read from
// the database, so every oracle process behind a load balancer answers the same.
import type { Sql } from '../store/store.ts';
import { HEALTH_STATUSES, type HealthStatus } from '../health/health-rules.ts';

export type FleetSummary = {
  readonly generatedAt: number;
  readonly devices: Readonly<Record<HealthStatus, number>> & { readonly total: number; readonly flapping: number };
  /** Window behind the two rates below, in seconds. */
  readonly windowSeconds: number;
  readonly heartbeatsPerSecond: number;
  readonly rejectionsPerSecond: Readonly<Record<string, number>>;
  /** Accepted heartbeats per minute (by device timestamp) over the last hour, oldest first. */
  readonly rate: readonly { readonly t: number; readonly heartbeats: number }[];
  /** Rejections by reason over the last 24 h, largest first. */
  readonly rejectionsByReason: readonly { readonly reason: string; readonly count: number }[];
};

const MINUTE = 60_000;

type History = Pick<FleetSummary, 'rate' | 'rejectionsByReason'>;

/**
 * The fleet summary with its two history parts (the per-minute series over the last hour and the 24 h
 * rejection counts) cached for `historyTtlMs`: they cost a scan of the last hour's heartbeats, which
 * grows with the fleet, and change only by the minute. Counts and the 60 s rates are always fresh.
 * Concurrent requests share one computation.
 */
export class FleetSummarizer {
  private history: { at: number; value: Promise<History> } | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly historyTtlMs = 10_000,
  ) {}

  async summary(nowMs: number, windowSeconds = 60): Promise<FleetSummary> {
    const h = this.history;
    if (h === undefined || nowMs - h.at >= this.historyTtlMs || nowMs < h.at) {
      const value = fleetHistory(this.sql, nowMs);
      this.history = { at: nowMs, value };
      value.catch(() => {
        if (this.history?.value === value) this.history = undefined;
      });
    }
    const [current, history] = await Promise.all([fleetCurrent(this.sql, nowMs, windowSeconds), this.history!.value]);
    return { ...current, ...history };
  }
}

/** Uncached summary (tests, one-off callers). */
export async function fleetSummary(sql: Sql, nowMs: number, windowSeconds = 60): Promise<FleetSummary> {
  const [current, history] = await Promise.all([fleetCurrent(sql, nowMs, windowSeconds), fleetHistory(sql, nowMs)]);
  return { ...current, ...history };
}

async function fleetCurrent(sql: Sql, nowMs: number, windowSeconds: number): Promise<Omit<FleetSummary, keyof History>> {
  // Registry revocation wins over the monitor's last state (it may not have ticked since).
  const counts = await sql.query<{ status: HealthStatus; n: string; flapping: string }>(
    `SELECT CASE WHEN d.status = 'revoked' THEN 'revoked' ELSE coalesce(dh.status, 'unseen') END AS status,
            count(*)::text AS n, count(*) FILTER (WHERE dh.flapping AND d.status <> 'revoked')::text AS flapping
       FROM devices d LEFT JOIN device_health dh ON dh.device_id = d.device_id
      GROUP BY 1`,
  );
  const devices: Record<HealthStatus, number> = { unseen: 0, online: 0, offline: 0, revoked: 0 };
  let flapping = 0;
  for (const c of counts) {
    if ((HEALTH_STATUSES as readonly string[]).includes(c.status)) devices[c.status] += Number(c.n);
    flapping += Number(c.flapping);
  }
  const total = devices.unseen + devices.online + devices.offline + devices.revoked;

  const windowStart = nowMs - windowSeconds * 1000;
  const [hb] = await sql.query<{ n: string }>('SELECT count(*)::text AS n FROM heartbeats WHERE at > to_timestamp($1::bigint / 1000.0) AND at <= to_timestamp($2::bigint / 1000.0)', [
    String(windowStart),
    String(nowMs),
  ]);
  const rej = await sql.query<{ reason: string; n: string }>(
    'SELECT reason, count(*)::text AS n FROM rejections WHERE recorded_at > to_timestamp($1::bigint / 1000.0) GROUP BY reason ORDER BY reason',
    [String(windowStart)],
  );
  const rejectionsPerSecond: Record<string, number> = {};
  for (const r of rej) rejectionsPerSecond[r.reason] = Number(r.n) / windowSeconds;

  return {
    generatedAt: nowMs,
    devices: { ...devices, total, flapping },
    windowSeconds,
    heartbeatsPerSecond: Number(hb?.n ?? 0) / windowSeconds,
    rejectionsPerSecond,
  };
}

async function fleetHistory(sql: Sql, nowMs: number): Promise<History> {
  const hourStart = Math.floor(nowMs / MINUTE) * MINUTE - 59 * MINUTE;
  const series = await sql.query<{ minute: string; n: string }>(
    `SELECT (floor(ts / 60000) * 60000)::bigint::text AS minute, count(*)::text AS n
       FROM heartbeats
      WHERE at >= to_timestamp($1::bigint / 1000.0) AND at < to_timestamp($2::bigint / 1000.0)
      GROUP BY 1`,
    [String(hourStart), String(hourStart + 60 * MINUTE)],
  );
  const byMinute = new Map(series.map((s) => [Number(s.minute), Number(s.n)]));
  const rate = Array.from({ length: 60 }, (_, i) => {
    const t = hourStart + i * MINUTE;
    return { t, heartbeats: byMinute.get(t) ?? 0 };
  });

  const byReason = await sql.query<{ reason: string; n: string }>(
    `SELECT reason, count(*)::text AS n FROM rejections WHERE recorded_at > to_timestamp($1::bigint / 1000.0)
      GROUP BY reason ORDER BY count(*) DESC, reason LIMIT 50`,
    [String(nowMs - 24 * 60 * MINUTE)],
  );

  return { rate, rejectionsByReason: byReason.map((r) => ({ reason: r.reason, count: Number(r.n) })) };
}
