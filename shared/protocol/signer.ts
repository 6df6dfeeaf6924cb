// A signer is a function from message to 64-byte Ed25519 signature, so firmware-like code (noble),
// the hot path (node:crypto) and tests share one shape.
import { nativeSigner } from '../crypto/native.ts';
import { nobleSign } from '../crypto/noble.ts';

export type Signer = (message: Uint8Array) => Uint8Array;

/** A signer for a 32-byte secret key: native (default, fast) or noble (portable reference). */
export function signerFor(secretKey: Uint8Array, impl: 'native' | 'noble' = 'native'): Signer {
  if (secretKey.length !== 32) throw new RangeError('an Ed25519 secret key is 32 bytes');
  if (impl === 'noble') return (message) => nobleSign(message, secretKey);
  return nativeSigner(secretKey);
}
