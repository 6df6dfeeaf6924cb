// docs/rewards.md §Worked example is normative: this test recomputes it number by number.
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { describe, expect, it } from 'vitest';
import { encodeRewardParams, rewardParamsHash, validateRewardParams, type RewardParams } from '../shared/rewards/reward-params.ts';
import { settleEpoch } from '../shared/rewards/settle-epoch.ts';
import { scoreEpoch, type SlotRollup } from '../shared/rewards/score-epoch.ts';
import { verifyRewardProof } from '../shared/merkle/reward-tree.ts';

const A = '0x' + 'aa'.repeat(20);
const B = '0x' + 'bb'.repeat(20);
const C = '0x' + 'cc'.repeat(20);

const params: RewardParams = {
  version: 1,
  emissionPerEpoch: 1_000_000n,
  availabilityBps: 6000,
  minUptimeBps: 5000,
  metrics: [
    { metricId: 1, weight: 1n, capPerSlot: 100n, capPerEpoch: 400n },
    { metricId: 2, weight: 5n, capPerSlot: 10n, capPerEpoch: 1000n },
  ],
};
const window = { epoch: 7, firstSlot: 1000, slotCount: 6 };
const r = (deviceId: string, slot: number, metrics: [number, bigint][] = []): SlotRollup => ({ deviceId, slot, heartbeats: 1, metrics });
const six = [0, 1, 2, 3, 4, 5];
const rollups: SlotRollup[] = [
  ...six.map((i) => r('dev-a', 1000 + i, [[1, 50n], [2, 2n]])),
  r('dev-b', 1000, [[1, 150n]]), r('dev-b', 1001, [[1, 100n]]), r('dev-b', 1002, [[1, 100n]]), r('dev-b', 1003, [[1, 100n]]),
  r('dev-b', 1006, [[1, 100n]]),
  r('dev-c', 1000, [[1, 10n]]), r('dev-c', 1001),
  ...six.map((i) => r('dev-d', 1000 + i, [[1, 100n]])),
  ...six.map((i) => r('dev-e', 1000 + i, [[1, 100n]])),
  r('dev-f', 1000, [[1, 7n], [9, 1n]]), r('dev-f', 1002, [[1, 7n]]), r('dev-f', 1004, [[1, 7n]]),
];
const devices = [
  { deviceId: 'dev-a', owner: A, revoked: false, connectedMs: 360_000 },
  { deviceId: 'dev-b', owner: B, revoked: false, connectedMs: 300_000 },
  { deviceId: 'dev-c', owner: A, revoked: false },
  { deviceId: 'dev-d', owner: null, revoked: false },
  { deviceId: 'dev-e', owner: C, revoked: true },
  { deviceId: 'dev-f', owner: C, revoked: false },
];

describe('docs/rewards.md worked example', () => {
  const settled = settleEpoch({ window, params, devices, rollups, previous: [{ account: B, cumulative: 5000n }] });
  if (!settled.ok) throw new Error(settled.message);
  const s = settled.value;

  it('scores every device with the documented credited slots, contribution, eligibility and reasons', () => {
    const rows = s.scores.devices.map((d) => [d.deviceId, d.creditedSlots, d.contribution, d.eligible, d.reasons.join(',')]);
    expect(rows).toEqual([
      ['dev-a', 6, 360n, true, ''],
      ['dev-b', 4, 400n, true, 'PARTIAL_UPTIME,METRIC_CAPPED'],
      ['dev-c', 2, 10n, false, 'LOW_UPTIME'],
      ['dev-d', 6, 400n, false, 'NO_OWNER,METRIC_CAPPED'],
      ['dev-e', 6, 400n, false, 'REVOKED,METRIC_CAPPED'],
      ['dev-f', 3, 21n, true, 'PARTIAL_UPTIME,UNWEIGHTED_METRIC'],
    ]);
    expect(s.scores.ignoredRollups).toBe(1);
    const b = s.scores.devices[1]!;
    expect(b.metrics).toEqual([{ metricId: 1, raw: 450n, capped: 400n, points: 400n }]);
    expect(b.uptimeBps).toBe(6666);
    expect(b.connectedMs).toBe(300_000);
  });

  it('allocates the documented amounts by largest remainder', () => {
    const a = s.allocation;
    expect([a.availabilityPool, a.contributionPool]).toEqual([600_000n, 400_000n]);
    expect(a.owners.map((o) => [o.owner, o.availability, o.contribution, o.total])).toEqual([
      [A, 276_923n, 184_379n, 461_302n],
      [B, 184_615n, 204_866n, 389_481n],
      [C, 138_462n, 10_755n, 149_217n],
    ]);
    expect(a.allocated).toBe(1_000_000n);
    expect(a.unallocated).toBe(0n);
    expect(a.devices.map((d) => [d.deviceId, d.total])).toEqual([['dev-a', 461_302n], ['dev-b', 389_481n], ['dev-f', 149_217n]]);
  });

  it('produces the documented cumulative leaves, total, paramsHash and root (OpenZeppelin agrees)', () => {
    expect(s.leaves).toEqual([
      { account: A, cumulative: 461_302n },
      { account: B, cumulative: 394_481n },
      { account: C, cumulative: 149_217n },
    ]);
    expect(s.cumulativeTotal).toBe(1_005_000n);
    expect(s.paramsHash).toBe('0xc81b947513d0a3b9d5ae328d5bf56dbc9897e55465394abd73b897a3333d8dd2');
    expect(s.root).toBe('0x2807f056330c336dbd4e9111a57d0ac9709e3d3b17653743804e52fcd08639b2');
    const oz = StandardMerkleTree.of(s.leaves.map((l) => [l.account, l.cumulative.toString()]), ['address', 'uint256']);
    expect(oz.root).toBe(s.root);
    s.leaves.forEach((l, i) => expect(verifyRewardProof(s.root!, l.account, l.cumulative, s.tree!.proof(i))).toBe(true));
  });
});

describe('parameters', () => {
  it('encodes to the documented layout (8 + 1 + 4 + 32 + 2 + 2 + 2 + 26 per metric bytes)', () => {
    const e = encodeRewardParams(params);
    expect(e.length).toBe(51 + 2 * 26);
    expect(new TextDecoder().decode(e.subarray(0, 8))).toBe('PULSE-RP');
    expect(e[8]).toBe(1);
    expect([...e.subarray(9, 13)]).toEqual([0, 0, 0, 1]);
    expect(e[13 + 31]).toBe(1_000_000 & 0xff);
    expect([...e.subarray(45, 51)]).toEqual([0x17, 0x70, 0x13, 0x88, 0, 2]);
  });

  it('changes the hash when any field changes', () => {
    const base = rewardParamsHash(params);
    const variants: RewardParams[] = [
      { ...params, version: 2 },
      { ...params, emissionPerEpoch: 1_000_001n },
      { ...params, availabilityBps: 6001 },
      { ...params, minUptimeBps: 5001 },
      { ...params, metrics: params.metrics.slice(1) },
      { ...params, metrics: [{ ...params.metrics[0]!, weight: 2n }, params.metrics[1]!] },
      { ...params, metrics: [{ ...params.metrics[0]!, capPerSlot: 101n }, params.metrics[1]!] },
      { ...params, metrics: [{ ...params.metrics[0]!, capPerEpoch: 401n }, params.metrics[1]!] },
    ];
    const hashes = new Set(variants.map(rewardParamsHash));
    expect(hashes.size).toBe(variants.length);
    expect(hashes.has(base)).toBe(false);
  });

  it('rejects malformed parameters with PARAMS_INVALID naming the field', () => {
    const bad: [RewardParams, string][] = [
      [{ ...params, version: -1 }, 'version'],
      [{ ...params, emissionPerEpoch: -1n }, 'emissionPerEpoch'],
      [{ ...params, availabilityBps: 10001 }, 'availabilityBps'],
      [{ ...params, minUptimeBps: 1.5 }, 'minUptimeBps'],
      [{ ...params, metrics: [params.metrics[1]!, params.metrics[0]!] }, 'metrics[1].metricId'],
      [{ ...params, metrics: [{ ...params.metrics[0]!, weight: 1n << 64n }] }, 'metrics[0].weight'],
    ];
    for (const [p, field] of bad) {
      const v = validateRewardParams(p);
      expect(v.ok).toBe(false);
      if (!v.ok) {
        expect(v.code).toBe('PARAMS_INVALID');
        expect(v.message).toContain(field);
      }
      const s = settleEpoch({ window, params: p, devices, rollups, previous: [] });
      expect(s.ok).toBe(false);
    }
  });
});

describe('scoring input errors are results', () => {
  it('refuses a bad window, a bad owner, a negative metric', () => {
    const cases = [
      scoreEpoch({ window: { epoch: 1, firstSlot: 0, slotCount: 0 }, params, devices: [], rollups: [] }),
      scoreEpoch({ window, params, devices: [{ deviceId: 'x', owner: '0x12', revoked: false }], rollups: [] }),
      scoreEpoch({ window, params, devices: [], rollups: [{ deviceId: 'x', slot: 1000, heartbeats: 1, metrics: [[1, -1n]] }] }),
      scoreEpoch({ window, params, devices: [], rollups: [{ deviceId: 'x', slot: 1000.5, heartbeats: 1, metrics: [] }] }),
    ];
    for (const c of cases) {
      expect(c.ok).toBe(false);
      if (!c.ok) expect(c.code).toBe('SCORE_INPUT_INVALID');
    }
  });

  it('an epoch where nobody is eligible reports the whole emission as unallocated and has no tree yet', () => {
    const s = settleEpoch({ window, params, devices: [{ deviceId: 'dev-d', owner: null, revoked: false }], rollups, previous: [] });
    if (!s.ok) throw new Error(s.message);
    expect(s.value.allocation.unallocatedParts).toEqual([
      { pool: 'availability', amount: 600_000n, code: 'UNALLOCATED_NO_ELIGIBLE' },
      { pool: 'contribution', amount: 400_000n, code: 'UNALLOCATED_NO_ELIGIBLE' },
    ]);
    expect(s.value.allocation.unallocated).toBe(1_000_000n);
    expect(s.value.root).toBeNull();
  });

  it('eligible devices without contribution leave the contribution pool unallocated with its reason', () => {
    const s = settleEpoch({ window, params, devices: [{ deviceId: 'z', owner: A, revoked: false }], rollups: six.map((i) => r('z', 1000 + i)), previous: [] });
    if (!s.ok) throw new Error(s.message);
    expect(s.value.scores.devices[0]!.reasons).toEqual(['NO_CONTRIBUTION']);
    expect(s.value.allocation.owners).toEqual([{ owner: A, availability: 600_000n, contribution: 0n, total: 600_000n }]);
    expect(s.value.allocation.unallocatedParts).toEqual([{ pool: 'contribution', amount: 400_000n, code: 'UNALLOCATED_NO_CONTRIBUTION' }]);
  });
});
