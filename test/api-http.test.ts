// Operator API over real HTTP (issue 7 §1): the oracle's own HTTP server (oracle/http) with the
// operator routes attached, on a fresh PostgreSQL database. Devices are registered through the real
// registry routes and heartbeats go through the real ingest writer with real signatures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry as PromRegistry } from 'prom-client';
import { needs, freshDatabase } from './support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { createOracleHttpServer, type OracleHttpServer } from '../oracle/http/server.ts';
import { LiveFeed, createLiveFeedMetrics } from '../oracle/api/live-feed.ts';
import { HealthMonitor, createHealthMetrics } from '../oracle/health/health-monitor.ts';
import { attachOperatorRoutes } from '../oracle/api/operator-api.ts';
import { FIXTURE_NETWORK_ID, fixtureDevice, fixtureRules, ingest, type FixtureDevice } from '../oracle/api/fleet-fixture.ts';

const ok = await needs('postgres');

const INTERVAL = 60_000;
const TOKEN = 'operator-token-for-tests';
const AUTH = { authorization: `Bearer ${TOKEN}` };

type SseFrame = { id?: string; event?: string; data: string };

/** Read server-sent events from a fetch body until `done` says stop (or the timeout). */
async function readEvents(res: Response, done: (frames: SseFrame[]) => boolean, timeoutMs = 10_000): Promise<SseFrame[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const frames: SseFrame[] = [];
  let buf = '';
  const deadline = Date.now() + timeoutMs;
  while (!done(frames)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for events; got ${JSON.stringify(frames)}`);
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += decoder.decode(value, { stream: true });
    let idx: number;
    while ((idx = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, idx);
      buf = buf.slice(idx + 2);
      const f: SseFrame = { data: '' };
      let hasData = false;
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) f.id = line.slice(4);
        else if (line.startsWith('event: ')) f.event = line.slice(7);
        else if (line.startsWith('data: ')) {
          f.data += line.slice(6);
          hasData = true;
        }
      }
      if (hasData) frames.push(f);
    }
  }
  reader.releaseLock();
  return frames;
}

describe.skipIf(!ok)('operator API over HTTP (PostgreSQL)', () => {
  let cleanup: () => Promise<void>;
  let store: PgStore;
  let http: OracleHttpServer;
  let feed: LiveFeed;
  let health: HealthMonitor;
  let base: string;
  const now = Math.floor(Date.now() / 1000) * 1000;
  let clock = now;
  const a: FixtureDevice = fixtureDevice();
  const b: FixtureDevice = fixtureDevice();
  const c: FixtureDevice = fixtureDevice();
  const maker = fixtureDevice();
  const ownerA = '0x' + '1a'.repeat(20);
  const ownerB = '0x' + '2b'.repeat(20);

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { headers });
  const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', headers: { ...AUTH, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    const db = await freshDatabase();
    store = new PgStore({ url: db.url, maxConnections: 6 });
    await migrate(store);
    const registry = new Registry({ store, networkId: FIXTURE_NETWORK_ID });
    const metrics = new PromRegistry();
    http = createOracleHttpServer({ store, registry, operatorToken: TOKEN, metrics, log: () => undefined });
    feed = new LiveFeed({ store, pollMs: 100, metrics: createLiveFeedMetrics(metrics), log: () => undefined });
    health = new HealthMonitor({
      store,
      rules: { intervalMs: INTERVAL, missedIntervals: 3, flapWindowMs: 3_600_000, flapThreshold: 4 },
      now: () => clock,
      metrics: createHealthMetrics(metrics),
      log: () => undefined,
    });
    attachOperatorRoutes(http, { store, registry, slotIntervalMs: INTERVAL, feed, now: () => clock });
    await feed.start();
    base = `http://127.0.0.1:${await http.listen(0)}`;
    cleanup = async () => {
      await feed.stop();
      await http.close();
      await store.close();
      await db.drop();
    };

    // Registry through its real routes.
    expect((await post('/api/makers', { publicKey: maker.key.deviceId, name: 'Acme Sensors' })).status).toBe(201);
    expect((await post('/api/devices', { id: a.key.deviceId, owner: ownerA, maker: maker.key.deviceId, model: 'AQ-1' })).status).toBe(201);
    expect((await post('/api/devices', { id: b.key.deviceId, owner: ownerB, model: 'Relay' })).status).toBe(201);
    expect((await post('/api/devices', { id: c.key.deviceId })).status).toBe(201);

    const rules = fixtureRules(INTERVAL);
    // a: one heartbeat per slot for the last 30 minutes, the newest 5 s ago.
    await ingest(store, rules, Array.from({ length: 30 }, (_, k) => ({ device: a, ts: now - (29 - k) * INTERVAL - 5000 })));
    // b: ten heartbeats 30 to 21 minutes ago, then silence.
    await ingest(store, rules, Array.from({ length: 10 }, (_, k) => ({ device: b, ts: now - (30 - k) * INTERVAL - 5000 })));
    // Rejections: a second, different heartbeat for an accepted seq from a, and a heartbeat for another network from b ten minutes ago.
    const bad = await ingest(store, rules, [
      { device: a, ts: now - 5000, seq: 3n }, // same slot as a's newest heartbeat
      { device: b, ts: now - 10 * INTERVAL, networkId: FIXTURE_NETWORK_ID + 1 },
    ]);
    expect(bad.rejected.map((r) => r.reason).sort()).toEqual(['HB_EQUIVOCATION', 'HB_WRONG_NETWORK']);
    const t = await health.tick();
    expect(t.skipped).toBe(false);
  });

  afterAll(async () => {
    await cleanup?.();
  });

  it('fleet overview needs the operator token and counts devices, rates and rejections', async () => {
    const anon = await get('/api/fleet');
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { error: { code: string } }).error.code).toBe('API_UNAUTHORIZED');
    const wrong = await get('/api/fleet', { authorization: 'Bearer nope' });
    expect(wrong.status).toBe(401);

    const res = await get('/api/fleet', AUTH);
    expect(res.status).toBe(200);
    const f = (await res.json()) as {
      devices: Record<string, number>;
      heartbeatsPerSecond: number;
      windowSeconds: number;
      rejectionsPerSecond: Record<string, number>;
      rate: { t: number; heartbeats: number }[];
      rejectionsByReason: { reason: string; count: number }[];
    };
    expect(f.devices).toEqual({ unseen: 1, online: 1, offline: 1, revoked: 0, total: 3, flapping: 0 });
    // Only a's newest heartbeat (5 s old) is inside the 60 s window.
    expect(f.heartbeatsPerSecond).toBeCloseTo(1 / f.windowSeconds, 10);
    expect(f.rejectionsPerSecond['HB_EQUIVOCATION']).toBeCloseTo(1 / 60, 10);
    expect(f.rejectionsPerSecond['HB_WRONG_NETWORK']).toBeCloseTo(1 / 60, 10);
    expect(f.rate).toHaveLength(60);
    expect(f.rate.reduce((s, r) => s + r.heartbeats, 0)).toBe(40);
    expect(f.rejectionsByReason).toEqual(
      expect.arrayContaining([
        { reason: 'HB_EQUIVOCATION', count: 1 },
        { reason: 'HB_WRONG_NETWORK', count: 1 },
      ]),
    );

    // The history parts are cached for 10 s; counts and the 60 s rates are always fresh.
    await ingest(store, fixtureRules(INTERVAL), [{ device: c, ts: now - 1000, networkId: FIXTURE_NETWORK_ID + 1 }]);
    const again = (await (await get('/api/fleet', AUTH)).json()) as typeof f;
    expect(again.rejectionsPerSecond['HB_WRONG_NETWORK']).toBeCloseTo(2 / 60, 10);
    expect(again.rejectionsByReason.find((r) => r.reason === 'HB_WRONG_NETWORK')?.count).toBe(1);
    clock = now + 10_000;
    const later = (await (await get('/api/fleet', AUTH)).json()) as typeof f;
    expect(later.rejectionsByReason.find((r) => r.reason === 'HB_WRONG_NETWORK')?.count).toBe(2);
    clock = now;
  });

  it('lists devices with status, owner, maker and text filters and pages through them', async () => {
    type Page = { devices: { deviceId: string; health: string; status: string; makerName: string | null; lastSeq: string | null; owner: string | null }[]; total: number };
    const list = async (q: string): Promise<Page> => {
      const r = await get(`/api/devices${q}`, AUTH);
      expect(r.status).toBe(200);
      return (await r.json()) as Page;
    };
    expect((await get('/api/devices')).status).toBe(401);
    const all = await list('');
    expect(all.total).toBe(3);
    expect(all.devices.map((d) => d.deviceId)).toEqual([a, b, c].map((d) => d.key.deviceId).sort());
    expect((await list('?status=online')).devices.map((d) => d.deviceId)).toEqual([a.key.deviceId]);
    expect((await list('?status=offline')).devices.map((d) => d.deviceId)).toEqual([b.key.deviceId]);
    expect((await list('?status=unseen')).devices.map((d) => d.deviceId)).toEqual([c.key.deviceId]);
    expect((await list(`?q=${a.key.deviceId.slice(0, 10)}`)).devices.map((d) => d.deviceId)).toEqual([a.key.deviceId]);
    const byMaker = await list('?q=acme');
    expect(byMaker.devices.map((d) => [d.deviceId, d.makerName])).toEqual([[a.key.deviceId, 'Acme Sensors']]);
    expect((await list(`?owner=${ownerB.toUpperCase().replace('0X', '0x')}`)).devices.map((d) => d.deviceId)).toEqual([b.key.deviceId]);
    expect((await list(`?maker=${maker.key.deviceId}`)).devices.map((d) => d.deviceId)).toEqual([a.key.deviceId]);
    expect((await list('?q=relay&status=offline')).devices.map((d) => d.lastSeq)).toEqual(['10']);
    // A LIKE wildcard in the search text is matched literally.
    expect((await list('?q=%25')).total).toBe(0);
    const page = await list('?limit=1&offset=1');
    expect(page.total).toBe(3);
    expect(page.devices.map((d) => d.deviceId)).toEqual([all.devices[1]!.deviceId]);

    for (const bad of ['?status=sleepy', '?limit=0', '?limit=201', '?offset=-1', '?owner=0x12', '?maker=zz']) {
      const r = await get(`/api/devices${bad}`, AUTH);
      expect(r.status, bad).toBe(400);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('API_BAD_QUERY');
    }
  });

  it('shows one device: health, last seen, credited vs seen uptime, heartbeats, rejections, history', async () => {
    const r = await get(`/api/devices/${a.key.deviceId}/status`);
    expect(r.status).toBe(200);
    const d = (await r.json()) as Record<string, unknown> & {
      uptime: Record<string, { slots: number; credited: number; seen: number }>;
      timeline: { slots: string };
      recentHeartbeats: { seq: string; metrics: Record<string, string> }[];
      recentRejections: { reason: string }[];
      statusHistory: { event: string; from: string; atMs: number }[];
      keys: unknown[];
      rewards: unknown[];
    };
    // The registry record's fields are all there (the document is a superset of GET /api/devices/:id).
    expect(d['deviceId']).toBe(a.key.deviceId);
    expect(d['status']).toBe('active');
    expect(d['registeredVia']).toBe('operator');
    expect(d['currentKeyId']).toBe(a.key.deviceId);
    expect(d['owner']).toBe(ownerA);
    expect(d.keys).toHaveLength(1);
    expect(d['health']).toBe('online');
    expect(d['lastSeq']).toBe('30');
    expect(d['lastSeenMs']).toBe(now - 5000);
    expect(d.uptime['1h']).toMatchObject({ slots: 60, credited: 30, seen: 30 });
    expect(d.uptime['24h']).toMatchObject({ slots: 1440, credited: 30 });
    expect(d.uptime['7d']).toMatchObject({ slots: 10080, credited: 30 });
    expect(d.timeline.slots).toHaveLength(1440);
    expect([...d.timeline.slots].filter((x) => x === '1')).toHaveLength(30);
    expect(d.recentHeartbeats).toHaveLength(20);
    expect(d.recentHeartbeats[0]).toMatchObject({ seq: '30', metrics: { '1': '10' } });
    expect(d.recentRejections.map((x) => x.reason)).toEqual(['HB_EQUIVOCATION']);
    expect(d.statusHistory.map((e) => [e.event, e.from, e.atMs])).toEqual([['online', 'unseen', now - 29 * INTERVAL - 5000]]);
    expect(d.rewards).toEqual([]);

    // b: a rejected heartbeat in a slot with no accepted one is seen but not credited.
    const rb = (await (await get(`/api/devices/${b.key.deviceId}/status`)).json()) as { health: string; uptime: Record<string, { credited: number; seen: number }>; timeline: { slots: string }; statusHistory: { event: string; atMs: number }[] };
    expect(rb.health).toBe('offline');
    expect(rb.uptime['1h']).toMatchObject({ credited: 10, seen: 11 });
    expect([...rb.timeline.slots].filter((x) => x === 'r')).toHaveLength(1);
    // Offline at last heartbeat + 3 intervals: the rule's time, not the tick's.
    expect(rb.statusHistory.map((e) => [e.event, e.atMs])).toEqual([
      ['offline', now - 21 * INTERVAL - 5000 + 3 * INTERVAL],
      ['online', now - 30 * INTERVAL - 5000],
    ]);

    const unknown = await get(`/api/devices/${'ab'.repeat(32)}/status`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('API_UNKNOWN_DEVICE');
    const malformed = await get('/api/devices/not-a-device/status');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe('REG_BAD_INPUT');
  });

  it('streams device status changes live and replays missed ones after Last-Event-ID', async () => {
    expect((await get('/api/events')).status).toBe(401);
    const history = await store.query<{ id: string }>('SELECT id::text AS id FROM device_health_events ORDER BY id');
    expect(history).toHaveLength(3);

    const ctrl = new AbortController();
    const res = await fetch(`${base}/api/events`, { headers: { ...AUTH, 'last-event-id': history[0]!.id }, signal: ctrl.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const replayed = await readEvents(res, (f) => f.length >= 2);
    expect(replayed.map((f) => f.id)).toEqual([history[1]!.id, history[2]!.id]);

    // A live change: revoke a through the registry route; the next health tick records it.
    expect((await post(`/api/devices/${a.key.deviceId}/revoke`, {})).status).toBe(200);
    clock += 1000;
    const t = await health.tick();
    expect(t.events.map((e) => [e.deviceId, e.event])).toEqual([[a.key.deviceId, 'revoked']]);
    const live = await readEvents(res, (f) => f.some((x) => x.event === 'device-status'));
    const e = JSON.parse(live.find((x) => x.event === 'device-status')!.data) as { deviceId: string; event: string; from: string; to: string };
    expect(e).toMatchObject({ deviceId: a.key.deviceId, event: 'revoked', from: 'online', to: 'revoked' });

    // Epoch events published in process reach the same stream.
    feed.publishEpochEvent({ epoch: 12, status: 'posted', txHash: '0x' + '00'.repeat(32) });
    const epoch = await readEvents(res, (f) => f.some((x) => x.event === 'epoch'));
    expect(JSON.parse(epoch.find((x) => x.event === 'epoch')!.data)).toMatchObject({ epoch: 12, status: 'posted' });
    expect(feed.clientCount).toBe(1);
    ctrl.abort();
    await expect.poll(() => feed.clientCount).toBe(0);
  });

  it('serves the OpenAPI description as JSON and HTML, and exports health metrics', async () => {
    const spec = (await (await get('/docs/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toBe('3.1.0');
    for (const p of ['/api/fleet', '/api/devices', '/api/devices/{id}/status', '/api/events', '/api/epochs']) expect(Object.keys(spec.paths)).toContain(p);
    const html = await get('/docs');
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await html.text()).toContain('/api/devices/{id}/status');
    const metrics = await (await get('/metrics')).text();
    expect(metrics).toMatch(/^pulse_devices\{status="revoked"\} 1$/m);
    expect(metrics).toMatch(/^pulse_health_transitions_total\{event="revoked"\} 1$/m);
    expect(metrics).toContain('pulse_sse_clients');
  });
});
