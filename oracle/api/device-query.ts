// GET /api/devices and GET /api/devices/:id (issue 7 §1). Parameter parsing is a Result with a
// stable code (API_BAD_QUERY), never an exception; SQL is always parameterized.
import type { Sql } from '../store/store.ts';
import { err, ok, type Result } from '../../shared/result.ts';
import { fromHex, toHex } from '../../shared/hex.ts';
import { isDeviceId } from '../../shared/protocol/device-id.ts';
import { EVENT_COLUMNS, eventFromRow, type StoredHealthEvent } from '../health/health-monitor.ts';
import type { HealthStatus } from '../health/health-rules.ts';

export type DeviceFilter = {
  readonly status?: HealthStatus | 'flapping';
  /** 20-byte owner address. */
  readonly owner?: Uint8Array;
  /** 32-byte maker key. */
  readonly maker?: Uint8Array;
  /** Lowercased search text: a device id (prefix), owner address (prefix) or model (substring). */
  readonly q?: string;
  readonly limit: number;
  readonly offset: number;
};

export const MAX_PAGE = 200;

export function parseDeviceFilter(params: URLSearchParams): Result<DeviceFilter, 'API_BAD_QUERY'> {
  const out: { -readonly [K in keyof DeviceFilter]: DeviceFilter[K] } = { limit: 50, offset: 0 };
  const status = params.get('status');
  if (status !== null && status !== '') {
    if (!['unseen', 'online', 'offline', 'revoked', 'flapping'].includes(status)) return err('API_BAD_QUERY', 'status must be one of unseen, online, offline, revoked, flapping');
    out.status = status as DeviceFilter['status'] & string;
  }
  const owner = params.get('owner');
  if (owner !== null && owner !== '') {
    if (!/^0x[0-9a-fA-F]{40}$/.test(owner)) return err('API_BAD_QUERY', 'owner must be 0x followed by 40 hex characters');
    out.owner = fromHex(owner.slice(2), true)!;
  }
  const maker = params.get('maker');
  if (maker !== null && maker !== '') {
    if (!/^[0-9a-fA-F]{64}$/.test(maker)) return err('API_BAD_QUERY', 'maker must be a 64-hex-character maker key');
    out.maker = fromHex(maker, true)!;
  }
  const q = params.get('q');
  if (q !== null && q.trim() !== '') {
    if (q.length > 100) return err('API_BAD_QUERY', 'q must be at most 100 characters');
    out.q = q.trim().toLowerCase();
  }
  for (const [name, min, max] of [['limit', 1, MAX_PAGE], ['offset', 0, 1_000_000]] as const) {
    const v = params.get(name);
    if (v === null || v === '') continue;
    if (!/^\d{1,7}$/.test(v) || Number(v) < min || Number(v) > max) return err('API_BAD_QUERY', `${name} must be an integer from ${min} to ${max}`);
    out[name] = Number(v);
  }
  return ok(out);
}

export type DeviceSummary = {
  readonly deviceId: string;
  /** Registry status, as in the registry's device record. */
  readonly status: 'active' | 'revoked';
  /** Health from signed heartbeats (oracle/health); 'revoked' when the registry revoked it. */
  readonly health: HealthStatus;
  readonly flapping: boolean;
  /** When the current health status began (unix ms, rule time), null while unseen. */
  readonly healthSinceMs: number | null;
  readonly owner: string | null;
  readonly makerKey: string | null;
  readonly makerName: string | null;
  readonly model: string | null;
  readonly lastSeenMs: number | null;
  readonly lastSeq: string | null;
};

type SummaryRow = {
  device_id: string;
  reg_status: string;
  h_status: HealthStatus | null;
  flapping: boolean | null;
  since_ms: string | null;
  owner: Uint8Array | null;
  maker_key: Uint8Array | null;
  maker_name: string | null;
  model: string | null;
  last_ts: string | null;
  max_seq: string;
};

const SUMMARY_SELECT = `
  SELECT d.device_id, d.status AS reg_status, dh.status AS h_status, dh.flapping, dh.since_ms::text AS since_ms,
         d.owner, d.maker_key, m.name AS maker_name, d.model, d.max_seq::text AS max_seq,
         -- Evaluated only for the rows of the page (a join would let the planner hash all heartbeats).
         (SELECT h.ts::text FROM heartbeats h WHERE h.device_id = d.device_id AND h.seq = d.max_seq) AS last_ts
    FROM devices d
    LEFT JOIN device_health dh ON dh.device_id = d.device_id
    LEFT JOIN makers m ON m.maker_key = d.maker_key`;

function summary(r: SummaryRow): DeviceSummary {
  const revoked = r.reg_status === 'revoked';
  return {
    deviceId: r.device_id,
    status: revoked ? 'revoked' : 'active',
    health: revoked ? 'revoked' : (r.h_status ?? 'unseen'),
    flapping: !revoked && r.flapping === true,
    healthSinceMs: r.since_ms === null ? null : Number(r.since_ms),
    owner: r.owner === null ? null : `0x${toHex(r.owner)}`,
    makerKey: r.maker_key === null ? null : toHex(r.maker_key),
    makerName: r.maker_name,
    model: r.model,
    lastSeenMs: r.last_ts === null ? null : Number(r.last_ts),
    lastSeq: r.max_seq === '0' ? null : r.max_seq,
  };
}

function likeEscape(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export async function listDevices(sql: Sql, f: DeviceFilter): Promise<{ devices: DeviceSummary[]; total: number; limit: number; offset: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown): string => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.status === 'revoked') where.push(`d.status = 'revoked'`);
  else if (f.status === 'unseen') where.push(`d.status <> 'revoked' AND (dh.status IS NULL OR dh.status = 'unseen')`);
  else if (f.status === 'flapping') where.push(`d.status <> 'revoked' AND dh.flapping`);
  else if (f.status !== undefined) where.push(`d.status <> 'revoked' AND dh.status = ${p(f.status)}`);
  if (f.owner !== undefined) where.push(`d.owner = ${p(f.owner)}`);
  if (f.maker !== undefined) where.push(`d.maker_key = ${p(f.maker)}`);
  if (f.q !== undefined) {
    const q = likeEscape(f.q.startsWith('0x') ? f.q.slice(2) : f.q);
    const prefix = p(`${q}%`);
    const inner = p(`%${q}%`);
    where.push(`(d.device_id LIKE ${prefix} OR encode(d.owner, 'hex') LIKE ${prefix} OR lower(d.model) LIKE ${inner} OR lower(m.name) LIKE ${inner})`);
  }
  const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  const [count] = await sql.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM devices d LEFT JOIN device_health dh ON dh.device_id = d.device_id LEFT JOIN makers m ON m.maker_key = d.maker_key ${clause}`,
    params,
  );
  const rows = await sql.query<SummaryRow>(`${SUMMARY_SELECT} ${clause} ORDER BY d.device_id LIMIT ${p(f.limit)} OFFSET ${p(f.offset)}`, params);
  return { devices: rows.map(summary), total: Number(count?.n ?? 0), limit: f.limit, offset: f.offset };
}

export type UptimeWindow = {
  readonly slots: number;
  /** Slots holding an accepted, signed heartbeat: what rewards count (docs/rewards.md). */
  readonly credited: number;
  /** Slots in which the oracle received anything from the device, accepted or rejected. */
  readonly seen: number;
  readonly creditedRatio: number;
  readonly seenRatio: number;
};

export type EpochReward = {
  readonly epoch: number;
  readonly epochStatus: string;
  readonly creditedSlots: number;
  readonly slotCount: number;
  readonly uptimeBps: number;
  readonly eligible: boolean;
  readonly reasons: readonly string[];
  /** Token smallest units as decimal strings (uint256 does not fit a JSON number). */
  readonly availabilityReward: string;
  readonly contributionReward: string;
  readonly total: string;
};

export type DeviceDetail = DeviceSummary & {
  readonly slotIntervalMs: number;
  readonly uptime: { readonly '1h': UptimeWindow; readonly '24h': UptimeWindow; readonly '7d': UptimeWindow };
  /**
   * The last 24 h by slot, oldest first, one character per slot: '1' credited, 'r' only rejected
   * messages, '0' nothing. `fromSlot` is the first character's slot number.
   */
  readonly timeline: { readonly fromSlot: string; readonly slots: string };
  readonly recentHeartbeats: readonly { seq: string; ts: number; receivedAt: number; slot: string; keyId: string; metrics: Record<string, string> }[];
  readonly recentRejections: readonly { id: string; seq: string | null; reason: string; detail: string; receivedAt: number }[];
  readonly rejectionsByReason: readonly { reason: string; count: number }[];
  readonly statusHistory: readonly StoredHealthEvent[];
  readonly registryHistory: readonly { event: string; status: string; owner: string | null; keyId: string | null; at: string }[];
  /** Closed epochs' scores and rewards for this device, newest first (epoch_device_scores). */
  readonly rewards: readonly EpochReward[];
};

export async function deviceDetail(sql: Sql, deviceId: string, nowMs: number, slotIntervalMs: number): Promise<DeviceDetail | undefined> {
  if (!isDeviceId(deviceId)) return undefined;
  const rows = await sql.query<SummaryRow>(`${SUMMARY_SELECT} WHERE d.device_id = $1`, [deviceId]);
  const r = rows[0];
  if (r === undefined) return undefined;

  const nowSlot = Math.floor(nowMs / slotIntervalMs);
  const slotsPer = (ms: number): number => Math.max(1, Math.round(ms / slotIntervalMs));
  const windows = { '1h': slotsPer(3_600_000), '24h': slotsPer(86_400_000), '7d': slotsPer(7 * 86_400_000) };
  const from7d = nowSlot - windows['7d'] + 1;
  const credited = await sql.query<{ slot: string }>('SELECT slot::text AS slot FROM slot_rollups WHERE device_id = $1 AND slot BETWEEN $2 AND $3', [
    deviceId,
    String(from7d),
    String(nowSlot),
  ]);
  // A rejection's slot is its broker receive time / interval: the device's own timestamp may be the
  // reason it was rejected (HB_CLOCK_SKEW), so it cannot be trusted here.
  const rejectedSlots = await sql.query<{ slot: string }>(
    `SELECT DISTINCT floor(received_at::numeric / $2)::bigint::text AS slot FROM rejections
      WHERE device_id = $1 AND received_at >= $3::bigint AND received_at < $4::bigint`,
    [deviceId, String(slotIntervalMs), String(from7d * slotIntervalMs), String((nowSlot + 1) * slotIntervalMs)],
  );
  const creditedSet = new Set(credited.map((c) => Number(c.slot)));
  const seenSet = new Set([...creditedSet, ...rejectedSlots.map((c) => Number(c.slot))]);
  const window = (n: number): UptimeWindow => {
    const lo = nowSlot - n + 1;
    let c = 0;
    let s = 0;
    for (const x of creditedSet) if (x >= lo) c += 1;
    for (const x of seenSet) if (x >= lo) s += 1;
    return { slots: n, credited: c, seen: s, creditedRatio: c / n, seenRatio: s / n };
  };
  const tlFrom = nowSlot - windows['24h'] + 1;
  let timeline = '';
  for (let s = tlFrom; s <= nowSlot; s++) timeline += creditedSet.has(s) ? '1' : seenSet.has(s) ? 'r' : '0';

  // Metric values are u64: read them as text (json_object_agg of jsonb_each_text) so no driver turns
  // them into a float that loses precision above 2^53.
  const hbs = await sql.query<{ seq: string; ts: string; received_at: string; slot: string; key_id: string; metrics: string }>(
    `SELECT seq::text AS seq, ts::text AS ts, received_at::text AS received_at, slot::text AS slot, key_id,
            (SELECT coalesce(json_object_agg(e.k, e.v), '{}'::json) FROM jsonb_each_text(metrics) AS e(k, v))::text AS metrics
       FROM heartbeats hb WHERE hb.device_id = $1 ORDER BY hb.seq DESC LIMIT 20`,
    [deviceId],
  );
  const rejs = await sql.query<{ id: string; seq: string | null; reason: string; detail: string; received_at: string }>(
    `SELECT id::text AS id, seq::text AS seq, reason, detail, received_at::text AS received_at
       FROM rejections rj WHERE rj.device_id = $1 ORDER BY rj.id DESC LIMIT 20`,
    [deviceId],
  );
  const byReason = await sql.query<{ reason: string; n: string }>(
    `SELECT reason, count(*)::text AS n FROM rejections WHERE device_id = $1 AND received_at >= $2::bigint
      GROUP BY reason ORDER BY count(*) DESC, reason`,
    [deviceId, String(nowMs - 7 * 86_400_000)],
  );
  const history = await sql.query<Parameters<typeof eventFromRow>[0]>(
    `SELECT ${EVENT_COLUMNS} FROM device_health_events ev WHERE ev.device_id = $1 ORDER BY ev.id DESC LIMIT 50`,
    [deviceId],
  );
  const registry = await sql.query<{ event: string; status: string; owner: Uint8Array | null; key_id: string | null; at: string }>(
    `SELECT event, status, owner, key_id, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at
       FROM device_events de WHERE de.device_id = $1 ORDER BY de.id DESC LIMIT 50`,
    [deviceId],
  );

  const rewards = await sql.query<{
    epoch: string; status: string; credited_slots: number; slot_count: number; uptime_bps: number; eligible: boolean; reasons: string[];
    availability_reward: string; contribution_reward: string; total: string;
  }>(
    `SELECT s.epoch::text AS epoch, e.status, s.credited_slots, s.slot_count, s.uptime_bps, s.eligible, s.reasons,
            s.availability_reward::text AS availability_reward, s.contribution_reward::text AS contribution_reward,
            (s.availability_reward + s.contribution_reward)::text AS total
       FROM epoch_device_scores s JOIN epochs e ON e.epoch = s.epoch
      WHERE s.device_id = $1 ORDER BY s.epoch DESC LIMIT 30`,
    [deviceId],
  );

  return {
    ...summary(r),
    slotIntervalMs,
    uptime: { '1h': window(windows['1h']), '24h': window(windows['24h']), '7d': window(windows['7d']) },
    timeline: { fromSlot: String(tlFrom), slots: timeline },
    recentHeartbeats: hbs.map((h) => ({
      seq: h.seq,
      ts: Number(h.ts),
      receivedAt: Number(h.received_at),
      slot: h.slot,
      keyId: h.key_id,
      // u64 values stay decimal strings: a JSON number would lose precision above 2^53.
      metrics: JSON.parse(h.metrics) as Record<string, string>,
    })),
    recentRejections: rejs.map((x) => ({ id: x.id, seq: x.seq, reason: x.reason, detail: x.detail, receivedAt: Number(x.received_at) })),
    rejectionsByReason: byReason.map((x) => ({ reason: x.reason, count: Number(x.n) })),
    statusHistory: history.map(eventFromRow),
    registryHistory: registry.map((e) => ({ event: e.event, status: e.status, owner: e.owner === null ? null : `0x${toHex(e.owner)}`, keyId: e.key_id, at: e.at })),
    rewards: rewards.map((x) => ({
      epoch: Number(x.epoch),
      epochStatus: x.status,
      creditedSlots: x.credited_slots,
      slotCount: x.slot_count,
      uptimeBps: x.uptime_bps,
      eligible: x.eligible,
      reasons: x.reasons,
      availabilityReward: x.availability_reward,
      contributionReward: x.contribution_reward,
      total: x.total,
    })),
  };
}
