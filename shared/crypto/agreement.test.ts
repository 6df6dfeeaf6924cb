// native (node:crypto / OpenSSL) and noble must give the same answer on every input
// (shared/crypto/signature-check.ts, docs/protocol.md §Signatures): valid signatures, mutated ones,
// the 8 small-order points and their non-canonical encodings, mixed-order keys, S + L, torsioned,
// small-order and non-canonical R. Without the key/R policy these are exactly the inputs on which
// cofactored (noble) and cofactorless (OpenSSL) verification disagree.
import { createPublicKey, verify as rawNodeVerify } from 'node:crypto';
import * as ed from '@noble/ed25519';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { L, mixedOrderKey, vectorSecretKey, nonCanonicalSmallOrderEncodings, numberToLE32, le32ToNumber, signWithNonce, SMALL_ORDER_POINTS, withSPlusL } from '../../scripts/gen-vectors.ts';
import { NativeVerifier } from './native.ts';
import { isAcceptablePublicKey, noblePublicKey, nobleSign, nobleVerifier } from './noble.ts';
import { isCanonicalScalar, type SignatureCheck } from './signature-check.ts';
import { concatBytes, fromHex } from '../hex.ts';
import { signerFor } from '../protocol/signer.ts';

const native = new NativeVerifier(10_000);
const smallOrder = SMALL_ORDER_POINTS.map((h) => fromHex(h)!);
const nonCanonical = nonCanonicalSmallOrderEncodings().map((h) => fromHex(h)!);

function both(sig: Uint8Array, msg: Uint8Array, key: Uint8Array): SignatureCheck {
  const a = native.verify(sig, msg, key);
  const b = nobleVerifier.verify(sig, msg, key);
  expect(a, `native=${a} noble=${b}`).toBe(b);
  return a;
}

// Noble point arithmetic costs milliseconds per operation, so most properties draw keys from a
// pool of 32 fixed keys (public keys computed once) and sign with the fast native signer; the
// first property uses fresh random keys.
const POOL = Array.from({ length: 32 }, (_, i) => {
  const sk = vectorSecretKey(`agreement pool ${i}`);
  return { sk, pk: noblePublicKey(sk), sign: signerFor(sk) };
});
const poolArb = fc.constantFrom(...POOL);
const secretArb = fc.uint8Array({ minLength: 32, maxLength: 32 });
const msgArb = fc.uint8Array({ maxLength: 200 });
const torsionArb = fc.integer({ min: 1, max: 7 }).map((i) => SMALL_ORDER_POINTS[i]!);

describe('the small-order table', () => {
  it('holds the 8 distinct points of order dividing 8, each canonical', () => {
    const orders = smallOrder.map((b) => {
      const p = ed.Point.fromBytes(b, false);
      expect(p.isSmallOrder()).toBe(true);
      let order = 1;
      for (let q = p; !q.is0(); q = q.add(p)) order++;
      return order;
    });
    expect(orders.sort()).toEqual([1, 2, 4, 4, 8, 8, 8, 8]);
    expect(new Set(SMALL_ORDER_POINTS).size).toBe(8);
  });

  it('has 6 non-canonical encodings of small-order points (y ≥ p, negative zero)', () => {
    expect(nonCanonical.length).toBe(6);
    for (const b of nonCanonical) expect(() => ed.Point.fromBytes(b, false)).toThrow();
  });
});

describe('native and noble agree', () => {
  it('on valid signatures of random keys and messages: both ok', () => {
    fc.assert(
      fc.property(secretArb, msgArb, (sk, msg) => {
        expect(both(nobleSign(msg, sk), msg, noblePublicKey(sk))).toBe('ok');
      }),
      { numRuns: 100 },
    );
  });

  it('on signatures with one or more bits flipped in the signature, message or key', () => {
    fc.assert(
      fc.property(poolArb, fc.uint8Array({ minLength: 1, maxLength: 120 }), fc.array(fc.tuple(fc.constantFrom('sig', 'msg', 'key'), fc.nat()), { minLength: 1, maxLength: 3 }), ({ sign, pk }, msg, flips) => {
        const sig = sign(msg);
        const key = pk;
        const parts = { sig: sig.slice(), msg: msg.slice(), key: key.slice() };
        for (const [where, at] of flips) {
          const b = parts[where as keyof typeof parts];
          b[(at >> 3) % b.length]! ^= 1 << (at & 7);
        }
        const r = both(parts.sig, parts.msg, parts.key);
        const changed = ['sig', 'msg', 'key'].some((k) => Buffer.compare(parts[k as keyof typeof parts], k === 'sig' ? sig : k === 'msg' ? msg : key) !== 0);
        if (changed) expect(r).not.toBe('ok');
      }),
      { numRuns: 800 },
    );
  });

  it('on random bytes as key and signature', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), msgArb, fc.uint8Array({ minLength: 32, maxLength: 32 }), (sig, msg, key) => {
        expect(both(sig, msg, key)).not.toBe('ok');
      }),
      { numRuns: 500 },
    );
  });

  it('on every small-order key and non-canonical encoding, with degenerate and random signatures: weak-key', () => {
    const keyArb = fc.constantFrom(...smallOrder, ...nonCanonical);
    const sigArb = fc.oneof(
      fc.constant(concatBytes(smallOrder[0]!, new Uint8Array(32))), // R = identity, S = 0
      fc.tuple(fc.constantFrom(...smallOrder, ...nonCanonical), fc.bigInt({ min: 0n, max: L - 1n })).map(([r, s]) => concatBytes(r, numberToLE32(s))),
      fc.uint8Array({ minLength: 64, maxLength: 64 }),
    );
    fc.assert(
      fc.property(keyArb, sigArb, msgArb, (key, sig, msg) => {
        expect(both(sig, msg, key)).toBe('weak-key');
      }),
      { numRuns: 1000 },
    );
  });

  it('on mixed-order keys (valid key + torsion point) signed so the cofactored equation holds: weak-key', () => {
    fc.assert(
      fc.property(poolArb, msgArb, torsionArb, fc.bigInt({ min: 1n, max: L - 1n }), ({ sk, pk }, msg, t, r) => {
        const mixed = mixedOrderKey(pk, t);
        const sig = signWithNonce(sk, msg, r, { publicKeyBytes: mixed });
        // The raw cofactored check (noble zip215: false) accepts it; the policy must not.
        expect(ed.verify(sig, msg, mixed, { zip215: false })).toBe(true);
        expect(both(sig, msg, mixed)).toBe('weak-key');
      }),
      { numRuns: 100 },
    );
  });

  it('on S + L (and S + 2L … while < 2^256): non-canonical', () => {
    fc.assert(
      fc.property(poolArb, msgArb, fc.integer({ min: 1, max: 15 }), ({ sign, pk }, msg, times) => {
        const sig = sign(msg);
        let s = le32ToNumber(sig.subarray(32));
        s += BigInt(times) * L;
        const bad = times === 1 ? withSPlusL(sig) : concatBytes(sig.subarray(0, 32), numberToLE32(s));
        expect(isCanonicalScalar(bad)).toBe(false);
        expect(both(bad, msg, pk)).toBe('non-canonical');
      }),
      { numRuns: 100 },
    );
  });

  it('on R with a torsion component (cofactored-only valid): bad', () => {
    fc.assert(
      fc.property(poolArb, msgArb, torsionArb, fc.bigInt({ min: 1n, max: L - 1n }), ({ sk, pk: key }, msg, t, r) => {
        const sig = signWithNonce(sk, msg, r, { torsion: t });
        expect(ed.verify(sig, msg, key, { zip215: false })).toBe(true);
        expect(both(sig, msg, key)).toBe('bad');
      }),
      { numRuns: 100 },
    );
  });

  it('on small-order R with S = k·a: bad, except R = identity which is a valid (nonce 0) signature', () => {
    fc.assert(
      fc.property(poolArb, msgArb, fc.integer({ min: 0, max: 7 }), ({ sk, pk: key }, msg, i) => {
        const sig = signWithNonce(sk, msg, 0n, { torsion: SMALL_ORDER_POINTS[i]! });
        expect(both(sig, msg, key)).toBe(i === 0 ? 'ok' : 'bad');
      }),
      { numRuns: 100 },
    );
  });

  it('on non-canonical R encodings with S chosen for the decoded point: bad', () => {
    fc.assert(
      fc.property(poolArb, msgArb, fc.constantFrom(...nonCanonical), ({ sk, pk: key }, msg, rBytes) => {
        const sig = signWithNonce(sk, msg, 0n, { rBytes });
        expect(both(sig, msg, key)).toBe('bad');
      }),
      { numRuns: 100 },
    );
  });

  it('verifyAsync (threadpool) gives the same answers as verify', async () => {
    const cases = fc.sample(fc.tuple(poolArb, msgArb, fc.nat({ max: 64 * 8 + 5 })), { numRuns: 300, seed: 7 });
    for (const [{ sign, pk }, msg, bit] of cases) {
      const sig = sign(msg);
      if (bit < 512) sig[bit >> 3]! ^= 1 << (bit & 7);
      const key = bit === 512 ? smallOrder[bit % 8]! : pk;
      expect(await native.verifyAsync(sig, msg, key)).toBe(native.verify(sig, msg, key));
    }
  });

  it('the key policy in noble.ts matches the independent statement (canonical, not small order, torsion-free)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), poolArb.map((k) => k.pk), fc.tuple(poolArb, torsionArb).map(([k, t]) => mixedOrderKey(k.pk, t)), fc.constantFrom(...smallOrder, ...nonCanonical)), (key) => {
        let expected: boolean;
        try {
          const p = ed.Point.fromBytes(key, true);
          expected = Buffer.compare(p.toBytes(), key) === 0 && !p.isSmallOrder() && p.isTorsionFree();
        } catch {
          expected = false;
        }
        expect(isAcceptablePublicKey(key)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe('why the key policy exists', () => {
  it('raw node:crypto accepts the identity key with R = identity, S = 0 for any message; Pulse refuses it', () => {
    const spki = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), smallOrder[0]!]), format: 'der', type: 'spki' });
    const degenerate = concatBytes(smallOrder[0]!, new Uint8Array(32));
    for (const msg of [new Uint8Array(0), new TextEncoder().encode('any message at all')]) {
      expect(rawNodeVerify(null, msg, spki, degenerate)).toBe(true);
      expect(both(degenerate, msg, smallOrder[0]!)).toBe('weak-key');
    }
  });
});
