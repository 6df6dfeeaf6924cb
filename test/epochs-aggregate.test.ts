// The epoch closer reads per-(device, epoch) counters (oracle/epochs/epoch-stats.ts) that ingest
// maintains incrementally (oracle/ingest/write-batch.ts) and ensureCursor rebuilds from the slot
// rollups; the verifier and the pure scorer aggregate slot rollups in TypeScript
// (shared/rewards/score-epoch.ts aggregateRollups). All of these must give the same numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pgliteBackend } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { readCloseInputs } from '../oracle/epochs/close-epoch.ts';
import { ensureCursor } from '../oracle/epochs/epoch-stats.ts';
import { aggregateRollups, FLAG_SLOT_CAPPED, FLAG_UNWEIGHTED, type DeviceAggregate, type ScoringColumns, type SlotRollup } from '../shared/rewards/score-epoch.ts';
import type { IntColumn } from '../shared/rewards/int-column.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';
import type { EpochTiming } from '../shared/epoch-timing.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { classify, type Candidate } from '../oracle/ingest/classify.ts';
import { writeBatch } from '../oracle/ingest/write-batch.ts';
import { heartbeatMessage, newDevice, TEST_NETWORK, type TestDevice } from '../oracle/ingest/testing.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import { counterSnapshot, rebuildCounters } from './support/epoch-counters.ts';

const U64 = (1n << 64n) - 1n;
const dev = (i: number) => i.toString(16).padStart(64, '0');
const SLOT_MS = 1000;

function paramsWith(caps: readonly (readonly [number, bigint])[]): RewardParams {
  return { version: 1, emissionPerEpoch: 1000n, availabilityBps: 5000, minUptimeBps: 0, metrics: caps.map(([metricId, capPerSlot]) => ({ metricId, weight: 1n, capPerSlot, capPerEpoch: U64 })) };
}

const capList = fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.bigInt({ min: 0n, max: U64 })), { maxLength: 4 }).map((l) => [...new Map(l).entries()].sort((a, b) => a[0] - b[0]));

type Norm = { id: string; credited: number; raw: [number, bigint][]; capped: [number, bigint][]; any: boolean; unweighted: boolean }[];
function norm(m: ReadonlyMap<string, DeviceAggregate>): Norm {
  return [...m.entries()]
    .map(([id, a]) => ({ id, credited: a.creditedSlots, raw: [...a.raw.entries()].sort(), capped: [...a.slotCapped.entries()].sort(), any: a.anySlotCapped, unweighted: a.unweighted }))
    .filter((x) => x.credited > 0 || x.raw.length > 0 || x.unweighted)
    .sort((x, y) => (x.id < y.id ? -1 : 1));
}

/** The same view of the close's scoring columns (oracle/epochs/close-epoch.ts readCloseInputs). */
function normColumns(c: ScoringColumns, params: RewardParams): Norm {
  const values = (cols: readonly IntColumn[], i: number): [number, bigint][] =>
    params.metrics.flatMap((m, k): [number, bigint][] => (cols[k]!.has(i) ? [[m.metricId, cols[k]!.get(i)!]] : [])).sort();
  return c.ids
    .map((id, i) => ({ id, credited: c.credited[i]!, raw: values(c.raw, i), capped: values(c.slotCapped, i), any: (c.flags[i]! & FLAG_SLOT_CAPPED) !== 0, unweighted: (c.flags[i]! & FLAG_UNWEIGHTED) !== 0 }))
    .filter((x) => x.credited > 0 || x.raw.length > 0 || x.unweighted);
}

async function reset(store: Store): Promise<void> {
  await store.exec('DELETE FROM slot_metric_sums; DELETE FROM slot_rollups; DELETE FROM heartbeats; DELETE FROM epoch_metric_stats; DELETE FROM epoch_device_stats; DELETE FROM epoch_cursor;');
}

/** What aggregateRollups says about the rollup tables as they stand. */
async function fromRollups(store: Store, params: RewardParams, window: { epoch: number; firstSlot: number; slotCount: number }): Promise<Norm> {
  const rows = await store.query<{ device_id: string; slot: string; heartbeats: number }>('SELECT device_id, slot::text, heartbeats FROM slot_rollups');
  const sums = await store.query<{ device_id: string; slot: string; metric_id: number; total: string }>('SELECT device_id, slot::text, metric_id, total::text FROM slot_metric_sums');
  const rollups: SlotRollup[] = rows.map((r) => ({
    deviceId: r.device_id,
    slot: Number(r.slot),
    heartbeats: r.heartbeats,
    metrics: sums.filter((s) => s.device_id === r.device_id && s.slot === r.slot).map((s) => [s.metric_id, BigInt(s.total)] as const),
  }));
  const ts = aggregateRollups(window, params, rollups);
  if (!ts.ok) throw new Error(ts.message);
  return norm(ts.value.aggregates);
}

describe('epoch counters agree with aggregating the slot rollups', () => {
  let store: Store;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ store, cleanup } = await pgliteBackend.open()));
  afterAll(async () => cleanup?.());

  it('rebuilt from rollups, for random rollups, caps and windows, with the caps recorded or changed since', async () => {
    const row = fc.record({ device: fc.integer({ min: 0, max: 4 }), slot: fc.integer({ min: 0, max: 30 }), metrics: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.bigInt({ min: 0n, max: U64 })), { selector: (t) => t[0], maxLength: 4 }) });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(row, { selector: (r) => `${r.device}:${r.slot}`, maxLength: 40 }),
        capList,
        fc.option(capList, { nil: undefined }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        // Registered devices: all five (readCloseInputs reads the counters by registry position),
        // or some or none (counters of unregistered devices: its general path).
        fc.subarray([0, 1, 2, 3, 4]),
        async (rows, caps, recordedCaps, firstSlot, slotCount, registered) => {
          await reset(store);
          await store.exec('DELETE FROM devices');
          for (const d of registered) await store.query(`INSERT INTO devices (device_id, registered_via) VALUES ($1, 'operator')`, [dev(d)]);
          for (const r of rows) {
            await store.query('INSERT INTO slot_rollups (device_id, slot, heartbeats, first_seq, last_seq) VALUES ($1, $2, 1, 1, 1)', [dev(r.device), String(r.slot)]);
            for (const [m, v] of r.metrics) await store.query('INSERT INTO slot_metric_sums (device_id, slot, metric_id, total) VALUES ($1, $2, $3, $4)', [dev(r.device), String(r.slot), m, String(v)]);
          }
          const params = paramsWith(caps);
          const window = { epoch: 0, firstSlot, slotCount };
          const timing: EpochTiming = { genesisMs: firstSlot * SLOT_MS, slotMs: SLOT_MS, epochSlots: slotCount, graceMs: 0 };
          // The counters are built with the recorded caps; when the close's caps differ, the capped
          // sums must still come out right (the per-device fallback in readEpochStats).
          await ensureCursor(store, timing, recordedCaps === undefined ? params : paramsWith(recordedCaps));
          const sql = await store.transaction((tx) => readCloseInputs(tx, params, window));
          expect(normColumns(sql.scoring, params)).toEqual(await fromRollups(store, params, window));
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);

  it('maintained by ingest batch by batch, before and after the layout is recorded, equal a rebuild', async () => {
    const timing: EpochTiming = { genesisMs: 1_800_000_000_000, slotMs: SLOT_MS, epochSlots: 6, graceMs: 0 };
    const g = timing.genesisMs / SLOT_MS;
    const rules = { networkId: TEST_NETWORK, skewMs: 10 ** 12, slotIntervalMs: SLOT_MS, maxPayloadBytes: 1024, verifier: nativeVerifier };
    const devices: TestDevice[] = [newDevice(), newDevice(), newDevice()];
    const registry = new Registry({ store, networkId: TEST_NETWORK });
    await reset(store);
    for (const d of devices) {
      const r = await registry.addDevice({ id: d.deviceId, owner: `0x${'11'.repeat(20)}` });
      if (!r.ok) throw new Error(r.message);
    }
    const hb = fc.record({ device: fc.integer({ min: 0, max: 2 }), slot: fc.integer({ min: 0, max: 8 }), m1: fc.bigInt({ min: 0n, max: 300n }), m9: fc.bigInt({ min: 0n, max: 5n }) });
    await fc.assert(
      fc.asyncProperty(fc.array(hb, { minLength: 1, maxLength: 40 }), fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 10 }), fc.integer({ min: -1, max: 4 }), capList, async (hbs, batchSizes, layoutAfter, caps) => {
        await store.exec('DELETE FROM slot_metric_sums; DELETE FROM slot_rollups; DELETE FROM heartbeats; DELETE FROM rejections; DELETE FROM epoch_metric_stats; DELETE FROM epoch_device_stats; DELETE FROM epoch_cursor; UPDATE devices SET max_seq = 0, max_seq_received_at = 0;');
        const params = paramsWith([[1, 100n], ...caps.filter(([id]) => id !== 1)]);
        const seqs = [0, 0, 0];
        const candidates: Candidate[] = hbs.map((h) => {
          const ts = (g + h.slot) * SLOT_MS + 10;
          const c = classify(heartbeatMessage(devices[h.device]!, ++seqs[h.device]!, { ts, receivedAt: ts, metrics: [{ id: 1, value: h.m1 }, { id: 9, value: h.m9 }] }), rules);
          if (c.kind !== 'candidate') throw new Error(c.rejection.reason);
          return c.candidate;
        });
        let at = 0;
        let batch = 0;
        if (layoutAfter < 0) await ensureCursor(store, timing, params);
        while (at < candidates.length) {
          const size = batchSizes[batch % batchSizes.length]!;
          const out = await writeBatch(store, candidates.slice(at, at + size), []);
          expect(out.inserted).toBe(out.accepted);
          at += size;
          if (++batch === layoutAfter) await ensureCursor(store, timing, params);
        }
        await ensureCursor(store, timing, params);
        const maintained = await counterSnapshot(store);
        for (const epoch of [0, 1]) {
          const window = { epoch, firstSlot: g + epoch * 6, slotCount: 6 };
          const sql = await store.transaction((tx) => readCloseInputs(tx, params, window));
          expect(normColumns(sql.scoring, params)).toEqual(await fromRollups(store, params, window));
        }
        // A rebuild from the rollups (what ensureCursor does when the caps change) finds the same rows.
        await rebuildCounters(store);
        expect(await counterSnapshot(store)).toEqual(maintained);
      }),
      { numRuns: 25 },
    );
  }, 240_000);
});
