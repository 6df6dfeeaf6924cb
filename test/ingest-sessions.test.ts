// Session-report ingest (docs/storage.md §Session reports) on PostgreSQL and PGlite, through the real
// in-memory bus: reports are split at epoch boundaries into epoch_device_stats.connected_ms and no
// other column; a redelivered or resent report is counted once; a report that arrives before the
// epoch layout is recorded is nak'ed and counted later; closed epochs and unknown devices are left
// out and counted; one device's time in an epoch never exceeds the epoch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry as PromRegistry } from 'prom-client';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { MemoryBus } from '../bus/memory.ts';
import type { SessionInterval, SessionReport } from '../bus/bus.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { TEST_NETWORK, newDevice, registerDevices } from '../oracle/ingest/testing.ts';
import { SessionIngestWorker, writeSessionReports } from '../oracle/ingest/session-ingest.ts';
import { createSessionIngestMetrics, type SessionIngestMetrics } from '../oracle/ingest/session-metrics.ts';

const pgOk = await needs('postgres');

// 10-second epochs of 1-second slots; genesis at slot G.
const G = 1_800_000_000;
const LAYOUT = { genesisSlot: G, epochSlots: 10, slotMs: 1_000 };
const epochStart = (e: number) => (G + e * 10) * 1_000;

let brokerSeq = 0;
function report(intervals: SessionInterval[], over: Partial<SessionReport> = {}): SessionReport {
  const from = Math.min(...intervals.map((i) => i.from));
  const to = Math.max(...intervals.map((i) => i.to));
  // A report lists intervals sorted by device (bus/session-report.ts).
  const sorted = [...intervals].sort((x, y) => (x.deviceId < y.deviceId ? -1 : x.deviceId > y.deviceId ? 1 : x.from - y.from));
  return { brokerId: `broker-${++brokerSeq}`, seq: 1, part: 0, parts: 1, from, to, intervals: sorted, ...over };
}

async function counter(m: SessionIngestMetrics, which: 'reports' | 'connectedMs', outcome: string): Promise<number> {
  const v = (await m[which].get()).values.find((x) => x.labels['outcome'] === outcome);
  return v?.value ?? 0;
}

for (const backend of backends(pgOk)) {
  describe(`session ingest on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    const a = newDevice();
    const b = newDevice();
    const unknown = newDevice();

    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
      await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [a, b]);
    });
    afterAll(async () => cleanup());

    async function setCursor(nextEpoch: number, layout: typeof LAYOUT | null): Promise<void> {
      await store.query(
        `INSERT INTO epoch_cursor (id, next_epoch, next_first_slot, genesis_slot, epoch_slots, slot_ms) VALUES (true, $1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET next_epoch = excluded.next_epoch, next_first_slot = excluded.next_first_slot,
           genesis_slot = excluded.genesis_slot, epoch_slots = excluded.epoch_slots, slot_ms = excluded.slot_ms`,
        [String(nextEpoch), String(G + nextEpoch * 10), layout && String(layout.genesisSlot), layout?.epochSlots ?? null, layout && String(layout.slotMs)],
      );
    }

    async function connected(deviceId: string): Promise<Record<string, number>> {
      const rows = await store.query<{ epoch: string; connected_ms: string }>('SELECT epoch::text, connected_ms::text FROM epoch_device_stats WHERE device_id = $1 ORDER BY epoch', [deviceId]);
      return Object.fromEntries(rows.map((r) => [r.epoch, Number(r.connected_ms)]));
    }

    /** Drain the bus through the worker's batch step; returns the batch stats. */
    async function drain(bus: MemoryBus, worker: SessionIngestWorker, durable = 'sessions') {
      const consumer = bus.sessionConsumer(durable);
      const out = [];
      for (;;) {
        const batch = await consumer.fetch(100, 5);
        if (batch.length === 0) return out;
        out.push(await worker.processBatch(batch));
      }
    }

    it('naks reports that arrive before the epoch layout is recorded, and counts them once it is', async () => {
      await setCursor(0, null);
      const bus = new MemoryBus();
      const metrics = createSessionIngestMetrics(new PromRegistry());
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), metrics, layoutRetryMs: 100, log: () => undefined });
      const r = report([{ deviceId: a.deviceId, from: epochStart(0) + 2_000, to: epochStart(0) + 7_000 }]);
      await bus.sessionPublisher().publish(r);
      const consumer = bus.sessionConsumer('sessions');
      const first = await worker.processBatch(await consumer.fetch(10, 5));
      expect(first).toMatchObject({ delivered: 1, deferred: 1, counted: 0 });
      expect(await connected(a.deviceId)).toEqual({});
      expect((await store.query('SELECT 1 FROM session_reports')).length).toBe(0); // rolled back with the rest
      expect(bus.sessionReportsHeld).toBe(1); // not dropped
      expect(await consumer.fetch(10, 0)).toEqual([]); // nak'ed with a delay: not yet
      await setCursor(0, LAYOUT);
      const later = await worker.processBatch(await consumer.fetch(10, 2_000));
      expect(later).toMatchObject({ delivered: 1, counted: 1, addedMs: 5_000 });
      expect(await connected(a.deviceId)).toEqual({ '0': 5_000 });
      expect(await counter(metrics, 'reports', 'deferred')).toBe(1);
      expect(await counter(metrics, 'reports', 'counted')).toBe(1);
      expect(bus.sessionReportsHeld).toBe(0);
    });

    it('splits intervals at epoch boundaries and adds only connected_ms, leaving the other counters alone', async () => {
      await setCursor(0, LAYOUT);
      await store.query('INSERT INTO epoch_device_stats (epoch, device_id, credited_slots, heartbeats) VALUES (2, $1, 5, 7)', [b.deviceId]);
      const bus = new MemoryBus();
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), log: () => undefined });
      await bus.sessionPublisher().publish(report([{ deviceId: b.deviceId, from: epochStart(1) + 2_500, to: epochStart(3) + 1_250 }]));
      await drain(bus, worker);
      expect(await connected(b.deviceId)).toEqual({ '1': 7_500, '2': 10_000, '3': 1_250 });
      const [row] = await store.query<{ credited_slots: number; heartbeats: string }>('SELECT credited_slots, heartbeats::text FROM epoch_device_stats WHERE epoch = 2 AND device_id = $1', [b.deviceId]);
      expect(row).toEqual({ credited_slots: 5, heartbeats: '7' });
    });

    it('counts a redelivered report once (committed, ack lost) and a resent one once (same id)', async () => {
      await setCursor(0, LAYOUT);
      const before = (await connected(a.deviceId))['4'] ?? 0;
      const bus = new MemoryBus({ ackWaitMs: 60, dedupWindowMs: 0 }); // no bus dedup: the resend reaches ingest
      const metrics = createSessionIngestMetrics(new PromRegistry());
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), metrics, log: () => undefined });
      const r = report([{ deviceId: a.deviceId, from: epochStart(4), to: epochStart(4) + 3_000 }]);
      await bus.sessionPublisher().publish(r);
      const consumer = bus.sessionConsumer('sessions');
      // A worker commits the report and dies before acking it: the bus redelivers after the ack wait.
      const [d] = await consumer.fetch(10, 5);
      expect((await writeSessionReports(store, [d!.message.ok ? d!.message.value : r])).kind).toBe('written');
      const again = await consumer.fetch(10, 1_000);
      expect(again[0]!.deliveryCount).toBe(2);
      expect(await worker.processBatch(again)).toMatchObject({ counted: 0, duplicates: 1 });
      // The broker resends the same report (its PubAck was lost), twice in one batch even.
      await bus.sessionPublisher().publish(r);
      await bus.sessionPublisher().publish(r);
      const stats = await drain(bus, worker);
      expect(stats.reduce((x, s) => x + s.duplicates, 0)).toBe(2);
      expect((await connected(a.deviceId))['4']).toBe(before + 3_000);
      expect(await counter(metrics, 'reports', 'duplicate')).toBe(3);
      expect(bus.sessionReportsHeld).toBe(0);
    });

    it('leaves out and counts time in closed epochs, before genesis and of unknown devices', async () => {
      await setCursor(6, LAYOUT);
      const bus = new MemoryBus();
      const metrics = createSessionIngestMetrics(new PromRegistry());
      const logs: Record<string, unknown>[] = [];
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), metrics, log: (e) => logs.push(e) });
      const c = newDevice();
      await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [c]);
      await bus.sessionPublisher().publish(
        report([
          { deviceId: c.deviceId, from: epochStart(-1) + 8_000, to: epochStart(7) }, // 2 s before genesis, epochs 0–5 closed, 6 open
          { deviceId: unknown.deviceId, from: epochStart(6), to: epochStart(6) + 4_000 },
        ]),
      );
      const [s] = await drain(bus, worker);
      expect(s).toMatchObject({ counted: 1, addedMs: 10_000, ignoredMs: { epochClosed: 60_000, beforeGenesis: 2_000, unknownDevice: 4_000, capped: 0 } });
      expect(await connected(c.deviceId)).toEqual({ '6': 10_000 });
      expect(await connected(unknown.deviceId)).toEqual({});
      expect(await counter(metrics, 'connectedMs', 'counted')).toBe(10_000);
      expect(await counter(metrics, 'connectedMs', 'epoch_closed')).toBe(60_000);
      expect(await counter(metrics, 'connectedMs', 'unknown_device')).toBe(4_000);
      expect(await counter(metrics, 'connectedMs', 'before_genesis')).toBe(2_000);
      expect(logs.some((l) => l['msg'] === 'connected time in closed epochs ignored' && l['ms'] === 60_000)).toBe(true);
    });

    it('never lets one device exceed the epoch length, even when two brokers report the same moment', async () => {
      await setCursor(0, LAYOUT);
      const d = newDevice();
      await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [d]);
      const bus = new MemoryBus();
      const metrics = createSessionIngestMetrics(new PromRegistry());
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), metrics, log: () => undefined });
      const whole = { deviceId: d.deviceId, from: epochStart(8), to: epochStart(9) };
      await bus.sessionPublisher().publish(report([whole])); // broker 1
      await drain(bus, worker);
      await bus.sessionPublisher().publish(report([{ ...whole, from: whole.from + 4_000 }])); // broker 2, a later batch
      await bus.sessionPublisher().publish(report([whole])); // broker 3, in one batch with broker 4
      await bus.sessionPublisher().publish(report([whole]));
      await drain(bus, worker);
      expect(await connected(d.deviceId)).toEqual({ '8': 10_000 });
      expect(await counter(metrics, 'connectedMs', 'capped')).toBe(26_000);
    });

    it('runs as a worker loop: publish, and the time shows up; stop is graceful', async () => {
      await setCursor(0, LAYOUT);
      const bus = new MemoryBus();
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('loop'), fetchWaitMs: 50, log: () => undefined });
      worker.start();
      try {
        await bus.sessionPublisher().publish(report([{ deviceId: b.deviceId, from: epochStart(12), to: epochStart(12) + 900 }]));
        for (let i = 0; i < 200 && (await connected(b.deviceId))['12'] === undefined; i++) await new Promise((r) => setTimeout(r, 20));
        expect((await connected(b.deviceId))['12']).toBe(900);
      } finally {
        await worker.stop();
      }
    });
  });
}
