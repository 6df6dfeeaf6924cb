// node:crypto Ed25519 (OpenSSL): the hot-path verifier. KeyObjects are cached per public key,
// because re-creating one per verify halves throughput (../shared/DESIGN.md §Performance anchors),
// and the key policy check (noble point decoding, ~1 ms) is cached with it.
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { toHex } from '../hex.ts';
import { isAcceptablePublicKey } from './noble.ts';
import { isCanonicalScalar, type Ed25519Verifier, type SignatureCheck } from './signature-check.ts';

// DER prefixes for raw Ed25519 keys (RFC 8410): SubjectPublicKeyInfo and PKCS#8 PrivateKeyInfo.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** A cached public key: undefined KeyObject means the key failed the key policy. */
type CachedKey = { readonly key: KeyObject | undefined };

export class NativeVerifier implements Ed25519Verifier {
  readonly name = 'native';
  private readonly cache = new Map<string, CachedKey>();

  /** @param maxCachedKeys bound on cached keys; the oldest entry is dropped first. */
  constructor(private readonly maxCachedKeys = 1_000_000) {}

  /**
   * The cached key, or a fresh one that is NOT cached yet: only a key that has produced a valid
   * signature is remembered (`remember`), so a flood of random, never-verifying keys from
   * unauthenticated clients cannot fill the cache or evict real devices' keys.
   */
  private lookup(publicKey: Uint8Array): { id: string; entry: CachedKey; cached: boolean } {
    const id = toHex(publicKey);
    const hit = this.cache.get(id);
    if (hit !== undefined) return { id, entry: hit, cached: true };
    const entry = {
      key: isAcceptablePublicKey(publicKey) ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }) : undefined,
    };
    return { id, entry, cached: false };
  }

  private remember(id: string, entry: CachedKey): void {
    if (this.cache.size >= this.maxCachedKeys) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(id, entry);
  }

  private precheck(signature: Uint8Array, publicKey: Uint8Array): { key: KeyObject; onOk: () => void } | SignatureCheck {
    if (publicKey.length !== 32) return 'weak-key';
    const { id, entry, cached } = this.lookup(publicKey);
    if (entry.key === undefined) return 'weak-key';
    if (signature.length !== 64) return 'bad';
    if (!isCanonicalScalar(signature)) return 'non-canonical';
    return { key: entry.key, onOk: cached ? () => undefined : () => this.remember(id, entry) };
  }

  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): SignatureCheck {
    const pre = this.precheck(signature, publicKey);
    if (typeof pre === 'string') return pre;
    try {
      if (!cryptoVerify(null, message, pre.key, signature)) return 'bad';
      pre.onOk();
      return 'ok';
    } catch {
      return 'bad';
    }
  }

  /** Same contract, run on the libuv threadpool so verification can use every core. */
  verifyAsync(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): Promise<SignatureCheck> {
    const pre = this.precheck(signature, publicKey);
    if (typeof pre === 'string') return Promise.resolve(pre);
    return new Promise((resolve) => {
      try {
        cryptoVerify(null, message, pre.key, signature, (error, valid) => {
          if (error || !valid) return resolve('bad');
          pre.onOk();
          resolve('ok');
        });
      } catch {
        resolve('bad');
      }
    });
  }
}

/** One process-wide native verifier, so every component shares the key cache. */
export const nativeVerifier = new NativeVerifier();

/** A native signer for a 32-byte secret key (RFC 8032 seed); the KeyObject is built once. */
export function nativeSigner(secretKey: Uint8Array): (message: Uint8Array) => Uint8Array {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey]), format: 'der', type: 'pkcs8' });
  return (message) => new Uint8Array(cryptoSign(null, message, key));
}
