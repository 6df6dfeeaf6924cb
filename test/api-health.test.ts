// Device health from signed heartbeats (issue 7 §2): the pure rules, then the monitor on PostgreSQL and PGlite
// with heartbeats stored by the real ingest writer: offline after N missed intervals, the comeback
// dated by its first heartbeat, flapping detected and cleared, every transition recorded with its
// time, and one monitor per tick across processes (advisory lock).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { needs } from './support/services.ts';
import { evaluateHealth, type HealthRules, type HealthState } from '../oracle/health/health-rules.ts';
import { HealthMonitor, HEALTH_LOCK_KEY } from '../oracle/health/health-monitor.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { FIXTURE_NETWORK_ID, fixtureDevice, fixtureRules, ingest, type FixtureDevice } from '../oracle/api/fleet-fixture.ts';

const I = 60_000;
const RULES: HealthRules = { intervalMs: I, missedIntervals: 3, flapWindowMs: 60 * I, flapThreshold: 4 };

describe('health rules (pure)', () => {
  const T = 1_800_000_000_000;

  it('goes online at the first heartbeat and offline exactly N intervals after the last one', () => {
    const first = evaluateHealth(undefined, { revoked: false, lastTs: T + 5 * I, lastSeq: '6', firstTsAfterPrevious: T }, T + 5 * I, RULES, T - I);
    expect(first.events.map((e) => [e.event, e.from, e.to, e.atMs])).toEqual([['online', 'unseen', 'online', T]]);
    expect(first.state).toMatchObject({ status: 'online', sinceMs: T, lastTs: T + 5 * I });
    // Still online exactly at the limit; offline past it, dated at the limit.
    expect(evaluateHealth(first.state, { revoked: false, lastTs: T + 5 * I, lastSeq: '6' }, T + 8 * I, RULES).events).toEqual([]);
    const off = evaluateHealth(first.state, { revoked: false, lastTs: T + 5 * I, lastSeq: '6' }, T + 8 * I + 1, RULES);
    expect(off.events.map((e) => [e.event, e.atMs, e.reason])).toEqual([['offline', T + 8 * I, 'no heartbeat for 3 intervals']]);
    // Back: dated by the first heartbeat after the gap, not the latest one the monitor sees.
    const back = evaluateHealth(off.state, { revoked: false, lastTs: T + 20 * I, lastSeq: '9', firstTsAfterPrevious: T + 18 * I }, T + 20 * I, RULES);
    expect(back.events.map((e) => [e.event, e.from, e.atMs])).toEqual([['online', 'offline', T + 18 * I]]);
  });

  it('records an outage that fell between two ticks', () => {
    const s: HealthState = { status: 'online', sinceMs: T, lastTs: T, lastSeq: '1', flapping: false, changes: [] };
    const r = evaluateHealth(s, { revoked: false, lastTs: T + 10 * I, lastSeq: '2', firstTsAfterPrevious: T + 10 * I }, T + 10 * I, RULES);
    expect(r.events.map((e) => [e.event, e.atMs])).toEqual([
      ['offline', T + 3 * I],
      ['online', T + 10 * I],
    ]);
    expect(r.state.status).toBe('online');
  });

  it('flags flapping after the threshold and clears it after a quiet window', () => {
    let s: HealthState | undefined;
    const events: string[] = [];
    let seq = 0;
    // Online for 2 intervals, silent for 5, four times over.
    for (let k = 0; k < 4; k++) {
      const t0 = T + k * 7 * I;
      for (const [ts, now] of [[t0, t0], [t0 + I, t0 + I], [t0 + I, t0 + 5 * I]] as const) {
        const r = evaluateHealth(s, { revoked: false, lastTs: ts, lastSeq: String(++seq), firstTsAfterPrevious: ts }, now, RULES);
        s = r.state;
        events.push(...r.events.map((e) => e.event));
      }
    }
    expect(events).toEqual(['online', 'offline', 'online', 'offline', 'online', 'flapping', 'offline', 'online', 'offline']);
    expect(s!.flapping).toBe(true);
    // A whole window with no change clears it.
    const quiet = evaluateHealth(s, { revoked: false, lastTs: s!.lastTs, lastSeq: s!.lastSeq }, s!.changes[s!.changes.length - 1]! + RULES.flapWindowMs + 1, RULES);
    expect(quiet.events.map((e) => e.event)).toEqual(['stable']);
    expect(quiet.state.flapping).toBe(false);
  });

  it('treats revocation as final', () => {
    const s: HealthState = { status: 'online', sinceMs: T, lastTs: T, lastSeq: '1', flapping: true, changes: [T] };
    const r = evaluateHealth(s, { revoked: true, lastTs: T, lastSeq: '1' }, T + I, RULES);
    expect(r.events.map((e) => [e.event, e.from, e.to])).toEqual([['revoked', 'online', 'revoked']]);
    expect(r.state.flapping).toBe(false);
    expect(evaluateHealth(r.state, { revoked: false, lastTs: T + 2 * I, lastSeq: '2' }, T + 2 * I, RULES).events).toEqual([]);
  });

  it('property: events alternate consistently and each transition starts where the last one ended', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ gap: fc.integer({ min: 1, max: 10 * I }), look: fc.integer({ min: 0, max: 8 * I }), silent: fc.boolean() }), { maxLength: 40 }), (steps) => {
        let s: HealthState | undefined;
        let ts = T;
        let seq = 0;
        let status = 'unseen';
        let lastAt = -Infinity;
        let now = T;
        for (const st of steps) {
          if (!st.silent) ts += st.gap;
          const obs = seq === 0 && st.silent ? { revoked: false, lastTs: null, lastSeq: null } : { revoked: false, lastTs: ts, lastSeq: String(st.silent ? seq : ++seq), firstTsAfterPrevious: ts };
          now = Math.max(now, ts + st.look); // the monitor's clock never runs backwards
          const r = evaluateHealth(s, obs, now, RULES, T);
          for (const e of r.events) {
            if (e.event === 'flapping' || e.event === 'stable') continue;
            expect(e.from).toBe(status);
            expect(e.to).not.toBe(e.from);
            expect(e.atMs).toBeGreaterThanOrEqual(lastAt);
            status = e.to;
            lastAt = e.atMs;
          }
          s = r.state;
          expect(s.status).toBe(status);
          // Online exactly when the newest heartbeat is within the limit at the time of looking.
          if (s.lastTs !== null) expect(s.status === 'online').toBe(now - s.lastTs <= RULES.missedIntervals * I);
        }
      }),
      { numRuns: 200 },
    );
  });
});

const ok = await needs('postgres');

// PostgreSQL when reachable, and always the embedded PGlite store (`pulse dev`).
describe.each(backends(ok))('health monitor on $name', (backend) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let clock = 0;
  let monitor: HealthMonitor;
  const rules = fixtureRules(I);
  const d: FixtureDevice = fixtureDevice();
  const quiet: FixtureDevice = fixtureDevice();
  const T = Math.floor(Date.now() / I) * I - 300 * I;

  beforeAll(async () => {
    const opened = await backend.open();
    store = opened.store;
    cleanup = opened.cleanup;
    const registry = new Registry({ store, networkId: FIXTURE_NETWORK_ID });
    for (const x of [d, quiet]) expect((await registry.addDevice({ id: x.key.deviceId })).ok).toBe(true);
    monitor = new HealthMonitor({ store, rules: RULES, now: () => clock, log: () => undefined });
  });

  afterAll(async () => {
    await cleanup?.();
  });

  it('records online, offline, flapping and stable with their rule times, once each', async () => {
    const seen: string[] = [];
    monitor.onEvents((events) => seen.push(...events.map((e) => `${e.event}@${(e.atMs - T) / I}`)));
    // Four on/off cycles: 2 heartbeats, then 5 silent intervals, ticking every interval.
    for (let k = 0; k < 4; k++) {
      const t0 = T + k * 7 * I;
      for (let m = 0; m < 7; m++) {
        const now = t0 + m * I;
        if (m < 2) await ingest(store, rules, [{ device: d, ts: now }]);
        clock = now + 1000;
        await monitor.tick();
      }
    }
    // The fourth change (online@14) within the hour makes the device flapping.
    expect(seen).toEqual(['online@0', 'offline@4', 'online@7', 'offline@11', 'online@14', 'flapping@14', 'offline@18', 'online@21', 'offline@25']);
    // A quiet hour clears the flag.
    clock = T + 25 * I + RULES.flapWindowMs + 1;
    const t = await monitor.tick();
    expect(t.events.map((e) => e.event)).toEqual(['stable']);
    expect(t.counts).toEqual({ unseen: 1, online: 0, offline: 1, revoked: 0 });

    const rows = await store.query<{ event: string; at_ms: string; flapping: boolean }>(
      'SELECT event, at_ms::text AS at_ms, flapping FROM device_health_events WHERE device_id = $1 ORDER BY id',
      [d.key.deviceId],
    );
    expect(rows.map((r) => r.event)).toEqual(['online', 'offline', 'online', 'offline', 'online', 'flapping', 'offline', 'online', 'offline', 'stable']);
    const [h] = await store.query<{ status: string; since_ms: string; last_seq: string; flapping: boolean }>(
      'SELECT status, since_ms::text AS since_ms, last_seq::text AS last_seq, flapping FROM device_health WHERE device_id = $1',
      [d.key.deviceId],
    );
    expect(h).toEqual({ status: 'offline', since_ms: String(T + 25 * I), last_seq: '8', flapping: false });
    // Nothing new: another tick records nothing.
    expect((await monitor.tick()).events).toEqual([]);
  });

  // PGlite is one connection inside one process: there is no other process to hold the lock.
  it.skipIf(backend.name === 'pglite')('skips a tick while another process holds the monitor lock', async () => {
    await store.session(async (conn) => {
      await conn.query('BEGIN');
      await conn.query('SELECT pg_advisory_xact_lock($1::bigint)', [HEALTH_LOCK_KEY]);
      await ingest(store, rules, [{ device: quiet, ts: clock - 1000 }]);
      const t = await monitor.tick();
      expect(t.skipped).toBe(true);
      expect(t.events).toEqual([]);
      await conn.query('COMMIT');
    });
    const t = await monitor.tick();
    expect(t.skipped).toBe(false);
    expect(t.events.map((e) => [e.deviceId, e.event])).toEqual([[quiet.key.deviceId, 'online']]);
  });
});
