// writeBatch on its own, on PostgreSQL and PGlite: one batch whose heartbeats have every payload
// length (0 to 16 metrics), so each row's raw bytes must be sliced from the batch's one bytea at the
// right offset; the same (device, seq) several times in one batch, in scrambled input order, so the
// in-batch duplicate and equivocation rules see them in (device, seq) order; exact rollups and
// epoch counters for u64 metric values; and a value that is not plain digits refused before SQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from '../../test/support/services.ts';
import { backends } from '../store/testing.ts';
import type { Store } from '../store/store.ts';
import { Registry } from '../registry/registry.ts';
import { TEST_NETWORK, heartbeatMessage, newDevice, registerDevices, type TestDevice } from './testing.ts';
import { decodeHeartbeat, type Metric } from '../../shared/protocol/heartbeat.ts';
import { writeBatch } from './write-batch.ts';
import type { Candidate } from './classify.ts';
import { toHex } from '../../shared/hex.ts';

const pgOk = await needs('postgres');
const U64_MAX = (1n << 64n) - 1n;
const T0 = 1_800_000_000_000 - (1_800_000_000_000 % 60_000); // a slot boundary

function candidate(d: TestDevice, seq: number, opts: { ts?: number; metrics?: Metric[] } = {}): Candidate {
  const m = heartbeatMessage(d, seq, { ts: opts.ts ?? T0 + seq, receivedAt: opts.ts ?? T0 + seq, metrics: opts.metrics ?? [{ id: 1, value: 1n }] });
  const hb = decodeHeartbeat(m.raw);
  if (!hb.ok) throw new Error(hb.message);
  return { heartbeat: hb.value, slot: hb.value.timestamp / 60_000n, receivedAt: m.receivedAt };
}

/** n metrics with ids 0, 1, …, n − 1 and value `value`. */
function metrics(n: number, value: bigint): Metric[] {
  return Array.from({ length: n }, (_, id) => ({ id, value }));
}

for (const backend of backends(pgOk)) {
  describe(`writeBatch on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let registry: Registry;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
      registry = new Registry({ store, networkId: TEST_NETWORK });
    });
    afterAll(async () => cleanup());

    it('stores every payload length byte-exact, with exact u64 rollups, from one batch', async () => {
      const d = newDevice();
      await registerDevices(registry, [d]);
      // 17 heartbeats, 0 to 16 metrics: raw lengths 119, 129, …, 279 bytes, all in one slot.
      const batch = Array.from({ length: 17 }, (_, n) => candidate(d, n + 1, { metrics: metrics(n, U64_MAX) }));
      const out = await writeBatch(store, [...batch].reverse(), []);
      expect(out).toMatchObject({ accepted: 17, inserted: 17 });
      expect(out.verdicts.every((v) => v === undefined)).toBe(true);
      const rows = await store.query<{ seq: string; raw: Uint8Array; metrics: Record<string, unknown> }>(
        'SELECT seq::text AS seq, raw, metrics FROM heartbeats h WHERE device_id = $1 ORDER BY h.seq',
        [d.deviceId],
      );
      expect(rows.map((r) => toHex(r.raw))).toEqual(batch.map((c) => toHex(c.heartbeat.raw)));
      expect(rows.map((r) => Object.keys(r.metrics).length)).toEqual(batch.map((_, n) => n));
      const roll = await store.query<{ heartbeats: number; first_seq: string; last_seq: string }>(
        'SELECT heartbeats, first_seq::text AS first_seq, last_seq::text AS last_seq FROM slot_rollups WHERE device_id = $1',
        [d.deviceId],
      );
      expect(roll).toEqual([{ heartbeats: 17, first_seq: '1', last_seq: '17' }]);
      // Metric id k is in the heartbeats with more than k metrics: 16 − k of them, each u64 max.
      const sums = await store.query<{ metric_id: number; total: string }>(
        'SELECT metric_id, total::text AS total FROM slot_metric_sums WHERE device_id = $1 ORDER BY metric_id',
        [d.deviceId],
      );
      expect(sums).toEqual(Array.from({ length: 16 }, (_, k) => ({ metric_id: k, total: (BigInt(16 - k) * U64_MAX).toString() })));
    });

    it('refuses a batch whose values would not be plain digits in an array literal, and stores none of it', async () => {
      const d = newDevice();
      await registerDevices(registry, [d]);
      // classify() only passes safe-integer receive times; a fraction here stands for any future
      // value that could break the hand-built literal (its decimal point is not a digit).
      const bad = { ...candidate(d, 1), receivedAt: T0 + 0.5 };
      await expect(writeBatch(store, [candidate(d, 2), bad], [])).rejects.toThrow(RangeError);
      const n = await store.query<{ n: string }>('SELECT count(*)::text AS n FROM heartbeats WHERE device_id = $1', [d.deviceId]);
      expect(n[0]!.n).toBe('0');
    });

    it('decides repeats of one (device, seq) inside a batch in seq order, whatever the input order', async () => {
      const d = newDevice();
      await registerDevices(registry, [d]);
      const first = candidate(d, 2, { ts: T0 + 10 });
      const same = { ...first }; // identical bytes again
      const other = candidate(d, 2, { ts: T0 + 11 }); // same seq, different bytes
      const next = candidate(d, 3, { ts: T0 + 12 });
      const out = await writeBatch(store, [next, other, first, same], []);
      // Sorted by (seq, input position): `other` (position 1) is the first seq 2, so it is stored,
      // and `first` and `same` (identical to each other, different from `other`) equivocate.
      expect(out.verdicts.map((v) => v?.reason)).toEqual([undefined, undefined, 'HB_EQUIVOCATION', 'HB_EQUIVOCATION']);
      expect(out).toMatchObject({ accepted: 2, inserted: 2 });
      const stored = await store.query<{ seq: string; raw: Uint8Array }>('SELECT seq::text AS seq, raw FROM heartbeats h WHERE device_id = $1 ORDER BY h.seq', [d.deviceId]);
      expect(stored.map((r) => [r.seq, toHex(r.raw)])).toEqual([['2', toHex(other.heartbeat.raw)], ['3', toHex(next.heartbeat.raw)]]);

      // A batch repeating an accepted heartbeat twice, with new seqs around it: both repeats are duplicates.
      const again = await writeBatch(store, [candidate(d, 4, { ts: T0 + 13 }), { ...next }, { ...next }], []);
      expect(again.verdicts.map((v) => v?.reason)).toEqual([undefined, 'HB_DUPLICATE', 'HB_DUPLICATE']);
      const roll = await store.query<{ n: string }>('SELECT sum(heartbeats)::text AS n FROM slot_rollups WHERE device_id = $1', [d.deviceId]);
      expect(roll[0]!.n).toBe('3');
      const rejections = await store.query<{ reason: string }>('SELECT reason FROM rejections WHERE device_id = $1 ORDER BY id', [d.deviceId]);
      expect(rejections.map((r) => r.reason)).toEqual(['HB_EQUIVOCATION', 'HB_EQUIVOCATION', 'HB_DUPLICATE', 'HB_DUPLICATE']);
    });
  });
}
