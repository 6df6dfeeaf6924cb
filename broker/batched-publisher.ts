// Coalesces the broker's bus hand-offs of one event-loop turn into one burst (docs/broker.md
// §Performance). Heartbeats become ready one by one: each signature check completes in its own
// threadpool callback, and Node drains microtasks after every callback, so publishing straight from
// there hands nats.js one message per microtask checkpoint, and nats.js flushes its outbound buffer
// once per checkpoint: one socket write per heartbeat (18 % of the broker's CPU in a profile of the
// verified QoS 1 bench, the largest single entry). Queued here and published together from
// setImmediate (after the poll phase has run every callback that was ready), the PUBs of a whole turn
// leave in one write.
//
// Nothing about the bus contract changes: every message is still one publisher.publish() call, and
// its promise settles exactly when that call's does (JetStream PubAck or error), so the device's
// PUBACK still waits for the bus to hold the message durably.
import type { BusHeartbeat, BusPublisher } from '../bus/bus.ts';

type Pending = { readonly message: BusHeartbeat; readonly resolve: () => void; readonly reject: (e: unknown) => void };

export class BatchedPublisher implements BusPublisher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(private readonly inner: BusPublisher) {}

  /** Resolves when the inner publisher durably accepted the message; rejects with its error. */
  publish(message: BusHeartbeat): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ message, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** Messages waiting for the next flush. */
  get queued(): number {
    return this.queue.length;
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const p of batch) {
      let sent: Promise<void>;
      try {
        sent = this.inner.publish(p.message);
      } catch (e) {
        // A synchronous throw (a publisher that is not async all the way) fails this message only.
        p.reject(e);
        continue;
      }
      sent.then(p.resolve, p.reject);
    }
  };

  async close(): Promise<void> {
    if (this.queue.length > 0) this.flush();
    await this.inner.close();
  }
}
