// Epoch closing on both storage backends (issue 5 part 1): results, tree and cursor in one
// transaction; exactly once; catch-up in order; a heartbeat outside the epoch changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { needs } from './support/services.ts';
import { pgliteBackend, postgresBackend, type Backend } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { classify } from '../oracle/ingest/classify.ts';
import { writeBatch } from '../oracle/ingest/write-batch.ts';
import { heartbeatMessage, newDevice, TEST_NETWORK, type TestDevice } from '../oracle/ingest/testing.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import { closeDueEpochs, closeNextEpoch } from '../oracle/epochs/close-epoch.ts';
import { epochEndMs, type EpochTiming } from '../shared/epoch-timing.ts';
import type { RewardParams } from '../shared/rewards/reward-params.ts';
import { isPulseError } from '../shared/errors.ts';

const pgOk = await needs('postgres');
const backends: Backend[] = pgOk ? [pgliteBackend, postgresBackend] : [pgliteBackend];

const SLOT = 1000;
const timing: EpochTiming = { genesisMs: 1_800_000_000_000, slotMs: SLOT, epochSlots: 10, graceMs: 500 };
const params: RewardParams = {
  version: 1,
  emissionPerEpoch: 1_000_000n,
  availabilityBps: 6000,
  minUptimeBps: 5000,
  metrics: [{ metricId: 1, weight: 3n, capPerSlot: 100n, capPerEpoch: 1000n }],
};
const OWNER_X = `0x${'aa'.repeat(20)}`;
const OWNER_Y = `0x${'bb'.repeat(20)}`;
const rules = { networkId: TEST_NETWORK, skewMs: 30_000, slotIntervalMs: SLOT, maxPayloadBytes: 1024, verifier: nativeVerifier };

async function ingest(store: Store, device: TestDevice, seq: number, slot: number, value = 10n): Promise<void> {
  const ts = slot * SLOT + 100;
  const c = classify(heartbeatMessage(device, seq, { ts, receivedAt: ts, metrics: [{ id: 1, value }] }), rules);
  if (c.kind !== 'candidate') throw new Error(`not a candidate: ${c.rejection.reason}`);
  const out = await writeBatch(store, [c.candidate], []);
  if (out.accepted !== 1) throw new Error(`not accepted: ${out.verdicts[0]?.reason}`);
}

for (const backend of backends) {
  describe(`epoch close on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    const a = newDevice(), b = newDevice(), c = newDevice(), revoked = newDevice(), ownerless = newDevice();
    const g = timing.genesisMs / SLOT;

    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
      const registry = new Registry({ store, networkId: TEST_NETWORK });
      for (const [d, owner] of [[a, OWNER_X], [b, OWNER_X], [c, OWNER_Y], [revoked, OWNER_Y], [ownerless, null]] as const) {
        const r = await registry.addDevice({ id: d.deviceId, owner });
        if (!r.ok) throw new Error(r.message);
      }
      // Epoch 0 = slots g .. g+9. a: all 10 slots; b: 6 slots with capped metrics; c: 3 slots (below
      // the 50 % minimum); revoked and ownerless: all 10 slots but ineligible.
      let seq = 1;
      for (let i = 0; i < 10; i++) await ingest(store, a, seq++, g + i);
      seq = 1;
      for (let i = 0; i < 6; i++) await ingest(store, b, seq++, g + i, 500n);
      for (let i = 0; i < 3; i++) await ingest(store, c, i + 1, g + i);
      for (let i = 0; i < 10; i++) await ingest(store, revoked, i + 1, g + i);
      for (let i = 0; i < 10; i++) await ingest(store, ownerless, i + 1, g + i);
      // Epoch 1: only a, 5 slots. Epoch 2: a heartbeat that must not touch epochs 0 and 1.
      for (let i = 0; i < 5; i++) await ingest(store, a, 11 + i, g + 10 + i);
      await ingest(store, a, 16, g + 20);
      const rev = await registry.revoke(revoked.deviceId);
      if (!rev.ok) throw new Error(rev.message);
    });
    afterAll(async () => cleanup?.());

    it('does not close an epoch before its end plus grace', async () => {
      const o = await closeNextEpoch(store, timing, params, epochEndMs(timing, 0) + timing.graceMs - 1);
      expect(o).toMatchObject({ kind: 'not-due', epoch: 0 });
      expect(await store.query('SELECT * FROM epochs')).toHaveLength(0);
    });

    it('refuses a changed parameter set under an old version and writes nothing', async () => {
      // First record version 1 by closing nothing: a refused close must leave no trace either.
      const changed = { ...params, emissionPerEpoch: 5n };
      await store.query(`INSERT INTO reward_params (version, params, params_hash, first_epoch) VALUES (1, '{}'::jsonb, $1, 0)`, [`0x${'00'.repeat(32)}`]);
      await expect(closeNextEpoch(store, timing, changed, epochEndMs(timing, 5))).rejects.toSatisfy((e: unknown) => isPulseError(e, 'PARAMS_CHANGED'));
      expect(await store.query('SELECT * FROM epochs')).toHaveLength(0);
      const cur = await store.query<{ next_epoch: string }>('SELECT next_epoch::text AS next_epoch FROM epoch_cursor');
      expect(cur[0]?.next_epoch).toBe('0');
      await store.query('DELETE FROM reward_params');
    });

    it('catches up due epochs in order, exactly once, and posts a root OpenZeppelin agrees with', async () => {
      const now = epochEndMs(timing, 1) + timing.graceMs;
      const outcomes = await closeDueEpochs(store, timing, params, now);
      expect(outcomes.map((o) => o.epoch)).toEqual([0, 1]);
      expect(await closeDueEpochs(store, timing, params, now)).toEqual([]);

      const scores = await store.query<{ device_id: string; credited_slots: number; eligible: boolean; reasons: string[] }>(
        'SELECT device_id, credited_slots, eligible, reasons FROM epoch_device_scores WHERE epoch = 0',
      );
      const by = new Map(scores.map((s) => [s.device_id, s]));
      expect(by.get(a.deviceId)).toMatchObject({ credited_slots: 10, eligible: true });
      expect(by.get(b.deviceId)).toMatchObject({ credited_slots: 6, eligible: true });
      expect(by.get(b.deviceId)!.reasons).toEqual(expect.arrayContaining(['METRIC_CAPPED', 'PARTIAL_UPTIME']));
      expect(by.get(c.deviceId)).toMatchObject({ credited_slots: 3, eligible: false });
      expect(by.get(c.deviceId)!.reasons).toContain('LOW_UPTIME');
      expect(by.get(revoked.deviceId)!.reasons).toContain('REVOKED');
      expect(by.get(ownerless.deviceId)!.reasons).toContain('NO_OWNER');

      const e0 = (await store.query<{ allocated: string; unallocated: string; cumulative_total: string; root: string }>(
        'SELECT allocated::text, unallocated::text, cumulative_total::text, root FROM epochs WHERE epoch = 0',
      ))[0]!;
      // Both pools have recipients (a and b are eligible with contribution): paid to the last unit.
      expect(e0.allocated).toBe('1000000');
      expect(e0.unallocated).toBe('0');
      const r0 = await store.query<{ owner: string; amount: string }>('SELECT owner, amount::text FROM epoch_rewards WHERE epoch = 0 ORDER BY owner');
      expect(r0.map((r) => r.owner)).toEqual([OWNER_X]); // c is below the minimum, revoked earns nothing
      expect(r0[0]!.amount).toBe('1000000');

      // Epoch 1: only a (5 of 10 slots, exactly the minimum) earns; cumulative adds up.
      const e1 = (await store.query<{ cumulative_total: string; root: string }>('SELECT cumulative_total::text, root FROM epochs WHERE epoch = 1'))[0]!;
      expect(e1.cumulative_total).toBe('2000000');
      const leaves = await store.query<{ owner: string; cumulative: string }>('SELECT owner, cumulative::text FROM cumulative_rewards ORDER BY owner');
      const oz = StandardMerkleTree.of(leaves.map((l) => [l.owner, l.cumulative]), ['address', 'uint256']);
      expect(e1.root).toBe(oz.root);
      const dump = (await store.query<{ dump: unknown }>('SELECT dump FROM epoch_trees WHERE epoch = 1'))[0]!.dump;
      expect(StandardMerkleTree.load(dump as Parameters<typeof StandardMerkleTree.load>[0]).root).toBe(oz.root);

      // The heartbeat in epoch 2 (slot g+20) changed nothing in epochs 0 and 1.
      const hb = await store.query<{ heartbeats: string }>('SELECT heartbeats::text FROM epochs WHERE epoch = 1');
      expect(hb[0]!.heartbeats).toBe('5');
      const cur = await store.query<{ next_epoch: string; next_first_slot: string }>('SELECT next_epoch::text, next_first_slot::text FROM epoch_cursor');
      expect(cur[0]).toEqual({ next_epoch: '2', next_first_slot: String(g + 20) });
    });

    it('records a heartbeat for a closed epoch as HB_EPOCH_CLOSED and credits nothing', async () => {
      const ts = (g + 3) * SLOT + 200; // epoch 0, closed above
      const cl = classify(heartbeatMessage(c, 100, { ts, receivedAt: ts, metrics: [{ id: 1, value: 1n }] }), rules);
      if (cl.kind !== 'candidate') throw new Error('not a candidate');
      const out = await writeBatch(store, [cl.candidate], []);
      expect(out.accepted).toBe(0);
      expect(out.verdicts[0]?.reason).toBe('HB_EPOCH_CLOSED');
      const r = await store.query<{ reason: string }>("SELECT reason FROM rejections WHERE reason = 'HB_EPOCH_CLOSED'");
      expect(r).toHaveLength(1);
      const slots = await store.query<{ heartbeats: number }>('SELECT heartbeats FROM slot_rollups WHERE device_id = $1 AND slot = $2', [c.deviceId, String(g + 3)]);
      expect(slots).toHaveLength(0); // c had no heartbeat in slot g+3; the late one credits nothing
    });

    it('closes each epoch once when two closers race', async () => {
      const now = epochEndMs(timing, 4) + timing.graceMs;
      const [x, y] = await Promise.all([closeDueEpochs(store, timing, params, now), closeDueEpochs(store, timing, params, now)]);
      const closed = [...x, ...y].map((o) => o.epoch).sort();
      expect(closed).toEqual([2, 3, 4]);
      const rows = await store.query<{ epoch: string }>('SELECT epoch::text FROM epochs ORDER BY epoch');
      expect(rows.map((r) => r.epoch)).toEqual(['0', '1', '2', '3', '4']);
    });
  });
}
