// Test fixture for the bundle, verify and claim suites: two realistic closed epochs on a real store,
// built the way production builds them (registry API, classify + writeBatch with real signed
// heartbeats, a key rotation signed by the old key, a revocation, rejections, closeDueEpochs), then
// bundled with buildEpochBundle. Tamper helpers re-encode a decoded bundle the way a competent
// forger would (counts updated, canonical form kept), so verify has to catch the lie on substance.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Store } from '../store/store.ts';
import type { Backend } from '../store/testing.ts';
import { Registry } from '../registry/registry.ts';
import { classify } from '../ingest/classify.ts';
import { writeBatch } from '../ingest/write-batch.ts';
import { heartbeatMessage, newDevice, TEST_NETWORK, type TestDevice } from '../ingest/testing.ts';
import { nativeVerifier } from '../../shared/crypto/native.ts';
import { closeDueEpochs } from '../epochs/close-epoch.ts';
import { epochEndMs, type EpochTiming } from '../../shared/epoch-timing.ts';
import type { RewardParams } from '../../shared/rewards/reward-params.ts';
import { KeyRotation, signIdentity } from '../../shared/protocol/identity.ts';
import { toHex } from '../../shared/hex.ts';
import { buildEpochBundle, type BuiltBundle } from './build-bundle.ts';
import { decodeBundle, encodeBundle, compressBundle, uncompressBundle, type Bundle } from './bundle-format.ts';
import { readFileSync } from 'node:fs';

export const FIXTURE_SLOT_MS = 1000;
export const FIXTURE_PARAMS: RewardParams = {
  version: 1,
  emissionPerEpoch: 1_000_000n,
  availabilityBps: 6000,
  minUptimeBps: 5000,
  metrics: [{ metricId: 1, weight: 3n, capPerSlot: 100n, capPerEpoch: 1000n }],
};
export const OWNER_X = `0x${'aa'.repeat(20)}`;
export const OWNER_Y = `0x${'bb'.repeat(20)}`;

export type EpochFixture = {
  readonly store: Store;
  readonly cleanup: () => Promise<void>;
  readonly timing: EpochTiming;
  readonly networkId: number;
  readonly dir: string;
  readonly devices: { readonly a: TestDevice; readonly b: TestDevice; readonly c: TestDevice; readonly rotated: TestDevice; readonly rotatedNew: TestDevice; readonly revoked: TestDevice; readonly ownerless: TestDevice };
  /** Bundles of epochs 0 and 1. */
  readonly bundles: readonly [BuiltBundle, BuiltBundle];
  /** Genesis slot. */
  readonly g: number;
};

/**
 * Owners X and Y default to fixed addresses; pass real wallets' addresses to claim with them.
 * Epoch 0 (slots g..g+9): a (owner X) all 10 slots; b (X) 6 slots with capped metrics; c (Y) 3
 * slots (below the 50 % minimum); `rotated` (Y) slots 0-4 on its first key, then a signed key
 * rotation, slots 5-9 on the new key (seq continues); `revoked` (Y) 10 slots then revoked;
 * `ownerless` 10 slots. Rejections: a forged heartbeat and a duplicate. Epoch 1: a 5 slots, c 10.
 * Genesis lies an hour in the past so receive times precede the rotation (ingest order = time order).
 */
export async function buildEpochFixture(backend: Backend, owners: { readonly x: string; readonly y: string } = { x: OWNER_X, y: OWNER_Y }): Promise<EpochFixture> {
  const { store, cleanup } = await backend.open();
  const X = owners.x.toLowerCase(), Y = owners.y.toLowerCase();
  const slot = FIXTURE_SLOT_MS;
  const genesisMs = Math.floor((Date.now() - 3_600_000) / slot) * slot;
  const timing: EpochTiming = { genesisMs, slotMs: slot, epochSlots: 10, graceMs: 500 };
  const g = genesisMs / slot;
  const rules = { networkId: TEST_NETWORK, skewMs: 30_000, slotIntervalMs: slot, maxPayloadBytes: 1024, verifier: nativeVerifier };
  const registry = new Registry({ store, networkId: TEST_NETWORK });
  const a = newDevice(), b = newDevice(), c = newDevice(), rotated = newDevice(), rotatedNew = newDevice(), revoked = newDevice(), ownerless = newDevice();
  for (const [d, owner] of [[a, X], [b, X], [c, Y], [rotated, Y], [revoked, Y], [ownerless, null]] as const) {
    const r = await registry.addDevice({ id: d.deviceId, owner });
    if (!r.ok) throw new Error(r.message);
  }
  const ingest = async (key: TestDevice, seq: number, s: number, value = 10n) => {
    const ts = s * slot + 100;
    const c0 = classify(heartbeatMessage(key, seq, { ts, receivedAt: ts + 5, metrics: [{ id: 1, value }] }), rules);
    if (c0.kind !== 'candidate') throw new Error(`fixture heartbeat refused: ${c0.rejection.reason}`);
    const out = await writeBatch(store, [c0.candidate], []);
    if (out.accepted !== 1) throw new Error(`fixture heartbeat not accepted: ${out.verdicts[0]?.reason}`);
  };
  for (let i = 0; i < 10; i++) await ingest(a, i + 1, g + i);
  for (let i = 0; i < 6; i++) await ingest(b, i + 1, g + i, 500n);
  for (let i = 0; i < 3; i++) await ingest(c, i + 1, g + i);
  for (let i = 0; i < 10; i++) await ingest(revoked, i + 1, g + i);
  for (let i = 0; i < 10; i++) await ingest(ownerless, i + 1, g + i);
  for (let i = 0; i < 5; i++) await ingest(rotated, i + 1, g + i);
  const rot = await registry.rotate(rotated.deviceId, {
    message: toHex(signIdentity(KeyRotation, { networkId: TEST_NETWORK, oldKey: rotated.publicKey, newKey: rotatedNew.publicKey, nonce: 1n }, rotated.sign)),
  });
  if (!rot.ok) throw new Error(`rotation refused: ${rot.message}`);
  for (let i = 5; i < 10; i++) await ingest(rotatedNew, i + 1, g + i);
  // Rejections received inside epoch 0: a forged heartbeat (one metric byte changed after signing)
  // and a redelivered duplicate.
  const forged = heartbeatMessage(a, 11, { ts: (g + 9) * slot + 300, receivedAt: (g + 9) * slot + 301 });
  forged.raw[60] = forged.raw[60]! ^ 1;
  const fc = classify(forged, rules);
  const dup = classify(heartbeatMessage(a, 3, { ts: (g + 2) * slot + 100, receivedAt: (g + 2) * slot + 105, metrics: [{ id: 1, value: 10n }] }), rules);
  if (fc.kind !== 'reject' || dup.kind !== 'candidate') throw new Error('fixture rejections did not classify as expected');
  await writeBatch(store, [dup.candidate], [fc.rejection]);
  const rev = await registry.revoke(revoked.deviceId);
  if (!rev.ok) throw new Error(rev.message);
  // Epoch 1: a 5 slots (exactly the minimum), c all 10.
  for (let i = 0; i < 5; i++) await ingest(a, 11 + i, g + 10 + i);
  for (let i = 0; i < 10; i++) await ingest(c, 4 + i, g + 10 + i);

  await closeDueEpochs(store, timing, FIXTURE_PARAMS, epochEndMs(timing, 1) + timing.graceMs);
  const dir = mkdtempSync(join(tmpdir(), 'pulse-bundles-'));
  const b0 = await buildEpochBundle(store, 0, { dir, timing, networkId: TEST_NETWORK });
  const b1 = await buildEpochBundle(store, 1, { dir, timing, networkId: TEST_NETWORK });
  return { store, cleanup, timing, networkId: TEST_NETWORK, dir, devices: { a, b, c, rotated, rotatedNew, revoked, ownerless }, bundles: [b0, b1], g };
}

/** Decode a bundle file written by buildEpochBundle. */
export function loadBundle(file: string): Bundle {
  const raw = uncompressBundle(readFileSync(file));
  if (!raw.ok) throw new Error(raw.message);
  const b = decodeBundle(raw.value);
  if (!b.ok) throw new Error(b.message);
  return b.value;
}

/** Re-encode a (tampered) bundle with consistent counts, gzip-compressed like a served file. */
export function reencode(b: Bundle): Buffer {
  const fixed: Bundle = {
    ...b,
    header: {
      ...b.header,
      counts: { devices: b.devices.length, heartbeats: b.heartbeats.length, rejections: b.rejections.length, scores: b.scores.length, rewards: b.rewards.length, previous: b.previous.length },
    },
  };
  return compressBundle(encodeBundle(fixed));
}
