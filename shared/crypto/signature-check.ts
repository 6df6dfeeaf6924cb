// The one Ed25519 contract every verifier in Pulse implements (docs/protocol.md §Signatures).
//
// RFC 8032 §5.1.7 lets a verifier check either the cofactored equation [8][S]B = [8]R + [8][k]A or
// the cofactorless one [S]B = R + [k]A, and the two disagree on crafted inputs with torsion
// components. Pulse removes that ambiguity so that every implementation agrees on every input:
//   1. the public key must be a canonical encoding (y < p, no "negative zero") of a point in the
//      prime-order subgroup: small-order and mixed-order keys are refused before any signature check
//      (node:crypto would otherwise accept a small-order key with a degenerate signature for any
//      message);
//   2. S must be < L (RFC 8032 §5.1.7 step 1, "non-canonical" otherwise);
//   3. R must be a canonical prime-order point, and the group equation must hold.
// With A and R both torsion-free the two equations are equivalent, so OpenSSL (cofactorless) and
// noble (cofactored, `zip215: false`) give the same answer.

/** Outcome of a signature check. 'ok' is the only accepting value. */
export type SignatureCheck = 'ok' | 'weak-key' | 'non-canonical' | 'bad';

export interface Ed25519Verifier {
  readonly name: string;
  /** Check `signature` over `message` by `publicKey` under the rules above. Never throws. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): SignatureCheck;
}

// L = 2^252 + 27742317777372353535851937790883648493, little-endian (RFC 8032 §5.1).
const L_LE = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

/** True when the S half of a 64-byte signature is < L (compared as a little-endian integer). */
export function isCanonicalScalar(signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i]!;
    const l = L_LE[i]!;
    if (s < l) return true;
    if (s > l) return false;
  }
  return false; // S == L
}
