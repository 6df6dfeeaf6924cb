// A bundle built in memory from freshly signed heartbeats, with the results the closer would state
// (the same pure settlement), for the verify benchmark (bench/verify-epoch.ts): no database, so the
// benchmark measures `pulse verify` and nothing else. Keys come from node:crypto (OpenSSL), each
// device signs its own heartbeats with the native signer.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { nativeSigner } from '../../shared/crypto/native.ts';
import { signHeartbeat } from '../../shared/protocol/heartbeat.ts';
import { epochWindow, type EpochTiming } from '../../shared/epoch-timing.ts';
import { settleEpoch } from '../../shared/rewards/settle-epoch.ts';
import type { RewardParams } from '../../shared/rewards/reward-params.ts';
import type { SlotRollup } from '../../shared/rewards/score-epoch.ts';
import { toHex } from '../../shared/hex.ts';
import { SCORER_VERSION } from '../epochs/close-epoch.ts';
import { paramsToJson } from '../epochs/params-json.ts';
import { scoreRecord } from './verify-bundle.ts';
import type { Bundle, BundleHeartbeat } from './bundle-format.ts';

export type SyntheticOptions = {
  readonly devices: number;
  /** Heartbeats per device = slots per epoch (one per slot). */
  readonly slots: number;
  readonly owners: number;
  readonly params: RewardParams;
  readonly networkId?: number;
};

export function syntheticBundle(o: SyntheticOptions): Bundle {
  const networkId = o.networkId ?? 1;
  const slotMs = 60_000;
  const timing: EpochTiming = { genesisMs: 1_800_000_000_000 - (1_800_000_000_000 % slotMs), slotMs, epochSlots: o.slots, graceMs: 0 };
  const window = epochWindow(timing, 0);
  const owners = Array.from({ length: o.owners }, () => `0x${randomBytes(20).toString('hex')}`).sort();
  const hbs: BundleHeartbeat[] = [];
  const rollups: SlotRollup[] = [];
  return build();

  function build(): Bundle {
    const signers = new Map<string, (m: Uint8Array) => Uint8Array>();
    const ds: { id: string; owner: string; pub: Uint8Array }[] = [];
    for (let i = 0; i < o.devices; i++) {
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
      const id = toHex(pub);
      signers.set(id, nativeSigner(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url')));
      ds.push({ id, owner: owners[i % o.owners]!, pub });
    }
    ds.sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const [i, d] of ds.entries()) {
      const sign = signers.get(d.id)!;
      for (let s = 0; s < o.slots; s++) {
        const slot = window.firstSlot + s;
        const ts = slot * slotMs + 1000 + (i % 50_000);
        const value = BigInt(1 + ((i + s) % 40));
        const raw = signHeartbeat({ networkId, publicKey: d.pub, seq: BigInt(s + 1), timestamp: BigInt(ts), metrics: [{ id: 1, value }] }, sign);
        hbs.push({ device: d.id, receivedAt: ts + 20, raw: toHex(raw) });
        rollups.push({ deviceId: d.id, slot, heartbeats: 1, metrics: [[1, value]] });
      }
    }
    const settled = settleEpoch({ window, params: o.params, devices: ds.map((d) => ({ deviceId: d.id, owner: d.owner, revoked: false })), rollups, previous: [] });
    if (!settled.ok) throw new Error(settled.message);
    const s = settled.value;
    const rewardBy = new Map(s.allocation.devices.map((d) => [d.deviceId, d]));
    const leafBy = new Map(s.leaves.map((l) => [l.account, l.cumulative]));
    const rewards = s.allocation.owners.map((w) => ({ owner: w.owner, amount: String(w.total), cumulative: String(leafBy.get(w.owner)!) }));
    return {
      header: {
        epoch: 0,
        networkId,
        timing: { ...timing, skewMs: 30_000 },
        firstSlot: window.firstSlot,
        slotCount: window.slotCount,
        scorerVersion: SCORER_VERSION,
        paramsVersion: o.params.version,
        paramsHash: s.paramsHash,
        params: paramsToJson(o.params),
        counts: { devices: ds.length, heartbeats: hbs.length, rejections: 0, scores: s.scores.devices.length, rewards: rewards.length, previous: 0 },
      },
      devices: ds.map((d) => ({ device: d.id, owner: d.owner, status: 'active' as const, keys: [{ key: d.id, activeFromMs: 0, retiredAtMs: null }], events: [] })),
      heartbeats: hbs,
      rejections: [],
      scores: s.scores.devices.map((d) => scoreRecord(d, rewardBy.get(d.deviceId))),
      rewards,
      previous: [],
      result: {
        emission: String(s.allocation.emission),
        allocated: String(s.allocation.allocated),
        unallocated: String(s.allocation.unallocated),
        unallocatedParts: s.allocation.unallocatedParts.map((p) => ({ pool: p.pool, amount: String(p.amount), code: p.code })),
        cumulativeTotal: String(s.cumulativeTotal),
        root: s.root,
        tree: s.tree === null ? null : s.tree.dump(),
      },
    };
  }
}
