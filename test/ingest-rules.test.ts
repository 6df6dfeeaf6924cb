// Ingest end to end on the in-memory bus, the same suite on PostgreSQL and PGlite: accepted rows
// carry the raw signed bytes, parsed fields and receive time; rollups are maintained in the same
// transaction; every rejection is recorded with its reason code; poison messages are terminated and
// the worker keeps running.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { MemoryBus } from '../bus/memory.ts';
import { IngestWorker } from '../oracle/ingest/ingest-worker.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { TEST_NETWORK, heartbeatMessage, newDevice, registerDevices } from '../oracle/ingest/testing.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import { signIdentity, KeyRotation } from '../shared/protocol/identity.ts';
import { toHex } from '../shared/hex.ts';
import type { IngestRules } from '../oracle/ingest/classify.ts';
import type { BusHeartbeat } from '../bus/bus.ts';

const pgOk = await needs('postgres');

const rules: IngestRules = { networkId: TEST_NETWORK, skewMs: 30_000, slotIntervalMs: 60_000, maxPayloadBytes: 1024, verifier: nativeVerifier };
const U64_MAX = (1n << 64n) - 1n;

for (const backend of backends(pgOk)) {
  describe(`ingest rules on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let registry: Registry;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
      registry = new Registry({ store, networkId: TEST_NETWORK });
    });
    afterAll(async () => cleanup());

    /** Publish, then run the worker's batch step until the bus is drained. */
    async function ingest(messages: BusHeartbeat[], bus = new MemoryBus()): Promise<MemoryBus> {
      const pub = bus.publisher();
      for (const m of messages) await pub.publish(m);
      const consumer = bus.consumer('ingest');
      const worker = new IngestWorker({ store, consumer, rules, log: () => undefined });
      for (;;) {
        const batch = await consumer.fetch(100, 5);
        if (batch.length === 0) break;
        await worker.processBatch(batch);
      }
      return bus;
    }

    async function reasons(deviceId: string): Promise<string[]> {
      const rows = await store.query<{ reason: string }>('SELECT reason FROM rejections WHERE device_id = $1 ORDER BY id', [deviceId]);
      return rows.map((r) => r.reason);
    }

    it('stores raw bytes, parsed fields, receive time, and maintains slot rollups with exact u64 sums', async () => {
      const d = newDevice();
      await registerDevices(registry, [d]);
      const t0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000); // slot boundary
      const msgs = [
        heartbeatMessage(d, 1, { ts: t0 + 1_000, receivedAt: t0 + 1_200, metrics: [{ id: 1, value: U64_MAX }, { id: 9, value: 5n }] }),
        heartbeatMessage(d, 2, { ts: t0 + 31_000, receivedAt: t0 + 31_050, metrics: [{ id: 1, value: U64_MAX }] }),
        heartbeatMessage(d, 3, { ts: t0 + 61_000, receivedAt: t0 + 61_000, metrics: [] }),
      ];
      await ingest(msgs);
      const rows = await store.query<{ seq: string; ts: string; slot: string; received_at: string; raw: Uint8Array; metrics: unknown; key_id: string }>(
        'SELECT seq::text, ts::text, slot::text, received_at::text, raw, metrics, key_id FROM heartbeats WHERE device_id = $1 ORDER BY seq',
        [d.deviceId],
      );
      expect(rows.map((r) => r.seq)).toEqual(['1', '2', '3']);
      expect(rows.map((r) => toHex(r.raw))).toEqual(msgs.map((m) => toHex(m.raw)));
      expect(rows[0]!.ts).toBe(String(t0 + 1_000));
      expect(rows[0]!.received_at).toBe(String(t0 + 1_200));
      expect(rows[0]!.key_id).toBe(d.deviceId);
      expect(rows.map((r) => r.slot)).toEqual([String(t0 / 60_000), String(t0 / 60_000), String(t0 / 60_000 + 1)]);
      const roll = await store.query<{ slot: string; heartbeats: number; first_seq: string; last_seq: string }>(
        'SELECT slot::text, heartbeats, first_seq::text, last_seq::text FROM slot_rollups WHERE device_id = $1 ORDER BY slot',
        [d.deviceId],
      );
      expect(roll).toEqual([
        { slot: String(t0 / 60_000), heartbeats: 2, first_seq: '1', last_seq: '2' },
        { slot: String(t0 / 60_000 + 1), heartbeats: 1, first_seq: '3', last_seq: '3' },
      ]);
      const sums = await store.query<{ metric_id: number; total: string }>(
        'SELECT metric_id, total::text FROM slot_metric_sums WHERE device_id = $1 AND slot = $2 ORDER BY metric_id',
        [d.deviceId, String(t0 / 60_000)],
      );
      expect(sums).toEqual([
        { metric_id: 1, total: (U64_MAX * 2n).toString() }, // exceeds BIGINT: NUMERIC keeps it exact
        { metric_id: 9, total: '5' },
      ]);
      expect(await reasons(d.deviceId)).toEqual([]);
    });

    it('records duplicate, equivocation, replay, skew, wrong network and bad signature; accepts late processing', async () => {
      const d = newDevice();
      await registerDevices(registry, [d]);
      const now = Date.now();
      const m5 = heartbeatMessage(d, 5, { receivedAt: now });
      await ingest([m5]);
      // A fresh bus (the old dedup window is gone): redelivery of the same bytes → duplicate.
      const equivocal = heartbeatMessage(d, 5, { receivedAt: now + 10, ts: now + 1 });
      const replay = heartbeatMessage(d, 3, { receivedAt: now + 20 });
      const late = heartbeatMessage(d, 4, { receivedAt: now - 5 }); // received before seq 5: not a replay
      const skewed = heartbeatMessage(d, 6, { receivedAt: now, ts: now + 31_000 });
      const foreign = heartbeatMessage(d, 7, { receivedAt: now, networkId: TEST_NETWORK + 1 });
      const forged = heartbeatMessage(d, 8, { receivedAt: now });
      const raw = Uint8Array.from(forged.raw);
      raw[60] = raw[60]! ^ 1; // flip a seq byte: the signature no longer matches
      await ingest([m5]);
      await ingest([equivocal, replay, late, skewed, foreign, { ...forged, raw }]);
      expect((await reasons(d.deviceId)).sort()).toEqual(['HB_BAD_SIGNATURE', 'HB_CLOCK_SKEW', 'HB_DUPLICATE', 'HB_EQUIVOCATION', 'HB_REPLAY', 'HB_WRONG_NETWORK']);
      const seqs = await store.query<{ seq: string }>('SELECT seq::text FROM heartbeats WHERE device_id = $1 ORDER BY seq', [d.deviceId]);
      expect(seqs.map((r) => r.seq)).toEqual(['4', '5']);
      const roll = await store.query<{ n: string }>('SELECT sum(heartbeats)::text AS n FROM slot_rollups WHERE device_id = $1', [d.deviceId]);
      expect(roll[0]!.n).toBe('2'); // the duplicate was not credited twice
    });

    it('rejects unknown and revoked devices and retired keys; a rotated device keeps its id and credit', async () => {
      const stranger = newDevice();
      const revoked = newDevice();
      const rotating = newDevice();
      const next = newDevice();
      await registerDevices(registry, [revoked, rotating]);
      expect((await registry.revoke(revoked.deviceId)).ok).toBe(true);
      await ingest([heartbeatMessage(rotating, 1)]);
      const rot = signIdentity(KeyRotation, { networkId: TEST_NETWORK, oldKey: rotating.publicKey, newKey: next.publicKey, nonce: 1n }, rotating.sign);
      const r = await registry.rotate(rotating.deviceId, { message: toHex(rot) });
      expect(r.ok).toBe(true);
      await ingest([heartbeatMessage(stranger, 1), heartbeatMessage(revoked, 1), heartbeatMessage(rotating, 2), heartbeatMessage(next, 3)]);
      const rej = await store.query<{ device_id: string | null; reason: string }>(
        "SELECT device_id, reason FROM rejections WHERE reason IN ('HB_UNKNOWN_DEVICE', 'HB_REVOKED_DEVICE') ORDER BY id",
      );
      expect(rej).toEqual(
        expect.arrayContaining([
          { device_id: stranger.deviceId, reason: 'HB_UNKNOWN_DEVICE' },
          { device_id: revoked.deviceId, reason: 'HB_REVOKED_DEVICE' },
          { device_id: rotating.deviceId, reason: 'HB_REVOKED_DEVICE' }, // old key after rotation
        ]),
      );
      const rows = await store.query<{ seq: string; key_id: string }>('SELECT seq::text, key_id FROM heartbeats WHERE device_id = $1 ORDER BY seq', [rotating.deviceId]);
      expect(rows).toEqual([
        { seq: '1', key_id: rotating.deviceId },
        { seq: '3', key_id: next.deviceId },
      ]);
    });

    it('records poison, oversized and hostile envelopes, terminates them, and keeps consuming', async () => {
      const d = newDevice();
      await registerDevices(registry, [d]);
      const now = Date.now();
      const hostileId = "'); DROP TABLE heartbeats; --\u0000";
      const bus = new MemoryBus({ ackWaitMs: 50 });
      await ingest(
        [
          { deviceId: d.deviceId, seq: 1n, raw: Uint8Array.of(0x01, 0x01, 0x00), receivedAt: now }, // truncated
          { deviceId: d.deviceId, seq: 2n, raw: new Uint8Array(5000).fill(0x27), receivedAt: now }, // oversized, all quotes
          { deviceId: hostileId, seq: 3n, raw: heartbeatMessage(d, 3).raw, receivedAt: now },
          { deviceId: d.deviceId, seq: 4n, raw: heartbeatMessage(d, 4).raw, receivedAt: Number.NaN },
          heartbeatMessage(d, 5, { receivedAt: now }),
        ],
        bus,
      );
      const rej = await store.query<{ device_id: string | null; reason: string; raw_length: number; stored: number; detail: string }>(
        'SELECT device_id, reason, raw_length, octet_length(raw) AS stored, detail FROM rejections WHERE received_at >= $1 AND (device_id = $2 OR device_id IS NULL) ORDER BY id',
        [String(now), d.deviceId],
      );
      expect(rej.map((r) => r.reason)).toEqual(['HB_TRUNCATED', 'HB_OVERSIZED', 'INGEST_BAD_ENVELOPE', 'INGEST_BAD_ENVELOPE']);
      expect(rej[1]).toMatchObject({ raw_length: 5000, stored: 4096 });
      expect(rej[2]!.device_id).toBeNull(); // the hostile id never reached SQL as an identifier or text
      const hb = await store.query('SELECT 1 FROM heartbeats WHERE device_id = $1 AND seq = 5', [d.deviceId]);
      expect(hb).toHaveLength(1);
      // Terminated, not redelivered: after the ack wait nothing comes back.
      await new Promise((r) => setTimeout(r, 80));
      expect(await bus.consumer('ingest').fetch(10, 20)).toEqual([]);
      expect(bus.size).toBe(0);
    });

    it('isolates a message the database refuses (bisecting the batch), records it as INGEST_STORE_ERROR, stores the rest', async () => {
      const d = newDevice();
      await registerDevices(registry, [d]);
      // Stand-in for a data bug: the database refuses exactly one row of this device.
      await store.exec(`CREATE FUNCTION refuse_seq_13() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.device_id = '${d.deviceId}' AND NEW.seq = 13 THEN RAISE EXCEPTION 'refused for the test' USING ERRCODE = '22023'; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_seq_13 BEFORE INSERT ON heartbeats FOR EACH ROW EXECUTE FUNCTION refuse_seq_13();`);
      try {
        const now = Date.now();
        const bus = new MemoryBus({ ackWaitMs: 50 });
        await ingest(Array.from({ length: 20 }, (_, i) => heartbeatMessage(d, i + 1, { receivedAt: now + i })), bus);
        const seqs = await store.query<{ seq: string }>('SELECT seq::text FROM heartbeats WHERE device_id = $1 ORDER BY seq', [d.deviceId]);
        expect(seqs.map((r) => Number(r.seq)).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1).filter((s) => s !== 13));
        const rej = await store.query<{ seq: string; reason: string; detail: string }>('SELECT seq::text, reason, detail FROM rejections WHERE device_id = $1', [d.deviceId]);
        expect(rej).toHaveLength(1);
        expect(rej[0]).toMatchObject({ seq: '13', reason: 'INGEST_STORE_ERROR' });
        expect(rej[0]!.detail).toContain('refused for the test');
        await new Promise((r) => setTimeout(r, 80));
        expect(await bus.consumer('ingest').fetch(10, 20)).toEqual([]); // terminated, not redelivered
      } finally {
        await store.exec('DROP TRIGGER refuse_seq_13 ON heartbeats; DROP FUNCTION refuse_seq_13();');
      }
    });
  });
}
