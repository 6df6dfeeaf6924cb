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
import { aggregateRollups, scoringColumns, type DeviceInfo, type SlotRollup } from '../shared/rewards/score-epoch.ts';
import type { ScoringColumns } from '../shared/rewards/score-columns.ts';
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

/** Scoring columns as plain values, every column (registry side included), for toEqual. */
function plain(c: ScoringColumns) {
  return c.ids.map((id, i) => ({
    id,
    owner: c.owners[i],
    revoked: c.revoked[i],
    connectedMs: c.connectedMs[i],
    credited: c.credited[i],
    flags: c.flags[i],
    raw: c.raw.map((col) => col.get(i)),
    slotCapped: c.slotCapped.map((col) => col.get(i)),
  }));
}

async function reset(store: Store): Promise<void> {
  await store.exec('DELETE FROM slot_metric_sums; DELETE FROM slot_rollups; DELETE FROM heartbeats; DELETE FROM epoch_metric_stats; DELETE FROM epoch_device_stats; DELETE FROM epoch_cursor;');
}

/**
 * What the object API (aggregateRollups, then scoringColumns over the registry: what settleEpoch and
 * the bundle verifier run) makes of the registry, the rollup tables and the connected time as they
 * stand: the close's readCloseInputs must fill the same columns.
 */
async function fromRollups(store: Store, params: RewardParams, window: { epoch: number; firstSlot: number; slotCount: number }): Promise<ReturnType<typeof plain>> {
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
  const registry = await store.query<{ device_id: string; owner: string | null; status: string; connected_ms: string | null }>(
    `SELECT d.device_id, CASE WHEN d.owner IS NULL THEN NULL ELSE '0x' || encode(d.owner, 'hex') END AS owner, d.status, s.connected_ms::text AS connected_ms
       FROM devices d LEFT JOIN epoch_device_stats s ON s.device_id = d.device_id AND s.epoch = $1`,
    [String(window.epoch)],
  );
  const infos: DeviceInfo[] = registry.map((d) => ({ deviceId: d.device_id, owner: d.owner, revoked: d.status !== 'active', connectedMs: Number(d.connected_ms ?? 0) }));
  return plain(scoringColumns(params, infos, ts.value.aggregates));
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
        // or some or none (counters of unregistered devices: its general path), with or without an
        // owner, active or revoked.
        fc.uniqueArray(fc.record({ device: fc.integer({ min: 0, max: 4 }), owner: fc.option(fc.constantFrom('11'.repeat(20), 'ab'.repeat(20)), { nil: null }), revoked: fc.boolean() }), { selector: (d) => d.device }),
        // Connected time of devices with or without rollups, registered or not (device 5 has neither).
        fc.uniqueArray(fc.record({ device: fc.integer({ min: 0, max: 5 }), ms: fc.integer({ min: 0, max: 3_600_000 }) }), { selector: (c) => c.device }),
        async (rows, caps, recordedCaps, firstSlot, slotCount, registered, connected) => {
          await reset(store);
          await store.exec('DELETE FROM devices');
          for (const d of registered) {
            await store.query(`INSERT INTO devices (device_id, owner, status, registered_via) VALUES ($1, decode($2, 'hex'), $3, 'operator')`, [dev(d.device), d.owner, d.revoked ? 'revoked' : 'active']);
          }
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
          for (const c of connected) {
            await store.query(
              `INSERT INTO epoch_device_stats (epoch, device_id, connected_ms) VALUES (0, $1, $2)
               ON CONFLICT (epoch, device_id) DO UPDATE SET connected_ms = excluded.connected_ms`,
              [dev(c.device), String(c.ms)],
            );
          }
          const sql = await store.transaction((tx) => readCloseInputs(tx, params, window));
          expect(plain(sql.scoring)).toEqual(await fromRollups(store, params, window));
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
          expect(plain(sql.scoring)).toEqual(await fromRollups(store, params, window));
        }
        // A rebuild from the rollups (what ensureCursor does when the caps change) finds the same rows.
        await rebuildCounters(store);
        expect(await counterSnapshot(store)).toEqual(maintained);
      }),
      { numRuns: 25 },
    );
  }, 240_000);
});
