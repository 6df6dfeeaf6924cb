// The hand-off between broker and oracle ingest (../shared/DESIGN.md §Shape). Two implementations
// behind this one interface: NATS JetStream in production (bus/jetstream.ts) and an in-memory queue
// for the embedded default (bus/memory.ts).
//
// Two message kinds, each with its own publisher and durable consumers:
// - heartbeats (publisher(), consumer()): one message per accepted heartbeat, the hot path;
// - broker session reports (sessionPublisher(), sessionConsumer()): one message per broker process
//   and report interval (default 30 s) listing the connected time of its devices, for the connected
//   time shown beside credited uptime (docs/rewards.md §Connected time). On JetStream both kinds live
//   in the same stream on disjoint subjects (`<prefix>.hb.<deviceId>`, `<prefix>.sessions.<brokerId>`)
//   and every consumer filters on its own kind, so a heartbeat consumer never sees a report and the
//   heartbeat path is unchanged; the in-memory bus keeps two separate queues.
//
// Guarantees every implementation gives, for both kinds:
// - publish() resolves only once the message is durably accepted (JetStream PubAck). The broker sends
//   the device's PUBACK after that, so an acknowledged heartbeat is never lost.
// - dedup by message id: (deviceId, seq, signed bytes) for a heartbeat (heartbeatMessageId), the
//   report id (broker id, report seq, part) for a session report; a resend within the duplicate
//   window is dropped.
// - at-least-once delivery to consumers: a delivery not acked within the ack wait is redelivered;
//   consumers are idempotent (unique (device id, seq), unique report id in storage).
import type { Result } from '../shared/result.ts';
import { toHex } from '../shared/hex.ts';

/**
 * The dedup id of a heartbeat on the bus (JetStream Nats-Msg-Id): device id, seq and the first 8
 * bytes of the signature. A resend of the same signed bytes has the same id and is dropped inside
 * the duplicate window; a different payload under the same seq (equivocation) has another id, so it
 * reaches ingest and is recorded as HB_EQUIVOCATION instead of vanishing as a "duplicate" that the
 * device saw acknowledged. Ed25519 signatures are deterministic (RFC 8032 §5.1.6: R = rB with r a
 * hash of the key prefix and the message), so the same bytes always give the same id, and 8 bytes of
 * R tell two payloads apart with probability 1 − 2⁻⁶⁴.
 */
export function heartbeatMessageId(m: BusHeartbeat): string {
  const sig = m.raw.length >= 64 ? m.raw.subarray(m.raw.length - 64, m.raw.length - 56) : m.raw;
  return `${m.deviceId}:${m.seq}:${toHex(sig)}`;
}

/** A heartbeat accepted at the edge, with the broker's receive time. */
export type BusHeartbeat = {
  readonly deviceId: string;
  readonly seq: bigint;
  /** The complete signed payload, byte for byte as the device sent it. */
  readonly raw: Uint8Array;
  /** Broker receive time, unix ms. */
  readonly receivedAt: number;
};

export interface BusPublisher {
  /** Resolves when the bus durably holds the message; rejects (typed) when it cannot. */
  publish(message: BusHeartbeat): Promise<void>;
  close(): Promise<void>;
}

export interface BusDelivery<M = BusHeartbeat> {
  readonly message: M;
  /** How many times this message has been delivered (1 on first delivery). */
  readonly deliveryCount: number;
  /** Confirm processing (after the storage transaction commits). */
  ack(): Promise<void>;
  /** Ask for redelivery later. */
  nak(delayMs?: number): void;
  /** Never redeliver (a poison message, already recorded as rejected). */
  term(): void;
}

export interface BusConsumer<M = BusHeartbeat> {
  /** Up to `max` deliveries, waiting at most `waitMs` for the first. */
  fetch(max: number, waitMs: number): Promise<BusDelivery<M>[]>;
  close(): Promise<void>;
}

/** One device's connected time in a session report: [from, to) in unix ms, broker clock. */
export type SessionInterval = {
  /** The registered device id (not the key id: it survives key rotation). */
  readonly deviceId: string;
  readonly from: number;
  readonly to: number;
};

/**
 * One broker session report, or one part of it (docs/broker.md §Session reports). A broker process
 * cuts its sessions every report interval into the window [from, to) and publishes the connected
 * intervals of every device that was connected during it, clipped to the window. A report too large
 * for one bus message is sent in `parts` parts of the same window (bus/session-report.ts).
 */
export type SessionReport = {
  /** The broker process (a fresh id per process start, so report seqs never repeat). */
  readonly brokerId: string;
  /** Report sequence within the broker process, from 1. */
  readonly seq: number;
  /** 0-based part index, below `parts`. */
  readonly part: number;
  readonly parts: number;
  /** The report window, unix ms, [from, to). */
  readonly from: number;
  readonly to: number;
  /** Per device, disjoint and sorted; every interval inside the window. */
  readonly intervals: readonly SessionInterval[];
};

/** A session report as a consumer sees it: decoded, or why the bytes on the bus are not a report. */
export type BusSessionReport = Result<SessionReport, 'SESSION_BAD_REPORT'>;

export interface SessionReportPublisher {
  /** Resolves when the bus durably holds the report; rejects (typed) when it cannot. */
  publish(report: SessionReport): Promise<void>;
  close(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'jetstream';
  publisher(): BusPublisher;
  /** A durable heartbeat consumer; several consumers with the same name share the work. */
  consumer(durableName: string): BusConsumer;
  sessionPublisher(): SessionReportPublisher;
  /** A durable session-report consumer; the durable name must differ from any heartbeat durable. */
  sessionConsumer(durableName: string): BusConsumer<BusSessionReport>;
  close(): Promise<void>;
}
