// Connected time end to end on the real services (docs/storage.md §Session reports): a device connects
// over MQTT to a real broker on NATS JetStream, the broker's session reports reach the oracle's session
// worker, and PostgreSQL's epoch_device_stats.connected_ms holds the time the test saw the device
// connected, and nothing for a registered device that never connected. A report redelivered after
// its commit is counted once; a malformed message on the sessions subject is counted and terminated.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry as PromRegistry } from 'prom-client';
import { NATS_URL, freshDatabase, needs, uniqueName } from './support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { migrate } from '../oracle/store/migrate.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { TEST_NETWORK, newDevice, registerDevices } from '../oracle/ingest/testing.ts';
import { SessionIngestWorker, writeSessionReports } from '../oracle/ingest/session-ingest.ts';
import { createSessionIngestMetrics } from '../oracle/ingest/session-metrics.ts';
import { epochOfTime } from '../oracle/ingest/session-epochs.ts';
import { JetStreamBus } from '../bus/jetstream.ts';
import { startBroker } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryDirectory } from '../broker/memory-directory.ts';
import { TestDevice, connectDevice } from '../broker/test-kit.ts';

const ok = await needs('postgres', 'nats');
const LAYOUT = { genesisSlot: 0, epochSlots: 3_600, slotMs: 1_000 }; // hour-long epochs since 1970

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!ok)('connected time from broker sessions to PostgreSQL over JetStream', () => {
  let db: { url: string; drop: () => Promise<void> };
  let store: PgStore;
  let brokerBus: JetStreamBus;
  let oracleBus: JetStreamBus;
  const stream = uniqueName('PULSE_SESS');
  const prefix = uniqueName('psess');

  beforeAll(async () => {
    db = await freshDatabase();
    store = new PgStore({ url: db.url });
    await migrate(store);
    const open = epochOfTime(Date.now(), LAYOUT) - 1; // the previous hour is open too, in case the test straddles an hour
    await store.query('INSERT INTO epoch_cursor (id, next_epoch, next_first_slot, genesis_slot, epoch_slots, slot_ms) VALUES (true, $1, $2, 0, 3600, 1000)', [String(open), String(open * 3_600)]);
    brokerBus = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: prefix, name: 'sessions-broker' });
    oracleBus = await JetStreamBus.connect({ servers: NATS_URL, stream, subjectPrefix: prefix, ackWaitMs: 1_000, name: 'sessions-oracle' });
  });
  afterAll(async () => {
    await oracleBus?.jsm.streams.delete(stream).catch(() => undefined);
    await brokerBus?.close();
    await oracleBus?.close();
    await store?.close();
    await db?.drop();
  });

  async function connectedMs(deviceId: string): Promise<number> {
    const [r] = await store.query<{ ms: string }>('SELECT coalesce(sum(connected_ms), 0)::text AS ms FROM epoch_device_stats WHERE device_id = $1', [deviceId]);
    return Number(r!.ms);
  }

  it('counts a report redelivered after its commit once, and terminates a malformed one', async () => {
    const d = newDevice();
    await registerDevices(new Registry({ store, networkId: TEST_NETWORK }), [d]);
    const t = Date.now() - 60_000;
    await oracleBus.nc.jetstream().publish(`${prefix}.sessions.junk`, new TextEncoder().encode('{"v":1,"broker":"junk"'));
    await brokerBus.sessionPublisher().publish({ brokerId: 'b-redeliver', seq: 1, part: 0, parts: 1, from: t, to: t + 5_000, intervals: [{ deviceId: d.deviceId, from: t, to: t + 5_000 }] });
    const consumer = oracleBus.sessionConsumer('redeliver');
    const first = await consumer.fetch(10, 2_000);
    expect(first.map((x) => x.message.ok)).toEqual([false, true]);
    // Committed, then the worker "dies" before acking: JetStream redelivers after the ack wait.
    const good = first[1]!.message;
    if (!good.ok) throw new Error('expected a valid report');
    await writeSessionReports(store, [good.value]);
    expect(await connectedMs(d.deviceId)).toBe(5_000);
    const metrics = createSessionIngestMetrics(new PromRegistry());
    const worker = new SessionIngestWorker({ store, consumer, metrics, fetchWaitMs: 100, log: () => undefined });
    worker.start();
    try {
      const until = Date.now() + 15_000;
      const seen = async (o: string) => (await metrics.reports.get()).values.find((v) => v.labels['outcome'] === o)?.value ?? 0;
      while ((await seen('duplicate')) + (await seen('malformed')) < 2 && Date.now() < until) await sleep(50);
      expect(await seen('duplicate')).toBe(1);
      expect(await seen('malformed')).toBe(1);
      expect(await seen('counted')).toBe(0);
    } finally {
      await worker.stop();
    }
    expect(await connectedMs(d.deviceId)).toBe(5_000);
    await sleep(1_200); // past the ack wait: nothing comes back
    const info = await oracleBus.jsm.consumers.info(stream, 'redeliver');
    expect(info.num_pending + info.num_ack_pending).toBe(0);
  });

  it('puts the time a device was connected into epoch_device_stats, and nothing for one that was not', async () => {
    const connected = new TestDevice(TEST_NETWORK);
    const idle = new TestDevice(TEST_NETWORK);
    const registry = new Registry({ store, networkId: TEST_NETWORK });
    for (const d of [connected, idle]) expect((await registry.addDevice({ id: d.id, owner: `0x${'22'.repeat(20)}` })).ok).toBe(true);
    const directory = new MemoryDirectory();
    directory.set(connected.id);
    directory.set(idle.id);
    const broker = await startBroker(
      brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: TEST_NETWORK, sessionReportMs: 250 }),
      { bus: brokerBus, directory },
    );
    const metrics = createSessionIngestMetrics(new PromRegistry());
    const worker = new SessionIngestWorker({ store, consumer: oracleBus.sessionConsumer('pulse-ingest-sessions'), metrics, fetchWaitMs: 100, log: () => undefined });
    worker.start();
    try {
      const before = Date.now();
      const c = await connectDevice(`mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`, connected);
      const after = Date.now();
      await sleep(1_000); // a few report windows
      const endBefore = Date.now();
      await c.endAsync();
      while (broker.health().sessions > 0) await sleep(10);
      const endAfter = Date.now();
      await broker.close();
      const text = await broker.metrics.registry.getSingleMetricAsString('pulse_broker_session_reports_total');
      const published = Number(/outcome="published"\} (\d+)/.exec(text)?.[1] ?? 0);
      expect(published).toBeGreaterThanOrEqual(2);
      const until = Date.now() + 15_000;
      const counted = async () => (await metrics.reports.get()).values.find((v) => v.labels['outcome'] === 'counted')?.value ?? 0;
      while ((await counted()) < published && Date.now() < until) await sleep(50);
      expect(await counted()).toBe(published);
      const ms = await connectedMs(connected.id);
      expect(ms).toBeGreaterThanOrEqual(endBefore - after);
      expect(ms).toBeLessThanOrEqual(endAfter - before);
      expect(await connectedMs(idle.id)).toBe(0);
      const rows = await store.query<{ n: string }>('SELECT count(*)::text AS n FROM session_reports WHERE broker_id = $1', [broker.id]);
      expect(Number(rows[0]!.n)).toBe(published);
    } finally {
      await worker.stop();
    }
  });
});
