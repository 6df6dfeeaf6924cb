// Connected time from a real broker session to a closed epoch's scores (issue 5 §Scores: connected
// time is reported beside credited uptime and never paid), on PostgreSQL and PGlite: a device holds an
// MQTT session with a real broker, the broker's session reports go through the in-memory bus to the
// oracle's session worker, and the closed epoch's epoch_device_scores.connected_ms is the time the
// test saw the device connected, 0 for a registered device that never connected, and neither earns
// anything for it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry as PromRegistry } from 'prom-client';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { MemoryBus } from '../bus/memory.ts';
import { SessionIngestWorker } from '../oracle/ingest/session-ingest.ts';
import { createSessionIngestMetrics } from '../oracle/ingest/session-metrics.ts';
import { ensureCursor } from '../oracle/epochs/epoch-stats.ts';
import { closeNextEpoch } from '../oracle/epochs/close-epoch.ts';
import { epochEndMs, type EpochTiming } from '../shared/epoch-timing.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';
import { startBroker } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, connectDevice } from '../broker/test-kit.ts';

const pgOk = await needs('postgres');
const NETWORK = 7;
const params: RewardParams = { version: 1, emissionPerEpoch: 1_000_000n, availabilityBps: 6000, minUptimeBps: 5000, metrics: [{ metricId: 1, weight: 1n, capPerSlot: 100n, capPerEpoch: 1000n }] };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const backend of backends(pgOk)) {
  describe(`connected time in closed epochs on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
    });
    afterAll(async () => cleanup());

    it('closes an epoch with connected_ms > 0 for the connected device and 0 for the idle one, paying neither', async () => {
      // Epoch 0 began a few seconds ago and lasts an hour: the whole session lies inside it.
      const timing: EpochTiming = { genesisMs: (Math.floor(Date.now() / 1000) - 5) * 1000, slotMs: 1000, epochSlots: 3600, graceMs: 1000 };
      await ensureCursor(store, timing, params); // records the epoch layout session ingest needs
      const connected = new TestDevice(NETWORK);
      const idle = new TestDevice(NETWORK);
      const registry = new Registry({ store, networkId: NETWORK });
      for (const d of [connected, idle]) expect((await registry.addDevice({ id: d.id, owner: `0x${'33'.repeat(20)}` })).ok).toBe(true);
      const directory = new MemoryDirectory();
      directory.set(connected.id);
      directory.set(idle.id);

      const bus = new MemoryBus();
      const metrics = createSessionIngestMetrics(new PromRegistry());
      const worker = new SessionIngestWorker({ store, consumer: bus.sessionConsumer('pulse-ingest-sessions'), metrics, fetchWaitMs: 50, log: () => undefined });
      worker.start();
      const broker = await startBroker(brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, sessionReportMs: 200 }), { bus, directory });
      let before = 0, after = 0, endBefore = 0, endAfter = 0;
      try {
        before = Date.now();
        const c = await connectDevice(`mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, connected);
        after = Date.now();
        await sleep(700);
        endBefore = Date.now();
        await c.endAsync();
        while (broker.health().sessions > 0) await sleep(10);
        endAfter = Date.now();
        await broker.close();
        const counted = async () => (await metrics.reports.get()).values.find((v) => v.labels['outcome'] === 'counted')?.value ?? 0;
        for (let i = 0; i < 300 && (bus.sessionReportsHeld > 0 || (await counted()) === 0); i++) await sleep(20);
        expect(bus.sessionReportsHeld).toBe(0);
      } finally {
        await worker.stop();
      }

      const closed = await closeNextEpoch(store, timing, params, epochEndMs(timing, 0) + timing.graceMs);
      expect(closed).toMatchObject({ kind: 'closed', epoch: 0 });
      const scores = await store.query<{ device_id: string; connected_ms: string; credited_slots: number; eligible: boolean; reasons: string[]; availability_reward: string }>(
        'SELECT device_id, connected_ms::text, credited_slots, eligible, reasons, availability_reward::text FROM epoch_device_scores WHERE epoch = 0',
      );
      const byId = new Map(scores.map((s) => [s.device_id, s]));
      const ms = Number(byId.get(connected.id)!.connected_ms);
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeGreaterThanOrEqual(endBefore - after);
      expect(ms).toBeLessThanOrEqual(endAfter - before);
      expect(byId.get(idle.id)!.connected_ms).toBe('0');
      // Never paid: without heartbeats the connected device has no credited slot and earns nothing.
      expect(byId.get(connected.id)).toMatchObject({ credited_slots: 0, eligible: false, availability_reward: '0' });
      expect(byId.get(connected.id)!.reasons).toContain('LOW_UPTIME');
    });
  });
}
