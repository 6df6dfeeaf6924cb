// GET /api/events: the live feed (issue 7 §1) as server-sent events (WHATWG HTML §9.2, "Server-sent
// events"). Two kinds of event:
//
//   event: device-status   id: <device_health_events.id>   data: a StoredHealthEvent as JSON
//   event: epoch           (no id)                          data: {epoch, status, …} from the epoch code
//
// Device status events come from the database, not from memory: one poller per process follows
// device_health_events by id, so every oracle process behind a load balancer streams every transition,
// whichever process's monitor recorded it. Because they carry the table id, a client that reconnects
// with Last-Event-ID gets what it missed (up to REPLAY_LIMIT events). Epoch events are published in
// process by the epoch closer / poster (`publishEpochEvent`); they are live only.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Gauge, Counter, type Registry } from 'prom-client';
import type { Store } from '../store/store.ts';
import { EVENT_COLUMNS, eventFromRow, type StoredHealthEvent } from '../health/health-monitor.ts';
import { sendError } from './http-util.ts';

export const REPLAY_LIMIT = 1000;

export type EpochFeedEvent = {
  readonly epoch: number;
  readonly status: string;
  readonly [key: string]: unknown;
};

export type LiveFeedMetrics = { readonly clients: Gauge; readonly sent: Counter<'event'> };

export function createLiveFeedMetrics(registry: Registry): LiveFeedMetrics {
  return {
    clients: new Gauge({ name: 'pulse_sse_clients', help: 'Clients connected to the live feed (/api/events).', registers: [registry] }),
    sent: new Counter({ name: 'pulse_sse_events_total', help: 'Events written to live-feed clients, by event type (counted once per event, not per client).', labelNames: ['event'], registers: [registry] }),
  };
}

export type LiveFeedOptions = {
  readonly store: Store;
  readonly pollMs?: number;
  readonly keepAliveMs?: number;
  readonly maxClients?: number;
  readonly metrics?: LiveFeedMetrics;
  readonly log?: (event: Record<string, unknown>) => void;
};

/** pending buffers frames broadcast while a reconnecting client's missed events are replayed. */
type Client = { readonly res: ServerResponse; pending: string[] | undefined };

export class LiveFeed {
  private readonly clients = new Set<Client>();
  private cursor: bigint | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private readonly log: (event: Record<string, unknown>) => void;

  constructor(private readonly opts: LiveFeedOptions) {
    this.log = opts.log ?? ((event) => process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), component: 'live-feed', ...event })}\n`));
  }

  get clientCount(): number {
    return this.clients.size;
  }

  async start(): Promise<void> {
    if (this.pollTimer !== undefined) return;
    const [row] = await this.opts.store.query<{ id: string }>('SELECT coalesce(max(id), 0)::text AS id FROM device_health_events');
    this.cursor = BigInt(row?.id ?? '0');
    const every = this.opts.pollMs ?? 1000;
    const loop = (): void => {
      this.polling = this.poll()
        .catch((e: unknown) => this.log({ level: 'warn', msg: 'live feed poll failed', error: (e as Error).message }))
        .finally(() => {
          if (this.pollTimer !== undefined) this.pollTimer = setTimeout(loop, every);
        });
    };
    this.pollTimer = setTimeout(loop, every);
    // A comment line every so often keeps proxies from closing an idle stream.
    this.keepAliveTimer = setInterval(() => this.broadcast(': keep-alive\n\n'), this.opts.keepAliveMs ?? 15_000);
    this.keepAliveTimer.unref();
  }

  async stop(): Promise<void> {
    const t = this.pollTimer;
    this.pollTimer = undefined;
    if (t !== undefined) clearTimeout(t);
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    await this.polling;
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    this.opts.metrics?.clients.set(0);
  }

  /** Follow device_health_events past the cursor and stream the new rows. */
  async poll(): Promise<void> {
    if (this.cursor === undefined) return;
    for (;;) {
      const rows = await this.opts.store.query<Parameters<typeof eventFromRow>[0]>(
        `SELECT ${EVENT_COLUMNS} FROM device_health_events ev WHERE ev.id > $1::bigint ORDER BY ev.id LIMIT 500`,
        [this.cursor.toString()],
      );
      for (const r of rows) {
        const e = eventFromRow(r);
        this.cursor = BigInt(e.id);
        this.broadcast(deviceStatusFrame(e));
        this.opts.metrics?.sent.inc({ event: 'device-status' });
      }
      if (rows.length < 500) return;
    }
  }

  /** Epoch lifecycle events (closed, posted, challengeable, final, vetoed, failed). */
  publishEpochEvent(event: EpochFeedEvent): void {
    this.broadcast(`event: epoch\ndata: ${JSON.stringify(event)}\n\n`);
    this.opts.metrics?.sent.inc({ event: 'epoch' });
  }

  /** Serve one SSE client; resolves when it disconnects. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.clients.size >= (this.opts.maxClients ?? 1000)) {
      sendError(res, 503, 'API_FEED_FULL', 'the live feed is serving its maximum number of clients', { 'retry-after': '10' });
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // nginx buffers responses unless told otherwise; an SSE stream must not be buffered.
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    // The retry field sets the browser's reconnection delay (ms).
    res.write('retry: 2000\n\n');
    // Join the broadcast set first (buffering), then replay up to the cursor as it was at join time:
    // everything after it arrives by broadcast, so nothing is lost or sent twice.
    const client: Client = { res, pending: [] };
    const upTo = this.cursor;
    this.clients.add(client);
    this.opts.metrics?.clients.set(this.clients.size);
    const last = req.headers['last-event-id'];
    try {
      if (typeof last === 'string' && /^\d{1,19}$/.test(last) && upTo !== undefined && BigInt(last) < upTo) {
        const missed = await this.opts.store.query<Parameters<typeof eventFromRow>[0]>(
          `SELECT ${EVENT_COLUMNS} FROM device_health_events ev WHERE ev.id > $1::bigint AND ev.id <= $2::bigint ORDER BY ev.id LIMIT ${REPLAY_LIMIT}`,
          [last, upTo.toString()],
        );
        for (const r of missed) res.write(deviceStatusFrame(eventFromRow(r)));
      }
    } catch (e) {
      this.log({ level: 'warn', msg: 'live feed replay failed', error: (e as Error).message });
    }
    for (const frame of client.pending ?? []) res.write(frame);
    client.pending = undefined;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.clients.delete(client);
        this.opts.metrics?.clients.set(this.clients.size);
        resolve();
      };
      res.once('close', done);
      req.once('close', done);
    });
  }

  private broadcast(frame: string): void {
    for (const c of this.clients) {
      // A slow client whose socket buffer is full is dropped rather than buffered without bound; it
      // reconnects with Last-Event-ID and catches up from the table.
      if (c.res.writableLength > 1 << 20) {
        c.res.destroy();
        this.clients.delete(c);
        continue;
      }
      if (c.pending !== undefined) c.pending.push(frame);
      else c.res.write(frame);
    }
  }
}

export function deviceStatusFrame(e: StoredHealthEvent): string {
  return `id: ${e.id}\nevent: device-status\ndata: ${JSON.stringify(e)}\n\n`;
}
