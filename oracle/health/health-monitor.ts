// The health monitor (issue 7 §2): every tick it reads each device's latest accepted heartbeat, runs
// the pure rules (health-rules.ts) and, in ONE transaction, upserts device_health and appends every
// transition to device_health_events (migrations/003_device_health.sql).
//
// Several oracle processes may run a monitor: a transaction-level advisory lock makes one of them do
// each tick and the others skip it, so transitions (and the alerts sent for them) are never doubled.
// Listeners run after COMMIT, so an alert or live event never describes a rolled-back transition.
//
// Cost per tick: one pass over devices joined to the heartbeat at devices.max_seq (primary-key
// lookups, never a heartbeat scan), plus index lookups for devices whose seq advanced.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Sql, Store } from '../store/store.ts';
import { evaluateHealth, offlineAfterMs, HEALTH_STATUSES, type HealthEvent, type HealthRules, type HealthState, type HealthStatus } from './health-rules.ts';
import { PeriodicTask } from '../periodic-task.ts';

/** Advisory lock key: the ASCII bytes "PULSEHLT" as a signed 64-bit integer. */
export const HEALTH_LOCK_KEY = '5788616816583003220';

export type StoredHealthEvent = HealthEvent & { readonly id: string; readonly deviceId: string };

export type HealthMetrics = {
  readonly devices: Gauge<'status'>;
  readonly flapping: Gauge;
  readonly transitions: Counter<'event'>;
  readonly tickSeconds: Histogram;
};

export function createHealthMetrics(registry: Registry): HealthMetrics {
  return {
    devices: new Gauge({ name: 'pulse_devices', help: 'Devices by health status (unseen, online, offline, revoked), from signed heartbeats.', labelNames: ['status'], registers: [registry] }),
    flapping: new Gauge({ name: 'pulse_devices_flapping', help: 'Devices currently flagged as flapping.', registers: [registry] }),
    transitions: new Counter({ name: 'pulse_health_transitions_total', help: 'Health transitions recorded, by event (online, offline, revoked, flapping, stable).', labelNames: ['event'], registers: [registry] }),
    tickSeconds: new Histogram({ name: 'pulse_health_tick_seconds', help: 'Time for one health monitor tick.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
  };
}

export type HealthMonitorOptions = {
  readonly store: Store;
  readonly rules: HealthRules;
  /** Milliseconds between ticks (keep it well below missedIntervals × interval). */
  readonly tickMs?: number;
  readonly now?: () => number;
  readonly metrics?: HealthMetrics;
  readonly log?: (event: Record<string, unknown>) => void;
};

export type TickResult = { readonly skipped: boolean; readonly events: readonly StoredHealthEvent[]; readonly counts: Readonly<Record<HealthStatus, number>> };

type DeviceRow = {
  device_id: string;
  reg_status: string;
  registered_ms: string;
  max_seq: string | null;
  ts: string | null;
  h_status: HealthStatus | null;
  since_ms: string | null;
  last_ts: string | null;
  last_seq: string | null;
  flapping: boolean | null;
};

type EventRow = { id: string; device_id: string; event: HealthEvent['event']; from_status: HealthStatus; to_status: HealthStatus; flapping: boolean; at_ms: string; last_seq: string | null; last_ts: string | null; reason: string };

export function eventFromRow(r: EventRow): StoredHealthEvent {
  return {
    id: r.id,
    deviceId: r.device_id,
    event: r.event,
    from: r.from_status,
    to: r.to_status,
    flapping: r.flapping,
    atMs: Number(r.at_ms),
    lastSeq: r.last_seq,
    lastTs: r.last_ts === null ? null : Number(r.last_ts),
    reason: r.reason,
  };
}

export const EVENT_COLUMNS = 'id::text AS id, device_id, event, from_status, to_status, flapping, at_ms::text AS at_ms, last_seq::text AS last_seq, last_ts::text AS last_ts, reason';

export class HealthMonitor {
  private task: PeriodicTask | undefined;
  private readonly listeners = new Set<(events: readonly StoredHealthEvent[]) => void>();
  private readonly now: () => number;
  private readonly log: (event: Record<string, unknown>) => void;

  constructor(private readonly opts: HealthMonitorOptions) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? ((event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component: 'health', ...event })}\n`));
  }

  /** Called after each committed tick that recorded transitions. A throwing listener is logged, never fatal. */
  onEvents(listener: (events: readonly StoredHealthEvent[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    this.task ??= new PeriodicTask(() => this.tick(), this.opts.tickMs ?? 5000, (e) => this.log({ level: 'error', msg: 'health tick failed', error: (e as Error).message }));
    this.task.start();
  }

  async stop(): Promise<void> {
    await this.task?.stop();
  }

  /** One evaluation of every device (exposed for tests and `pulse` commands). */
  async tick(): Promise<TickResult> {
    const started = performance.now();
    const nowMs = this.now();
    const out = await this.opts.store.transaction((tx) => this.evaluate(tx, nowMs));
    const m = this.opts.metrics;
    if (!out.skipped && m !== undefined) {
      for (const s of HEALTH_STATUSES) m.devices.set({ status: s }, out.counts[s]);
      m.flapping.set(out.flappingCount);
      for (const e of out.events) m.transitions.inc({ event: e.event });
      m.tickSeconds.observe((performance.now() - started) / 1000);
    }
    if (out.events.length > 0) {
      for (const l of this.listeners) {
        try {
          l(out.events);
        } catch (e) {
          this.log({ level: 'error', msg: 'health listener threw', error: (e as Error).message });
        }
      }
    }
    return { skipped: out.skipped, events: out.events, counts: out.counts };
  }

  private async evaluate(tx: Sql, nowMs: number): Promise<TickResult & { flappingCount: number }> {
    const counts: Record<HealthStatus, number> = { unseen: 0, online: 0, offline: 0, revoked: 0 };
    const [lock] = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', [HEALTH_LOCK_KEY]);
    if (lock?.locked !== true) return { skipped: true, events: [], counts, flappingCount: 0 };

    const rules: HealthRules = this.opts.rules;
    // Only devices whose state can change this tick come back to Node: a new heartbeat, a
    // revocation, an online device whose last heartbeat is older than the limit, or a flapping flag
    // that may clear. In steady state that is a handful of rows however large the fleet.
    const rows = await tx.query<DeviceRow>(
      `SELECT d.device_id, d.status AS reg_status,
              floor(extract(epoch FROM d.registered_at) * 1000)::bigint::text AS registered_ms,
              CASE WHEN d.max_seq > 0 THEN d.max_seq::text END AS max_seq,
              -- A correlated lookup, evaluated only for the rows that pass the filter (a join would
              -- let the planner hash the whole heartbeats table).
              (SELECT h.ts::text FROM heartbeats h WHERE h.device_id = d.device_id AND h.seq = d.max_seq) AS ts,
              dh.status AS h_status, dh.since_ms::text AS since_ms, dh.last_ts::text AS last_ts, dh.last_seq::text AS last_seq, dh.flapping
         FROM devices d
         LEFT JOIN device_health dh ON dh.device_id = d.device_id
        WHERE (dh.device_id IS NULL AND (d.max_seq > 0 OR d.status <> 'active'))
           OR (dh.status <> 'revoked' AND (d.status <> 'active' OR d.max_seq > coalesce(dh.last_seq, 0)
               OR (dh.status = 'online' AND dh.last_ts < $1::bigint) OR dh.flapping))`,
      [String(nowMs - offlineAfterMs(rules))],
    );
    // Status changes inside the flap window (a first 'online' from 'unseen' is not a change).
    const recent = await tx.query<{ device_id: string; at_ms: string }>(
      `SELECT ev.device_id, ev.at_ms::text AS at_ms FROM device_health_events ev
        WHERE ev.at_ms > $1::bigint AND ev.event IN ('online', 'offline') AND ev.from_status <> 'unseen'
        ORDER BY ev.at_ms`,
      [String(nowMs - rules.flapWindowMs)],
    );
    const changes = new Map<string, number[]>();
    for (const r of recent) {
      const list = changes.get(r.device_id) ?? [];
      list.push(Number(r.at_ms));
      changes.set(r.device_id, list);
    }

    // The first heartbeat after the one already seen, for devices whose seq advanced.
    const advanced = rows.filter((r) => r.max_seq !== null && (r.last_seq === null || BigInt(r.max_seq) > BigInt(r.last_seq)));
    const firstAfter = new Map<string, number>();
    if (advanced.length > 0) {
      const firsts = await tx.query<{ device_id: string; first_ts: string | null }>(
        `SELECT p.device_id,
                (SELECT h.ts::text FROM heartbeats h WHERE h.device_id = p.device_id AND h.seq > p.after_seq ORDER BY h.seq LIMIT 1) AS first_ts
           FROM unnest($1::text[], $2::bigint[]) AS p(device_id, after_seq)`,
        [advanced.map((r) => r.device_id), advanced.map((r) => r.last_seq ?? '0')],
      );
      for (const f of firsts) if (f.first_ts !== null) firstAfter.set(f.device_id, Number(f.first_ts));
    }

    const upserts: { id: string; s: HealthState }[] = [];
    const newEvents: { deviceId: string; e: HealthEvent }[] = [];
    for (const r of rows) {
      const prev: HealthState | undefined =
        r.h_status === null
          ? undefined
          : {
              status: r.h_status,
              sinceMs: Number(r.since_ms),
              lastTs: r.last_ts === null ? null : Number(r.last_ts),
              lastSeq: r.last_seq,
              flapping: r.flapping === true,
              changes: changes.get(r.device_id) ?? [],
            };
      const fa = firstAfter.get(r.device_id);
      const { state, events } = evaluateHealth(
        prev,
        { revoked: r.reg_status !== 'active', lastTs: r.ts === null ? null : Number(r.ts), lastSeq: r.max_seq, ...(fa !== undefined ? { firstTsAfterPrevious: fa } : {}) },
        nowMs,
        rules,
        Number(r.registered_ms),
      );
      for (const e of events) newEvents.push({ deviceId: r.device_id, e });
      const changed =
        prev === undefined
          ? state.status !== 'unseen'
          : prev.status !== state.status || prev.flapping !== state.flapping || prev.lastTs !== state.lastTs || prev.lastSeq !== state.lastSeq;
      if (changed) upserts.push({ id: r.device_id, s: state });
    }

    if (upserts.length > 0) {
      await tx.query(
        `INSERT INTO device_health AS dh (device_id, status, since_ms, last_ts, last_seq, flapping, updated_at)
         SELECT device_id, status, since_ms, last_ts, last_seq, flapping, now()
           FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::boolean[])
             AS t(device_id, status, since_ms, last_ts, last_seq, flapping)
         ON CONFLICT (device_id) DO UPDATE
           SET status = excluded.status, since_ms = excluded.since_ms, last_ts = excluded.last_ts,
               last_seq = excluded.last_seq, flapping = excluded.flapping, updated_at = now()`,
        [
          upserts.map((u) => u.id),
          upserts.map((u) => u.s.status),
          upserts.map((u) => String(u.s.sinceMs)),
          upserts.map((u) => (u.s.lastTs === null ? null : String(u.s.lastTs))),
          upserts.map((u) => u.s.lastSeq),
          upserts.map((u) => u.s.flapping),
        ],
      );
    }

    let stored: StoredHealthEvent[] = [];
    if (newEvents.length > 0) {
      const inserted = await tx.query<EventRow>(
        `INSERT INTO device_health_events (device_id, event, from_status, to_status, flapping, at_ms, last_seq, last_ts, reason)
         SELECT device_id, event, from_status, to_status, flapping, at_ms, last_seq, last_ts, reason
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[])
             WITH ORDINALITY AS t(device_id, event, from_status, to_status, flapping, at_ms, last_seq, last_ts, reason, n)
          ORDER BY n
         RETURNING ${EVENT_COLUMNS}`,
        [
          newEvents.map((x) => x.deviceId),
          newEvents.map((x) => x.e.event),
          newEvents.map((x) => x.e.from),
          newEvents.map((x) => x.e.to),
          newEvents.map((x) => x.e.flapping),
          newEvents.map((x) => String(x.e.atMs)),
          newEvents.map((x) => x.e.lastSeq),
          newEvents.map((x) => (x.e.lastTs === null ? null : String(x.e.lastTs))),
          newEvents.map((x) => x.e.reason),
        ],
      );
      stored = inserted.map(eventFromRow).sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1));
    }
    // Fleet counts after this tick's writes (for the pulse_devices gauges).
    let flappingCount = 0;
    const totals = await tx.query<{ status: HealthStatus; n: string; flapping: string }>(
      `SELECT CASE WHEN d.status = 'revoked' THEN 'revoked' ELSE coalesce(dh.status, 'unseen') END AS status,
              count(*)::text AS n, count(*) FILTER (WHERE dh.flapping AND d.status <> 'revoked')::text AS flapping
         FROM devices d LEFT JOIN device_health dh ON dh.device_id = d.device_id GROUP BY 1`,
    );
    for (const t of totals) {
      if (t.status in counts) counts[t.status] += Number(t.n);
      flappingCount += Number(t.flapping);
    }
    return { skipped: false, events: stored, counts, flappingCount };
  }
}
