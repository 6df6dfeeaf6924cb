// NATS JetStream implementation of the Bus (bus/bus.ts), the production hand-off between broker
// processes and oracle ingest (docs/broker.md §Bus).
//
// - One stream (file storage, limits retention, so messages stay until max age even before any
//   consumer exists) with one subject per device, `<prefix>.hb.<deviceId>`, and one per broker
//   process for its session reports, `<prefix>.sessions.<brokerId>` (bus/bus.ts). Every durable
//   filters on one kind, so heartbeat consumers never see a report. One stream rather than two: the
//   operator sizes, replicates and watches one stream, and a report every 30 s per broker is nothing
//   beside the heartbeats in it. An existing stream is widened to the sessions subject on connect.
// - Nats-Msg-Id = `${deviceId}:${seq}:<8 signature bytes>` (bus.ts heartbeatMessageId): JetStream
//   drops a resend of the same bytes inside the duplicate window and answers PubAck{duplicate: true},
//   so several broker processes and device retries never store a heartbeat twice (JetStream "Message
//   Deduplication"), while an equivocating payload under the same seq still reaches ingest. A session report part's id is
//   `session:<brokerId>:<seq>:<part>`, which can never equal a heartbeat's.
// - publish() resolves only on the PubAck (the stream holds it durably); up to `maxInFlight`
//   publishes wait for their acks concurrently (~5k/s awaiting each ack vs ~18–20k/s with a window,
//   ../shared/DESIGN.md §Performance anchors). Publishes go out as plain PUBs with per-message reply
//   subjects on one shared PubAck subscription, not as nats.js requests (bus/pub-ack-mux.ts).
// - Consumers are durable pull consumers with explicit acks, ack wait and max deliver; all handles
//   with one durable name share the work.
// - The connection reconnects forever; while it is down, publish() rejects (BUS_UNAVAILABLE) after
//   `publishTimeoutMs`, and the broker keeps retrying without acknowledging the device.
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  connect,
  headers,
  nanos,
  type JetStreamManager,
  type JsMsg,
  type NatsConnection,
  type StreamConfig,
} from 'nats';
import type { Bus, BusConsumer, BusDelivery, BusHeartbeat, BusPublisher, BusSessionReport, SessionReport, SessionReportPublisher } from './bus.ts';
import { heartbeatMessageId } from './bus.ts';
import { checkSessionReport, decodeSessionReport, encodeSessionReport, sessionReportId } from './session-report.ts';
import { PubAckMux } from './pub-ack-mux.ts';
import { PulseError } from '../shared/errors.ts';

export type JetStreamBusOptions = {
  /** NATS server URL(s), e.g. nats://127.0.0.1:4222; a comma-separated string is split. */
  readonly servers: string | readonly string[];
  /** Stream name (letters, digits, `-`, `_`). */
  readonly stream: string;
  /** Subjects are `<subjectPrefix>.hb.<deviceId>` and `<subjectPrefix>.sessions.<brokerId>`. */
  readonly subjectPrefix: string;
  /** JetStream duplicate window for Nats-Msg-Id. Default 2 minutes (the JetStream default). */
  readonly duplicateWindowMs?: number;
  /** Messages older than this leave the stream. Default 7 days. */
  readonly maxAgeMs?: number;
  /** Publishes awaiting their PubAck at once; more wait for a slot. Default 4096. */
  readonly maxInFlight?: number;
  /** A publish without a PubAck within this rejects with BUS_UNAVAILABLE. Default 5 s. */
  readonly publishTimeoutMs?: number;
  /** Consumer ack wait: an unacked delivery is redelivered after this. Default 30 s. */
  readonly ackWaitMs?: number;
  /** Stop redelivering after this many deliveries; 0 = unlimited. Default 0. */
  readonly maxDeliver?: number;
  /** Deliveries a durable may hold unacked. Default 20,000. */
  readonly maxAckPending?: number;
  /** Connection name shown by the NATS server. */
  readonly name?: string;
  /** Connection status changes (disconnect, reconnect) for logging, and each foreign message a consumer terminated. */
  readonly onStatus?: (status: { readonly type: string; readonly data?: unknown }) => void;
};

const NAME = /^[A-Za-z0-9_-]+$/;
const RECEIVED_AT = 'Pulse-Received-At';

/** The error for a name that cannot be one subject token, or undefined when it can. */
function badName(what: string, value: string): PulseError | undefined {
  return NAME.test(value) ? undefined : new PulseError('BUS_BAD_CONFIG', `${what} ${JSON.stringify(value)} must be letters, digits, "-" or "_"`);
}

function checkName(what: string, value: string): void {
  const e = badName(what, value);
  if (e !== undefined) throw e;
}

function unavailable(what: string, e: unknown): PulseError {
  return new PulseError('BUS_UNAVAILABLE', `${what}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

export class JetStreamBus implements Bus {
  readonly kind = 'jetstream' as const;
  /** Every publish (heartbeats and session reports) and its PubAck: one window, one reply subscription. */
  private readonly acks: PubAckMux;
  private readonly publishTimeoutMs: number;
  private closed = false;

  private constructor(
    readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly options: JetStreamBusOptions,
  ) {
    this.publishTimeoutMs = options.publishTimeoutMs ?? 5_000;
    this.acks = new PubAckMux(nc, {
      stream: options.stream,
      timeoutMs: this.publishTimeoutMs,
      maxInFlight: options.maxInFlight ?? 4096,
      // "no responders": nothing listens on the subject, i.e. the stream is gone (deleted, or a
      // NATS server restarted without its store). Re-create it so retries can succeed.
      onNoResponders: () => this.recreateStream(),
    });
  }

  /** Connect (waiting for the server if it is not up yet) and make sure the stream exists. */
  static async connect(options: JetStreamBusOptions): Promise<JetStreamBus> {
    checkName('stream', options.stream);
    for (const part of options.subjectPrefix.split('.')) checkName('subject prefix part', part);
    const servers = typeof options.servers === 'string' ? options.servers.split(',').map((s) => s.trim()) : [...options.servers];
    const nc = await connect({
      servers,
      name: options.name ?? 'pulse',
      maxReconnectAttempts: -1, // reconnect forever
      reconnectTimeWait: 500,
      waitOnFirstConnect: true,
      pingInterval: 10_000,
      // nats.js otherwise captures a stack trace (new Error) for every request, i.e. every publish
      // awaiting its PubAck: ~40 µs of CPU per heartbeat in the broker's profile. Our errors name
      // the operation themselves (unavailable(...)), so the trace adds nothing.
      noAsyncTraces: true,
    });
    if (options.onStatus !== undefined) {
      const onStatus = options.onStatus;
      void (async () => {
        for await (const s of nc.status()) onStatus({ type: String(s.type), data: s.data });
      })().catch(() => undefined);
    }
    try {
      const jsm = await nc.jetstreamManager();
      const bus = new JetStreamBus(nc, jsm, options);
      await bus.ensureStream();
      return bus;
    } catch (e) {
      await nc.close().catch(() => undefined);
      throw e instanceof PulseError ? e : unavailable(`stream ${options.stream}`, e);
    }
  }

  get subjectFilter(): string {
    return `${this.options.subjectPrefix}.hb.*`;
  }

  subjectOf(deviceId: string): string {
    return `${this.options.subjectPrefix}.hb.${deviceId}`;
  }

  get sessionSubjectFilter(): string {
    return `${this.options.subjectPrefix}.sessions.*`;
  }

  sessionSubjectOf(brokerId: string): string {
    return `${this.options.subjectPrefix}.sessions.${brokerId}`;
  }

  /** Create the stream, or widen an existing one to our subjects and duplicate window. */
  private async ensureStream(): Promise<void> {
    const want: Partial<StreamConfig> & { name: string } = {
      name: this.options.stream,
      subjects: [this.subjectFilter, this.sessionSubjectFilter],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(this.options.duplicateWindowMs ?? 120_000),
      max_age: nanos(this.options.maxAgeMs ?? 7 * 24 * 3_600_000),
      num_replicas: 1,
    };
    let existing: StreamConfig | undefined;
    try {
      existing = (await this.jsm.streams.info(this.options.stream)).config;
    } catch (e) {
      if (!/not found/i.test((e as Error).message)) throw e;
    }
    if (existing === undefined) {
      await this.jsm.streams.add(want);
      return;
    }
    const subjects = new Set(existing.subjects ?? []);
    if (!subjects.has(this.subjectFilter) || !subjects.has(this.sessionSubjectFilter) || existing.duplicate_window < want.duplicate_window!) {
      subjects.add(this.subjectFilter);
      subjects.add(this.sessionSubjectFilter);
      await this.jsm.streams.update(this.options.stream, { ...existing, subjects: [...subjects], duplicate_window: Math.max(existing.duplicate_window, want.duplicate_window!) });
    }
  }

  private recreating: Promise<void> | undefined;
  private lastRecreate = 0;

  /** ensureStream again, at most once a second and never concurrently. */
  private recreateStream(): void {
    if (this.recreating !== undefined || Date.now() - this.lastRecreate < 1_000 || this.closed) return;
    this.lastRecreate = Date.now();
    this.recreating = this.ensureStream()
      .catch(() => undefined)
      .finally(() => (this.recreating = undefined));
  }

  /** Publishes waiting for their PubAck right now. */
  get inFlight(): number {
    return this.acks.inFlight;
  }

  publisher(): BusPublisher {
    let open = true;
    return {
      publish: (message: BusHeartbeat): Promise<void> => {
        if (!open || this.closed) return Promise.reject(new PulseError('BUS_CLOSED', 'publish on a closed JetStream bus'));
        // Not async (one promise per heartbeat fewer on the broker's hot path): errors are rejections.
        const bad = badName('device id', message.deviceId);
        if (bad !== undefined) return Promise.reject(bad);
        const h = headers();
        h.append(RECEIVED_AT, String(message.receivedAt)); // append: fresh headers, nothing to replace
        // Resolves with the PubAck, which the caller only awaits (BusPublisher resolves to nothing).
        return this.acks.publish(this.subjectOf(message.deviceId), message.raw, heartbeatMessageId(message), h) as Promise<unknown> as Promise<void>;
      },
      close: async (): Promise<void> => {
        open = false;
      },
    };
  }

  consumer(durableName: string): BusConsumer {
    checkName('durable name', durableName);
    if (this.closed) throw new PulseError('BUS_CLOSED', 'consumer on a closed JetStream bus');
    const prefix = this.options.subjectPrefix;
    return new JetStreamConsumer(this, durableName, this.subjectFilter, (m) => parseBusMessage(m, prefix), (h) => `${h.deviceId}:${h.seq}`);
  }

  sessionPublisher(): SessionReportPublisher {
    let open = true;
    return {
      publish: async (report: SessionReport): Promise<void> => {
        if (!open || this.closed) throw new PulseError('BUS_CLOSED', 'publish on a closed JetStream bus');
        const checked = checkSessionReport(report);
        if (!checked.ok) throw new PulseError('SESSION_BAD_REPORT', checked.message);
        const id = sessionReportId(report);
        await this.acks.publish(this.sessionSubjectOf(report.brokerId), encodeSessionReport(report), `session:${id}`);
      },
      close: async (): Promise<void> => {
        open = false;
      },
    };
  }

  sessionConsumer(durableName: string): BusConsumer<BusSessionReport> {
    checkName('durable name', durableName);
    if (this.closed) throw new PulseError('BUS_CLOSED', 'consumer on a closed JetStream bus');
    const prefix = `${this.options.subjectPrefix}.sessions.`;
    return new JetStreamConsumer(this, durableName, this.sessionSubjectFilter, (m) => parseSessionMessage(m, prefix), (r) => (r.ok ? sessionReportId(r.value) : 'malformed session report'));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Let publishes in flight get their PubAcks (each is rejected by its own timeout at the latest),
    // then drain the subscriptions and close; if the server is unreachable a drain would wait for a
    // reconnect, so it is bounded.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.publishTimeoutMs)));
    await Promise.race([this.acks.settled().then(() => this.nc.drain()).catch(() => undefined), bounded]);
    clearTimeout(timer);
    this.acks.close();
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

/** Parse a stored message back into a BusHeartbeat; undefined when it is not one of ours. */
export function parseBusMessage(m: Pick<JsMsg, 'subject' | 'data' | 'headers'>, subjectPrefix: string): BusHeartbeat | undefined {
  const prefix = `${subjectPrefix}.hb.`;
  if (!m.subject.startsWith(prefix)) return undefined;
  const deviceId = m.subject.slice(prefix.length);
  // The id must be exactly what a broker publishes for these bytes (bus.ts heartbeatMessageId).
  const id = m.headers?.get('Nats-Msg-Id') ?? '';
  const seqText = id.split(':')[1] ?? '';
  if (!/^\d{1,20}$/.test(seqText)) return undefined;
  const receivedAt = Number(m.headers?.get(RECEIVED_AT) ?? '');
  if (!Number.isFinite(receivedAt) || receivedAt <= 0) return undefined;
  const message: BusHeartbeat = { deviceId, seq: BigInt(seqText), raw: m.data, receivedAt };
  return heartbeatMessageId(message) === id ? message : undefined;
}

/**
 * A stored session report: decoded from the payload, and the subject must name the broker the report
 * names (a report that claims another broker's id is malformed). Never undefined: whatever arrives on
 * a sessions subject reaches the consumer, which counts and terminates what is malformed.
 */
export function parseSessionMessage(m: Pick<JsMsg, 'subject' | 'data'>, subjectPrefix: string): BusSessionReport {
  const r = decodeSessionReport(m.data);
  if (r.ok && m.subject !== `${subjectPrefix}${r.value.brokerId}`) return { ok: false, code: 'SESSION_BAD_REPORT', message: `report of broker ${r.value.brokerId} on subject ${m.subject.slice(0, 200)}` };
  return r;
}

/** Client-side bound on a pull beyond its server-side expiry. */
const PULL_GUARD_MS = 5_000;

class JetStreamConsumer<M> implements BusConsumer<M> {
  private ready: Promise<void> | undefined;
  private closed = false;
  private flushing: Promise<void> | undefined;

  /**
   * @param parse a stored message → what the consumer gets; undefined terminates it unseen.
   * @param describe names a message in errors.
   */
  constructor(
    private readonly bus: JetStreamBus,
    private readonly durable: string,
    private readonly filter: string,
    private readonly parse: (m: JsMsg) => M | undefined,
    private readonly describe: (message: M) => string,
  ) {}

  private ensure(): Promise<void> {
    this.ready ??= (async () => {
      const o = this.bus.options;
      const config = {
        durable_name: this.durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(o.ackWaitMs ?? 30_000),
        max_deliver: (o.maxDeliver ?? 0) > 0 ? o.maxDeliver! : -1,
        max_ack_pending: o.maxAckPending ?? 20_000,
        filter_subject: this.filter,
      };
      try {
        await this.bus.jsm.consumers.info(o.stream, this.durable);
      } catch (e) {
        if (!/not found/i.test((e as Error).message)) throw e;
        await this.bus.jsm.consumers.add(o.stream, config);
      }
    })().catch((e: unknown) => {
      this.ready = undefined; // try again on the next fetch
      throw unavailable(`consumer ${this.durable}`, e);
    });
    return this.ready;
  }

  private async pull(batch: number, expiresMs: number): Promise<JsMsg[]> {
    const o = this.bus.options;
    // The legacy pull API is used because it allows an expiry below 1 s (the consumers API does not)
    // and returns at once with no_wait; both are needed for "wait at most waitMs for the first".
    const iter = this.bus.nc.jetstream().fetch(o.stream, this.durable, expiresMs > 0 ? { batch, expires: expiresMs } : { batch, no_wait: true });
    // A pull request sent while the server restarts or the stream leader moves can go unanswered,
    // and the iterator would then wait forever (ingest stalled after a nats-server restart in the
    // fault suite, scenarios 4 and 9). Bound it on the client: after the server-side expiry plus a
    // margin, stop it and report the bus unavailable; the worker backs off and pulls again, and
    // whatever this pull did deliver is redelivered after the ack wait.
    const guardMs = Math.max(0, expiresMs) + PULL_GUARD_MS;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      iter.stop();
    }, guardMs);
    const out: JsMsg[] = [];
    try {
      for await (const m of iter) out.push(m);
    } finally {
      clearTimeout(timer);
    }
    if (timedOut) throw new Error(`pull from ${this.durable} got no answer within ${guardMs} ms`);
    return out;
  }

  async fetch(max: number, waitMs: number): Promise<BusDelivery<M>[]> {
    if (max < 1 || this.closed || this.bus.isClosed) return [];
    await this.ensure();
    let msgs: JsMsg[];
    try {
      msgs = await this.pull(max, 0);
      if (msgs.length === 0 && waitMs > 0) {
        msgs = await this.pull(1, waitMs);
        if (msgs.length > 0 && max > 1) msgs.push(...(await this.pull(max - 1, 0)));
      }
    } catch (e) {
      throw unavailable(`fetch from ${this.durable}`, e);
    }
    const out: BusDelivery<M>[] = [];
    for (const m of msgs) {
      const message = this.parse(m);
      if (message === undefined) {
        // Not a broker message (foreign publisher on our subjects): never redeliver it, but say so,
        // so a publisher that disagrees on the message format is seen at once, not as missing rows.
        m.term();
        this.bus.options.onStatus?.({ type: 'foreignMessageTerminated', data: m.subject });
        continue;
      }
      out.push({
        message,
        deliveryCount: m.info.redeliveryCount,
        ack: async () => {
          m.ack();
          try {
            await this.flushAcks();
          } catch (e) {
            throw unavailable(`ack ${this.describe(message)}`, e);
          }
        },
        nak: (delayMs?: number) => m.nak(delayMs),
        term: () => m.term(),
      });
    }
    return out;
  }

  /**
   * One round trip for all the acks sent in this tick: a flush resolves when the server answers a PING
   * sent after them, so it has read every one. A request-reply ack (ackAck) per message cost a round
   * trip each and held ingest to ~1.8k rows/s (bench ingest). An ack lost in a connection drop only
   * means a redelivery, which storage records as HB_DUPLICATE (bus/bus.ts guarantees).
   */
  private flushAcks(): Promise<void> {
    this.flushing ??= Promise.resolve().then(async () => {
      this.flushing = undefined;
      // Bounded like the request-reply ack was: a flush during a reconnect would otherwise wait for it.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('no PONG for the acks within 5000 ms')), 5_000)));
      try {
        await Promise.race([this.bus.nc.flush(), timeout]);
      } finally {
        clearTimeout(timer);
      }
    });
    return this.flushing;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
