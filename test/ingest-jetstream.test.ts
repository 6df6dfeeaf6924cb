// Ingest from the real NATS JetStream bus in-process: malformed, oversized and forged payloads are
// recorded with their codes and terminated (nothing left pending on the durable), valid ones stored,
// and the worker keeps consuming.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATS_URL, freshDatabase, needs, uniqueName } from './support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { IngestWorker } from '../oracle/ingest/ingest-worker.ts';
import { TEST_NETWORK, heartbeatMessage, newDevice, registerDevices } from '../oracle/ingest/testing.ts';
import { JetStreamBus } from '../bus/jetstream.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';

const ok = await needs('postgres', 'nats');

describe.skipIf(!ok)('ingest on JetStream with hostile payloads', () => {
  let db: { url: string; drop: () => Promise<void> };
  let store: PgStore;
  let bus: JetStreamBus;
  const stream = uniqueName('PULSE_HOSTILE');
  beforeAll(async () => {
    db = await freshDatabase();
    store = new PgStore({ url: db.url });
    await migrate(store);
    bus = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: uniqueName('phostile'), ackWaitMs: 1000, name: 'hostile-test' });
  });
  afterAll(async () => {
    await bus?.jsm.streams.delete(stream).catch(() => undefined);
    await bus?.close();
    await store?.close();
    await db?.drop();
  });

  it('records and terminates poison, stores the valid heartbeats around it', async () => {
    const d = newDevice();
    await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [d]);
    const now = Date.now();
    const forged = heartbeatMessage(d, 3, { receivedAt: now });
    const forgedRaw = Uint8Array.from(forged.raw);
    forgedRaw[forgedRaw.length - 28] = forgedRaw[forgedRaw.length - 28]! ^ 0x55; // a low byte of S: still < L, wrong signature
    const pub = bus.publisher();
    await pub.publish(heartbeatMessage(d, 1, { receivedAt: now }));
    await pub.publish({ deviceId: d.deviceId, seq: 2n, raw: new TextEncoder().encode("'; DROP TABLE heartbeats; --\u0000"), receivedAt: now });
    await pub.publish({ ...forged, raw: forgedRaw });
    await pub.publish({ deviceId: d.deviceId, seq: 4n, raw: new Uint8Array(4000).fill(0), receivedAt: now });
    await pub.publish(heartbeatMessage(d, 5, { receivedAt: now }));

    const worker = new IngestWorker({ store, consumer: bus.consumer('ingest'), rules: { networkId: TEST_NETWORK, skewMs: 30_000, slotIntervalMs: 60_000, maxPayloadBytes: 1024, verifier: nativeVerifier }, batchSize: 2, fetchWaitMs: 50, log: () => undefined });
    worker.start();
    const deadline = Date.now() + 30_000;
    const count = async () => (await store.query<{ n: number }>('SELECT (SELECT count(*) FROM heartbeats) + (SELECT count(*) FROM rejections) AS n'))[0]!.n;
    while (Number(await count()) < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    // Past the ack wait: nothing comes back, nothing is recorded twice.
    await new Promise((r) => setTimeout(r, 1500));
    await worker.stop();

    const hb = await store.query<{ seq: string }>('SELECT seq::text AS seq FROM heartbeats ORDER BY seq');
    expect(hb.map((r) => r.seq)).toEqual(['1', '5']);
    const rej = await store.query<{ seq: string; reason: string }>('SELECT seq::text AS seq, reason FROM rejections ORDER BY seq');
    expect(rej).toEqual([
      { seq: '2', reason: 'HB_BAD_VERSION' },
      { seq: '3', reason: 'HB_BAD_SIGNATURE' },
      { seq: '4', reason: 'HB_OVERSIZED' },
    ]);
    const info = await bus.jsm.consumers.info(stream, 'ingest');
    expect(info.num_pending + info.num_ack_pending).toBe(0);
  }, 60_000);
});
