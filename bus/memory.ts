// In-memory bus for the embedded default (`pulse dev`, fresh-clone tests): the same guarantees as
// NATS JetStream behind bus/bus.ts, inside one process. Modelled on a JetStream stream with durable
// pull consumers (AckExplicit, DeliverAll), so code tested against it behaves the same on JetStream:
// - publish() resolves once the message is queued (the process is the "durable" store here: the
//   embedded mode trades crash durability for zero dependencies, see docs/storage.md);
// - dedup by message id within a window (JetStream's Nats-Msg-Id duplicate window, default 2 min):
//   `deviceId:seq` for heartbeats, the report id for session reports; a duplicate publish resolves
//   like JetStream's PubAck{duplicate: true} and is not stored again;
// - every durable name sees every message; handles with the same durable name share the work;
// - at-least-once: a delivery not acked within `ackWaitMs` is redelivered (deliveryCount + 1);
//   nak(delay) redelivers after the delay; term() never redelivers.
// Heartbeats and session reports are two separate queues (MemoryStream) with the same rules, as the
// two filtered subjects of one JetStream stream behave. Session reports are held encoded, exactly the
// bytes JetStream would hold, and decoded on delivery, so consumers meet the same codec either way.
import type { Bus, BusConsumer, BusDelivery, BusHeartbeat, BusPublisher, BusSessionReport, SessionReport, SessionReportPublisher } from './bus.ts';
import { heartbeatMessageId } from './bus.ts';
import { checkSessionReport, decodeSessionReport, encodeSessionReport, sessionReportId } from './session-report.ts';
import { PulseError } from '../shared/errors.ts';

export type MemoryBusOptions = {
  /** Duplicate window for (deviceId, seq), ms. JetStream's default is 2 minutes. */
  readonly dedupWindowMs?: number;
  /** A delivery not acked within this is redelivered. JetStream's default AckWait is 30 s. */
  readonly ackWaitMs?: number;
  /** Stop redelivering after this many deliveries (JetStream MaxDeliver); 0 = unlimited. */
  readonly maxDeliver?: number;
  /** Publishes are refused (BUS_FULL) while this many messages are held (JetStream max_msgs). */
  readonly maxMessages?: number;
};

type Pending = { deadline: number };
type Delayed = { seq: number; readyAt: number };

/** Shared state of one durable consumer (all handles with the same durable name). */
class DurableState {
  /** Next stream sequence never delivered to this durable. */
  cursor: number;
  /** In flight: stream seq → ack deadline. Insertion order is delivery order, so deadlines ascend. */
  readonly pending = new Map<number, Pending>();
  /** Ready for redelivery now (ack wait expired or nak without delay). */
  readonly ready: number[] = [];
  /** nak(delay): redeliver once readyAt passes. Kept sorted by readyAt. */
  readonly delayed: Delayed[] = [];
  /** How many times each unfinished message has been delivered. */
  readonly deliveries = new Map<number, number>();
  readonly waiters = new Set<() => void>();

  constructor(startSeq: number) {
    this.cursor = startSeq;
  }

  /** Lowest stream seq this durable still needs (for trimming the stream). */
  lowestOutstanding(): number {
    let low = this.cursor;
    for (const seq of this.deliveries.keys()) if (seq < low) low = seq;
    return low;
  }

  wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

type StreamOptions<S> = {
  readonly dedupWindowMs: number;
  readonly ackWaitMs: number;
  readonly maxDeliver: number;
  readonly maxMessages: number;
  /** The dedup key (JetStream's Nats-Msg-Id). */
  readonly idOf: (stored: S) => string;
};

/** One queue with JetStream stream semantics: sequences, dedup window, durables, redelivery. */
class MemoryStream<S> {
  /** The stream: stream seq → message. Sequences start at 1 like JetStream. */
  private readonly messages = new Map<number, S>();
  private firstSeq = 1;
  private nextSeq = 1;
  /** Message id → publish time; insertion order is time order, so expiry trims from the front. */
  private readonly dedup = new Map<string, number>();
  readonly durables = new Map<string, DurableState>();
  private acksSinceTrim = 0;
  private readonly now: () => number = Date.now;

  constructor(
    private readonly what: string,
    private readonly o: StreamOptions<S>,
  ) {}

  get size(): number {
    return this.messages.size;
  }

  durable(name: string): DurableState {
    let state = this.durables.get(name);
    if (state === undefined) {
      // DeliverPolicy.All: a new durable starts at the oldest message still held.
      state = new DurableState(this.firstSeq);
      this.durables.set(name, state);
    }
    return state;
  }

  append(message: S): void {
    const now = this.now();
    this.expireDedup(now);
    const key = this.o.idOf(message);
    if (this.dedup.has(key)) return; // JetStream PubAck{duplicate: true}: accepted, not stored twice
    if (this.messages.size >= this.o.maxMessages) {
      throw new PulseError('BUS_FULL', `memory bus holds ${this.messages.size} ${this.what} (max ${this.o.maxMessages})`);
    }
    this.dedup.set(key, now);
    this.messages.set(this.nextSeq++, message);
    for (const d of this.durables.values()) d.wake();
  }

  private expireDedup(now: number): void {
    for (const [key, at] of this.dedup) {
      if (now - at < this.o.dedupWindowMs) break;
      this.dedup.delete(key);
    }
  }

  /** Take up to `max` deliveries for a durable without waiting; `view` turns a stored message into what consumers get. */
  take<M>(state: DurableState, max: number, view: (stored: S) => M): BusDelivery<M>[] {
    const now = this.now();
    // Ack wait expired → ready for redelivery. Deadlines ascend in insertion order.
    for (const [seq, p] of state.pending) {
      if (p.deadline > now) break;
      state.pending.delete(seq);
      state.ready.push(seq);
    }
    while (state.delayed.length > 0 && state.delayed[0]!.readyAt <= now) state.ready.push(state.delayed.shift()!.seq);

    const out: BusDelivery<M>[] = [];
    while (out.length < max && state.ready.length > 0) {
      const seq = state.ready.shift()!;
      const d = this.deliver(state, seq, now, view);
      if (d !== undefined) out.push(d);
    }
    while (out.length < max && state.cursor < this.nextSeq) {
      const seq = state.cursor++;
      const d = this.deliver(state, seq, now, view);
      if (d !== undefined) out.push(d);
    }
    return out;
  }

  private deliver<M>(state: DurableState, seq: number, now: number, view: (stored: S) => M): BusDelivery<M> | undefined {
    const stored = this.messages.get(seq);
    if (stored === undefined) {
      state.deliveries.delete(seq);
      return undefined;
    }
    const count = (state.deliveries.get(seq) ?? 0) + 1;
    if (this.o.maxDeliver > 0 && count > this.o.maxDeliver) {
      // JetStream MaxDeliver reached: the message is no longer delivered to this durable.
      this.finish(state, seq);
      return undefined;
    }
    state.deliveries.set(seq, count);
    state.pending.set(seq, { deadline: now + this.o.ackWaitMs });
    let settled = false;
    return {
      message: view(stored),
      deliveryCount: count,
      ack: async () => {
        settled = true;
        // Like JetStream, an ack counts even after the ack wait expired, as long as the message is
        // not finished yet; acking twice is harmless.
        if (state.deliveries.has(seq)) this.finish(state, seq);
      },
      nak: (delayMs?: number) => {
        if (settled || !state.pending.has(seq)) return;
        settled = true;
        state.pending.delete(seq);
        if (delayMs === undefined || delayMs <= 0) {
          state.ready.push(seq);
        } else {
          const readyAt = this.now() + delayMs;
          let i = state.delayed.length;
          while (i > 0 && state.delayed[i - 1]!.readyAt > readyAt) i--;
          state.delayed.splice(i, 0, { seq, readyAt });
        }
        state.wake();
      },
      term: () => {
        settled = true;
        if (state.deliveries.has(seq)) this.finish(state, seq);
      },
    };
  }

  private finish(state: DurableState, seq: number): void {
    state.pending.delete(seq);
    state.deliveries.delete(seq);
    const r = state.ready.indexOf(seq);
    if (r >= 0) state.ready.splice(r, 1);
    const d = state.delayed.findIndex((x) => x.seq === seq);
    if (d >= 0) state.delayed.splice(d, 1);
    if (++this.acksSinceTrim >= 1024 || state.deliveries.size === 0) this.trim();
  }

  /** Drop messages every durable has finished (interest retention). Kept while no durable exists. */
  private trim(): void {
    this.acksSinceTrim = 0;
    if (this.durables.size === 0) return;
    let low = this.nextSeq;
    for (const d of this.durables.values()) low = Math.min(low, d.lowestOutstanding());
    while (this.firstSeq < low) this.messages.delete(this.firstSeq++);
  }

  /** When the next pending/delayed message becomes ready, or undefined if none. */
  nextTimer(state: DurableState): number | undefined {
    let t: number | undefined;
    const first = state.pending.values().next();
    if (!first.done) t = first.value.deadline;
    const d = state.delayed[0];
    if (d !== undefined && (t === undefined || d.readyAt < t)) t = d.readyAt;
    return t;
  }
}

type StoredReport = { readonly id: string; readonly bytes: Uint8Array };

const identity = <T>(x: T): T => x;

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private readonly heartbeats: MemoryStream<BusHeartbeat>;
  private readonly sessions: MemoryStream<StoredReport>;
  private closed = false;

  constructor(options: MemoryBusOptions = {}) {
    const common = {
      dedupWindowMs: options.dedupWindowMs ?? 120_000,
      ackWaitMs: options.ackWaitMs ?? 30_000,
      maxDeliver: options.maxDeliver ?? 0,
      maxMessages: options.maxMessages ?? 1_000_000,
    };
    this.heartbeats = new MemoryStream('messages', { ...common, idOf: heartbeatMessageId });
    this.sessions = new MemoryStream('session reports', { ...common, idOf: (r) => r.id });
  }

  /** Heartbeats held in the stream (published and not yet finished by every durable). */
  get size(): number {
    return this.heartbeats.size;
  }

  /** Session report parts held (published and not yet finished by every session durable). */
  get sessionReportsHeld(): number {
    return this.sessions.size;
  }

  publisher(): BusPublisher {
    let open = true;
    return {
      publish: async (message: BusHeartbeat): Promise<void> => {
        if (!open || this.closed) throw new PulseError('BUS_CLOSED', 'publish on a closed memory bus');
        // Copy the bytes: the caller may reuse its buffer after publish resolves.
        this.heartbeats.append({ ...message, raw: Uint8Array.from(message.raw) });
      },
      close: async (): Promise<void> => {
        open = false;
      },
    };
  }

  consumer(durableName: string): BusConsumer {
    if (this.closed) throw new PulseError('BUS_CLOSED', 'consumer on a closed memory bus');
    return new MemoryConsumer(this, this.heartbeats, this.heartbeats.durable(durableName), identity);
  }

  sessionPublisher(): SessionReportPublisher {
    let open = true;
    return {
      publish: async (report: SessionReport): Promise<void> => {
        if (!open || this.closed) throw new PulseError('BUS_CLOSED', 'publish on a closed memory bus');
        const checked = checkSessionReport(report);
        if (!checked.ok) throw new PulseError('SESSION_BAD_REPORT', checked.message);
        this.sessions.append({ id: sessionReportId(report), bytes: encodeSessionReport(report) });
      },
      close: async (): Promise<void> => {
        open = false;
      },
    };
  }

  sessionConsumer(durableName: string): BusConsumer<BusSessionReport> {
    if (this.closed) throw new PulseError('BUS_CLOSED', 'consumer on a closed memory bus');
    return new MemoryConsumer(this, this.sessions, this.sessions.durable(durableName), (r) => decodeSessionReport(r.bytes));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const d of this.heartbeats.durables.values()) d.wake();
    for (const d of this.sessions.durables.values()) d.wake();
  }

  get isClosed(): boolean {
    return this.closed;
  }
}

class MemoryConsumer<S, M> implements BusConsumer<M> {
  private closed = false;
  constructor(
    private readonly bus: MemoryBus,
    private readonly stream: MemoryStream<S>,
    private readonly state: DurableState,
    private readonly view: (stored: S) => M,
  ) {}

  async fetch(max: number, waitMs: number): Promise<BusDelivery<M>[]> {
    if (max < 1) return [];
    const until = Date.now() + Math.max(0, waitMs);
    for (;;) {
      if (this.closed || this.bus.isClosed) return [];
      const got = this.stream.take(this.state, max, this.view);
      if (got.length > 0) return got;
      const left = until - Date.now();
      if (left <= 0) return [];
      // Sleep until a publish/nak wakes us, the next redelivery is due, or the wait is over.
      const timer = this.stream.nextTimer(this.state);
      const sleep = Math.max(1, Math.min(left, timer === undefined ? left : timer - Date.now()));
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(t);
          this.state.waiters.delete(wake);
          resolve();
        };
        const t = setTimeout(wake, sleep);
        this.state.waiters.add(wake);
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // Deliveries this handle holds stay pending and are redelivered after the ack wait, as on JetStream.
    this.state.wake();
  }
}
