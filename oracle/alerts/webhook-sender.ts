// Alert webhooks (issue 7 §3): every alert is POSTed as JSON to each configured URL, signed with an
// optional HMAC, retried with exponential backoff, and never blocks the caller: send() only enqueues.
// The queue is bounded; when webhooks are down for long the oldest pending delivery is dropped
// (ALERT_QUEUE_FULL, counted) so memory stays flat and ingest never waits on an alert.
//
// Signature (when a secret is set), in the style of Stripe/GitHub webhooks:
//   X-Pulse-Timestamp: <unix seconds>
//   X-Pulse-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
// The receiver recomputes it over the raw body and rejects stale timestamps (replay protection).
//
// Retries: network errors, timeouts, 408, 429 and 5xx are retried after base × 2^(attempt−1) ms,
// with "equal jitter" (half fixed, half random, so a fleet of oracles does not retry in lockstep) and
// capped at maxDelayMs; a Retry-After header, when longer, is honoured up to the cap. Other 4xx are
// permanent: the receiver says the request itself is wrong, repeating it cannot help.
import { createHmac, randomUUID } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';

export type AlertType =
  | 'device.offline'
  | 'device.online'
  | 'device.flapping'
  | 'devices.offline_many'
  | 'fleet.heartbeat_rate_drop'
  | 'fleet.heartbeat_rate_recovered'
  | 'rejections.spike'
  | 'epoch.post_failed';

export type Alert = {
  readonly id: string;
  readonly type: AlertType;
  readonly severity: 'info' | 'warning' | 'critical';
  /** When the condition happened (unix ms). */
  readonly at: number;
  readonly summary: string;
  readonly details: Readonly<Record<string, unknown>>;
};

export function makeAlert(type: AlertType, severity: Alert['severity'], at: number, summary: string, details: Record<string, unknown>): Alert {
  return { id: randomUUID(), type, severity, at, summary, details };
}

export type WebhookOptions = {
  readonly urls: readonly string[];
  /** HMAC-SHA256 key; empty means unsigned. */
  readonly secret?: string;
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  readonly timeoutMs?: number;
  readonly maxQueue?: number;
  readonly concurrency?: number;
  readonly registry?: Registry;
  readonly log?: (event: Record<string, unknown>) => void;
};

export function signatureHeader(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

type Delivery = { readonly url: string; readonly alert: Alert; readonly body: string };

export class WebhookSender {
  private readonly queue: Delivery[] = [];
  private active = 0;
  private closed = false;
  private readonly idleWaiters: (() => void)[] = [];
  private readonly sleeps = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  private readonly log: (event: Record<string, unknown>) => void;
  private readonly metrics:
    | { readonly alerts: Counter<'type'>; readonly deliveries: Counter<'outcome'>; readonly queued: Gauge }
    | undefined;

  constructor(private readonly opts: WebhookOptions) {
    for (const u of opts.urls) {
      const p = new URL(u).protocol;
      if (p !== 'http:' && p !== 'https:') throw new RangeError(`webhook URL must be http(s): ${u}`);
    }
    this.log = opts.log ?? ((event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component: 'alerts', ...event })}\n`));
    const r = opts.registry;
    this.metrics =
      r === undefined
        ? undefined
        : {
            alerts: new Counter({ name: 'pulse_alerts_total', help: 'Alerts raised, by type.', labelNames: ['type'], registers: [r] }),
            deliveries: new Counter({
              name: 'pulse_alert_deliveries_total',
              help: 'Webhook delivery attempts by outcome: delivered, retried, failed (gave up), dropped (queue full).',
              labelNames: ['outcome'],
              registers: [r],
            }),
            queued: new Gauge({ name: 'pulse_alert_queue', help: 'Webhook deliveries waiting or in flight.', registers: [r] }),
          };
  }

  /** Enqueue an alert for every URL. Never throws, never waits. */
  send(alert: Alert): void {
    this.metrics?.alerts.inc({ type: alert.type });
    this.log({ level: alert.severity === 'critical' ? 'error' : 'warn', msg: 'alert', alert: alert.type, summary: alert.summary });
    if (this.closed) return;
    const body = JSON.stringify(alert);
    for (const url of this.opts.urls) {
      if (this.queue.length >= (this.opts.maxQueue ?? 10_000)) {
        const dropped = this.queue.shift();
        this.metrics?.deliveries.inc({ outcome: 'dropped' });
        this.log({ level: 'error', code: 'ALERT_QUEUE_FULL', msg: 'alert queue full; dropped the oldest pending delivery', dropped: dropped?.alert.type });
      }
      this.queue.push({ url, alert, body });
    }
    this.updateGauge();
    this.pump();
  }

  /** Resolves when nothing is queued or in flight (tests, graceful shutdown). */
  idle(): Promise<void> {
    if (this.queue.length === 0 && this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stop: pending retries are abandoned (their backoff sleeps end now), nothing new is sent. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    for (const s of this.sleeps) {
      clearTimeout(s.timer);
      s.resolve();
    }
    this.updateGauge();
    await this.idle();
  }

  private updateGauge(): void {
    this.metrics?.queued.set(this.queue.length + this.active);
  }

  private pump(): void {
    while (!this.closed && this.active < (this.opts.concurrency ?? 4) && this.queue.length > 0) {
      const d = this.queue.shift()!;
      this.active += 1;
      void this.deliver(d).finally(() => {
        this.active -= 1;
        this.updateGauge();
        this.pump();
        if (this.queue.length === 0 && this.active === 0) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async deliver(d: Delivery): Promise<void> {
    const max = this.opts.maxAttempts ?? 6;
    const base = this.opts.baseDelayMs ?? 1000;
    const cap = this.opts.maxDelayMs ?? 60_000;
    for (let attempt = 1; attempt <= max && !this.closed; attempt++) {
      const outcome = await this.attempt(d, attempt);
      if (outcome.kind === 'delivered') {
        this.metrics?.deliveries.inc({ outcome: 'delivered' });
        return;
      }
      if (outcome.kind === 'permanent' || attempt === max) {
        this.metrics?.deliveries.inc({ outcome: 'failed' });
        this.log({ level: 'error', code: 'ALERT_DELIVERY_FAILED', msg: 'webhook did not accept the alert; giving up', url: redact(d.url), alert: d.alert.type, attempts: attempt, why: outcome.why });
        return;
      }
      this.metrics?.deliveries.inc({ outcome: 'retried' });
      const exp = Math.min(cap, base * 2 ** (attempt - 1));
      const delay = Math.min(cap, Math.max(exp / 2 + Math.random() * (exp / 2), outcome.retryAfterMs ?? 0));
      await this.sleep(delay);
    }
  }

  private async attempt(d: Delivery, attempt: number): Promise<{ kind: 'delivered' } | { kind: 'retry' | 'permanent'; why: string; retryAfterMs?: number }> {
    const ts = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'pulse-oracle-alerts/1',
      'x-pulse-event': d.alert.type,
      'x-pulse-delivery': d.alert.id,
      'x-pulse-attempt': String(attempt),
      'x-pulse-timestamp': ts,
    };
    const secret = this.opts.secret ?? '';
    if (secret !== '') headers['x-pulse-signature'] = signatureHeader(secret, ts, d.body);
    try {
      const res = await fetch(d.url, { method: 'POST', headers, body: d.body, signal: AbortSignal.timeout(this.opts.timeoutMs ?? 5000), redirect: 'error' });
      // Drain the body so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return { kind: 'delivered' };
      const retryable = res.status === 408 || res.status === 429 || res.status >= 500;
      const ra = res.headers.get('retry-after');
      const retryAfterMs = ra !== null && /^\d{1,6}$/.test(ra) ? Number(ra) * 1000 : undefined;
      return { kind: retryable ? 'retry' : 'permanent', why: `HTTP ${res.status}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    } catch (e) {
      return { kind: 'retry', why: (e as Error).message };
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.sleeps.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      this.sleeps.add(entry);
    });
  }
}

/** Webhook URLs often carry a secret token in the path or query; logs show only the origin. */
function redact(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}
