// The read API's queries on both stores (PostgreSQL when reachable, and the embedded PGlite default
// of `pulse dev`): the HTTP suite (api-http.test.ts) runs on PostgreSQL, this one checks that the
// same SQL answers the same on PGlite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { HealthMonitor } from '../oracle/health/health-monitor.ts';
import { fleetSummary, FleetSummarizer } from '../oracle/api/fleet-query.ts';
import { deviceDetail, listDevices, parseDeviceFilter } from '../oracle/api/device-query.ts';
import { FIXTURE_NETWORK_ID, fixtureDevice, fixtureRules, ingest } from '../oracle/api/fleet-fixture.ts';

const ok = await needs('postgres');
const I = 60_000;

describe.each(backends(ok))('read queries on $name', (backend) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  const now = Math.floor(Date.now() / I) * I + 30_000;
  const a = fixtureDevice();
  const b = fixtureDevice();

  beforeAll(async () => {
    const opened = await backend.open();
    store = opened.store;
    cleanup = opened.cleanup;
    const registry = new Registry({ store, networkId: FIXTURE_NETWORK_ID });
    expect((await registry.addDevice({ id: a.key.deviceId, owner: '0x' + '5e'.repeat(20), model: 'Weather 100%_pro' })).ok).toBe(true);
    expect((await registry.addDevice({ id: b.key.deviceId })).ok).toBe(true);
    // u64 metric values above 2^53 must come back exact.
    await ingest(store, fixtureRules(I), Array.from({ length: 5 }, (_, k) => ({ device: a, ts: now - (4 - k) * I - 1000, metrics: [{ id: 1, value: 18446744073709551615n }, { id: 2, value: 7n }] })));
    await ingest(store, fixtureRules(I), [{ device: b, ts: now - 1000, networkId: 99 }]);
    await new HealthMonitor({ store, rules: { intervalMs: I, missedIntervals: 3, flapWindowMs: 3_600_000, flapThreshold: 4 }, now: () => now, log: () => undefined }).tick();
  });

  afterAll(async () => {
    await cleanup?.();
  });

  it('fleet summary', async () => {
    const f = await fleetSummary(store, now);
    expect(f.devices).toEqual({ unseen: 1, online: 1, offline: 0, revoked: 0, total: 2, flapping: 0 });
    expect(f.heartbeatsPerSecond).toBeCloseTo(1 / 60, 10);
    expect(f.rate.reduce((s, r) => s + r.heartbeats, 0)).toBe(5);
    expect(f.rejectionsByReason).toEqual([{ reason: 'HB_WRONG_NETWORK', count: 1 }]);
    expect(await new FleetSummarizer(store).summary(now)).toEqual(f);
  });

  it('device list, with LIKE wildcards in the search taken literally', async () => {
    const q = (s: string) => {
      const f = parseDeviceFilter(new URLSearchParams(s));
      if (!f.ok) throw new Error(f.message);
      return listDevices(store, f.value);
    };
    expect((await q('')).total).toBe(2);
    expect((await q('q=100%25_pro')).devices.map((d) => d.deviceId)).toEqual([a.key.deviceId]);
    expect((await q('q=100%25_prx')).total).toBe(0);
    expect((await q('q=0x5e5e')).devices.map((d) => d.deviceId)).toEqual([a.key.deviceId]);
    expect((await q('status=unseen')).devices.map((d) => d.deviceId)).toEqual([b.key.deviceId]);
  });

  it('device detail with exact u64 metrics', async () => {
    const d = await deviceDetail(store, a.key.deviceId, now, I);
    expect(d).toBeDefined();
    expect(d!.health).toBe('online');
    expect(d!.lastSeq).toBe('5');
    expect(d!.uptime['1h']).toMatchObject({ credited: 5, seen: 5, slots: 60 });
    expect(d!.recentHeartbeats[0]!.metrics).toEqual({ '1': '18446744073709551615', '2': '7' });
    const db = await deviceDetail(store, b.key.deviceId, now, I);
    expect(db!.uptime['1h']).toMatchObject({ credited: 0, seen: 1 });
    expect(db!.recentRejections.map((r) => r.reason)).toEqual(['HB_WRONG_NETWORK']);
    expect(await deviceDetail(store, 'ab'.repeat(32), now, I)).toBeUndefined();
    expect(await deviceDetail(store, 'not-hex', now, I)).toBeUndefined();
  });
});
