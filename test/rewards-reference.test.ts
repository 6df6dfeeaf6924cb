// The epoch close's scoring and allocation were rewritten for speed (issue 5: 100,000 devices):
// scoreAggregates no longer sorts a registry that is already sorted, allocateRewards groups owners in
// one pass and places per-device parts by position instead of sorting 100,000 ids, and
// largestRemainder works on arrays. The straightforward versions they replaced are kept here, word for
// word, as references: fast-check checks the new code gives identical results on every input,
// including the ones the fast paths do not take (unsorted or repeated registry entries, counters of
// unregistered devices, repeated keys, unsorted scores).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { largestRemainder, type Weighted } from '../shared/rewards/largest-remainder.ts';
import { allocateRewards, type DeviceReward, type EpochAllocation, type OwnerReward, type UnallocatedPart } from '../shared/rewards/allocate-rewards.ts';
import { scoreAggregates, type DeviceAggregate, type DeviceInfo, type DeviceScore, type EpochScores, type EpochWindow, type MetricScore } from '../shared/rewards/score-epoch.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';
import type { RewardCode } from '../shared/error-codes.ts';

// ---- references: the previous implementations (shared/rewards before issue 5's speed work) ----

function refLargestRemainder(total: bigint, items: readonly Weighted[]): Map<string, bigint> {
  if (total < 0n) throw new RangeError('largestRemainder: total must be ≥ 0');
  const positive = items.filter((i) => {
    if (i.weight < 0n) throw new RangeError(`largestRemainder: weight of ${i.key} is negative`);
    return i.weight > 0n;
  });
  const out = new Map<string, bigint>();
  const sum = positive.reduce((s, i) => s + i.weight, 0n);
  if (sum === 0n) return out;
  let given = 0n;
  const rest: { key: string; rem: bigint }[] = [];
  for (const i of positive) {
    const num = total * i.weight;
    const q = num / sum;
    out.set(i.key, (out.get(i.key) ?? 0n) + q);
    given += q;
    rest.push({ key: i.key, rem: num % sum });
  }
  let left = total - given;
  rest.sort((a, b) => (a.rem > b.rem ? -1 : a.rem < b.rem ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const r of rest) {
    if (left === 0n) break;
    out.set(r.key, out.get(r.key)! + 1n);
    left--;
  }
  return out;
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function refAllocate(scores: EpochScores, params: RewardParams): EpochAllocation {
  const emission = params.emissionPerEpoch;
  const availabilityPool = (emission * BigInt(params.availabilityBps)) / 10000n;
  const contributionPool = emission - availabilityPool;
  const eligible = scores.devices.filter((d) => d.eligible && d.owner !== null);
  const byOwner = (weight: (d: DeviceScore) => bigint) => {
    const m = new Map<string, bigint>();
    for (const d of eligible) m.set(d.owner!, (m.get(d.owner!) ?? 0n) + weight(d));
    return [...m].map(([key, w]) => ({ key, weight: w }));
  };
  const availWeight = (d: DeviceScore) => BigInt(d.creditedSlots);
  const contribWeight = (d: DeviceScore) => d.contribution;
  const avail = refLargestRemainder(availabilityPool, byOwner(availWeight));
  const contrib = refLargestRemainder(contributionPool, byOwner(contribWeight));
  const unallocatedParts: UnallocatedPart[] = [];
  if (availabilityPool > 0n && avail.size === 0) unallocatedParts.push({ pool: 'availability', amount: availabilityPool, code: 'UNALLOCATED_NO_ELIGIBLE' });
  if (contributionPool > 0n && contrib.size === 0) {
    unallocatedParts.push({ pool: 'contribution', amount: contributionPool, code: eligible.length === 0 ? 'UNALLOCATED_NO_ELIGIBLE' : 'UNALLOCATED_NO_CONTRIBUTION' });
  }
  const byOwnerDevices = new Map<string, DeviceScore[]>();
  for (const d of eligible) {
    const list = byOwnerDevices.get(d.owner!);
    if (list === undefined) byOwnerDevices.set(d.owner!, [d]);
    else list.push(d);
  }
  const ownerKeys = [...new Set([...avail.keys(), ...contrib.keys()])].sort(cmp);
  const owners: OwnerReward[] = [];
  const devices: DeviceReward[] = [];
  for (const owner of ownerKeys) {
    const a = avail.get(owner) ?? 0n;
    const c = contrib.get(owner) ?? 0n;
    if (a + c === 0n) continue;
    owners.push({ owner, availability: a, contribution: c, total: a + c });
    const mine = byOwnerDevices.get(owner) ?? [];
    const da = refLargestRemainder(a, mine.map((d) => ({ key: d.deviceId, weight: availWeight(d) })));
    const dc = refLargestRemainder(c, mine.map((d) => ({ key: d.deviceId, weight: contribWeight(d) })));
    for (const d of mine) {
      const x = da.get(d.deviceId) ?? 0n;
      const y = dc.get(d.deviceId) ?? 0n;
      if (x + y > 0n) devices.push({ deviceId: d.deviceId, owner, availability: x, contribution: y, total: x + y });
    }
  }
  devices.sort((x, y) => cmp(x.deviceId, y.deviceId));
  const allocated = owners.reduce((s, o) => s + o.total, 0n);
  return { epoch: scores.window.epoch, emission, availabilityPool, contributionPool, owners, devices, allocated, unallocated: emission - allocated, unallocatedParts };
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const EMPTY: DeviceAggregate = { creditedSlots: 0, raw: new Map(), slotCapped: new Map(), anySlotCapped: false, unweighted: false };

function refScoreAggregates(w: EpochWindow, params: RewardParams, input: { devices: readonly DeviceInfo[]; aggregates: ReadonlyMap<string, DeviceAggregate> }): EpochScores | string {
  const info = new Map<string, DeviceInfo>();
  for (const d of input.devices) {
    if (d.owner !== null && !ADDRESS.test(d.owner)) return 'SCORE_INPUT_INVALID';
    info.set(d.deviceId, d);
  }
  const ids = new Set<string>([...input.devices.map((d) => d.deviceId), ...input.aggregates.keys()]);
  for (const [, a] of input.aggregates) if (!Number.isSafeInteger(a.creditedSlots) || a.creditedSlots < 0 || a.creditedSlots > w.slotCount) return 'SCORE_INPUT_INVALID';
  const devices: DeviceScore[] = [];
  for (const deviceId of ids) {
    const a = input.aggregates.get(deviceId) ?? EMPTY;
    const d = info.get(deviceId);
    const owner = d?.owner ? d.owner.toLowerCase() : null;
    const revoked = d?.revoked ?? false;
    const credited = a.creditedSlots;
    let capped = a.anySlotCapped;
    const metrics: MetricScore[] = [];
    let contribution = 0n;
    for (const rule of params.metrics) {
      const raw = a.raw.get(rule.metricId);
      if (raw === undefined) continue;
      let c = a.slotCapped.get(rule.metricId) ?? 0n;
      if (c > rule.capPerEpoch) {
        c = rule.capPerEpoch;
        capped = true;
      }
      const points = c * rule.weight;
      contribution += points;
      metrics.push({ metricId: rule.metricId, raw, capped: c, points });
    }
    const uptimeOk = credited * 10000 >= params.minUptimeBps * w.slotCount;
    const reasons: RewardCode[] = [];
    if (revoked) reasons.push('REVOKED');
    if (owner === null) reasons.push('NO_OWNER');
    if (!uptimeOk) reasons.push('LOW_UPTIME');
    else if (credited < w.slotCount) reasons.push('PARTIAL_UPTIME');
    if (capped) reasons.push('METRIC_CAPPED');
    const eligible = !revoked && owner !== null && uptimeOk;
    if (eligible && contribution === 0n && params.metrics.length > 0 && params.availabilityBps < 10000) reasons.push('NO_CONTRIBUTION');
    if (a.unweighted) reasons.push('UNWEIGHTED_METRIC');
    devices.push({ deviceId, owner, creditedSlots: credited, slotCount: w.slotCount, uptimeBps: Math.floor((credited * 10000) / w.slotCount), connectedMs: d?.connectedMs ?? 0, metrics, contribution, eligible, reasons });
  }
  devices.sort((x, y) => cmp(x.deviceId, y.deviceId));
  return { window: w, devices, ignoredRollups: 0 };
}

// ---- arbitraries ----

const json = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x));
const window: EpochWindow = { epoch: 2, firstSlot: 100, slotCount: 12 };
const owners = ['0x' + '0a'.repeat(20), '0x' + 'AB'.repeat(20), '0x' + 'ab'.repeat(20), '0x' + '10'.repeat(20), '0x' + 'ff'.repeat(20)];
const ids = Array.from({ length: 12 }, (_, i) => (i * 7919).toString(16).padStart(6, '0'));

const paramsArb: fc.Arbitrary<RewardParams> = fc.record({
  version: fc.constant(1),
  emissionPerEpoch: fc.oneof(fc.bigInt({ min: 0n, max: 50n }), fc.bigInt({ min: 0n, max: 10n ** 27n })),
  availabilityBps: fc.integer({ min: 0, max: 10000 }),
  minUptimeBps: fc.integer({ min: 0, max: 10000 }),
  metrics: fc
    .uniqueArray(fc.record({ metricId: fc.integer({ min: 0, max: 3 }), weight: fc.bigInt({ min: 0n, max: 50n }), capPerSlot: fc.bigInt({ min: 0n, max: 100n }), capPerEpoch: fc.bigInt({ min: 0n, max: 600n }) }), { maxLength: 3, selector: (m) => m.metricId })
    .map((ms) => [...ms].sort((a, b) => a.metricId - b.metricId)),
});
const infoArb: fc.Arbitrary<DeviceInfo> = fc.record({ deviceId: fc.constantFrom(...ids), owner: fc.option(fc.constantFrom(...owners), { nil: null }), revoked: fc.boolean(), connectedMs: fc.nat({ max: 10_000 }) });
const aggArb: fc.Arbitrary<DeviceAggregate> = fc.record({
  creditedSlots: fc.integer({ min: 0, max: window.slotCount }),
  raw: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.bigInt({ min: 0n, max: 2000n }))).map((e) => new Map(e)),
  slotCapped: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.bigInt({ min: 0n, max: 2000n }))).map((e) => new Map(e)),
  anySlotCapped: fc.boolean(),
  unweighted: fc.boolean(),
});
/** A registry in any shape: sorted and unique (what the close passes) or shuffled with repeats. */
const registryArb = fc.oneof(
  fc.uniqueArray(infoArb, { selector: (d) => d.deviceId, maxLength: 12 }).map((ds) => [...ds].sort((a, b) => cmp(a.deviceId, b.deviceId))),
  fc.array(infoArb, { maxLength: 14 }),
);
/** Counters for some registered devices, or also for unregistered ones. */
const aggregatesArb = (registry: readonly DeviceInfo[]) =>
  fc.uniqueArray(fc.tuple(fc.boolean().chain((onlyRegistered) => (onlyRegistered && registry.length > 0 ? fc.constantFrom(...registry.map((d) => d.deviceId)) : fc.constantFrom(...ids))), aggArb), { selector: (e) => e[0], maxLength: 12 }).map(
    (e) => new Map(e),
  );

// Values on both sides of 2^53, where the column code switches from doubles to bigints
// (shared/rewards/int-column.ts), and around SPLIT_MAX (allocate-rewards.ts: an owner's weight total
// up to ~9.49e7 splits on doubles, above it through largestRemainderParts).
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const amountArb = fc.oneof(
  fc.bigInt({ min: 0n, max: 2000n }),
  fc.bigInt({ min: 20_000_000n, max: 60_000_000n }),
  fc.bigInt({ min: SAFE - 40n, max: SAFE + 40n }),
  // Two metrics of ~2^52 points each: every product is a double, their sum is not.
  fc.bigInt({ min: 2n ** 52n - 20n, max: 2n ** 52n + 20n }),
  fc.bigInt({ min: 0n, max: 2n ** 70n }),
);
const u64Arb = fc.oneof(fc.bigInt({ min: 0n, max: 50n }), fc.constant(1n), fc.bigInt({ min: SAFE - 40n, max: SAFE + 40n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const bigParamsArb: fc.Arbitrary<RewardParams> = fc.record({
  version: fc.constant(1),
  emissionPerEpoch: fc.oneof(fc.bigInt({ min: 0n, max: 50n }), fc.bigInt({ min: 0n, max: 10n ** 24n }), fc.bigInt({ min: 0n, max: (1n << 256n) - 1n })),
  availabilityBps: fc.integer({ min: 0, max: 10000 }),
  minUptimeBps: fc.integer({ min: 0, max: 10000 }),
  metrics: fc
    .uniqueArray(fc.record({ metricId: fc.integer({ min: 0, max: 3 }), weight: u64Arb, capPerSlot: u64Arb, capPerEpoch: u64Arb }), { maxLength: 3, selector: (m) => m.metricId })
    .map((ms) => [...ms].sort((a, b) => a.metricId - b.metricId)),
});
const bigAggArb: fc.Arbitrary<DeviceAggregate> = fc.record({
  creditedSlots: fc.integer({ min: 0, max: window.slotCount }),
  raw: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), amountArb)).map((e) => new Map(e)),
  slotCapped: fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), amountArb)).map((e) => new Map(e)),
  anySlotCapped: fc.boolean(),
  unweighted: fc.boolean(),
});
const bigAggregatesArb = (registry: readonly DeviceInfo[]) =>
  fc.uniqueArray(fc.tuple(registry.length > 0 ? fc.constantFrom(...registry.map((d) => d.deviceId)) : fc.constantFrom(...ids), bigAggArb), { selector: (e) => e[0], maxLength: 12 }).map((e) => new Map(e));

// Allocation alone, on scores made directly: up to 40 devices over three owners, so owners have many
// devices, with weights around SPLIT_MAX and 2^53 and emissions from a few units to 2^256. The
// owner-level split, each owner's split over their devices on doubles (a part of 2^53 or more goes
// to bigints) and every fallback to largestRemainderParts run in every few cases.
const SPLIT_MAX = 94_906_265n;
const allocOwners = ['0x' + '0a'.repeat(20), '0x' + 'ab'.repeat(20), '0x' + '10'.repeat(20)];
const weightArb = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 0n, max: 100n }),
  fc.bigInt({ min: SPLIT_MAX / 4n, max: SPLIT_MAX / 2n + 10n }),
  fc.bigInt({ min: SPLIT_MAX - 5n, max: SPLIT_MAX + 5n }),
  fc.bigInt({ min: 2n ** 52n - 5n, max: 2n ** 52n + 5n }),
  fc.bigInt({ min: SAFE - 5n, max: SAFE + 5n }),
  fc.bigInt({ min: 0n, max: 2n ** 80n }),
);
const allocParamsArb: fc.Arbitrary<RewardParams> = fc.record({
  version: fc.constant(1),
  emissionPerEpoch: fc.oneof(fc.bigInt({ min: 0n, max: 100n }), fc.bigInt({ min: 2n ** 50n, max: 2n ** 64n }), fc.bigInt({ min: 0n, max: 10n ** 24n }), fc.bigInt({ min: 0n, max: (1n << 256n) - 1n })),
  availabilityBps: fc.oneof(fc.constant(0), fc.constant(10000), fc.integer({ min: 0, max: 10000 })),
  minUptimeBps: fc.constant(0),
  metrics: fc.constant([]),
});
/** Scores of devices given as (owner or null, eligible, credited slots, contribution); ids in list order. */
function allocScores(slotCount: number, ds: readonly (readonly [owner: string | null, eligible: boolean, credited: number, contribution: bigint])[]): EpochScores {
  const devices = ds.map(([owner, eligible, creditedSlots, contribution], i): DeviceScore => ({
    deviceId: i.toString(16).padStart(4, '0'), owner, creditedSlots, slotCount, uptimeBps: 0, connectedMs: 0, metrics: [], contribution, eligible: eligible && owner !== null, reasons: [],
  }));
  return { window: { epoch: 1, firstSlot: 0, slotCount }, devices, ignoredRollups: 0 };
}
const allocScoresArb = fc.constantFrom(1, 12, 60, 1_000_000, 50_000_000).chain((slotCount) =>
  fc
    .array(fc.tuple(fc.option(fc.constantFrom(...allocOwners), { nil: null, freq: 8 }), fc.oneof(fc.constant(true), fc.boolean()), fc.integer({ min: 0, max: slotCount }), weightArb), { maxLength: 40 })
    .map((ds) => allocScores(slotCount, ds)),
);
const contributionOnly = (emissionPerEpoch: bigint): RewardParams => ({ version: 1, emissionPerEpoch, availabilityBps: 0, minUptimeBps: 0, metrics: [] });

describe('rewritten scoring and allocation give what the straightforward versions gave', () => {
  it('scoreAggregates and allocateRewards with amounts, weights and caps across 2^53', () => {
    fc.assert(
      fc.property(bigParamsArb, registryArb.chain((r) => fc.tuple(fc.constant(r), bigAggregatesArb(r))), (params, [devices, aggregates]) => {
        const got = scoreAggregates({ window, params, devices, aggregates });
        const want = refScoreAggregates(window, params, { devices, aggregates });
        if (typeof want === 'string') {
          expect(got.ok ? 'ok' : got.code).toBe(want);
          return;
        }
        expect(got.ok ? json(got.value) : got.code).toBe(json(want));
        expect(json(allocateRewards(want, params))).toBe(json(refAllocate(want, params)));
      }),
      { numRuns: 1000 },
    );
  });

  it('allocateRewards with many devices per owner, weights around SPLIT_MAX and 2^53', () => {
    fc.assert(
      fc.property(allocParamsArb, allocScoresArb, (params, scores) => {
        expect(json(allocateRewards(scores, params))).toBe(json(refAllocate(scores, params)));
      }),
      { numRuns: 500 },
    );
  });

  it('allocateRewards at the edges of the double paths', () => {
    const [a, b] = allocOwners as [string, string];
    const S = SPLIT_MAX;
    const cases: [bigint, EpochScores][] = [
      // An owner's total at SPLIT_MAX with the largest products R·w the double split can meet, R = S − 1.
      [S - 1n, allocScores(1, [[a, true, 1, S - 1n], [a, true, 1, 1n]])],
      [5n * S - 1n, allocScores(1, [[a, true, 1, S - 2n], [a, true, 1, 1n], [a, true, 1, 1n]])],
      // Just above: the split goes through largestRemainderParts.
      [S, allocScores(1, [[a, true, 1, S], [a, true, 1, 1n]])],
      // An owner's contributions add up past 2^53 (2^53 + 3 is no double), beside a small owner; the
      // emission is large enough for the last unit of that sum to change the owners' amounts.
      [2n ** 200n + 7n, allocScores(1, [[a, true, 1, 2n ** 52n + 1n], [a, true, 1, 2n ** 52n + 2n], [b, true, 1, 3n]])],
      // Parts of 2^53 or more from a quotient Q below 2^53 (Q·w + q is no double).
      [2n ** 60n + 12345n, allocScores(1, [[a, true, 1, 1000n], [a, true, 1, 999n], [a, true, 1, 1n]])],
    ];
    for (const [emission, scores] of cases) expect(json(allocateRewards(scores, contributionOnly(emission)))).toBe(json(refAllocate(scores, contributionOnly(emission))));
    // A total of 200,000,001 whose products R·w (≈ 1.07e16) doubles would round: they would give the
    // devices 53358675, 53358678, 53282648. The split must stay exact, so SPLIT_MAX must stay below this.
    const wide = allocScores(1, [[a, true, 1, 66_698_343n], [a, true, 1, 66_698_348n], [a, true, 1, 66_603_310n]]);
    expect(allocateRewards(wide, contributionOnly(160_000_001n)).devices.map((d) => d.contribution)).toEqual([53_358_674n, 53_358_679n, 53_282_648n]);
  });

  it('largestRemainder, with repeated keys and zero weights', () => {
    const items = fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c', 'aa', '0'), weight: fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 10n ** 20n })) }), { maxLength: 10 });
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), items, (total, xs) => {
        expect([...largestRemainder(total, xs)]).toEqual([...refLargestRemainder(total, xs)]);
      }),
      { numRuns: 500 },
    );
    // Remainders above 2^53 that differ by a few units round to the same double: the order must
    // still come from the exact values. With a total of a few units and weights near 2^60 that differ
    // by at most 200, the remainders lie within a few hundred units of each other, far above 2^53.
    const close = fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c', 'd', 'e'), weight: fc.bigInt({ min: 2n ** 60n, max: 2n ** 60n + 200n }) }), { minLength: 2, maxLength: 8 });
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 3n }), close, (total, xs) => {
        expect([...largestRemainder(total, xs)]).toEqual([...refLargestRemainder(total, xs)]);
      }),
      { numRuns: 500 },
    );
    expect(() => largestRemainder(-1n, [])).toThrow(RangeError);
    expect(() => largestRemainder(5n, [{ key: 'a', weight: -1n }])).toThrow(RangeError);
  });

  it('scoreAggregates, for registries sorted or not, with counters of unregistered devices', () => {
    fc.assert(
      fc.property(paramsArb, registryArb.chain((r) => fc.tuple(fc.constant(r), aggregatesArb(r))), (params, [devices, aggregates]) => {
        const got = scoreAggregates({ window, params, devices, aggregates });
        const want = refScoreAggregates(window, params, { devices, aggregates });
        if (typeof want === 'string') expect(got.ok ? 'ok' : got.code).toBe(want);
        else expect(got.ok ? json(got.value) : got.code).toBe(json(want));
      }),
      { numRuns: 500 },
    );
  });

  it('allocateRewards, for scores in order and shuffled', () => {
    fc.assert(
      fc.property(paramsArb, registryArb.chain((r) => fc.tuple(fc.constant(r), aggregatesArb(r))), fc.nat(), (params, [devices, aggregates], seed) => {
        const s = scoreAggregates({ window, params, devices, aggregates });
        if (!s.ok) return;
        expect(json(allocateRewards(s.value, params))).toBe(json(refAllocate(s.value, params)));
        const shuffled = { ...s.value, devices: s.value.devices.map((d, i) => [((i + 1) * 2654435761 + seed) % 4294967296, d] as const).sort((p, q) => p[0] - q[0]).map((p) => p[1]) };
        expect(json(allocateRewards(shuffled, params))).toBe(json(refAllocate(s.value, params)));
      }),
      { numRuns: 500 },
    );
  });
});
