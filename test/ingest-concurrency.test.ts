// Several ingest workers on one durable consumer, with every heartbeat delivered twice (the bus's
// at-least-once worst case): each heartbeat is stored exactly once, rollups count each once, the
// second copies are recorded as HB_DUPLICATE, and out-of-order commits between workers never turn a
// heartbeat into a replay. Same suite on PostgreSQL and PGlite.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { MemoryBus } from '../bus/memory.ts';
import { IngestWorker } from '../oracle/ingest/ingest-worker.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { TEST_NETWORK, heartbeatMessage, newDevice, registerDevices } from '../oracle/ingest/testing.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import type { BusHeartbeat } from '../bus/bus.ts';
import { Registry as PromRegistry } from 'prom-client';
import { createIngestMetrics } from '../oracle/ingest/ingest-metrics.ts';
import { ensureCursor } from '../oracle/epochs/epoch-stats.ts';
import { DEFAULT_REWARD_PARAMS } from '../oracle/epochs/default-params.ts';
import { counterSnapshot, rebuildCounters } from './support/epoch-counters.ts';

const pgOk = await needs('postgres');
const rules = { networkId: TEST_NETWORK, skewMs: 30_000, slotIntervalMs: 60_000, maxPayloadBytes: 1024, verifier: nativeVerifier };

for (const backend of backends(pgOk)) {
  describe(`concurrent ingest workers on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
    });
    afterAll(async () => cleanup());

    it('three workers, every message twice: no duplicate, no loss, exact rollups', async () => {
      const devices = Array.from({ length: 8 }, () => newDevice());
      await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), devices);
      const perDevice = 60;
      const messages: BusHeartbeat[] = [];
      const base = Date.now();
      for (let s = 1; s <= perDevice; s++)
        for (const d of devices) messages.push(heartbeatMessage(d, s, { receivedAt: base + s, ts: base + s * 400 - 10_000, metrics: [{ id: 2, value: BigInt(s) }] }));
      // dedupWindowMs 0: the bus keeps both copies, as after a broker crash and resend.
      const bus = new MemoryBus({ dedupWindowMs: 0 });
      const pub = bus.publisher();
      for (const m of messages) await pub.publish(m);
      for (const m of [...messages].reverse()) await pub.publish(m);

      // One-minute epochs from an hour ago: the workers also keep the per-epoch counters, across
      // epoch boundaries, concurrently (oracle/epochs/epoch-stats.ts).
      const genesisMs = Math.floor((base - 3_600_000) / 60_000) * 60_000;
      await ensureCursor(store, { genesisMs, slotMs: 60_000, epochSlots: 1, graceMs: 0 }, { ...DEFAULT_REWARD_PARAMS, metrics: [{ metricId: 2, weight: 1n, capPerSlot: 100n, capPerEpoch: 10n ** 9n }] });

      const registry = new PromRegistry();
      const metrics = createIngestMetrics(registry);
      const workers = [0, 1, 2].map((i) => new IngestWorker({ store, consumer: bus.consumer('ingest'), rules, batchSize: 17 + i * 11, fetchWaitMs: 20, metrics, log: () => undefined }));
      workers.forEach((w) => w.start());
      const deadline = Date.now() + 60_000;
      while (bus.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      await Promise.all(workers.map((w) => w.stop()));
      expect(bus.size).toBe(0);

      const [hb] = await store.query<{ n: number; distinct_n: number }>(
        'SELECT count(*)::integer AS n, count(DISTINCT (device_id, seq))::integer AS distinct_n FROM heartbeats',
      );
      expect(hb).toEqual({ n: devices.length * perDevice, distinct_n: devices.length * perDevice });
      const rej = await store.query<{ reason: string; n: number }>('SELECT reason, count(*)::integer AS n FROM rejections GROUP BY reason');
      expect(rej).toEqual([{ reason: 'HB_DUPLICATE', n: devices.length * perDevice }]);
      const [roll] = await store.query<{ n: string }>('SELECT sum(heartbeats)::text AS n FROM slot_rollups');
      expect(roll!.n).toBe(String(devices.length * perDevice));
      const [sum] = await store.query<{ total: string }>('SELECT sum(total)::text AS total FROM slot_metric_sums WHERE metric_id = 2');
      expect(sum!.total).toBe(String(devices.length * ((perDevice * (perDevice + 1)) / 2)));
      const maxSeq = await store.query<{ max_seq: string }>('SELECT DISTINCT max_seq::text FROM devices');
      expect(maxSeq).toEqual([{ max_seq: String(perDevice) }]);
      const counters = await counterSnapshot(store);
      expect(counters.length).toBeGreaterThan(devices.length);
      await rebuildCounters(store);
      expect(await counterSnapshot(store)).toEqual(counters);
      const text = await registry.metrics();
      expect(text).toContain(`pulse_ingest_rows_total ${devices.length * perDevice}`);
      expect(text).toContain(`pulse_ingest_rejections_total{reason="HB_DUPLICATE"} ${devices.length * perDevice}`);
    }, 90_000);
  });
}
