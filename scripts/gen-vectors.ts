// Writes the committed test vectors shared/vectors/{heartbeat,connect-token,identity}.json
// (docs/protocol.md §Test vectors). Everything is deterministic: secret keys are SHA-256 of fixed
// labels, timestamps and nonces are constants and Ed25519 signing is deterministic (RFC 8032 §5.1.6),
// so regenerating gives the same bytes; shared/vectors.test.ts regenerates in memory and compares.
//
//   npx tsx scripts/gen-vectors.ts
//
// Broken cases are built by construction (a field written wrong, then signed where that matters) and
// each declares the reason code a receiver must return. Those codes are written here from the spec,
// never computed by running the verifier, so the vectors test the codecs instead of echoing them.
// The Ed25519 crafting helpers below (small-order points, signatures with a chosen nonce, torsion
// components) are exported for the property tests in shared/.
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as ed from '@noble/ed25519';
import { noblePublicKey, nobleSign } from '../shared/crypto/noble.ts';
import { DOMAIN, MAX_SEQ, MessageType } from '../shared/protocol/constants.ts';
import { signHeartbeat, type HeartbeatFields } from '../shared/protocol/heartbeat.ts';
import { connectTokenSigningInput, makeConnectToken } from '../shared/protocol/connect-token.ts';
import { KeyRotation, MakerCertificate, OwnerBinding, OwnerTransfer, signIdentity } from '../shared/protocol/identity.ts';
import { heartbeatTopic } from '../shared/protocol/topics.ts';
import { concatBytes, fromHex, toHex } from '../shared/hex.ts';
import type { HeartbeatCode, IdentityCode, TokenCode } from '../shared/error-codes.ts';

// ------------------------------------------------------------------------------------------------
// Ed25519 crafting helpers (RFC 8032 §5.1). Independent of shared/crypto: they use noble's point
// arithmetic directly so tests can build inputs the policy in shared/crypto/signature-check.ts must
// refuse.

/** Group order L (RFC 8032 §5.1). */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;
/** Field prime p = 2^255 − 19. */
export const P = (1n << 255n) - 19n;

/** The 8 points of order dividing 8, canonical encodings ("Taming the many EdDSAs", table 6). */
export const SMALL_ORDER_POINTS: readonly string[] = [
  '0100000000000000000000000000000000000000000000000000000000000000', // identity, order 1
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // (0, −1), order 2
  '0000000000000000000000000000000000000000000000000000000000000080', // order 4
  '0000000000000000000000000000000000000000000000000000000000000000', // order 4
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85', // order 8
];

export function numberToLE32(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let v = n;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function le32ToNumber(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/**
 * Non-canonical encodings of small-order points: y ≥ p (y = p, p + 1 with either sign bit) and the
 * "negative zero" x = 0 with the sign bit set (for y = 1 and y = −1). Found by decoding every
 * candidate leniently (ZIP-215 rules) and keeping the small-order ones that are not canonical.
 */
export function nonCanonicalSmallOrderEncodings(): string[] {
  const out: string[] = [];
  const ys = [0n, 1n, P - 1n, P, P + 1n, ...Array.from({ length: 17 }, (_, i) => P + 2n + BigInt(i))];
  for (const y of ys) {
    for (const sign of [0, 0x80]) {
      const enc = numberToLE32(y);
      enc[31]! |= sign;
      let point: InstanceType<typeof ed.Point>;
      try {
        point = ed.Point.fromBytes(enc, true);
      } catch {
        continue;
      }
      if (point.isSmallOrder() && toHex(point.toBytes()) !== toHex(enc)) out.push(toHex(enc));
    }
  }
  return out;
}

/** Independent statement of the key policy: canonical encoding, not small order, torsion-free. */
export function keyPolicyAccepts(publicKey: Uint8Array): boolean {
  let point: InstanceType<typeof ed.Point>;
  try {
    point = ed.Point.fromBytes(publicKey, true);
  } catch {
    return false;
  }
  return toHex(point.toBytes()) === toHex(publicKey) && !point.isSmallOrder() && point.isTorsionFree();
}

/** The secret scalar a of an RFC 8032 seed (§5.1.5). */
export function secretScalar(secretKey: Uint8Array): bigint {
  return ed.utils.getExtendedPublicKey(secretKey).scalar;
}

function challenge(r: Uint8Array, a: Uint8Array, message: Uint8Array): bigint {
  const h = createHash('sha512').update(r).update(a).update(message).digest();
  return le32ToNumber(new Uint8Array(h)) % L;
}

/**
 * A signature with a chosen nonce: R = [r]B + T (T an optional torsion point, given encoded),
 * S = r + k·a mod L with k = H(R || A || M). With T = identity and r = the RFC nonce this is the
 * ordinary signature. `publicKeyBytes` may differ from [a]B (e.g. a mixed-order key A + T′): the
 * challenge hashes the bytes the verifier will see.
 */
export function signWithNonce(secretKey: Uint8Array, message: Uint8Array, r: bigint, opts: { torsion?: string; publicKeyBytes?: Uint8Array; rBytes?: Uint8Array } = {}): Uint8Array {
  const a = secretScalar(secretKey);
  let R = r === 0n ? ed.Point.ZERO : ed.Point.BASE.multiply(r);
  if (opts.torsion !== undefined) R = R.add(ed.Point.fromBytes(fromHex(opts.torsion)!, true));
  const rBytes = opts.rBytes ?? R.toBytes();
  const A = opts.publicKeyBytes ?? noblePublicKey(secretKey);
  const k = challenge(rBytes, A, message);
  return concatBytes(rBytes, numberToLE32((r + k * a) % L));
}

/** Same signature with S replaced by S + L: the same group element, a non-canonical scalar. */
export function withSPlusL(signature: Uint8Array): Uint8Array {
  const s = le32ToNumber(signature.subarray(32)) + L;
  return concatBytes(signature.subarray(0, 32), numberToLE32(s));
}

/** A + T for an encoded torsion point T: a valid-looking key with a small-order component. */
export function mixedOrderKey(publicKey: Uint8Array, torsion: string): Uint8Array {
  return ed.Point.fromBytes(publicKey, false).add(ed.Point.fromBytes(fromHex(torsion)!, true)).toBytes();
}

// ------------------------------------------------------------------------------------------------
// Fixed inputs.

/** Secret key i: SHA-256 of a fixed label, so anyone can re-derive it. */
export function vectorSecretKey(label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`pulse test vector key ${label}`).digest());
}

/** 2026-01-01T00:00:00Z in unix ms: the fixed clock of every vector. */
export const VECTOR_TIME = 1_767_225_600_000n;
const U64_MAX = (1n << 64n) - 1n;

function signerOf(secretKey: Uint8Array): (m: Uint8Array) => Uint8Array {
  return (m) => nobleSign(m, secretKey);
}

function be(value: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let v = value;
  for (let i = size - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

type RawHeartbeat = {
  version?: number;
  type?: number;
  networkId: number;
  publicKey: Uint8Array;
  seq: bigint;
  timestamp: bigint;
  n?: number;
  metrics: readonly (readonly [number, bigint])[];
};

/** A heartbeat body written field by field from the byte table, with no validation. */
export function rawHeartbeatBody(h: RawHeartbeat): Uint8Array {
  return concatBytes(
    Uint8Array.of(h.version ?? 1, h.type ?? MessageType.HEARTBEAT),
    be(BigInt(h.networkId), 4),
    h.publicKey,
    be(h.seq, 8),
    be(h.timestamp, 8),
    Uint8Array.of(h.n ?? h.metrics.length),
    ...h.metrics.map(([id, value]) => concatBytes(be(BigInt(id), 2), be(value, 8))),
  );
}

/** Flip bit `bit` (0 = least significant of byte 0, counting up) of a copy of `bytes`. */
export function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = new Uint8Array(bytes); // a copy, also for a Buffer (whose slice() is a view)
  out[bit >> 3]! ^= 1 << (bit & 7);
  return out;
}

/**
 * The reason code the spec demands for a valid heartbeat with exactly one bit flipped, from the byte
 * table alone (docs/protocol.md §Heartbeat, §Rejection reasons): the field the bit lands in decides.
 * `ctx.networkId` / `ctx.topic` say which receiver checks apply.
 */
export function expectedCodeForFlip(valid: Uint8Array, bit: number, ctx: { networkId?: number; topic?: string }): HeartbeatCode {
  const byte = bit >> 3;
  const flipped = flipBit(valid, bit);
  const n = valid[54]!;
  const sigStart = 55 + 10 * n;
  if (byte === 0) return 'HB_BAD_VERSION';
  if (byte === 1) return 'HB_BAD_TYPE';
  if (byte < 6) return ctx.networkId !== undefined ? 'HB_WRONG_NETWORK' : 'HB_BAD_SIGNATURE';
  if (byte < 38) {
    if (ctx.topic !== undefined) return 'HB_TOPIC_MISMATCH';
    return keyPolicyAccepts(flipped.subarray(6, 38)) ? 'HB_BAD_SIGNATURE' : 'HB_WEAK_KEY';
  }
  if (byte < 46) {
    const seq = new DataView(flipped.buffer, flipped.byteOffset).getBigUint64(38, false);
    return seq === 0n || seq > MAX_SEQ ? 'HB_BAD_SEQ' : 'HB_BAD_SIGNATURE';
  }
  if (byte < 54) return 'HB_BAD_SIGNATURE';
  if (byte === 54) {
    const n2 = flipped[54]!;
    if (n2 > 16) return 'HB_TOO_MANY_METRICS';
    return n2 > n ? 'HB_TRUNCATED' : 'HB_BAD_LENGTH';
  }
  if (byte < sigStart) {
    const dv = new DataView(flipped.buffer, flipped.byteOffset);
    for (let i = 1; i < n; i++) if (dv.getUint16(55 + 10 * i, false) <= dv.getUint16(55 + 10 * (i - 1), false)) return 'HB_METRICS_UNORDERED';
    return 'HB_BAD_SIGNATURE';
  }
  if (byte >= sigStart + 32 && le32ToNumber(flipped.subarray(sigStart + 32, sigStart + 64)) >= L) return 'HB_NON_CANONICAL_SIGNATURE';
  return 'HB_BAD_SIGNATURE';
}

// ------------------------------------------------------------------------------------------------
// Heartbeat vectors.

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

type HbCtx = { networkId?: number; topic?: string };

function hbValid(name: string, label: string, f: Omit<HeartbeatFields, 'publicKey'>, note?: string): Json {
  const secretKey = vectorSecretKey(label);
  const publicKey = noblePublicKey(secretKey);
  const fields: HeartbeatFields = { ...f, publicKey };
  const bytes = signHeartbeat(fields, signerOf(secretKey));
  const body = bytes.subarray(0, bytes.length - 64);
  return {
    name,
    ...(note === undefined ? {} : { note }),
    secretKey: toHex(secretKey),
    publicKey: toHex(publicKey),
    deviceId: toHex(publicKey),
    topic: heartbeatTopic(toHex(publicKey)),
    networkId: f.networkId,
    seq: f.seq.toString(),
    timestamp: f.timestamp.toString(),
    metrics: f.metrics.map((m) => ({ id: m.id, value: m.value.toString() })),
    body: toHex(body),
    signedMessage: toHex(concatBytes(DOMAIN, body)),
    signature: toHex(bytes.subarray(bytes.length - 64)),
    hex: toHex(bytes),
  };
}

function hbBroken(name: string, hex: Uint8Array, expected: HeartbeatCode, context: HbCtx, note: string): Json {
  return { name, note, context: context as Json, expected, hex: toHex(hex) };
}

export function heartbeatVectors(): Json {
  const sk = vectorSecretKey('device-a');
  const pk = noblePublicKey(sk);
  const otherSk = vectorSecretKey('device-b');
  const otherPk = noblePublicKey(otherSk);
  const base = { networkId: 1, seq: 42n, timestamp: VECTOR_TIME, metrics: [{ id: 1, value: 3600n }, { id: 2, value: 125_000n }, { id: 7, value: 1n }] };
  const valid = [
    hbValid('no metrics, first heartbeat', 'device-a', { networkId: 1, seq: 1n, timestamp: VECTOR_TIME, metrics: [] }),
    hbValid('three metrics', 'device-a', base, 'the worked example of docs/protocol.md'),
    hbValid('limits: 16 metrics, seq 2^63−1, network 2^32−1, u64 values', 'device-b', {
      networkId: 0xffff_ffff,
      seq: MAX_SEQ,
      timestamp: VECTOR_TIME + 59_999n,
      metrics: Array.from({ length: 16 }, (_, i) => ({ id: i === 15 ? 0xffff : i * 100, value: i === 0 ? 0n : U64_MAX - BigInt(i) })),
    }),
  ];
  // A valid signature whose nonce is r = 0, so R is the identity: RFC 8032 accepts it under both
  // equations, and the policy does not refuse it (the identity is in the prime-order subgroup).
  const zeroNonceBody = rawHeartbeatBody({ networkId: 1, publicKey: pk, seq: 43n, timestamp: VECTOR_TIME + 60_000n, metrics: [] });
  const zeroNonce = concatBytes(zeroNonceBody, signWithNonce(sk, concatBytes(DOMAIN, zeroNonceBody), 0n));
  const edgeValid = [
    { name: 'R is the identity (nonce r = 0)', note: 'unusual but valid; every verifier must accept it', context: { networkId: 1 }, hex: toHex(zeroNonce) },
  ];

  const goodBytes = signHeartbeat({ ...base, publicKey: pk }, signerOf(sk));
  const goodBody = goodBytes.subarray(0, goodBytes.length - 64);
  const sign = (body: Uint8Array, key = sk) => concatBytes(body, nobleSign(concatBytes(DOMAIN, body), key));
  const raw = (over: Partial<RawHeartbeat>) =>
    rawHeartbeatBody({ networkId: 1, publicKey: pk, seq: 42n, timestamp: VECTOR_TIME, metrics: [[1, 3600n], [2, 125_000n], [7, 1n]], ...over });
  const net = { networkId: 1 };
  const broken: Json[] = [
    hbBroken('empty payload', new Uint8Array(0), 'HB_TRUNCATED', net, '0 bytes'),
    hbBroken('header cut at 54 bytes', goodBytes.subarray(0, 54), 'HB_TRUNCATED', net, 'the header alone is 55 bytes'),
    hbBroken('one byte short', goodBytes.subarray(0, goodBytes.length - 1), 'HB_TRUNCATED', net, 'n = 3 needs 149 bytes'),
    hbBroken('signature missing', goodBody, 'HB_TRUNCATED', net, 'body only, no signature'),
    hbBroken('one trailing byte', concatBytes(goodBytes, Uint8Array.of(0)), 'HB_BAD_LENGTH', net, 'no trailing bytes are allowed'),
    hbBroken('version 0x02', sign(raw({ version: 2 })), 'HB_BAD_VERSION', net, 'byte 0 must be 0x01 (signed, so only the version is wrong)'),
    hbBroken('type 0x02 (connect token)', sign(raw({ type: 2 })), 'HB_BAD_TYPE', net, 'byte 1 must be 0x01'),
    hbBroken('17 metrics', sign(raw({ metrics: Array.from({ length: 17 }, (_, i) => [i + 1, 1n] as const) })), 'HB_TOO_MANY_METRICS', net, 'n is at most 16'),
    hbBroken('n = 255', concatBytes(raw({ n: 255, metrics: [] }), new Uint8Array(64)), 'HB_TOO_MANY_METRICS', net, 'n is at most 16'),
    hbBroken('n says 4, three metrics present', sign(raw({ n: 4 })), 'HB_TRUNCATED', net, 'the payload ends before the signature n announces'),
    hbBroken('n says 2, three metrics present', sign(raw({ n: 2 })), 'HB_BAD_LENGTH', net, '10 bytes more than n announces'),
    hbBroken('metric ids repeated', sign(raw({ metrics: [[1, 1n], [1, 2n]] })), 'HB_METRICS_UNORDERED', net, 'ids must be strictly increasing'),
    hbBroken('metric ids decreasing', sign(raw({ metrics: [[7, 1n], [2, 2n]] })), 'HB_METRICS_UNORDERED', net, 'ids must be strictly increasing'),
    hbBroken('seq 0', sign(raw({ seq: 0n })), 'HB_BAD_SEQ', net, 'seq starts at 1'),
    hbBroken('seq 2^63', sign(raw({ seq: 1n << 63n })), 'HB_BAD_SEQ', net, 'seq must fit a signed 64-bit integer'),
    hbBroken('wrong network', goodBytes, 'HB_WRONG_NETWORK', { networkId: 2 }, 'signed for network 1, received on network 2'),
    hbBroken('topic of another device', goodBytes, 'HB_TOPIC_MISMATCH', { networkId: 1, topic: heartbeatTopic(toHex(otherPk)) }, 'the topic device id must be the key in the payload'),
    hbBroken('topic in upper case', goodBytes, 'HB_TOPIC_MISMATCH', { networkId: 1, topic: heartbeatTopic(toHex(pk).toUpperCase()) }, 'the device id is lowercase hex'),
    hbBroken('signed by another key', sign(goodBody, otherSk), 'HB_BAD_SIGNATURE', net, 'the payload key did not sign it'),
    hbBroken('signed without DOMAIN', concatBytes(goodBody, nobleSign(goodBody, sk)), 'HB_BAD_SIGNATURE', net, 'the signed message is DOMAIN || body, not body'),
    hbBroken('S + L', concatBytes(goodBody, withSPlusL(goodBytes.subarray(goodBytes.length - 64))), 'HB_NON_CANONICAL_SIGNATURE', net, 'the same signature with S + L: S must be < L (RFC 8032 §5.1.7)'),
    hbBroken('S = L', concatBytes(goodBody, goodBytes.subarray(goodBytes.length - 64, goodBytes.length - 32), numberToLE32(L)), 'HB_NON_CANONICAL_SIGNATURE', net, 'S must be < L'),
    hbBroken('S all ones', concatBytes(goodBody, goodBytes.subarray(goodBytes.length - 64, goodBytes.length - 32), new Uint8Array(32).fill(0xff)), 'HB_NON_CANONICAL_SIGNATURE', net, 'S must be < L'),
  ];
  // R problems: torsioned and small-order R pass a cofactored check but not a cofactorless one; the
  // policy refuses them in every verifier (docs/protocol.md §Signatures rule 3).
  const msg = (body: Uint8Array) => concatBytes(DOMAIN, body);
  broken.push(
    hbBroken('R with a torsion component', concatBytes(goodBody, signWithNonce(sk, msg(goodBody), 123_456_789n, { torsion: SMALL_ORDER_POINTS[4]! })), 'HB_BAD_SIGNATURE', net, 'R = [r]B + T8, S = r + k·a: valid under the cofactored equation only'),
    hbBroken('R of order 2, S = k·a', concatBytes(goodBody, signWithNonce(sk, msg(goodBody), 0n, { torsion: SMALL_ORDER_POINTS[1]! })), 'HB_BAD_SIGNATURE', net, 'R small order: valid under the cofactored equation only'),
    hbBroken('R non-canonical (y = p + 1 encodes the identity)', concatBytes(goodBody, signWithNonce(sk, msg(goodBody), 0n, { rBytes: fromHex(nonCanonicalSmallOrderEncodings().find((e) => e.startsWith('ee'))!)! })), 'HB_BAD_SIGNATURE', net, 'R must be a canonical encoding'),
  );
  // Key problems: refused before any signature check. A small-order key with the degenerate
  // signature (R = identity, S = 0) verifies for every message under node:crypto without the policy.
  const degenerate = concatBytes(fromHex(SMALL_ORDER_POINTS[0]!)!, new Uint8Array(32));
  SMALL_ORDER_POINTS.forEach((p, i) => {
    broken.push(hbBroken(`small-order key #${i}`, concatBytes(raw({ publicKey: fromHex(p)! }), degenerate), 'HB_WEAK_KEY', net, `key ${p}, degenerate signature R = identity, S = 0`));
  });
  nonCanonicalSmallOrderEncodings().forEach((p, i) => {
    broken.push(hbBroken(`non-canonical small-order key #${i}`, concatBytes(raw({ publicKey: fromHex(p)! }), degenerate), 'HB_WEAK_KEY', net, `key ${p} (y ≥ p or x = 0 with the sign bit)`));
  });
  const mixed = mixedOrderKey(pk, SMALL_ORDER_POINTS[4]!);
  const mixedBody = raw({ publicKey: mixed });
  broken.push(
    hbBroken('mixed-order key', concatBytes(mixedBody, signWithNonce(sk, msg(mixedBody), 987_654_321n, { publicKeyBytes: mixed })), 'HB_WEAK_KEY', net, 'A + T8 with S = r + k·a: valid under the cofactored equation only'),
  );
  const nonCanonicalKey = numberToLE32(P + 1n); // y = p + 1 ≡ 1
  broken.push(hbBroken('key not on the curve', concatBytes(raw({ publicKey: fromHex('02' + '00'.repeat(31))! }), degenerate), 'HB_WEAK_KEY', net, 'y = 2 has no x on the curve'));
  broken.push(hbBroken('key y = p + 1', concatBytes(raw({ publicKey: nonCanonicalKey }), degenerate), 'HB_WEAK_KEY', net, 'non-canonical encoding of the identity'));
  // Single flipped bits of the worked example, one or two per field.
  const flips: [number, string][] = [
    [1, 'version'], [8 + 2, 'type'], [5 * 8, 'network id'], [6 * 8 + 3, 'public key'], [37 * 8 + 7, 'public key sign bit'],
    [45 * 8 + 1, 'seq'], [38 * 8 + 7, 'seq top bit'], [53 * 8, 'timestamp'], [54 * 8, 'n'], [54 * 8 + 2, 'n'], [54 * 8 + 4, 'n'],
    [65 * 8 + 3, 'metric[1] id'], [66 * 8, 'metric[1] id'], [70 * 8, 'metric[1] value'], [85 * 8, 'signature R'],
    [(85 + 63) * 8 + 7, 'signature S top bit'], [(85 + 32) * 8, 'signature S low bit'],
  ];
  for (const [bit, field] of flips) {
    broken.push(hbBroken(`bit ${bit} flipped (${field})`, flipBit(goodBytes, bit), expectedCodeForFlip(goodBytes, bit, net), net, `byte ${bit >> 3}, mask 0x${(1 << (bit & 7)).toString(16).padStart(2, '0')}`));
  }
  // Clock rule (docs/protocol.md §Replay and time rules): |timestamp − receivedAt| ≤ skew, inclusive.
  const clock = [
    ['on time', 0, 'ok'],
    ['30 s late, at the limit', 30_000, 'ok'],
    ['30.001 s late', 30_001, 'HB_CLOCK_SKEW'],
    ['30 s early, at the limit', -30_000, 'ok'],
    ['30.001 s early', -30_001, 'HB_CLOCK_SKEW'],
  ].map(([name, offset, expected]) => ({ name: name as string, hex: toHex(goodBytes), timestamp: base.timestamp.toString(), receivedAt: Number(base.timestamp) + (offset as number), skewMs: 30_000, expected: expected as string }));
  return {
    description: 'Pulse wire format v1 heartbeat vectors (docs/protocol.md). valid: fields, key and the exact bytes; broken: bytes, receiver context and the reason code every receiver must return first; clock: the skew rule at its edges.',
    generator: 'npx tsx scripts/gen-vectors.ts',
    domain: toHex(DOMAIN),
    valid,
    edgeValid,
    broken,
    clock,
  };
}

// ------------------------------------------------------------------------------------------------
// Connect token vectors.

type TokenCase = { clientId: string; username: string | null; password: string | null; networkId: number; now: number; skewMs: number; lastAcceptedTimestamp?: string };

function tokenBroken(name: string, c: TokenCase, expected: TokenCode, note: string): Json {
  return { name, note, expected, ...c };
}

export function connectTokenVectors(): Json {
  const sk = vectorSecretKey('device-a');
  const pk = noblePublicKey(sk);
  const id = toHex(pk);
  const otherPk = noblePublicKey(vectorSecretKey('device-b'));
  const now = Number(VECTOR_TIME);
  const tokenAt = (networkId: number, ts: bigint, key = sk) => makeConnectToken(networkId, noblePublicKey(key), ts, signerOf(key));
  const valid = [
    { ts: VECTOR_TIME, networkId: 1, label: 'device-a', now },
    { ts: VECTOR_TIME + 30_000n, networkId: 0xffff_ffff, label: 'device-b', now, note: 'exactly at the +30 s skew limit' },
  ].map((v) => {
    const secretKey = vectorSecretKey(v.label);
    const publicKey = noblePublicKey(secretKey);
    const token = tokenAt(v.networkId, v.ts, secretKey);
    return {
      name: `network ${v.networkId}, timestamp ${v.ts}`,
      ...(v.note === undefined ? {} : { note: v.note }),
      secretKey: toHex(secretKey),
      publicKey: toHex(publicKey),
      clientId: toHex(publicKey),
      username: toHex(publicKey),
      networkId: v.networkId,
      timestamp: v.ts.toString(),
      signedMessage: toHex(connectTokenSigningInput(v.networkId, publicKey, v.ts)),
      password: toHex(token),
      now: v.now,
      skewMs: 30_000,
    };
  });
  const good = toHex(tokenAt(1, VECTOR_TIME));
  const c = (over: Partial<TokenCase>): TokenCase => ({ clientId: id, username: id, password: good, networkId: 1, now, skewMs: 30_000, ...over });
  const tsHex = toHex(be(VECTOR_TIME, 8));
  const degenerate = SMALL_ORDER_POINTS[0]! + '00'.repeat(32);
  const sig = good.slice(16);
  const broken: Json[] = [
    tokenBroken('password upper-case hex', c({ password: good.toUpperCase() }), 'TOKEN_BAD_ENCODING', 'lowercase hex only'),
    tokenBroken('password 142 characters', c({ password: good.slice(0, 142) }), 'TOKEN_BAD_ENCODING', 'exactly 144 characters'),
    tokenBroken('password 146 characters', c({ password: good + '00' }), 'TOKEN_BAD_ENCODING', 'exactly 144 characters'),
    tokenBroken('password with a non-hex character', c({ password: 'g' + good.slice(1) }), 'TOKEN_BAD_ENCODING', '[0-9a-f] only'),
    tokenBroken('no password', c({ password: null }), 'TOKEN_BAD_ENCODING', 'the token is the password'),
    tokenBroken('client id upper case', c({ clientId: id.toUpperCase(), username: id.toUpperCase() }), 'TOKEN_BAD_CLIENT_ID', 'the device id is lowercase hex'),
    tokenBroken('username differs from client id', c({ username: toHex(otherPk) }), 'TOKEN_BAD_CLIENT_ID', 'username must equal the client id'),
    tokenBroken('no username', c({ username: null }), 'TOKEN_BAD_CLIENT_ID', 'username must equal the client id'),
    tokenBroken('client id 62 characters', c({ clientId: id.slice(0, 62), username: id.slice(0, 62) }), 'TOKEN_BAD_CLIENT_ID', '64 hex characters'),
    tokenBroken('30.001 s ahead', c({ now: now - 30_001 }), 'TOKEN_CLOCK_SKEW', 'outside ±30 s'),
    tokenBroken('30.001 s behind', c({ now: now + 30_001 }), 'TOKEN_CLOCK_SKEW', 'outside ±30 s'),
    tokenBroken('same timestamp as the last accepted token', c({ lastAcceptedTimestamp: VECTOR_TIME.toString() }), 'TOKEN_STALE', 'a replayed token'),
    tokenBroken('older than the last accepted token', c({ lastAcceptedTimestamp: (VECTOR_TIME + 1n).toString() }), 'TOKEN_STALE', 'tokens must be newer'),
    tokenBroken('signed for network 2', c({ password: toHex(tokenAt(2, VECTOR_TIME)) }), 'TOKEN_BAD_SIGNATURE', 'the network id is in the signed message, not the token'),
    tokenBroken('token of another device', c({ password: toHex(tokenAt(1, VECTOR_TIME, vectorSecretKey('device-b'))) }), 'TOKEN_BAD_SIGNATURE', 'signed by another key'),
    tokenBroken('timestamp changed', c({ password: toHex(be(VECTOR_TIME + 1n, 8)) + sig }), 'TOKEN_BAD_SIGNATURE', 'the timestamp is signed'),
    tokenBroken('S + L', c({ password: tsHex + toHex(withSPlusL(fromHex(sig)!)) }), 'TOKEN_NON_CANONICAL_SIGNATURE', 'S must be < L'),
    ...SMALL_ORDER_POINTS.map((p, i) => tokenBroken(`small-order device id #${i}`, c({ clientId: p, username: p, password: tsHex + degenerate }), 'TOKEN_WEAK_KEY', 'degenerate signature R = identity, S = 0')),
    tokenBroken('mixed-order device id', c({ clientId: toHex(mixedOrderKey(pk, SMALL_ORDER_POINTS[6]!)), username: toHex(mixedOrderKey(pk, SMALL_ORDER_POINTS[6]!)) }), 'TOKEN_WEAK_KEY', 'A + T8'),
  ];
  return {
    description: 'Pulse connect token vectors (docs/protocol.md §Connect token): MQTT client id, username and password (144 lowercase hex characters), with the broker clock (now) and skew window.',
    generator: 'npx tsx scripts/gen-vectors.ts',
    domain: toHex(DOMAIN),
    valid,
    broken,
  };
}

// ------------------------------------------------------------------------------------------------
// Identity message vectors.

type IdentityKind = 'maker-certificate' | 'owner-binding' | 'owner-transfer' | 'key-rotation';

function idBroken(name: string, kind: IdentityKind, bytes: Uint8Array, expected: IdentityCode, note: string, networkId?: number): Json {
  return { name, kind, note, ...(networkId === undefined ? {} : { context: { networkId } }), expected, hex: toHex(bytes) };
}

export function identityVectors(): Json {
  const maker = vectorSecretKey('maker');
  const makerPk = noblePublicKey(maker);
  const dev = vectorSecretKey('device-a');
  const devPk = noblePublicKey(dev);
  const next = vectorSecretKey('device-a-rotated');
  const nextPk = noblePublicKey(next);
  const owner = fromHex('5b38da6a701c568545dcfcb03fcb875f56beddc4')!;
  const newOwner = fromHex('ab8483f64d9c6d1ecf9b849ae677dd3315835cb2')!;
  const cert = { networkId: 1, makerKey: makerPk, deviceKey: devPk, model: 'PX-1 weather station rev B', issuedAt: VECTOR_TIME };
  const certBytes = signIdentity(MakerCertificate, cert, signerOf(maker));
  const binding = { networkId: 1, deviceKey: devPk, owner, nonce: 1n };
  const bindingBytes = signIdentity(OwnerBinding, binding, signerOf(dev));
  const transfer = { networkId: 1, deviceKey: devPk, newOwner, nonce: 2n };
  const transferBytes = signIdentity(OwnerTransfer, transfer, signerOf(dev));
  const rotation = { networkId: 1, oldKey: devPk, newKey: nextPk, nonce: 3n };
  const rotationBytes = signIdentity(KeyRotation, rotation, signerOf(dev));
  const utf8Cert = { ...cert, model: '\u{feff}Zähler 🌍 v2' };
  const utf8CertBytes = signIdentity(MakerCertificate, utf8Cert, signerOf(maker));
  const hexOf = (v: Record<string, unknown>): Record<string, Json> =>
    Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x instanceof Uint8Array ? toHex(x) : typeof x === 'bigint' ? x.toString() : (x as Json)]));
  const validCase = (name: string, kind: IdentityKind, signer: Uint8Array, fields: Record<string, unknown>, bytes: Uint8Array, note?: string): Json => ({
    name,
    kind,
    ...(note === undefined ? {} : { note }),
    signerSecretKey: toHex(signer),
    fields: hexOf(fields),
    signedMessage: toHex(concatBytes(DOMAIN, bytes.subarray(0, bytes.length - 64))),
    hex: toHex(bytes),
  });
  const valid = [
    validCase('maker certificate', 'maker-certificate', maker, cert, certBytes),
    validCase('maker certificate, non-ASCII model with a leading BOM', 'maker-certificate', maker, utf8Cert, utf8CertBytes, 'the model is UTF-8 bytes as given; a leading U+FEFF is part of it'),
    validCase('owner binding', 'owner-binding', dev, binding, bindingBytes),
    validCase('owner transfer', 'owner-transfer', dev, transfer, transferBytes),
    validCase('key rotation', 'key-rotation', dev, rotation, rotationBytes),
  ];
  const signBody = (body: Uint8Array, key: Uint8Array) => concatBytes(body, nobleSign(concatBytes(DOMAIN, body), key));
  const certBody = (model: Uint8Array, makerKey = makerPk, deviceKey = devPk) =>
    concatBytes(Uint8Array.of(1, MessageType.MAKER_CERTIFICATE), be(1n, 4), makerKey, deviceKey, Uint8Array.of(model.length), model, be(VECTOR_TIME, 8));
  const bindBody = (addr: Uint8Array, key = devPk, networkId = 1n) => concatBytes(Uint8Array.of(1, MessageType.OWNER_BINDING), be(networkId, 4), key, addr, be(1n, 8));
  const rotBody = (newKey: Uint8Array, oldKey = devPk) => concatBytes(Uint8Array.of(1, MessageType.KEY_ROTATION), be(1n, 4), oldKey, newKey, be(3n, 8));
  const degenerate = concatBytes(fromHex(SMALL_ORDER_POINTS[0]!)!, new Uint8Array(32));
  const sigOf = (b: Uint8Array) => b.subarray(b.length - 64);
  const bodyOf = (b: Uint8Array) => b.subarray(0, b.length - 64);
  const broken: Json[] = [
    idBroken('empty', 'owner-binding', new Uint8Array(0), 'MSG_TRUNCATED', 'shorter than version, type and signature'),
    idBroken('signature cut short', 'owner-binding', bindingBytes.subarray(0, bindingBytes.length - 1), 'MSG_TRUNCATED', 'one byte short: the signature eats into the nonce'),
    idBroken('one trailing byte', 'key-rotation', concatBytes(rotationBytes, Uint8Array.of(0)), 'MSG_BAD_LENGTH', 'nothing may follow the signature'),
    idBroken('model length byte too small', 'maker-certificate', signBody(concatBytes(certBody(new TextEncoder().encode('PX-1')).subarray(0, 70), Uint8Array.of(3), new TextEncoder().encode('PX-1'), be(VECTOR_TIME, 8)), maker), 'MSG_BAD_LENGTH', 'length says 3, 4 bytes follow: one byte left over'),
    idBroken('version 0x02', 'owner-transfer', signBody(concatBytes(Uint8Array.of(2), bodyOf(transferBytes).subarray(1)), dev), 'MSG_BAD_VERSION', 'byte 0 must be 0x01'),
    idBroken('owner binding read as an owner transfer', 'owner-transfer', bindingBytes, 'MSG_BAD_TYPE', 'type 0x04 where 0x05 is expected'),
    idBroken('heartbeat type byte', 'key-rotation', signBody(concatBytes(Uint8Array.of(1, 1), bodyOf(rotationBytes).subarray(2)), dev), 'MSG_BAD_TYPE', 'type 0x01 where 0x06 is expected'),
    idBroken('zero owner address', 'owner-binding', signBody(bindBody(new Uint8Array(20)), dev), 'MSG_BAD_FIELD', 'the zero address owns nothing'),
    idBroken('empty model', 'maker-certificate', signBody(certBody(new Uint8Array(0)), maker), 'MSG_BAD_FIELD', 'model is 1 … 64 bytes'),
    idBroken('65-byte model', 'maker-certificate', signBody(certBody(new Uint8Array(65).fill(0x41)), maker), 'MSG_BAD_FIELD', 'model is 1 … 64 bytes'),
    idBroken('model not UTF-8', 'maker-certificate', signBody(certBody(Uint8Array.of(0x50, 0xc3, 0x28)), maker), 'MSG_BAD_FIELD', 'invalid UTF-8 sequence'),
    idBroken('wrong network', 'owner-binding', bindingBytes, 'MSG_WRONG_NETWORK', 'signed for network 1, received on network 7', 7),
    idBroken('rotation to a small-order key', 'key-rotation', signBody(rotBody(fromHex(SMALL_ORDER_POINTS[5]!)!), dev), 'MSG_WEAK_KEY', 'the new key must be acceptable too'),
    idBroken('rotation to a mixed-order key', 'key-rotation', signBody(rotBody(mixedOrderKey(nextPk, SMALL_ORDER_POINTS[2]!)), dev), 'MSG_WEAK_KEY', 'the new key must be prime order'),
    idBroken('certificate for a small-order device key', 'maker-certificate', signBody(certBody(new TextEncoder().encode('PX-1'), makerPk, fromHex(SMALL_ORDER_POINTS[3]!)!), maker), 'MSG_WEAK_KEY', 'the certified key must be acceptable'),
    idBroken('binding by a small-order key', 'owner-binding', concatBytes(bindBody(owner, fromHex(SMALL_ORDER_POINTS[0]!)!), degenerate), 'MSG_WEAK_KEY', 'degenerate signature R = identity, S = 0'),
    idBroken('certificate signed by the device, not the maker', 'maker-certificate', signBody(bodyOf(certBytes), dev), 'MSG_BAD_SIGNATURE', 'the maker key signs a certificate'),
    idBroken('rotation signed by the new key', 'key-rotation', signBody(bodyOf(rotationBytes), next), 'MSG_BAD_SIGNATURE', 'the old key signs a rotation'),
    idBroken('transfer nonce changed', 'owner-transfer', concatBytes(bodyOf(transferBytes).subarray(0, 65), Uint8Array.of(3), sigOf(transferBytes)), 'MSG_BAD_SIGNATURE', 'the nonce is signed'),
    idBroken('S + L', 'owner-binding', concatBytes(bodyOf(bindingBytes), withSPlusL(sigOf(bindingBytes))), 'MSG_NON_CANONICAL_SIGNATURE', 'S must be < L'),
  ];
  return {
    description: 'Pulse identity message vectors (docs/protocol.md §Identity messages): maker certificate (0x03), owner binding (0x04), owner transfer (0x05), key rotation (0x06).',
    generator: 'npx tsx scripts/gen-vectors.ts',
    domain: toHex(DOMAIN),
    valid,
    broken,
  };
}

export const VECTORS_DIR = fileURLToPath(new URL('../shared/vectors/', import.meta.url));

/** File name → exact file text, as committed under shared/vectors/. */
export function renderVectors(): Record<string, string> {
  const render = (v: Json) => JSON.stringify(v, null, 2) + '\n';
  return {
    'heartbeat.json': render(heartbeatVectors()),
    'connect-token.json': render(connectTokenVectors()),
    'identity.json': render(identityVectors()),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const [name, text] of Object.entries(renderVectors())) {
    writeFileSync(VECTORS_DIR + name, text);
    console.log(`wrote shared/vectors/${name} (${text.length} bytes)`);
  }
}
