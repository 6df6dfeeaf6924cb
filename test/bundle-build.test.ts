// Epoch bundles on both storage backends (issue 6 part 1): built from a real closed epoch,
// canonical and deterministic, hash = keccak256 of the uncompressed bytes, recorded in the epochs
// row, idempotent, refusing to change a recorded hash, and verifying with `pulse verify`'s logic.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { needs } from './support/services.ts';
import { pgliteBackend, postgresBackend, type Backend } from '../oracle/store/testing.ts';
import { buildEpochFixture, loadBundle, type EpochFixture } from '../oracle/bundle/testing.ts';
import { buildEpochBundle, readBundleContents } from '../oracle/bundle/build-bundle.ts';
import { encodeBundle, bundleHash, decodeBundle } from '../oracle/bundle/bundle-format.ts';
import { verifyBundleFile } from '../oracle/bundle/verify-bundle.ts';
import { checkSignatures } from '../oracle/bundle/check-signatures.ts';
import { toHex } from '../shared/hex.ts';
import { isPulseError } from '../shared/errors.ts';

const pgOk = await needs('postgres');
const backends: Backend[] = pgOk ? [pgliteBackend, postgresBackend] : [pgliteBackend];
const sigs = (raws: readonly Uint8Array[]) => checkSignatures(raws, { threads: 1 });

for (const backend of backends) {
  describe(`epoch bundle on ${backend.name}`, () => {
    let fx: EpochFixture;
    beforeAll(async () => {
      fx = await buildEpochFixture(backend);
    }, 60_000);
    afterAll(async () => {
      await fx?.cleanup();
      if (fx) rmSync(fx.dir, { recursive: true, force: true });
    });

    it('writes epoch-<n>.pulse.gz whose hash is keccak256 of the uncompressed bytes and records it', async () => {
      const [b0] = fx.bundles;
      expect(b0.file.endsWith('/epoch-0.pulse.gz')).toBe(true);
      const gz = readFileSync(b0.file);
      expect(gz.length).toBe(b0.bytes);
      const raw = gunzipSync(gz);
      expect(b0.hash).toBe(`0x${toHex(keccak_256(raw))}`);
      const row = (await fx.store.query<{ bundle_hash: string; bundle_file: string; bundle_bytes: string; status: string }>(
        'SELECT bundle_hash, bundle_file, bundle_bytes::text, status FROM epochs WHERE epoch = 0',
      ))[0]!;
      expect(row).toEqual({ bundle_hash: b0.hash, bundle_file: b0.file, bundle_bytes: String(b0.bytes), status: 'bundled' });
    });

    it('holds the inputs and results of the epoch', () => {
      const b = loadBundle(fx.bundles[0].file);
      const { a, b: bb, rotated, rotatedNew, revoked, ownerless } = fx.devices;
      expect(b.header).toMatchObject({ epoch: 0, networkId: fx.networkId, firstSlot: fx.g, slotCount: 10, scorerVersion: 'pulse-scorer/1', paramsVersion: 1 });
      expect(b.header.timing).toEqual({ ...fx.timing, skewMs: 30_000 });
      expect(b.heartbeats).toHaveLength(10 + 6 + 3 + 10 + 10 + 10);
      expect(b.devices).toHaveLength(6);
      const rot = b.devices.find((d) => d.device === rotated.deviceId)!;
      expect(rot.keys.map((k) => k.key)).toEqual([rotated.deviceId, rotatedNew.deviceId]);
      expect(rot.keys[0]!.retiredAtMs).not.toBeNull();
      expect(rot.keys[1]!.retiredAtMs).toBeNull();
      expect(rot.events.map((e) => e.event)).toEqual(['registered', 'key-rotation']);
      expect(rot.events[1]!.signed).toMatch(/^[0-9a-f]+$/);
      expect(b.devices.find((d) => d.device === revoked.deviceId)!.status).toBe('revoked');
      expect(b.devices.find((d) => d.device === ownerless.deviceId)!.owner).toBeNull();
      expect(b.rejections.map((r) => r.reason).sort()).toEqual(['HB_BAD_SIGNATURE', 'HB_DUPLICATE']);
      expect(b.scores.find((s) => s.device === bb.deviceId)!.reasons).toEqual(expect.arrayContaining(['METRIC_CAPPED', 'PARTIAL_UPTIME']));
      expect(b.scores.find((s) => s.device === a.deviceId)!.creditedSlots).toBe(10);
      expect(b.previous).toEqual([]);
      const oz = StandardMerkleTree.load(b.result.tree as unknown as Parameters<typeof StandardMerkleTree.load>[0]);
      expect(oz.root).toBe(b.result.root);
      // Epoch 1 starts from epoch 0's leaves.
      const b1 = loadBundle(fx.bundles[1].file);
      expect(b1.previous).toEqual(b.rewards.map((r) => ({ owner: r.owner, cumulative: r.cumulative })));
    });

    it('is deterministic: rebuilding from the store gives the same bytes, and a second build is a no-op', async () => {
      const again = await readBundleContents(fx.store, 0, { timing: fx.timing, networkId: fx.networkId });
      const bytes = encodeBundle(again.bundle);
      expect(bundleHash(bytes)).toBe(fx.bundles[0].hash);
      expect(Buffer.compare(bytes, gunzipSync(readFileSync(fx.bundles[0].file)))).toBe(0);
      const second = await buildEpochBundle(fx.store, 0, { dir: fx.dir, timing: fx.timing, networkId: fx.networkId });
      expect(second).toMatchObject({ hash: fx.bundles[0].hash, built: false });
      // Decoding and re-encoding is the identity (the format is canonical).
      const d = decodeBundle(bytes);
      expect(d.ok && Buffer.compare(encodeBundle(d.value), bytes)).toBe(0);
    });

    it('passes verification for both epochs', async () => {
      for (const [n, built] of fx.bundles.entries()) {
        const out = await verifyBundleFile(readFileSync(built.file), { epoch: n, expectedHash: built.hash, checkSignatures: sigs });
        expect(out).toMatchObject({ ok: true, summary: { epoch: n, hash: built.hash } });
      }
    });

    it('refuses an epoch that is not closed and a rebuild whose inputs changed', async () => {
      await expect(buildEpochBundle(fx.store, 7, { dir: fx.dir, timing: fx.timing, networkId: fx.networkId })).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUNDLE_NOT_CLOSED'));
      // Someone deletes an accepted heartbeat of the closed epoch 1 and the file goes missing.
      await fx.store.query('DELETE FROM heartbeats WHERE device_id = $1 AND seq = 11', [fx.devices.a.deviceId]);
      rmSync(fx.bundles[1].file);
      await expect(buildEpochBundle(fx.store, 1, { dir: fx.dir, timing: fx.timing, networkId: fx.networkId })).rejects.toSatisfy((e: unknown) => isPulseError(e, 'BUNDLE_CHANGED'));
    });
  });
}
