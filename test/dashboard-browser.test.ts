// The dashboard in a real headless Chromium (issue 7 §4, tests): every page loads without a console
// error, a known device is found through search, and a status change arrives live (no reload) over
// the SSE feed. Runs against the oracle's own HTTP server on PostgreSQL, with devices registered
// through the registry routes, heartbeats through the real ingest writer, and epochs closed by the
// real epoch closer. Screenshots go to test-artifacts/ (desktop and phone size).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync } from 'node:fs';
import { Registry as PromRegistry } from 'prom-client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { needs, freshDatabase, CHROMIUM_PATH } from './support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { createOracleHttpServer, type OracleHttpServer } from '../oracle/http/server.ts';
import { LiveFeed } from '../oracle/api/live-feed.ts';
import { HealthMonitor } from '../oracle/health/health-monitor.ts';
import { attachOperatorRoutes } from '../oracle/api/operator-api.ts';
import { addEpochRoutes } from '../oracle/epochs/epoch-routes.ts';
import { closeDueEpochs } from '../oracle/epochs/close-epoch.ts';
import { DEFAULT_REWARD_PARAMS } from '../oracle/epochs/default-params.ts';
import { FIXTURE_NETWORK_ID, fixtureDevice, fixtureRules, ingest } from '../oracle/api/fleet-fixture.ts';

const ok = await needs('postgres', 'chromium');

const INTERVAL = 60_000;
const TOKEN = 'dashboard-test-token';
const ARTIFACTS = new URL('../test-artifacts/', import.meta.url);

describe.skipIf(!ok)('dashboard in headless Chromium', () => {
  let cleanup: () => Promise<void>;
  let store: PgStore;
  let http: OracleHttpServer;
  let health: HealthMonitor;
  let browser: Browser;
  let base: string;
  const now = Math.floor(Date.now() / 1000) * 1000;
  let clock = now;
  const a = fixtureDevice();
  const b = fixtureDevice();
  const others = Array.from({ length: 6 }, () => fixtureDevice());
  const consoleErrors: string[] = [];

  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

  async function watch(page: Page, label: string): Promise<void> {
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`${label}: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`${label}: uncaught ${e.message}`));
  }

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const db = await freshDatabase();
    store = new PgStore({ url: db.url, maxConnections: 6 });
    await migrate(store);
    const registry = new Registry({ store, networkId: FIXTURE_NETWORK_ID });
    http = createOracleHttpServer({ store, registry, operatorToken: TOKEN, metrics: new PromRegistry(), log: () => undefined });
    const feed = new LiveFeed({ store, pollMs: 100, log: () => undefined });
    health = new HealthMonitor({ store, rules: { intervalMs: INTERVAL, missedIntervals: 3, flapWindowMs: 3_600_000, flapThreshold: 4 }, now: () => clock, log: () => undefined });
    const firstTs = now - 29 * INTERVAL - 5000;
    const timing = { genesisMs: Math.floor(firstTs / INTERVAL) * INTERVAL, slotMs: INTERVAL, epochSlots: 10, graceMs: 0 };
    addEpochRoutes(http.router, { store, timing, challengeSeconds: 3600, now: () => clock });
    attachOperatorRoutes(http, { store, registry, slotIntervalMs: INTERVAL, feed, now: () => clock });
    await feed.start();
    base = `http://127.0.0.1:${await http.listen(0)}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    cleanup = async () => {
      await browser?.close();
      await feed.stop();
      await http.close();
      await store.close();
      await db.drop();
    };

    const owner = '0x' + '3c'.repeat(20);
    expect((await post('/api/devices', { id: a.key.deviceId, owner, model: 'Air <b>Quality</b>' })).status).toBe(201);
    expect((await post('/api/devices', { id: b.key.deviceId, owner: '0x' + '4d'.repeat(20), model: 'Relay' })).status).toBe(201);
    for (const d of others) expect((await post('/api/devices', { id: d.key.deviceId })).status).toBe(201);

    const rules = fixtureRules(INTERVAL);
    await ingest(store, rules, Array.from({ length: 30 }, (_, k) => ({ device: a, ts: firstTs + k * INTERVAL, metrics: [{ id: 1, value: 1000n }] })));
    await ingest(store, rules, Array.from({ length: 12 }, (_, k) => ({ device: b, ts: firstTs + k * INTERVAL })));
    await ingest(store, rules, [{ device: b, ts: now - 10 * INTERVAL, networkId: FIXTURE_NETWORK_ID + 1 }]);
    // Two whole epochs of 10 slots lie in the past: close them with the real closer.
    const closed = await closeDueEpochs(store, timing, DEFAULT_REWARD_PARAMS, now);
    expect(closed.filter((c) => c.kind === 'closed').length).toBeGreaterThanOrEqual(2);
    await health.tick();
  }, 60_000);

  afterAll(async () => {
    await cleanup?.();
  });

  it('asks for the token, then shows the fleet overview with counts, chart and rejection reasons', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await watch(page, 'fleet');
    await page.goto(`${base}/`);
    await page.locator('#token-input').fill(TOKEN);
    await page.locator('#token-form button').click();
    await expect.poll(() => page.locator('[data-count="online"] .value').textContent()).toBe('1');
    expect(await page.locator('[data-count="total"] .value').textContent()).toBe('8');
    expect(await page.locator('[data-count="offline"] .value').textContent()).toBe('1');
    expect(await page.locator('[data-count="unseen"] .value').textContent()).toBe('6');
    expect(await page.locator('svg[data-chart="rate"] rect.bar').count()).toBe(60);
    expect(await page.locator('[data-reason="HB_WRONG_NETWORK"]').count()).toBe(1);
    await expect.poll(() => page.locator('#live').getAttribute('data-state')).toBe('on');
    await page.screenshot({ path: new URL('dashboard-fleet.png', ARTIFACTS).pathname, fullPage: true });
    await page.close();
  }, 60_000);

  it('finds a known device through search, opens its page, and sees it go offline live without a reload', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript((t) => localStorage.setItem('pulse.operatorToken', t), TOKEN);
    const page = await context.newPage();
    await watch(page, 'devices');
    await page.goto(`${base}/#/devices`);
    await expect.poll(() => page.locator('#device-rows tr[data-device-id]').count()).toBe(8);
    await page.locator('#device-search').fill(a.key.deviceId.slice(0, 12));
    await expect.poll(() => page.locator('#device-rows tr[data-device-id]').count()).toBe(1);
    expect(await page.locator('#device-rows tr[data-device-id]').getAttribute('data-device-id')).toBe(a.key.deviceId);
    // Search by model text too; the markup in the model name stays text.
    await page.locator('#device-search').fill('quality');
    await expect.poll(() => page.locator('#device-rows tr[data-device-id]').count()).toBe(1);
    expect(await page.locator('#device-rows').textContent()).toContain('Air <b>Quality</b>');
    await page.locator('#status-filter').selectOption('online');
    await expect.poll(() => page.locator('#device-rows tr[data-device-id]').count()).toBe(1);
    await page.screenshot({ path: new URL('dashboard-devices.png', ARTIFACTS).pathname, fullPage: true });

    await page.locator(`#device-rows tr[data-device-id="${a.key.deviceId}"] a`).click();
    await expect.poll(() => page.locator('#device-status .badge').getAttribute('data-health')).toBe('online');
    expect(await page.locator('svg[data-chart="timeline"] rect').count()).toBeGreaterThan(0);
    expect(await page.locator('table[data-table="heartbeats"] tbody tr').count()).toBe(20);
    expect(await page.locator('table[data-table="rewards"] tbody tr').count()).toBeGreaterThanOrEqual(2);
    await expect.poll(() => page.locator('#live').getAttribute('data-state')).toBe('on');
    await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
    const before = await page.locator('#status-history tr').count();

    // a stops: ten minutes later the monitor records it offline and the feed carries the change.
    clock = now + 10 * INTERVAL;
    const t = await health.tick();
    expect(t.events.map((e) => [e.deviceId, e.event])).toContainEqual([a.key.deviceId, 'offline']);
    await expect.poll(() => page.locator('#device-status .badge').getAttribute('data-health'), { timeout: 10_000 }).toBe('offline');
    expect(await page.locator('#status-history tr').count()).toBe(before + 1);
    // Offline since last heartbeat + 3 intervals (the rule's time), shown without a reload.
    expect(await page.locator('#health-since').textContent()).toContain(new Date(now - 5000 + 3 * INTERVAL).toISOString().slice(11, 19));
    expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    await page.screenshot({ path: new URL('dashboard-device-offline.png', ARTIFACTS).pathname, fullPage: true });
    await context.close();
  }, 60_000);

  it('shows epochs with roots, status and how to verify', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await watch(page, 'epochs');
    await page.goto(`${base}/#/epochs`);
    await expect.poll(() => page.locator('table[data-table="epochs"] tbody tr').count()).toBeGreaterThanOrEqual(2);
    const root = await page.locator('table[data-table="epochs"] tbody tr[data-epoch="0"] td').nth(3).getAttribute('title');
    expect(root).toMatch(/^0x[0-9a-f]{64}$/);
    await page.locator('table[data-table="epochs"] tbody tr[data-epoch="0"]').click();
    await expect.poll(() => page.locator('[data-epoch-detail="0"]').count()).toBe(1);
    expect(await page.locator('[data-epoch-detail="0"]').textContent()).toContain(root!);
    expect(await page.locator('#how-to-verify').textContent()).toContain('pulse verify');
    await page.screenshot({ path: new URL('dashboard-epochs.png', ARTIFACTS).pathname, fullPage: true });
    await page.close();
  }, 60_000);

  it('fits a phone-sized screen on every page', async () => {
    const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await context.addInitScript((t) => localStorage.setItem('pulse.operatorToken', t), TOKEN);
    const page = await context.newPage();
    await watch(page, 'phone');
    const pages: [string, string, string][] = [
      ['#/', '[data-count="total"] .value', 'phone-fleet'],
      ['#/devices', '#device-rows tr[data-device-id]', 'phone-devices'],
      [`#/devices/${a.key.deviceId}`, '#device-status .badge', 'phone-device'],
      ['#/epochs', 'table[data-table="epochs"] tbody tr', 'phone-epochs'],
    ];
    for (const [hash, ready, name] of pages) {
      await page.goto(`${base}/${hash}`);
      await page.locator(ready).first().waitFor();
      // Nothing wider than the screen: wide tables scroll inside their own box.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, hash).toBeLessThanOrEqual(0);
      await page.screenshot({ path: new URL(`dashboard-${name}.png`, ARTIFACTS).pathname, fullPage: true });
    }
    await context.close();
  }, 60_000);

  it('logged no console error on any page', () => {
    expect(consoleErrors).toEqual([]);
  });
});
