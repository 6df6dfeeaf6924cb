// fast-check properties of scoring and allocation (docs/rewards.md): allocation never exceeds the
// emission and is exact when a pool has a recipient; input order never matters; a rollup outside the
// epoch changes nothing; ineligible devices get nothing; every leaf's proof verifies.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { largestRemainder } from '../shared/rewards/largest-remainder.ts';
import { allocateRewards } from '../shared/rewards/allocate-rewards.ts';
import { settleEpoch } from '../shared/rewards/settle-epoch.ts';
import { scoreEpoch, type DeviceInfo, type SlotRollup } from '../shared/rewards/score-epoch.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';
import { verifyRewardProof } from '../shared/merkle/reward-tree.ts';
import { toHex } from '../shared/hex.ts';

const window = { epoch: 3, firstSlot: 500, slotCount: 10 };
const owners = ['0x' + '01'.repeat(20), '0x' + '02'.repeat(20), '0x' + 'ab'.repeat(20), '0x' + 'ff'.repeat(20)];

const paramsArb: fc.Arbitrary<RewardParams> = fc.record({
  version: fc.nat({ max: 10 }),
  emissionPerEpoch: fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: 10n ** 27n })),
  availabilityBps: fc.integer({ min: 0, max: 10000 }),
  minUptimeBps: fc.integer({ min: 0, max: 10000 }),
  metrics: fc.uniqueArray(
    fc.record({
      metricId: fc.integer({ min: 0, max: 5 }),
      weight: fc.bigInt({ min: 0n, max: 1000n }),
      capPerSlot: fc.bigInt({ min: 0n, max: 500n }),
      capPerEpoch: fc.bigInt({ min: 0n, max: 3000n }),
    }),
    { maxLength: 4, selector: (m) => m.metricId },
  ).map((ms) => [...ms].sort((a, b) => a.metricId - b.metricId)),
});

const deviceIds = fc.constantFrom('d0', 'd1', 'd2', 'd3', 'd4', 'd5', 'd6', 'd7');
const devicesArb: fc.Arbitrary<DeviceInfo[]> = fc.uniqueArray(
  fc.record({
    deviceId: deviceIds,
    owner: fc.option(fc.constantFrom(...owners), { nil: null }),
    revoked: fc.boolean(),
    connectedMs: fc.nat({ max: 600_000 }),
  }),
  { maxLength: 8, selector: (d) => d.deviceId },
);
const rollupArb = (slotMin: number, slotMax: number): fc.Arbitrary<SlotRollup> =>
  fc.record({
    deviceId: deviceIds,
    slot: fc.integer({ min: slotMin, max: slotMax }),
    heartbeats: fc.nat({ max: 3 }),
    metrics: fc.uniqueArray(fc.tuple(fc.integer({ min: 0, max: 6 }), fc.bigInt({ min: 0n, max: 400n })), { maxLength: 3, selector: (m) => m[0] }),
  });
const inside = fc.array(rollupArb(window.firstSlot, window.firstSlot + window.slotCount - 1), { maxLength: 60 });
const outside = fc.array(
  fc.oneof(rollupArb(0, window.firstSlot - 1), rollupArb(window.firstSlot + window.slotCount, window.firstSlot + 100)),
  { minLength: 1, maxLength: 20 },
);
const previousArb = fc.array(fc.record({ account: fc.constantFrom(...owners), cumulative: fc.bigInt({ min: 0n, max: 10n ** 24n }) }), { maxLength: 4 });

const json = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x));

describe('allocation', () => {
  it('never exceeds the emission; allocated + unallocated = emission; exact when both pools have recipients', () => {
    fc.assert(
      fc.property(paramsArb, devicesArb, inside, (params, devices, rollups) => {
        const scores = scoreEpoch({ window, params, devices, rollups });
        if (!scores.ok) throw new Error(scores.message);
        const a = allocateRewards(scores.value, params);
        expect(a.allocated).toBeLessThanOrEqual(params.emissionPerEpoch);
        expect(a.allocated + a.unallocated).toBe(params.emissionPerEpoch);
        expect(a.unallocatedParts.reduce((s, p) => s + p.amount, 0n)).toBe(a.unallocated);
        expect(a.owners.reduce((s, o) => s + o.total, 0n)).toBe(a.allocated);
        expect(a.devices.reduce((s, d) => s + d.total, 0n)).toBe(a.allocated);
        const eligible = scores.value.devices.filter((d) => d.eligible);
        const availRecipients = eligible.some((d) => d.creditedSlots > 0);
        const contribRecipients = eligible.some((d) => d.contribution > 0n);
        if ((availRecipients || a.availabilityPool === 0n) && (contribRecipients || a.contributionPool === 0n)) expect(a.unallocated).toBe(0n);
        // Ineligible devices (revoked, ownerless, low uptime) receive nothing.
        const paid = new Set(a.devices.map((d) => d.deviceId));
        for (const d of scores.value.devices) {
          if (!d.eligible) {
            expect(paid.has(d.deviceId)).toBe(false);
            expect(d.reasons.some((r) => r === 'REVOKED' || r === 'NO_OWNER' || r === 'LOW_UPTIME')).toBe(true);
          }
          if (d.eligible && d.creditedSlots < d.slotCount) expect(d.reasons).toContain('PARTIAL_UPTIME');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('largest remainder: exact sum, each part within one unit of its exact quota, order-independent', () => {
    const items = fc.uniqueArray(fc.record({ key: fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', '0', '1'), minLength: 1, maxLength: 4 }), weight: fc.bigInt({ min: 0n, max: 10n ** 20n }) }), { maxLength: 12, selector: (i) => i.key });
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), items, fc.nat(), (total, xs, seed) => {
        const out = largestRemainder(total, xs);
        const W = xs.reduce((s, i) => s + i.weight, 0n);
        if (W === 0n) {
          expect(out.size).toBe(0);
          return;
        }
        expect([...out.values()].reduce((s, v) => s + v, 0n)).toBe(total);
        for (const i of xs) {
          if (i.weight === 0n) continue;
          const floor = (total * i.weight) / W;
          expect(out.get(i.key)! - floor).toBeGreaterThanOrEqual(0n);
          expect(out.get(i.key)! - floor).toBeLessThanOrEqual(1n);
        }
        const rotated = [...xs.slice(seed % (xs.length || 1)), ...xs.slice(0, seed % (xs.length || 1))].reverse();
        expect([...largestRemainder(total, rotated)].sort()).toEqual([...out].sort());
      }),
      { numRuns: 300 },
    );
  });
});

describe('settleEpoch', () => {
  it('gives the same scores, allocation and root for the inputs in any order', () => {
    fc.assert(
      fc.property(paramsArb, devicesArb, inside, previousArb, fc.nat(), (params, devices, rollups, previous, seed) => {
        const a = settleEpoch({ window, params, devices, rollups, previous });
        const perm = <T,>(xs: T[]) => xs.map((x, i) => [((i + 1) * 2654435761 + seed) % 4294967296, x] as const).sort((p, q) => p[0] - q[0]).map((p) => p[1]);
        const b = settleEpoch({ window, params, devices: perm(devices), rollups: perm(rollups), previous: perm(previous) });
        if (!a.ok || !b.ok) throw new Error('unexpected error');
        expect(json(b.value.scores)).toBe(json(a.value.scores));
        expect(json(b.value.allocation)).toBe(json(a.value.allocation));
        expect(b.value.root).toBe(a.value.root);
      }),
      { numRuns: 150 },
    );
  });

  it('a rollup outside the epoch changes nothing (except the ignored count)', () => {
    fc.assert(
      fc.property(paramsArb, devicesArb, inside, outside, (params, devices, rollups, extra) => {
        const a = settleEpoch({ window, params, devices, rollups, previous: [] });
        const b = settleEpoch({ window, params, devices, rollups: [...extra, ...rollups], previous: [] });
        if (!a.ok || !b.ok) throw new Error('unexpected error');
        // A device that only appears in the outside rollups is listed with nothing credited.
        const known = new Set(a.value.scores.devices.map((d) => d.deviceId));
        const bDevices = b.value.scores.devices.filter((d) => known.has(d.deviceId));
        expect(json(bDevices)).toBe(json(a.value.scores.devices));
        for (const d of b.value.scores.devices.filter((x) => !known.has(x.deviceId))) {
          expect([d.creditedSlots, d.contribution, d.eligible]).toEqual([0, 0n, false]);
        }
        expect(b.value.scores.ignoredRollups).toBe(a.value.scores.ignoredRollups + extra.length);
        expect(json(b.value.allocation)).toBe(json(a.value.allocation));
        expect(b.value.root).toBe(a.value.root);
      }),
      { numRuns: 150 },
    );
  });

  it('cumulative leaves add this epoch to the previous ones, and every leaf proof verifies', () => {
    fc.assert(
      fc.property(paramsArb, devicesArb, inside, previousArb, (params, devices, rollups, previous) => {
        const s = settleEpoch({ window, params, devices, rollups, previous });
        if (!s.ok) throw new Error(s.message);
        const prevTotal = previous.reduce((x, l) => x + l.cumulative, 0n);
        expect(s.value.cumulativeTotal).toBe(prevTotal + s.value.allocation.allocated);
        if (s.value.leaves.length === 0) {
          expect(s.value.root).toBeNull();
          return;
        }
        s.value.leaves.forEach((l, i) => {
          expect(verifyRewardProof(s.value.root!, l.account, l.cumulative, s.value.tree!.proof(i))).toBe(true);
        });
      }),
      { numRuns: 150 },
    );
  });

  it('a metric above its caps earns exactly the cap and sets METRIC_CAPPED', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 100n }), fc.bigInt({ min: 1n, max: 1000n }), fc.array(fc.bigInt({ min: 0n, max: 300n }), { minLength: 10, maxLength: 10 }), (capSlot, capEpoch, values) => {
        const params: RewardParams = { version: 1, emissionPerEpoch: 100n, availabilityBps: 0, minUptimeBps: 0, metrics: [{ metricId: 4, weight: 3n, capPerSlot: capSlot, capPerEpoch: capEpoch }] };
        const rollups = values.map((v, i) => ({ deviceId: 'd', slot: 500 + i, heartbeats: 1, metrics: [[4, v] as const] }));
        const s = scoreEpoch({ window, params, devices: [{ deviceId: 'd', owner: owners[0]!, revoked: false }], rollups });
        if (!s.ok) throw new Error(s.message);
        const d = s.value.devices[0]!;
        const slotCapped = values.reduce((x, v) => x + (v > capSlot ? capSlot : v), 0n);
        const expected = slotCapped > capEpoch ? capEpoch : slotCapped;
        expect(d.contribution).toBe(expected * 3n);
        expect(d.reasons.includes('METRIC_CAPPED')).toBe(values.some((v) => v > capSlot) || slotCapped > capEpoch);
      }),
      { numRuns: 200 },
    );
  });

  it('reports random owner addresses in lowercase and pays them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (b) => {
        const owner = '0x' + toHex(b).toUpperCase();
        const params: RewardParams = { version: 1, emissionPerEpoch: 10n, availabilityBps: 10000, minUptimeBps: 0, metrics: [] };
        const s = settleEpoch({ window, params, devices: [{ deviceId: 'd', owner: owner.replace('0X', '0x'), revoked: false }], rollups: [{ deviceId: 'd', slot: 500, heartbeats: 1, metrics: [] }], previous: [] });
        if (!s.ok) throw new Error(s.message);
        expect(s.value.leaves).toEqual([{ account: '0x' + toHex(b), cumulative: 10n }]);
      }),
      { numRuns: 50 },
    );
  });
});
