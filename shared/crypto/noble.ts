// @noble/ed25519: the portable reference verifier and signer (device-sim, browsers, vectors).
// Roughly 15× slower than node:crypto, so it never sits on a hot path; shared/crypto/agreement.test.ts
// checks that it and the native verifier agree on every vector and on thousands of random cases.
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { isCanonicalScalar, type Ed25519Verifier, type SignatureCheck } from './signature-check.ts';

// noble's sync API needs a SHA-512 implementation wired in.
ed.hashes.sha512 = sha512;

/** Key policy (docs/protocol.md §Signatures rule 1): canonical, not small order, torsion-free. */
export function isAcceptablePublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  try {
    const A = ed.Point.fromBytes(publicKey, false); // strict: y < p, no x = 0 with sign bit set
    return !A.isSmallOrder() && A.isTorsionFree();
  } catch {
    return false;
  }
}

function isAcceptableR(r: Uint8Array): boolean {
  try {
    return ed.Point.fromBytes(r, false).isTorsionFree();
  } catch {
    return false;
  }
}

export const nobleVerifier: Ed25519Verifier = {
  name: 'noble',
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): SignatureCheck {
    if (!isAcceptablePublicKey(publicKey)) return 'weak-key';
    if (signature.length !== 64) return 'bad';
    if (!isCanonicalScalar(signature)) return 'non-canonical';
    if (!isAcceptableR(signature.subarray(0, 32))) return 'bad';
    try {
      return ed.verify(signature, message, publicKey, { zip215: false }) ? 'ok' : 'bad';
    } catch {
      return 'bad';
    }
  },
};

export function nobleSign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed.sign(message, secretKey);
}

export function noblePublicKey(secretKey: Uint8Array): Uint8Array {
  return ed.getPublicKey(secretKey);
}

/** A fresh 32-byte secret key (the RFC 8032 seed) from the platform CSPRNG. */
export function randomSecretKey(): Uint8Array {
  return ed.utils.randomSecretKey();
}
