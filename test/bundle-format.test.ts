// Bundle format properties (docs/bundle.md): the streaming keccak256 equals @noble/hashes for any
// input and any split; encode/decode round-trips; and a bundle with any single byte changed never
// passes verification against its original hash and never makes the verifier throw.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { Keccak256Stream, keccak256Hex } from '../oracle/bundle/keccak-stream.ts';
import { bundleHash, compressBundle, decodeBundle, encodeBundle } from '../oracle/bundle/bundle-format.ts';
import { syntheticBundle } from '../oracle/bundle/synthetic-bundle.ts';
import { verifyBundleFile } from '../oracle/bundle/verify-bundle.ts';
import { checkSignatures } from '../oracle/bundle/check-signatures.ts';
import { fromHex, toHex } from '../shared/hex.ts';
import { FastHeartbeatCheck } from '../oracle/bundle/fast-heartbeat-check.ts';
import { verifyHeartbeat } from '../shared/protocol/heartbeat.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';

const sigs = (raws: readonly Uint8Array[]) => checkSignatures(raws, { threads: 1 });
const PARAMS = { version: 3, emissionPerEpoch: 10n ** 21n + 7n, availabilityBps: 5000, minUptimeBps: 2500, metrics: [{ metricId: 1, weight: 2n, capPerSlot: 25n, capPerEpoch: 60n }] };

describe('keccak256 stream', () => {
  it('equals @noble/hashes keccak_256 for every length across block boundaries', () => {
    for (let len = 0; len <= 300; len++) {
      const b = Uint8Array.from({ length: len }, (_, i) => (i * 31 + len) & 0xff);
      expect(keccak256Hex(b)).toBe(`0x${toHex(keccak_256(b))}`);
    }
  });

  it('does not depend on how the input is split into updates', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), fc.array(fc.nat(1200), { maxLength: 6 }), (data, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (data.length + 1)))].sort((a, b) => a - b);
        const s = new Keccak256Stream();
        let at = 0;
        for (const p of points) {
          s.update(data.subarray(at, p));
          at = p;
        }
        s.update(data.subarray(at));
        expect(toHex(s.digest())).toBe(toHex(keccak_256(data)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('bundle encoding', () => {
  const bundle = syntheticBundle({ devices: 4, slots: 6, owners: 2, params: PARAMS, networkId: 9 });
  const bytes = encodeBundle(bundle);

  it('round-trips and verifies', async () => {
    const d = decodeBundle(bytes);
    expect(d.ok).toBe(true);
    expect(d.ok && Buffer.compare(encodeBundle(d.value), bytes)).toBe(0);
    const out = await verifyBundleFile(compressBundle(bytes), { epoch: 0, expectedHash: bundleHash(bytes), checkSignatures: sigs });
    expect(out).toMatchObject({ ok: true, summary: { heartbeats: 24, devices: 4, owners: 2 } });
  });

  it('never passes (and never throws) with any single byte changed', async () => {
    const hash = bundleHash(bytes);
    await fc.assert(
      fc.asyncProperty(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), async (at, x) => {
        const copy = Buffer.from(bytes);
        copy[at] = copy[at]! ^ x;
        const out = await verifyBundleFile(copy, { epoch: 0, expectedHash: hash, checkSignatures: sigs });
        expect(out.ok).toBe(false);
      }),
      { numRuns: 60 },
    );
  });
});

describe('fast heartbeat check of the signature workers', () => {
  const bundle = syntheticBundle({ devices: 3, slots: 4, owners: 1, params: PARAMS, networkId: 9 });
  const raws = bundle.heartbeats.map((h) => fromHex(h.raw)!);

  it('agrees with verifyHeartbeat on valid heartbeats and on any byte flip, truncation or extension', () => {
    const fast = new FastHeartbeatCheck();
    for (const r of raws) expect(fast.ok(r)).toBe(true);
    fc.assert(
      fc.property(fc.nat(raws.length - 1), fc.nat(200), fc.integer({ min: 0, max: 255 }), fc.constantFrom('flip', 'cut', 'grow'), (k, at, x, how) => {
        const r = raws[k]!;
        let m: Uint8Array;
        if (how === 'flip') {
          m = r.slice();
          m[at % m.length] = m[at % m.length]! ^ (x || 1);
        } else if (how === 'cut') m = r.slice(0, at % r.length);
        else m = Uint8Array.from([...r, x]);
        expect(fast.ok(m)).toBe(verifyHeartbeat(m, { verifier: nativeVerifier }).ok);
        expect(fast.ok(r)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });
});

