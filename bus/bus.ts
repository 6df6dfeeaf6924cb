// The hand-off between broker and oracle ingest (../shared/DESIGN.md §Shape). Two implementations
// behind this one interface: NATS JetStream in production (bus/jetstream.ts) and an in-memory queue
// for the embedded default (bus/memory.ts).
//
// Guarantees every implementation gives:
// - publish() resolves only once the message is durably accepted (JetStream PubAck). The broker sends
//   the device's PUBACK after that, so an acknowledged heartbeat is never lost.
// - dedup by (deviceId, seq): a resend of the same heartbeat within the duplicate window is dropped.
// - at-least-once delivery to consumers: a delivery not acked within the ack wait is redelivered;
//   consumers are idempotent (unique (device id, seq) in storage).

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

export interface BusDelivery {
  readonly message: BusHeartbeat;
  /** How many times this message has been delivered (1 on first delivery). */
  readonly deliveryCount: number;
  /** Confirm processing (after the storage transaction commits). */
  ack(): Promise<void>;
  /** Ask for redelivery later. */
  nak(delayMs?: number): void;
  /** Never redeliver (a poison message, already recorded as rejected). */
  term(): void;
}

export interface BusConsumer {
  /** Up to `max` deliveries, waiting at most `waitMs` for the first. */
  fetch(max: number, waitMs: number): Promise<BusDelivery[]>;
  close(): Promise<void>;
}

export interface Bus {
  readonly kind: 'memory' | 'jetstream';
  publisher(): BusPublisher;
  /** A durable consumer; several consumers with the same name share the work. */
  consumer(durableName: string): BusConsumer;
  close(): Promise<void>;
}
