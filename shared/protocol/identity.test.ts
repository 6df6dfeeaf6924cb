// Identity message properties (docs/protocol.md §Identity messages): round trips of all four kinds,
// no throw on any input, and the text field rules (1 … 64 UTF-8 bytes, exact bytes preserved).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vectorSecretKey } from '../../scripts/gen-vectors.ts';
import { NativeVerifier } from '../crypto/native.ts';
import { noblePublicKey, nobleVerifier } from '../crypto/noble.ts';
import { DOMAIN, MessageType } from './constants.ts';
import { encodeIdentityBody, KeyRotation, MakerCertificate, OwnerBinding, OwnerTransfer, signIdentity, verifyIdentity } from './identity.ts';
import { signerFor } from './signer.ts';
import { concatBytes, toHex } from '../hex.ts';

const native = new NativeVerifier();
const makerSk = vectorSecretKey('maker');
const makerPk = noblePublicKey(makerSk);
const devSk = vectorSecretKey('device-a');
const devPk = noblePublicKey(devSk);
const newPk = noblePublicKey(vectorSecretKey('device-a-rotated'));
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const address = fc.uint8Array({ minLength: 20, maxLength: 20 }).filter((a) => a.some((b) => b !== 0));
const utf8Len = (s: string) => new TextEncoder().encode(s).length;
// Full Unicode, well-formed (lone surrogates are refused by the encoder), 1 … 64 UTF-8 bytes.
const model = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter((s) => utf8Len(s) >= 1 && utf8Len(s) <= 64);

describe('identity messages round trip', () => {
  it('maker certificate', () => {
    fc.assert(
      fc.property(u32, model, u64, (networkId, m, issuedAt) => {
        const values = { networkId, makerKey: makerPk, deviceKey: devPk, model: m, issuedAt };
        const bytes = signIdentity(MakerCertificate, values, signerFor(makerSk));
        const r = verifyIdentity(MakerCertificate, bytes, { verifier: native, networkId });
        if (!r.ok) throw new Error(`${r.code} ${r.message}`);
        expect(r.value.values).toEqual(values);
        expect(toHex(r.value.signerKey)).toBe(toHex(makerPk));
        expect(bytes.length).toBe(2 + 4 + 32 + 32 + 1 + utf8Len(m) + 8 + 64);
      }),
      { numRuns: 200 },
    );
  });

  it('owner binding and owner transfer', () => {
    fc.assert(
      fc.property(u32, address, u64, (networkId, owner, nonce) => {
        const b = { networkId, deviceKey: devPk, owner, nonce };
        const rb = verifyIdentity(OwnerBinding, signIdentity(OwnerBinding, b, signerFor(devSk)), { verifier: native, networkId });
        expect(rb.ok && rb.value.values).toEqual(b);
        const t = { networkId, deviceKey: devPk, newOwner: owner, nonce };
        const tb = signIdentity(OwnerTransfer, t, signerFor(devSk));
        const rt = verifyIdentity(OwnerTransfer, tb, { verifier: native, networkId });
        expect(rt.ok && rt.value.values).toEqual(t);
        expect(tb.length).toBe(2 + 4 + 32 + 20 + 8 + 64);
      }),
      { numRuns: 200 },
    );
  });

  it('key rotation', () => {
    fc.assert(
      fc.property(u32, u64, (networkId, nonce) => {
        const v = { networkId, oldKey: devPk, newKey: newPk, nonce };
        const r = verifyIdentity(KeyRotation, signIdentity(KeyRotation, v, signerFor(devSk)), { verifier: native });
        expect(r.ok && r.value.values).toEqual(v);
      }),
      { numRuns: 100 },
    );
  });

  it('layout: version || type || fields || signature over DOMAIN || everything before it', () => {
    const v = { networkId: 7, oldKey: devPk, newKey: newPk, nonce: 9n };
    const bytes = signIdentity(KeyRotation, v, signerFor(devSk, 'noble'));
    const body = concatBytes(Uint8Array.of(1, MessageType.KEY_ROTATION), Uint8Array.of(0, 0, 0, 7), devPk, newPk, Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 9));
    expect(toHex(bytes.subarray(0, -64))).toBe(toHex(body));
    expect(toHex(bytes.subarray(-64))).toBe(toHex(signerFor(devSk)(concatBytes(DOMAIN, body))));
  });
});

describe('text fields', () => {
  const cert = (m: string) => ({ networkId: 1, makerKey: makerPk, deviceKey: devPk, model: m, issuedAt: 0n });

  it('keep a leading byte-order mark (the signed bytes are the text)', () => {
    const bytes = signIdentity(MakerCertificate, cert('\u{feff}PX'), signerFor(makerSk));
    const r = verifyIdentity(MakerCertificate, bytes, { verifier: native });
    expect(r.ok && r.value.values.model).toBe('\u{feff}PX');
  });

  it('refuse lone surrogates, empty text and more than 64 UTF-8 bytes when encoding', () => {
    expect(() => encodeIdentityBody(MakerCertificate, cert('PX\uD800'))).toThrow(RangeError);
    expect(() => encodeIdentityBody(MakerCertificate, cert('\uDC00'))).toThrow(RangeError);
    expect(() => encodeIdentityBody(MakerCertificate, cert(''))).toThrow(RangeError);
    expect(() => encodeIdentityBody(MakerCertificate, cert('é'.repeat(33)))).toThrow(RangeError);
    expect(encodeIdentityBody(MakerCertificate, cert('é'.repeat(32))).length).toBe(2 + 4 + 64 + 1 + 64 + 8);
    expect(encodeIdentityBody(MakerCertificate, cert('🌍')).length).toBe(2 + 4 + 64 + 1 + 4 + 8);
  });

  it('refuse more than 64 bytes when decoding, even when signed', () => {
    const body = concatBytes(Uint8Array.of(1, 3, 0, 0, 0, 1), makerPk, devPk, Uint8Array.of(65), new Uint8Array(65).fill(0x41), new Uint8Array(8));
    const bytes = concatBytes(body, signerFor(makerSk)(concatBytes(DOMAIN, body)));
    const r = verifyIdentity(MakerCertificate, bytes, { verifier: native });
    expect(r.ok ? 'ok' : r.code).toBe('MSG_BAD_FIELD');
  });
});

describe('identity decoding never throws', () => {
  const specs = [MakerCertificate, OwnerBinding, OwnerTransfer, KeyRotation] as const;
  const run = (bytes: Uint8Array) => {
    for (const verifier of [native, nobleVerifier]) {
      const results = [
        verifyIdentity(MakerCertificate, bytes, { verifier, networkId: 1 }),
        verifyIdentity(OwnerBinding, bytes, { verifier, networkId: 1 }),
        verifyIdentity(OwnerTransfer, bytes, { verifier }),
        verifyIdentity(KeyRotation, bytes, { verifier }),
      ];
      for (const r of results) if (!r.ok) expect(r.code).toMatch(/^MSG_/);
    }
  };

  it('on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 250 }), run), { numRuns: 2000 });
  });

  it('on bytes with the right version and type byte and random fields', () => {
    fc.assert(
      fc.property(fc.constantFrom(...specs), fc.uint8Array({ minLength: 60, maxLength: 220 }), (spec, rest) => run(concatBytes(Uint8Array.of(1, spec.type), rest))),
      { numRuns: 1000 },
    );
  });

  it('native and noble agree on mutated valid messages', () => {
    const valid = signIdentity(MakerCertificate, { networkId: 1, makerKey: makerPk, deviceKey: devPk, model: 'PX-1', issuedAt: 5n }, signerFor(makerSk));
    fc.assert(
      fc.property(fc.nat({ max: valid.length * 8 - 1 }), (bit) => {
        const b = valid.slice();
        b[bit >> 3]! ^= 1 << (bit & 7);
        const x = verifyIdentity(MakerCertificate, b, { verifier: native, networkId: 1 });
        const y = verifyIdentity(MakerCertificate, b, { verifier: nobleVerifier, networkId: 1 });
        expect(x.ok ? 'ok' : x.code).toBe(y.ok ? 'ok' : y.code);
        expect(x.ok).toBe(false);
      }),
      { numRuns: 400 },
    );
  });
});
