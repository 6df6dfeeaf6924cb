// Wires the operator surface (issue 7) into a running oracle: health monitor, live feed, alerts and
// the HTTP routes on the oracle's server. The oracle command calls startOperatorSurface once after
// creating its HTTP server, and stop() on SIGINT/SIGTERM *before* closing that server (open
// live-feed streams would otherwise keep server.close() waiting).
import type { Registry as PromRegistry } from 'prom-client';
import type { Store } from '../store/store.ts';
import type { Registry } from '../registry/registry.ts';
import { defineConfig, parse, type ConfigOf } from '../../shared/config-schema.ts';
import { DEFAULT_SLOT_INTERVAL_MS } from '../../shared/protocol/constants.ts';
import { HealthMonitor, createHealthMetrics } from '../health/health-monitor.ts';
import { LiveFeed, createLiveFeedMetrics, type EpochFeedEvent } from './live-feed.ts';
import { AlertMonitor } from '../alerts/alert-monitor.ts';
import { WebhookSender } from '../alerts/webhook-sender.ts';
import { attachOperatorRoutes, type HttpHost } from './operator-api.ts';

const ratio = (raw: string): number => {
  const n = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || !(n > 0 && n < 1)) throw new Error('must be a number between 0 and 1 (exclusive)');
  return n;
};

const webhookUrls = (raw: string): string[] => {
  const urls = parse.list(raw);
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`${JSON.stringify(u)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${JSON.stringify(u)} is not an http(s) URL`);
  }
  return urls;
};

export const operatorConfigSection = defineConfig('Operator surface (health, alerts, live feed)', {
  missedIntervals: { env: 'PULSE_HEALTH_MISSED_INTERVALS', flag: 'health-missed-intervals', default: 3, parse: parse.int(1, 10_000), doc: 'A device is offline after this many slot intervals without an accepted, signed heartbeat.' },
  healthTickMs: { env: 'PULSE_HEALTH_TICK', flag: 'health-tick', default: 5000, parse: parse.durationMs, doc: 'How often the health monitor evaluates every device (keep it well below missed intervals × slot interval).' },
  flapWindowMs: { env: 'PULSE_HEALTH_FLAP_WINDOW', flag: 'health-flap-window', default: 3_600_000, parse: parse.durationMs, doc: 'Window for flapping detection; flapping clears after a whole window without an online/offline change.' },
  flapThreshold: { env: 'PULSE_HEALTH_FLAP_THRESHOLD', flag: 'health-flap-threshold', default: 4, parse: parse.int(2, 1000), doc: 'Online/offline changes within the flap window that mark a device as flapping.' },
  webhooks: { env: 'PULSE_ALERT_WEBHOOKS', flag: 'alert-webhooks', default: [] as string[], parse: webhookUrls, defaultDoc: '(none)', doc: 'Comma-separated webhook URLs that receive every alert as a JSON POST.' },
  webhookSecret: { env: 'PULSE_ALERT_HMAC_SECRET', flag: 'alert-hmac-secret', default: '', parse: parse.string, defaultDoc: '(unsigned)', doc: 'HMAC-SHA256 key; when set, each webhook carries X-Pulse-Signature: sha256=HMAC(key, "<X-Pulse-Timestamp>.<body>").' },
  alertWindowMs: { env: 'PULSE_ALERT_WINDOW', flag: 'alert-window', default: 60_000, parse: parse.durationMs, doc: 'Evaluation window of the heartbeat-rate-drop and rejection-spike alerts.' },
  rateDropRatio: { env: 'PULSE_ALERT_RATE_DROP', flag: 'alert-rate-drop', default: 0.5, parse: ratio, doc: 'Alert when a window has fewer heartbeats than this fraction of the moving baseline.' },
  spikeMinCount: { env: 'PULSE_ALERT_SPIKE_MIN', flag: 'alert-spike-min', default: 20, parse: parse.int(1, 10_000_000), doc: 'A rejection spike needs at least this many rejections of one reason in a window…' },
  spikeFactor: { env: 'PULSE_ALERT_SPIKE_FACTOR', flag: 'alert-spike-factor', default: 5, parse: parse.int(2, 1000), doc: '…and at least this many times that reason\'s moving baseline.' },
  feedMaxClients: { env: 'PULSE_FEED_MAX_CLIENTS', flag: 'feed-max-clients', default: 1000, parse: parse.int(1, 100_000), doc: 'Most concurrent live-feed (/api/events) clients per oracle process.' },
});

export type OperatorConfig = ConfigOf<typeof operatorConfigSection.schema>;

export type OperatorSurfaceOptions = {
  readonly store: Store;
  readonly registry: Registry;
  readonly http: HttpHost;
  readonly metrics: PromRegistry;
  readonly config: OperatorConfig;
  readonly slotIntervalMs?: number;
  readonly now?: () => number;
  readonly log?: (event: Record<string, unknown>) => void;
};

export type OperatorSurface = {
  readonly health: HealthMonitor;
  readonly feed: LiveFeed;
  readonly alerts: AlertMonitor;
  readonly webhooks: WebhookSender;
  /** For the epoch pipeline: stream an epoch event; a failed post alerts (once per epoch until posted). */
  epochEvent(event: EpochFeedEvent & { readonly error?: string }): void;
  stop(): Promise<void>;
};

export async function startOperatorSurface(opts: OperatorSurfaceOptions): Promise<OperatorSurface> {
  const c = opts.config;
  const slotIntervalMs = opts.slotIntervalMs ?? DEFAULT_SLOT_INTERVAL_MS;
  const now = opts.now ?? Date.now;
  const logOpt = opts.log !== undefined ? { log: opts.log } : {};
  const health = new HealthMonitor({
    store: opts.store,
    rules: { intervalMs: slotIntervalMs, missedIntervals: c.missedIntervals, flapWindowMs: c.flapWindowMs, flapThreshold: c.flapThreshold },
    tickMs: c.healthTickMs,
    now,
    metrics: createHealthMetrics(opts.metrics),
    ...logOpt,
  });
  const feed = new LiveFeed({ store: opts.store, maxClients: c.feedMaxClients, metrics: createLiveFeedMetrics(opts.metrics), ...logOpt });
  const webhooks = new WebhookSender({ urls: c.webhooks, secret: c.webhookSecret, registry: opts.metrics, ...logOpt });
  const alerts = new AlertMonitor({
    store: opts.store,
    sink: webhooks,
    windowMs: c.alertWindowMs,
    rate: { dropRatio: c.rateDropRatio },
    spike: { minCount: c.spikeMinCount, factor: c.spikeFactor },
    now,
    ...logOpt,
  });
  health.onEvents((events) => alerts.onHealthEvents(events));
  attachOperatorRoutes(opts.http, { store: opts.store, registry: opts.registry, slotIntervalMs, feed, now });
  await feed.start();
  health.start();
  alerts.start();
  return {
    health,
    feed,
    alerts,
    webhooks,
    epochEvent(event) {
      feed.publishEpochEvent(event);
      if (event.status === 'failed') alerts.epochPostFailed({ epoch: event.epoch, error: event.error ?? 'posting failed' });
      else if (event.status === 'posted') alerts.epochPosted(event.epoch);
    },
    async stop() {
      await health.stop();
      await alerts.stop();
      await feed.stop();
      await webhooks.close();
    },
  };
}
