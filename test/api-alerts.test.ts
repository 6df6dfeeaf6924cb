// Alerts (issue 7 §3) received on a local HTTP server: HMAC signature, retries with backoff, permanent
// failures, a bounded queue that never blocks the caller; and the alert monitor on PostgreSQL raising
// device offline/online (and a mass-outage summary), heartbeat-rate drop and recovery, rejection
// spikes by reason, and failed epoch posts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Registry as PromRegistry } from 'prom-client';
import { needs } from './support/services.ts';
import { WebhookSender, makeAlert, type Alert } from '../oracle/alerts/webhook-sender.ts';
import { AlertMonitor } from '../oracle/alerts/alert-monitor.ts';
import { RateDropDetector, RejectionSpikeDetector } from '../oracle/alerts/alert-rules.ts';
import { HealthMonitor } from '../oracle/health/health-monitor.ts';
import { postgresBackend } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { FIXTURE_NETWORK_ID, fixtureDevice, fixtureRules, ingest } from '../oracle/api/fleet-fixture.ts';

type Received = { headers: IncomingMessage['headers']; body: string };

/** A webhook receiver on port 0; `respond` decides each reply (default 204). */
async function receiver(respond: (r: Received, res: ServerResponse) => void = (_r, res) => res.writeHead(204).end()): Promise<{ url: string; got: Received[]; server: Server; close: () => Promise<void> }> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      got.push(r);
      respond(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?secret-in-url=1`;
  return {
    url,
    got,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function metricValue(registry: PromRegistry, name: string, labels: Record<string, string>): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = (m?.values as { value: number; labels: Record<string, string> }[] | undefined)?.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

const alert = (n: number): Alert => makeAlert('device.offline', 'warning', 1_800_000_000_000 + n, `test alert ${n}`, { n });

describe('webhook sender', () => {
  it('signs the exact body with HMAC-SHA256 over "<timestamp>.<body>"', async () => {
    const rx = await receiver();
    const sender = new WebhookSender({ urls: [rx.url], secret: 's3cret', log: () => undefined });
    const a = alert(1);
    sender.send(a);
    await sender.idle();
    expect(rx.got).toHaveLength(1);
    const r = rx.got[0]!;
    expect(JSON.parse(r.body)).toEqual(a);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.headers['x-pulse-event']).toBe('device.offline');
    expect(r.headers['x-pulse-delivery']).toBe(a.id);
    const ts = r.headers['x-pulse-timestamp'] as string;
    expect(ts).toMatch(/^\d+$/);
    const expected = 'sha256=' + createHmac('sha256', 's3cret').update(`${ts}.${r.body}`).digest('hex');
    expect(r.headers['x-pulse-signature']).toBe(expected);
    // Unsigned when no secret is configured.
    const plain = new WebhookSender({ urls: [rx.url], log: () => undefined });
    plain.send(alert(2));
    await plain.idle();
    expect(rx.got[1]!.headers['x-pulse-signature']).toBeUndefined();
    await rx.close();
  });

  it('retries 5xx and network timeouts with backoff, then delivers the same alert', async () => {
    let calls = 0;
    const rx = await receiver((_r, res) => {
      calls += 1;
      if (calls === 1) res.writeHead(503).end();
      else if (calls === 2) return; // hang: the sender's timeout fires
      else res.writeHead(200).end('ok');
    });
    const metrics = new PromRegistry();
    const sender = new WebhookSender({ urls: [rx.url], baseDelayMs: 10, maxDelayMs: 50, timeoutMs: 300, registry: metrics, log: () => undefined });
    const a = alert(3);
    sender.send(a);
    await sender.idle();
    expect(rx.got.map((r) => r.headers['x-pulse-attempt'])).toEqual(['1', '2', '3']);
    expect(new Set(rx.got.map((r) => r.headers['x-pulse-delivery']))).toEqual(new Set([a.id]));
    expect(await metricValue(metrics, 'pulse_alert_deliveries_total', { outcome: 'retried' })).toBe(2);
    expect(await metricValue(metrics, 'pulse_alert_deliveries_total', { outcome: 'delivered' })).toBe(1);
    await rx.close();
  });

  it('gives up at once on a 4xx and after maxAttempts on persistent 5xx', async () => {
    const rx = await receiver((r, res) => res.writeHead(r.headers['x-pulse-event'] === 'epoch.post_failed' ? 500 : 400).end());
    const metrics = new PromRegistry();
    const logged: Record<string, unknown>[] = [];
    const sender = new WebhookSender({ urls: [rx.url], baseDelayMs: 5, maxDelayMs: 10, maxAttempts: 3, registry: metrics, log: (e) => logged.push(e) });
    sender.send(alert(4));
    sender.send(makeAlert('epoch.post_failed', 'critical', 1, 'x', {}));
    await sender.idle();
    expect(rx.got.filter((r) => r.headers['x-pulse-event'] === 'device.offline')).toHaveLength(1);
    expect(rx.got.filter((r) => r.headers['x-pulse-event'] === 'epoch.post_failed')).toHaveLength(3);
    expect(await metricValue(metrics, 'pulse_alert_deliveries_total', { outcome: 'failed' })).toBe(2);
    const failures = logged.filter((e) => e['code'] === 'ALERT_DELIVERY_FAILED');
    expect(failures).toHaveLength(2);
    // The log shows the receiver's origin only: webhook URLs often carry secrets.
    for (const f of failures) expect(JSON.stringify(f)).not.toContain('secret-in-url');
    await rx.close();
  });

  it('never blocks the caller and drops the oldest delivery when the queue is full', async () => {
    const held: ServerResponse[] = [];
    const rx = await receiver((_r, res) => held.push(res));
    const metrics = new PromRegistry();
    const sender = new WebhookSender({ urls: [rx.url], concurrency: 1, maxQueue: 2, timeoutMs: 10_000, registry: metrics, log: () => undefined });
    // The receiver answers nothing, yet send() returns synchronously every time.
    const results = [1, 2, 3, 4].map((n) => sender.send(alert(n)));
    expect(results).toEqual([undefined, undefined, undefined, undefined]);
    expect(await metricValue(metrics, 'pulse_alert_deliveries_total', { outcome: 'dropped' })).toBe(1);
    expect(await metricValue(metrics, 'pulse_alert_queue', {})).toBe(3);
    // Release the receiver: the in-flight one and the two newest arrive; alert 2 was dropped.
    const release = setInterval(() => held.splice(0).forEach((res) => res.writeHead(204).end()), 10);
    await sender.idle();
    clearInterval(release);
    expect(rx.got.map((r) => (JSON.parse(r.body) as Alert).details['n'])).toEqual([1, 3, 4]);
    await rx.close();
  });
});

describe('alert detectors (pure)', () => {
  it('rate drop fires once per episode after warm-up and recovers with hysteresis', () => {
    const d = new RateDropDetector({ dropRatio: 0.5, minBaseline: 5, warmupWindows: 3, alpha: 0.5 });
    expect([10, 10, 10].map((c) => d.observe(c).kind)).toEqual(['none', 'none', 'none']);
    expect(d.observe(4)).toEqual({ kind: 'drop', count: 4, baseline: 10 });
    expect(d.observe(3).kind).toBe('none'); // still down: no second alert, baseline frozen
    expect(d.observe(6).kind).toBe('none'); // above the drop line but below the 75 % recovery line
    expect(d.observe(8)).toEqual({ kind: 'recovered', count: 8, baseline: 10 });
    // A tiny fleet never alerts.
    const small = new RejectionSpikeDetector({ minCount: 20, factor: 5, alpha: 0.2 });
    expect(small.observe(new Map([['HB_REPLAY', 19]]))).toEqual([]);
  });

  it('rejection spikes are per reason, need a minimum and a multiple of the baseline, and re-arm', () => {
    const d = new RejectionSpikeDetector({ minCount: 10, factor: 5, alpha: 0.5 });
    expect(d.observe(new Map([['HB_CLOCK_SKEW', 8]]))).toEqual([]); // baseline 4: a spike needs ≥ 20
    expect(d.observe(new Map([['HB_CLOCK_SKEW', 12], ['HB_REPLAY', 30]]))).toEqual([{ reason: 'HB_REPLAY', count: 30, baseline: 0 }]);
    expect(d.observe(new Map([['HB_REPLAY', 40]]))).toEqual([]);
    expect(d.observe(new Map())).toEqual([]);
    expect(d.observe(new Map([['HB_REPLAY', 30]]))).toEqual([{ reason: 'HB_REPLAY', count: 30, baseline: 0 }]);
  });
});

const ok = await needs('postgres');

describe.skipIf(!ok)('alert monitor on PostgreSQL, delivered to a local webhook', () => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let rx: Awaited<ReturnType<typeof receiver>>;
  let sender: WebhookSender;
  let monitor: AlertMonitor;
  let health: HealthMonitor;
  let clock = 0;
  const W = 60_000;
  const T = Math.floor(Date.now() / W) * W - 100 * W;
  const rules = fixtureRules(W);
  const fleet = Array.from({ length: 10 }, () => fixtureDevice());
  const received = (type: string) => rx.got.map((r) => JSON.parse(r.body) as Alert).filter((a) => a.type === type);

  beforeAll(async () => {
    const opened = await postgresBackend.open();
    store = opened.store;
    rx = await receiver();
    cleanup = async () => {
      await sender.close();
      await rx.close();
      await opened.cleanup();
    };
    const registry = new Registry({ store, networkId: FIXTURE_NETWORK_ID });
    for (const d of fleet) expect((await registry.addDevice({ id: d.key.deviceId })).ok).toBe(true);
    sender = new WebhookSender({ urls: [rx.url], secret: 'k', baseDelayMs: 10, log: () => undefined });
    monitor = new AlertMonitor({ store, sink: sender, windowMs: W, lagMs: 0, rate: { minBaseline: 5, warmupWindows: 3, alpha: 0.5 }, spike: { minCount: 10, factor: 5 }, maxDeviceAlerts: 3, now: () => clock, log: () => undefined });
    health = new HealthMonitor({ store, rules: { intervalMs: W, missedIntervals: 3, flapWindowMs: 3_600_000, flapThreshold: 10 }, now: () => clock, log: () => undefined });
    health.onEvents((events) => monitor.onHealthEvents(events));
  });

  afterAll(async () => {
    await cleanup?.();
  });

  /** Window k: `n` of the fleet send one heartbeat each, `bad` wrong-network heartbeats; then evaluate. */
  async function window(k: number, n: number, bad = 0) {
    const t = T + k * W + 1000;
    await ingest(store, rules, [
      ...fleet.slice(0, n).map((device) => ({ device, ts: t })),
      ...Array.from({ length: bad }, (_, j) => ({ device: fleet[j % fleet.length]!, ts: t, networkId: FIXTURE_NETWORK_ID + 1 })),
    ]);
    clock = T + (k + 1) * W;
    await health.tick();
    return monitor.check();
  }

  it('alerts on a fleet-wide heartbeat-rate drop and on its recovery', async () => {
    expect((await window(0, 10)).alerts).toEqual([]); // first check: sets the rejection cursor
    for (let k = 1; k <= 3; k++) expect((await window(k, 10)).alerts).toEqual([]);
    const drop = await window(4, 2);
    expect(drop.alerts.map((a) => a.type)).toEqual(['fleet.heartbeat_rate_drop']);
    expect(drop.alerts[0]!.details).toMatchObject({ count: 2, windowMs: W });
    expect((await window(5, 2)).alerts).toEqual([]);
    expect((await window(6, 10)).alerts.map((a) => a.type)).toEqual(['fleet.heartbeat_rate_recovered']);
    await sender.idle();
    expect(received('fleet.heartbeat_rate_drop')).toHaveLength(1);
    expect(received('fleet.heartbeat_rate_recovered')).toHaveLength(1);
  });

  it('alerts on a spike of one rejection reason', async () => {
    expect((await window(7, 10, 1)).alerts).toEqual([]);
    const spike = await window(8, 10, 15);
    expect(spike.alerts.map((a) => [a.type, a.details['reason'], a.details['count']])).toEqual([['rejections.spike', 'HB_WRONG_NETWORK', 15]]);
    expect((await window(9, 10, 15)).alerts).toEqual([]); // same episode
    await sender.idle();
    expect(received('rejections.spike')).toHaveLength(1);
  });

  it('alerts when a device goes offline and comes back, and summarises a mass outage', async () => {
    // Devices 2..9 stop; devices 0 and 1 keep sending.
    await window(10, 2);
    await window(11, 2);
    await window(12, 2);
    await window(13, 2);
    await sender.idle();
    // 8 devices went offline in one tick: above maxDeviceAlerts (3), so one summary.
    const many = received('devices.offline_many');
    expect(many).toHaveLength(1);
    expect(many[0]!.details).toMatchObject({ offline: 8, online: 0 });
    expect(received('device.offline')).toEqual([]);
    // Device 2 comes back alone: a single device.online alert naming it.
    const t = T + 14 * W + 1000;
    await ingest(store, rules, [{ device: fleet[2]!, ts: t }]);
    clock = t + 1000;
    await health.tick();
    // Then device 0 and 1 stop: two device.offline alerts, each with the rule's time.
    clock = T + 20 * W;
    await health.tick();
    await sender.idle();
    expect(received('device.online').map((a) => [a.details['deviceId'], a.at])).toEqual([[fleet[2]!.key.deviceId, t]]);
    const off = received('device.offline').map((a) => [a.details['deviceId'], a.at]);
    expect(off).toEqual(
      expect.arrayContaining([
        [fleet[0]!.key.deviceId, T + 13 * W + 1000 + 3 * W],
        [fleet[1]!.key.deviceId, T + 13 * W + 1000 + 3 * W],
      ]),
    );
  });

  it('alerts when an epoch failed to post', async () => {
    monitor.epochPostFailed({ epoch: 41, error: 'CHAIN_RPC_UNAVAILABLE: connection refused', attempts: 5 });
    // The pipeline retries and reports again: no second page for the same epoch…
    monitor.epochPostFailed({ epoch: 41, error: 'CHAIN_RPC_UNAVAILABLE: connection refused', attempts: 6 });
    await sender.idle();
    const [a] = received('epoch.post_failed');
    expect(received('epoch.post_failed')).toHaveLength(1);
    expect(a).toMatchObject({ severity: 'critical', details: { epoch: 41, attempts: 5 } });
    // …until it was posted and fails again.
    monitor.epochPosted(41);
    monitor.epochPostFailed({ epoch: 41, error: 'CHAIN_REVERTED: EpochNotIncreasing' });
    await sender.idle();
    expect(received('epoch.post_failed')).toHaveLength(2);
    // Every delivery of this suite was signed.
    for (const r of rx.got) expect(r.headers['x-pulse-signature']).toBe('sha256=' + createHmac('sha256', 'k').update(`${r.headers['x-pulse-timestamp'] as string}.${r.body}`).digest('hex'));
  });
});

describe('alert configuration', () => {
  it('refuses a webhook list with a non-http URL as CONFIG_INVALID naming the key', async () => {
    const { loadConfig } = await import('../shared/config-schema.ts');
    const { operatorConfigSection } = await import('../oracle/api/operator-surface.ts');
    const ok = loadConfig(operatorConfigSection, {}, { PULSE_ALERT_WEBHOOKS: 'https://hooks.example/a, http://10.0.0.2:9000/b' });
    expect(ok.webhooks).toEqual(['https://hooks.example/a', 'http://10.0.0.2:9000/b']);
    expect(() => loadConfig(operatorConfigSection, {}, { PULSE_ALERT_WEBHOOKS: 'https://ok.example, ftp://files.example/x' })).toThrow(/CONFIG_INVALID: --alert-webhooks \/ PULSE_ALERT_WEBHOOKS/);
    expect(() => loadConfig(operatorConfigSection, {}, { PULSE_ALERT_RATE_DROP: '1.5' })).toThrow(/CONFIG_INVALID/);
  });
});
