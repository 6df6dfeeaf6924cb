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

    it('forgets the ids of reports that ended before the first open epoch; one redelivered later adds nothing', async () => {
      await setCursor(0, LAYOUT);
      const bus = new MemoryBus({ dedupWindowMs: 0 });
      const logs: Record<string, unknown>[] = [];
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), log: (e) => logs.push(e) });
      const d = newDevice();
      await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [d]);
      const old = report([{ deviceId: d.deviceId, from: epochStart(1), to: epochStart(2) }]); // ends exactly where epoch 2 starts
      const edge = report([{ deviceId: d.deviceId, from: epochStart(2), to: epochStart(2) + 1 }]); // ends inside epoch 2
      await bus.sessionPublisher().publish(old);
      await bus.sessionPublisher().publish(edge);
      await drain(bus, worker);
      const ids = async () => (await store.query<{ broker_id: string }>('SELECT broker_id FROM session_reports WHERE broker_id = ANY($1::text[]) ORDER BY broker_id', [[old.brokerId, edge.brokerId]])).map((r) => r.broker_id);
      expect(await ids()).toEqual([old.brokerId, edge.brokerId].sort());

      // Epochs 0 and 1 close; the next batch the worker writes prunes what can add nothing any more.
      await setCursor(2, LAYOUT);
      await bus.sessionPublisher().publish(report([{ deviceId: d.deviceId, from: epochStart(2) + 5, to: epochStart(2) + 6 }]));
      await drain(bus, worker);
      expect(await ids()).toEqual([edge.brokerId]);
      expect(logs.some((l) => l['msg'] === 'session report ids of closed epochs pruned' && Number(l['pruned']) >= 1)).toBe(true);

      // The pruned report arrives again: recorded anew, its time is in a closed epoch and adds 0.
      const before = await connected(d.deviceId);
      await bus.sessionPublisher().publish(old);
      const [s] = await drain(bus, worker);
      expect(s).toMatchObject({ counted: 1, addedMs: 0, ignoredMs: { epochClosed: 10_000 } });
      expect(await connected(d.deviceId)).toEqual(before);
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

    // Review: the added time was new − old with `old` read from the statement's snapshot; when a second
    // worker committed to the same row while this upsert waited for its lock, the upsert built on the
    // newer value and the difference counted the other worker's time too (and capped went negative).
    it.skipIf(backend.name !== 'postgres')('counts only what its own upsert added when another worker adds to the same rows while it waits for their locks', async () => {
      await setCursor(0, LAYOUT);
      const d = newDevice();
      await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [d]);
      await store.query('INSERT INTO epoch_device_stats (epoch, device_id, connected_ms) VALUES (20, $1, 1000), (21, $1, 1000)', [d.deviceId]);
      const bus = new MemoryBus();
      const metrics = createSessionIngestMetrics(new PromRegistry());
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), metrics, log: () => undefined });
      await bus.sessionPublisher().publish(
        report([
          { deviceId: d.deviceId, from: epochStart(20) + 1_000, to: epochStart(20) + 5_000 }, // +4 s
          { deviceId: d.deviceId, from: epochStart(21), to: epochStart(21) + 6_000 }, // +6 s, of which 2 s over the 10 s epoch
        ]),
      );
      // Another session worker's upsert to the same rows, holding their locks until released.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const holding = new Promise<void>((r) => (locked = r));
      const other = store.transaction(async (tx) => {
        await tx.query('UPDATE epoch_device_stats SET connected_ms = connected_ms + CASE epoch WHEN 20 THEN 2000 ELSE 5000 END WHERE device_id = $1 AND epoch IN (20, 21)', [d.deviceId]);
        locked();
        await gate;
      });
      await holding;
      const batch = await bus.sessionConsumer('sessions').fetch(10, 5);
      const ours = worker.processBatch(batch);
      // Our statement has taken its snapshot and waits for the row locks; then the other commits.
      for (let i = 0; i < 500; i++) {
        const waiting = await store.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'");
        if (waiting.length > 0) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      release();
      await other;
      const s = await ours;
      // 20: 1 + 2 (other) + 4 (ours) = 7 s. 21: 1 + 5 (other) + 6 (ours) capped at the 10 s epoch: ours added 4 s.
      expect(await connected(d.deviceId)).toEqual({ '20': 7_000, '21': 10_000 });
      expect(s).toMatchObject({ counted: 1, addedMs: 8_000, ignoredMs: { capped: 2_000, unknownDevice: 0 } });
      expect(await counter(metrics, 'connectedMs', 'counted')).toBe(8_000);
      expect(await counter(metrics, 'connectedMs', 'capped')).toBe(2_000);
    });

    // Heartbeat ingest locks epoch_device_stats rows in (device_id, epoch) order (write-batch.ts), and
    // so must this upsert, or the two can deadlock. Observed directly: with the third row in that order
    // held by another transaction, the upsert holds exactly the rows before it and none after it.
    it.skipIf(backend.name !== 'postgres')('locks epoch_device_stats rows in (device_id, epoch) order, the order heartbeat ingest uses', async () => {
      await setCursor(0, LAYOUT);
      const [lo, hi] = [newDevice(), newDevice()].sort((x, y) => (x.deviceId < y.deviceId ? -1 : 1)) as [ReturnType<typeof newDevice>, ReturnType<typeof newDevice>];
      await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [lo, hi]);
      const rows: [number, string][] = [[30, lo.deviceId], [31, lo.deviceId], [30, hi.deviceId], [31, hi.deviceId]];
      for (const [e, d] of rows) await store.query('INSERT INTO epoch_device_stats (epoch, device_id) VALUES ($1, $2)', [e, d]);
      /** Whether another transaction holds the row's lock (probed with NOWAIT, then rolled back). */
      const locked = async (epoch: number, deviceId: string): Promise<boolean> => {
        try {
          await store.transaction(async (tx) => {
            await tx.query('SELECT 1 FROM epoch_device_stats WHERE epoch = $1 AND device_id = $2 FOR UPDATE NOWAIT', [epoch, deviceId]);
            throw new Error('free');
          });
        } catch (e) {
          if ((e as { code?: string }).code === '55P03') return true;
          if ((e as Error).message === 'free') return false;
          throw e;
        }
        return false;
      };
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let holding!: () => void;
      const held = new Promise<void>((r) => (holding = r));
      const blocker = store.transaction(async (tx) => {
        await tx.query('SELECT 1 FROM epoch_device_stats WHERE epoch = 30 AND device_id = $1 FOR UPDATE', [hi.deviceId]);
        holding();
        await gate;
      });
      await held;
      const bus = new MemoryBus();
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('sessions'), log: () => undefined });
      await bus.sessionPublisher().publish(report(rows.map(([e, d]) => ({ deviceId: d, from: epochStart(e), to: epochStart(e) + 1_000 }))));
      // Both epochs of a device in one interval each, so the report is valid (sorted, disjoint).
      const ours = worker.processBatch(await bus.sessionConsumer('sessions').fetch(10, 5));
      try {
        let waiting = false;
        for (let i = 0; i < 500 && !waiting; i++) {
          waiting = (await store.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")).length > 0;
          if (!waiting) await new Promise((r) => setTimeout(r, 10));
        }
        expect(waiting).toBe(true);
        expect(await locked(30, lo.deviceId)).toBe(true);
        expect(await locked(31, lo.deviceId)).toBe(true);
        expect(await locked(31, hi.deviceId)).toBe(false);
      } finally {
        release();
        await blocker;
      }
      expect(await ours).toMatchObject({ counted: 1, addedMs: 4_000 });
      expect(await connected(hi.deviceId)).toEqual({ '30': 1_000, '31': 1_000 });
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
