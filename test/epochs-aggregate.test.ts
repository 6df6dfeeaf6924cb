// The epoch closer aggregates rollups in SQL (oracle/epochs/close-epoch.ts readCloseInputs); the
// verifier and the pure scorer aggregate in TypeScript (shared/rewards/score-epoch.ts
// aggregateRollups). Both must give the same numbers for any rollups, caps and window.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pgliteBackend } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { readCloseInputs } from '../oracle/epochs/close-epoch.ts';
import { aggregateRollups, type SlotRollup } from '../shared/rewards/score-epoch.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';

const U64 = (1n << 64n) - 1n;
const dev = (i: number) => i.toString(16).padStart(64, '0');

describe('SQL and TypeScript rollup aggregation agree', () => {
  let store: Store;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ store, cleanup } = await pgliteBackend.open()));
  afterAll(async () => cleanup?.());

  it('for random rollups, caps and windows', async () => {
    const row = fc.record({ device: fc.integer({ min: 0, max: 4 }), slot: fc.integer({ min: 0, max: 30 }), metrics: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.bigInt({ min: 0n, max: U64 })), { selector: (t) => t[0], maxLength: 4 }) });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(row, { selector: (r) => `${r.device}:${r.slot}`, maxLength: 40 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.bigInt({ min: 0n, max: U64 })), { maxLength: 4 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 20 }),
        async (rows, capList, firstSlot, slotCount) => {
          const caps = [...new Map(capList).entries()].sort((a, b) => a[0] - b[0]);
          const params: RewardParams = { version: 1, emissionPerEpoch: 1000n, availabilityBps: 5000, minUptimeBps: 0, metrics: caps.map(([metricId, capPerSlot]) => ({ metricId, weight: 1n, capPerSlot, capPerEpoch: U64 })) };
          await store.exec('DELETE FROM slot_metric_sums; DELETE FROM slot_rollups;');
          for (const r of rows) {
            await store.query('INSERT INTO slot_rollups (device_id, slot, heartbeats, first_seq, last_seq) VALUES ($1, $2, 1, 1, 1)', [dev(r.device), String(r.slot)]);
            for (const [m, v] of r.metrics) await store.query('INSERT INTO slot_metric_sums (device_id, slot, metric_id, total) VALUES ($1, $2, $3, $4)', [dev(r.device), String(r.slot), m, String(v)]);
          }
          const window = { epoch: 0, firstSlot, slotCount };
          const sql = await store.transaction((tx) => readCloseInputs(tx, params, firstSlot, firstSlot + slotCount));
          const rollups: SlotRollup[] = rows.map((r) => ({ deviceId: dev(r.device), slot: r.slot, heartbeats: 1, metrics: r.metrics }));
          const ts = aggregateRollups(window, params, rollups);
          if (!ts.ok) throw new Error(ts.message);
          const norm = (m: ReadonlyMap<string, { creditedSlots: number; raw: ReadonlyMap<number, bigint>; slotCapped: ReadonlyMap<number, bigint>; anySlotCapped: boolean; unweighted: boolean }>) =>
            [...m.entries()]
              .map(([id, a]) => ({ id, credited: a.creditedSlots, raw: [...a.raw.entries()].sort(), capped: [...a.slotCapped.entries()].sort(), any: a.anySlotCapped, unweighted: a.unweighted }))
              .filter((x) => x.credited > 0 || x.raw.length > 0 || x.unweighted)
              .sort((x, y) => (x.id < y.id ? -1 : 1));
          expect(norm(sql.aggregates)).toEqual(norm(ts.value.aggregates));
        },
      ),
      { numRuns: 40 },
    );
  }, 120_000);
});
