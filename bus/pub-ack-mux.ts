// JetStream publishes awaiting their PubAcks through one reply subscription (docs/broker.md §Bus).
//
// nats.js `js.publish()` is a request: per message it builds a Request object, a timer, a deferred
// promise and, when the request completes, a NatsError("cancelled") with a captured stack trace that
// nobody sees (nats.js request.js RequestOne.cancel). In the broker's profile of the verified QoS 1
// bench that machinery was the largest entry after the signature check itself. Here instead:
// - one wildcard subscription `_INBOX.<nuid>.*` for the whole connection, and every publish carries
//   its own reply subject `_INBOX.<nuid>.<token>`, so a PubAck is matched to its publish by token.
//   Not by arrival order: JetStream answers in publish order only per stream (measured on
//   nats-server 2.9: 0 of 20,000 acks out of order on one stream, 746 when the same connection
//   alternated between two streams), and the server's own "no responders" reply is not in that order
//   at all;
// - one sweep timer for all publishes, running only while some wait, instead of one timer each: a
//   publish without an answer is rejected after its timeout, at most one sweep period (a tenth of the
//   timeout, 5–250 ms) later, never earlier;
// - the window of publishes in flight (`maxInFlight`) is the pending table itself; more wait in a
//   queue, in order;
// - publishes are sent in bursts: publish() queues, and the queue goes out from setImmediate, after
//   the poll phase has run every callback that was ready. Callers publish one message per callback
//   (the broker: one per completed signature check, each in its own threadpool callback, with a
//   microtask checkpoint after each), and nats.js writes its buffer to the socket at the first
//   microtask checkpoint after a publish, so publishing at once meant one socket write per message
//   (18 % of the broker's CPU in a profile of the verified QoS 1 bench, the largest single entry
//   before hand-offs were batched); from setImmediate a whole turn's PUBs leave in one write.
// The contract is the one js.publish() gave the bus (bus/bus.ts): a publish resolves only on a
// positive PubAck from our stream (the stream holds the message; a duplicate inside the duplicate
// window is held already and resolves too), and rejects BUS_UNAVAILABLE on an error reply, a PubAck
// from another stream, an unreadable reply (even a malformed header block), "no responders", a
// connection closed for good (at once, not after the timeout) or the timeout. A late PubAck of a
// publish that already timed out is ignored: the broker publishes again and gets a duplicate.
import { createInbox, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type NatsError, type Subscription } from 'nats';
import { PulseError } from '../shared/errors.ts';
import { readPubAck, type PubAckOutcome } from './pub-ack.ts';

export type PubAckMuxOptions = {
  /** The only stream whose PubAck counts; also sent as Nats-Expected-Stream. */
  readonly stream: string;
  /** A publish without a PubAck within this rejects with BUS_UNAVAILABLE. */
  readonly timeoutMs: number;
  /** Publishes awaiting their PubAck at once; more wait in order. */
  readonly maxInFlight: number;
  /** Called on a "no responders" reply: nothing listens on the subject (the stream is gone). */
  readonly onNoResponders?: () => void;
};

/** A positive PubAck: where the stream holds the message, and whether it held it already. */
export type PubAckOk = { readonly seq: number; readonly duplicate: boolean };

type Job = {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly msgId: string;
  readonly headers: MsgHdrs;
  readonly resolve: (ack: PubAckOk) => void;
  readonly reject: (e: PulseError) => void;
};

type Pending = { readonly job: Job; readonly born: number };

const MSG_ID = 'Nats-Msg-Id';
const EXPECTED_STREAM = 'Nats-Expected-Stream';

export class PubAckMux {
  private readonly inbox: string;
  private sub: Subscription | undefined;
  /** Keyed by reply token; Map order is publish order, which the sweep relies on. */
  private readonly pending = new Map<number, Pending>();
  private readonly waiting: Job[] = [];
  private nextToken = 0;
  /** Sweep periods elapsed; a publish is `born` at the current one. */
  private tick = 0;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly sweepMs: number;
  /** A publish times out once more than this many sweep periods have passed since it was sent. */
  private readonly periods: number;
  private idleWaiters: Array<() => void> = [];
  private scheduled = false;
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: PubAckMuxOptions,
  ) {
    if (!(options.timeoutMs >= 1) || !(options.maxInFlight >= 1)) throw new PulseError('BUS_BAD_CONFIG', `publish timeout (${options.timeoutMs} ms) and window (${options.maxInFlight}) must be at least 1`);
    this.inbox = `${createInbox()}.`;
    this.sweepMs = Math.min(250, Math.max(5, Math.round(options.timeoutMs / 10)));
    this.periods = Math.ceil(options.timeoutMs / this.sweepMs);
    // A connection closed for good answers nothing more: fail what waits for a PubAck at once
    // instead of after its timeout (what is queued is then refused by nc.publish as it is sent).
    void nc.closed().then(() => this.failInFlight('the NATS connection closed'));
  }

  /** Publishes sent and waiting for their PubAck. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Publishes waiting for a slot in the window. */
  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Publish `data` on `subject` with Nats-Msg-Id `msgId`. `headers` (fresh, without Nats-Msg-Id or
   * Nats-Expected-Stream: this appends both) is owned by the mux from here on. Sent with the rest of
   * this event-loop turn's publishes; resolves on a positive PubAck, rejects BUS_UNAVAILABLE.
   */
  publish(subject: string, data: Uint8Array, msgId: string, headers: MsgHdrs = natsHeaders()): Promise<PubAckOk> {
    return new Promise<PubAckOk>((resolve, reject) => {
      if (this.closed) return reject(new PulseError('BUS_CLOSED', `publish ${msgId} on a closed JetStream bus`));
      this.waiting.push({ subject, data, msgId, headers, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.admitQueued);
      }
    });
  }

  /** Resolves once nothing is in flight or queued (for a graceful close). */
  settled(): Promise<void> {
    if (this.pending.size === 0 && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Reject everything still in flight or queued, stop the sweep and the subscription. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const left = [...this.pending.values()].map((p) => p.job).concat(this.waiting.splice(0));
    this.pending.clear();
    for (const job of left) job.reject(this.failure(job, 'bus closed before the PubAck arrived'));
    this.stopSweep();
    this.wakeIdle();
    try {
      this.sub?.unsubscribe();
    } catch {
      // the connection is closed already: so is the subscription
    }
    this.sub = undefined;
  }

  private failure(job: Job, reason: string, cause?: unknown): PulseError {
    return new PulseError('BUS_UNAVAILABLE', `publish ${job.msgId}: ${reason}`, cause === undefined ? undefined : { cause });
  }

  private send(job: Job): void {
    if (this.sub === undefined) {
      try {
        this.sub = this.nc.subscribe(`${this.inbox}*`, { callback: this.onReply });
      } catch (e) {
        job.reject(this.failure(job, `cannot subscribe to PubAcks: ${(e as Error)?.message ?? String(e)}`, e));
        return;
      }
    }
    const token = ++this.nextToken;
    // append, not set: the headers are fresh (publish()), and set() first searches them to delete.
    job.headers.append(MSG_ID, job.msgId);
    job.headers.append(EXPECTED_STREAM, this.options.stream);
    try {
      // Published before any await: the PUB follows our SUB on the same connection, so the server
      // has the reply subscription before it can answer.
      this.nc.publish(job.subject, job.data, { reply: this.inbox + token, headers: job.headers });
    } catch (e) {
      // closed or draining connection, payload above max_payload, …
      job.reject(this.failure(job, (e as Error)?.message ?? String(e), e));
      return;
    }
    this.pending.set(token, { job, born: this.tick });
    this.sweeper ??= setInterval(this.sweep, this.sweepMs);
  }

  private readonly onReply = (err: NatsError | null, msg: Msg): void => {
    if (err !== null) {
      // The subscription itself failed (e.g. a permissions violation on the inbox): no PubAck can
      // arrive any more, so fail what is in flight now and subscribe again on the next publish.
      this.sub = undefined;
      this.failInFlight(`PubAck subscription failed: ${err.message}`, err);
      return;
    }
    const token = Number(msg.subject.slice(this.inbox.length));
    const p = this.pending.get(token);
    if (p === undefined) return; // timed out already, or not ours
    this.pending.delete(token);
    let outcome: PubAckOutcome;
    try {
      // nats.js decodes headers lazily and throws on a malformed header block; thrown from here it
      // would escape into the client's read loop and leave this publish settled by nobody.
      outcome = readPubAck(msg.data, msg.headers?.code, this.options.stream);
    } catch (e) {
      outcome = { ok: false, noResponders: false, reason: `unreadable reply: ${(e as Error)?.message ?? String(e)}` };
    }
    if (outcome.ok) p.job.resolve(outcome);
    else {
      if (outcome.noResponders) this.options.onNoResponders?.();
      p.job.reject(this.failure(p.job, outcome.reason));
    }
    this.admit();
  };

  /** Reject every publish waiting for its PubAck (none can come), then send what is queued. */
  private failInFlight(reason: string, cause?: unknown): void {
    const left = [...this.pending.values()];
    this.pending.clear();
    for (const p of left) p.job.reject(this.failure(p.job, reason, cause));
    this.admit();
  }

  private readonly sweep = (): void => {
    this.tick++;
    for (const [token, p] of this.pending) {
      if (this.tick - p.born <= this.periods) break; // later entries were born later still
      this.pending.delete(token);
      p.job.reject(this.failure(p.job, `no PubAck within ${this.options.timeoutMs} ms`));
    }
    this.admit();
  };

  private readonly admitQueued = (): void => {
    this.scheduled = false;
    this.admit();
  };

  /** Send queued publishes while the window has room; stop the sweep and wake close() when idle. */
  private admit(): void {
    while (this.waiting.length > 0 && this.pending.size < this.options.maxInFlight && !this.closed) this.send(this.waiting.shift()!);
    if (this.pending.size === 0) {
      this.stopSweep();
      if (this.waiting.length === 0) this.wakeIdle();
    }
  }

  private stopSweep(): void {
    if (this.sweeper !== undefined) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
