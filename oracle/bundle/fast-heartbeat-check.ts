// The hot loop of `pulse verify`'s signature workers: the same verdict as
// verifyHeartbeat(raw, { verifier: nativeVerifier }) for a valid heartbeat, at a lower cost per call.
// A bundle lists each device's heartbeats together, so consecutive heartbeats share a key: the
// KeyObject (and its key-policy check, docs/protocol.md §Signatures rule 1) is reused without a hex
// conversion or map lookup, the signing input DOMAIN || body is written into one reused buffer, and
// nothing is decoded into objects. Anything that is not a plain valid heartbeat returns false, and
// the caller then runs verifyHeartbeat for the exact reason code, so the two can never disagree on
// a failure's code.
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { isAcceptablePublicKey } from '../../shared/crypto/noble.ts';
import { isCanonicalScalar } from '../../shared/crypto/signature-check.ts';
import { DOMAIN } from '../../shared/protocol/constants.ts';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const MAX_LEN = 119 + 10 * 16;

export class FastHeartbeatCheck {
  private lastKey = new Uint8Array(32);
  private lastObject: KeyObject | undefined | null = null; // null: no key yet; undefined: policy refused
  private readonly input = Buffer.alloc(DOMAIN.length + MAX_LEN);

  constructor() {
    this.input.set(DOMAIN, 0);
  }

  /** true only when the heartbeat is structurally valid and its signature verifies under the strict rules. */
  ok(raw: Uint8Array): boolean {
    const len = raw.length;
    if (len < 119 || raw[0] !== 0x01 || raw[1] !== 0x01) return false;
    const n = raw[54]!;
    if (n > 16 || len !== 119 + 10 * n) return false;
    // seq: 1 … 2^63 − 1 (top bit clear, not zero).
    if (raw[38]! & 0x80) return false;
    let nonzero = 0;
    for (let i = 38; i < 46; i++) nonzero |= raw[i]!;
    if (nonzero === 0) return false;
    let prev = -1;
    for (let m = 0; m < n; m++) {
      const id = (raw[55 + 10 * m]! << 8) | raw[56 + 10 * m]!;
      if (id <= prev) return false;
      prev = id;
    }
    const sig = raw.subarray(len - 64, len);
    if (!isCanonicalScalar(sig)) return false;
    const key = this.keyFor(raw);
    if (key === undefined) return false;
    const body = len - 64;
    this.input.set(raw.subarray(0, body), DOMAIN.length);
    try {
      return cryptoVerify(null, this.input.subarray(0, DOMAIN.length + body), key, sig);
    } catch {
      return false;
    }
  }

  private keyFor(raw: Uint8Array): KeyObject | undefined {
    let same = this.lastObject !== null;
    for (let i = 0; same && i < 32; i++) if (raw[6 + i] !== this.lastKey[i]) same = false;
    if (!same) {
      this.lastKey = raw.slice(6, 38);
      this.lastObject = isAcceptablePublicKey(this.lastKey) ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, this.lastKey]), format: 'der', type: 'spki' }) : undefined;
    }
    return this.lastObject ?? undefined;
  }
}
