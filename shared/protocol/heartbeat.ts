// Heartbeat codec, wire format v1 (docs/protocol.md §Heartbeat). The one implementation used by the
// broker, the oracle, the simulator, the CLI and `pulse verify`.
//
// | offset | size | field                                                |
// | 0      | 1    | version = 0x01                                       |
// | 1      | 1    | type = 0x01                                          |
// | 2      | 4    | network id                                           |
// | 6      | 32   | device Ed25519 public key                            |
// | 38     | 8    | seq (1 … 2^63−1, strictly increasing per device)     |
// | 46     | 8    | timestamp, unix ms (device clock)                    |
// | 54     | 1    | n, metric count 0…16                                 |
// | 55     | 10·n | (metric id u16, value u64), ids strictly increasing  |
// | 55+10n | 64   | Ed25519 signature over DOMAIN || bytes[0 .. 55+10n)  |
import {
  DOMAIN,
  HEARTBEAT_HEADER_LENGTH,
  MAX_METRICS,
  MAX_SEQ,
  METRIC_LENGTH,
  MessageType,
  PROTOCOL_VERSION,
  PUBLIC_KEY_LENGTH,
  SIGNATURE_LENGTH,
  heartbeatLength,
} from './constants.ts';
import { view, writeU16, writeU32, writeU64 } from './byte-view.ts';
import { deviceIdOf } from './device-id.ts';
import { parseHeartbeatTopic } from './topics.ts';
import type { Signer } from './signer.ts';
import type { HeartbeatCode } from '../error-codes.ts';
import { err, ok, type Result } from '../result.ts';
import { concatBytes } from '../hex.ts';
import type { Ed25519Verifier } from '../crypto/signature-check.ts';

export type Metric = { readonly id: number; readonly value: bigint };

export type HeartbeatFields = {
  readonly networkId: number;
  readonly publicKey: Uint8Array;
  readonly seq: bigint;
  readonly timestamp: bigint;
  readonly metrics: readonly Metric[];
};

export type Heartbeat = HeartbeatFields & {
  /** Lowercase hex of the public key. */
  readonly deviceId: string;
  readonly signature: Uint8Array;
  /** The complete signed payload as received. */
  readonly raw: Uint8Array;
};

export type HeartbeatProblem = { readonly code: HeartbeatCode; readonly message: string };

/** The bytes that are signed: DOMAIN || body. */
export function heartbeatSigningInput(body: Uint8Array): Uint8Array {
  return concatBytes(DOMAIN, body);
}

/** Encode the unsigned body (bytes 0 .. 55+10n). Throws RangeError on fields no device may send. */
export function encodeHeartbeatBody(fields: HeartbeatFields): Uint8Array {
  const n = fields.metrics.length;
  if (n > MAX_METRICS) throw new RangeError(`at most ${MAX_METRICS} metrics`);
  if (fields.publicKey.length !== PUBLIC_KEY_LENGTH) throw new RangeError('public key must be 32 bytes');
  if (fields.seq < 1n || fields.seq > MAX_SEQ) throw new RangeError('seq must be in 1 … 2^63−1');
  const body = new Uint8Array(HEARTBEAT_HEADER_LENGTH + METRIC_LENGTH * n);
  const dv = view(body);
  body[0] = PROTOCOL_VERSION;
  body[1] = MessageType.HEARTBEAT;
  writeU32(dv, 2, fields.networkId);
  body.set(fields.publicKey, 6);
  writeU64(dv, 38, fields.seq);
  writeU64(dv, 46, fields.timestamp);
  body[54] = n;
  let prev = -1;
  fields.metrics.forEach((m, i) => {
    if (m.id <= prev) throw new RangeError('metric ids must be strictly increasing');
    prev = m.id;
    writeU16(dv, 55 + i * METRIC_LENGTH, m.id);
    writeU64(dv, 57 + i * METRIC_LENGTH, m.value);
  });
  return body;
}

/** Encode and sign a heartbeat: body || signature(DOMAIN || body). */
export function signHeartbeat(fields: HeartbeatFields, sign: Signer): Uint8Array {
  const body = encodeHeartbeatBody(fields);
  const sig = sign(heartbeatSigningInput(body));
  if (sig.length !== SIGNATURE_LENGTH) throw new RangeError('signer returned a signature that is not 64 bytes');
  return concatBytes(body, sig);
}

/**
 * Structural decode: length, version, type, metric count and order, seq range. No signature check.
 * Collects every structural problem it can still see (for `pulse hb inspect`); the first one is the
 * reason code a receiver records.
 */
function decodeStructure(bytes: Uint8Array, problems: HeartbeatProblem[]): Heartbeat | undefined {
  const len = bytes.length;
  if (len < 1) {
    problems.push({ code: 'HB_TRUNCATED', message: 'empty payload' });
    return undefined;
  }
  if (bytes[0] !== PROTOCOL_VERSION) problems.push({ code: 'HB_BAD_VERSION', message: `version byte is 0x${bytes[0]!.toString(16).padStart(2, '0')}, expected 0x01` });
  if (len >= 2 && bytes[1] !== MessageType.HEARTBEAT) problems.push({ code: 'HB_BAD_TYPE', message: `type byte is 0x${bytes[1]!.toString(16).padStart(2, '0')}, expected 0x01 (heartbeat)` });
  if (len < HEARTBEAT_HEADER_LENGTH) {
    problems.push({ code: 'HB_TRUNCATED', message: `payload is ${len} bytes; the header alone is ${HEARTBEAT_HEADER_LENGTH}` });
    return undefined;
  }
  const n = bytes[54]!;
  if (n > MAX_METRICS) {
    problems.push({ code: 'HB_TOO_MANY_METRICS', message: `n = ${n}, at most ${MAX_METRICS}` });
    return undefined;
  }
  const expected = heartbeatLength(n);
  if (len < expected) {
    problems.push({ code: 'HB_TRUNCATED', message: `payload is ${len} bytes; n = ${n} needs exactly ${expected}` });
    return undefined;
  }
  if (len > expected) {
    problems.push({ code: 'HB_BAD_LENGTH', message: `payload is ${len} bytes; n = ${n} needs exactly ${expected} (${len - expected} trailing bytes)` });
    return undefined;
  }
  const dv = view(bytes);
  const seq = dv.getBigUint64(38, false);
  if (seq < 1n || seq > MAX_SEQ) problems.push({ code: 'HB_BAD_SEQ', message: `seq = ${seq}, must be 1 … 2^63−1` });
  const metrics: Metric[] = [];
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const id = dv.getUint16(55 + i * METRIC_LENGTH, false);
    if (id <= prev) problems.push({ code: 'HB_METRICS_UNORDERED', message: `metric #${i} id ${id} does not exceed the previous id ${prev}` });
    prev = id;
    metrics.push({ id, value: dv.getBigUint64(57 + i * METRIC_LENGTH, false) });
  }
  // Uint8Array.prototype.slice copies even when `bytes` is a Buffer (an MQTT payload), whose own
  // slice() returns a view that would pin the whole packet buffer.
  const publicKey = copyRange(bytes, 6, 38);
  return {
    networkId: dv.getUint32(2, false),
    publicKey,
    seq,
    timestamp: dv.getBigUint64(46, false),
    metrics,
    deviceId: deviceIdOf(publicKey),
    signature: copyRange(bytes, expected - SIGNATURE_LENGTH, expected),
    raw: bytes,
  };
}

function copyRange(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes, start, end);
}

/** Decode without verifying the signature. */
export function decodeHeartbeat(bytes: Uint8Array): Result<Heartbeat, HeartbeatCode> {
  const problems: HeartbeatProblem[] = [];
  const hb = decodeStructure(bytes, problems);
  const first = problems[0];
  if (first !== undefined) return err(first.code, first.message);
  return ok(hb!);
}

export type HeartbeatContext = {
  readonly verifier: Ed25519Verifier;
  /** The network this receiver serves; omit to skip the check (CLI inspect without --network). */
  readonly networkId?: number;
  /** The MQTT topic the payload arrived on; its device id must equal the key in the payload. */
  readonly topic?: string;
  /** The device the broker authenticated for this session; must equal the key in the payload. */
  readonly authenticatedDeviceId?: string;
};

/**
 * Every problem with a heartbeat, in the order a receiver checks them: structure, network, topic,
 * key policy, signature. Stateful rules (skew, duplicate, replay, registry) are not here: they need
 * the receiver's clock and records (oracle/ingest, broker).
 */
export function inspectHeartbeat(bytes: Uint8Array, ctx: HeartbeatContext): { heartbeat: Heartbeat | undefined; problems: HeartbeatProblem[] } {
  const problems: HeartbeatProblem[] = [];
  const hb = decodeStructure(bytes, problems);
  if (hb === undefined) return { heartbeat: undefined, problems };
  if (ctx.networkId !== undefined && hb.networkId !== ctx.networkId)
    problems.push({ code: 'HB_WRONG_NETWORK', message: `network id ${hb.networkId}, this network is ${ctx.networkId}` });
  if (ctx.topic !== undefined) {
    const topicId = parseHeartbeatTopic(ctx.topic);
    if (topicId !== hb.deviceId) problems.push({ code: 'HB_TOPIC_MISMATCH', message: `topic ${JSON.stringify(ctx.topic)} is not devices/${hb.deviceId}/heartbeat` });
  }
  if (ctx.authenticatedDeviceId !== undefined && ctx.authenticatedDeviceId !== hb.deviceId)
    problems.push({ code: 'HB_TOPIC_MISMATCH', message: `payload key ${hb.deviceId} is not the authenticated device ${ctx.authenticatedDeviceId}` });
  const body = bytes.subarray(0, bytes.length - SIGNATURE_LENGTH);
  switch (ctx.verifier.verify(hb.signature, heartbeatSigningInput(body), hb.publicKey)) {
    case 'ok':
      break;
    case 'weak-key':
      problems.push({ code: 'HB_WEAK_KEY', message: 'public key is small-order, mixed-order or non-canonical' });
      break;
    case 'non-canonical':
      problems.push({ code: 'HB_NON_CANONICAL_SIGNATURE', message: 'signature scalar S is not below the group order L' });
      break;
    case 'bad':
      problems.push({ code: 'HB_BAD_SIGNATURE', message: 'signature does not verify over DOMAIN || body' });
      break;
  }
  return { heartbeat: hb, problems };
}

/** Decode and verify; the first problem becomes the reason code. */
export function verifyHeartbeat(bytes: Uint8Array, ctx: HeartbeatContext): Result<Heartbeat, HeartbeatCode> {
  const { heartbeat, problems } = inspectHeartbeat(bytes, ctx);
  const first = problems[0];
  if (first !== undefined) return err(first.code, first.message);
  return ok(heartbeat!);
}

/** The skew rule (docs/protocol.md §Replay and time rules): |timestamp − receivedAt| ≤ skew. */
export function withinSkew(timestamp: bigint, receivedAtMs: number, skewMs: number): boolean {
  // Math.floor: BigInt() throws on a fractional number (e.g. a clock read from performance).
  const diff = timestamp - BigInt(Math.floor(receivedAtMs));
  const abs = diff < 0n ? -diff : diff;
  return abs <= BigInt(Math.floor(skewMs));
}
