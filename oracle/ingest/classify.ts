// Stateless ingest checks (docs/protocol.md §Heartbeat, §Replay and time rules): envelope, size,
// structure, network, key policy, signature (re-verified here: the oracle does not trust the broker's
// check), and the skew rule against the broker's receive time. Pure: no IO, no registry. The
// stateful rules (registry, duplicate, equivocation, replay) run in the storage transaction
// (oracle/ingest/write-batch.ts) because they need the device's row.
import type { BusHeartbeat } from '../../bus/bus.ts';
import { inspectHeartbeat, verifyHeartbeat, withinSkew, type Heartbeat } from '../../shared/protocol/heartbeat.ts';
import { isDeviceId } from '../../shared/protocol/device-id.ts';
import { MAX_SEQ } from '../../shared/protocol/constants.ts';
import type { Ed25519Verifier, SignatureCheck } from '../../shared/crypto/signature-check.ts';
import type { ErrorCode, HeartbeatCode } from '../../shared/error-codes.ts';
import { err, ok, type Result } from '../../shared/result.ts';

export type IngestRules = {
  readonly networkId: number;
  readonly skewMs: number;
  readonly slotIntervalMs: number;
  /** Largest payload accepted (the broker's limit; a v1 heartbeat is at most 279 bytes). */
  readonly maxPayloadBytes: number;
  /** With verifyAsync (NativeVerifier) signatures are checked on the threadpool (classifyAsync). */
  readonly verifier: Ed25519Verifier & { verifyAsync?: (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => Promise<SignatureCheck> };
};

/** A heartbeat that passed every stateless check. */
export type Candidate = {
  readonly heartbeat: Heartbeat;
  readonly slot: bigint;
  readonly receivedAt: number;
};

/** A rejection, stored in `rejections` with its reason code. */
export type Rejection = {
  readonly deviceId: string | null;
  readonly seq: bigint | null;
  readonly reason: ErrorCode;
  readonly detail: string;
  readonly raw: Uint8Array;
  readonly receivedAt: number;
};

export type Classified =
  | { readonly kind: 'candidate'; readonly candidate: Candidate }
  /** poison: undecodable or foreign; recorded, then terminated on the bus (never redelivered). */
  | { readonly kind: 'reject'; readonly rejection: Rejection; readonly poison: boolean };

/** Rejection raw bytes are capped (rejections.raw ≤ 4 KiB); raw_length keeps the true size. */
export const MAX_STORED_REJECTION_BYTES = 4096;

/** Detail text is ours, but it may quote outsider bytes: no NUL (PostgreSQL text cannot hold it), ≤ 500 chars. */
export function cleanDetail(text: string): string {
  // eslint-disable-next-line no-control-regex
  const s = text.replace(/\u0000/g, '\\0');
  return s.length <= 500 ? s : `${s.slice(0, 497)}...`;
}

function envelopeDeviceId(m: BusHeartbeat): string | null {
  return typeof m.deviceId === 'string' && isDeviceId(m.deviceId) ? m.deviceId : null;
}

function envelopeSeq(m: BusHeartbeat): bigint | null {
  return typeof m.seq === 'bigint' && m.seq >= 1n && m.seq <= MAX_SEQ ? m.seq : null;
}

function reject(m: BusHeartbeat, reason: ErrorCode, detail: string, poison: boolean, receivedAt: number): Classified {
  const raw = m.raw instanceof Uint8Array ? m.raw : new Uint8Array(0);
  return {
    kind: 'reject',
    poison,
    rejection: { deviceId: envelopeDeviceId(m), seq: envelopeSeq(m), reason, detail: cleanDetail(detail), raw, receivedAt },
  };
}

type Envelope = { readonly receivedAt: number; readonly raw: Uint8Array; readonly deviceId: string };

/** Envelope and size checks shared by the sync and async paths. */
function checkEnvelope(m: BusHeartbeat, rules: IngestRules, now: number): Classified | Envelope {
  // The envelope comes from our broker, but a foreign publisher on the bus subject (or a bug) must
  // be recorded, not crash the worker.
  const receivedOk = typeof m.receivedAt === 'number' && Number.isSafeInteger(m.receivedAt) && m.receivedAt >= 0;
  const receivedAt = receivedOk ? m.receivedAt : now;
  if (!(m.raw instanceof Uint8Array)) return reject(m, 'INGEST_BAD_ENVELOPE', 'bus message has no payload bytes', true, receivedAt);
  if (!receivedOk) return reject(m, 'INGEST_BAD_ENVELOPE', `bus message receive time ${String(m.receivedAt)} is not a unix ms integer`, true, receivedAt);
  if (envelopeDeviceId(m) === null) return reject(m, 'INGEST_BAD_ENVELOPE', 'bus message device id is not 64 lowercase hex characters', true, receivedAt);
  if (m.raw.length > rules.maxPayloadBytes)
    return reject(m, 'HB_OVERSIZED', `payload is ${m.raw.length} bytes, the limit is ${rules.maxPayloadBytes}`, true, receivedAt);
  return { receivedAt, raw: m.raw, deviceId: m.deviceId };
}

function afterVerify(m: BusHeartbeat, checked: Result<Heartbeat, HeartbeatCode>, rules: IngestRules, receivedAt: number): Classified {
  if (!checked.ok) {
    const structural = checked.code !== 'HB_WRONG_NETWORK' && checked.code !== 'HB_TOPIC_MISMATCH' && checked.code !== 'HB_BAD_SIGNATURE';
    return reject(m, checked.code, checked.message, structural, receivedAt);
  }
  const hb = checked.value;
  // docs/protocol.md §Replay and time rules: |timestamp − receive time| ≤ skew window.
  if (!withinSkew(hb.timestamp, receivedAt, rules.skewMs))
    return reject(m, 'HB_CLOCK_SKEW', `timestamp ${hb.timestamp} is ${hb.timestamp - BigInt(receivedAt)} ms from the receive time ${receivedAt} (window ${rules.skewMs} ms)`, false, receivedAt);
  // A slot is floor(timestamp / interval) (docs/protocol.md §Replay and time rules).
  return { kind: 'candidate', candidate: { heartbeat: hb, slot: hb.timestamp / BigInt(rules.slotIntervalMs), receivedAt } };
}

/** Synchronous classification: verifyHeartbeat with rules.verifier on this thread. */
export function classify(m: BusHeartbeat, rules: IngestRules, now: number = Date.now()): Classified {
  const env = checkEnvelope(m, rules, now);
  if ('kind' in env) return env;
  // docs/protocol.md §Heartbeat: structure, network, device id = key in payload, key policy,
  // strict RFC 8032 §5.1.7 signature. The bus device id is the broker-authenticated key.
  return afterVerify(m, verifyHeartbeat(env.raw, { verifier: rules.verifier, networkId: rules.networkId, authenticatedDeviceId: env.deviceId }), rules, env.receivedAt);
}

/** Records the signature check inspectHeartbeat asks for instead of doing it (see classifyAsync). */
class CapturingVerifier implements Ed25519Verifier {
  readonly name = 'capture';
  args: [Uint8Array, Uint8Array, Uint8Array] | undefined;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): SignatureCheck {
    this.args = [signature, message, publicKey];
    return 'ok';
  }
}

const SIGNATURE_CODES: Record<Exclude<SignatureCheck, 'ok'>, { code: HeartbeatCode; message: string }> = {
  'weak-key': { code: 'HB_WEAK_KEY', message: 'public key is small-order, mixed-order or non-canonical' },
  'non-canonical': { code: 'HB_NON_CANONICAL_SIGNATURE', message: 'signature scalar S is not below the group order L' },
  bad: { code: 'HB_BAD_SIGNATURE', message: 'signature does not verify over DOMAIN || body' },
};

/**
 * The same checks with the signature verified on the libuv threadpool (NativeVerifier.verifyAsync),
 * so a batch's verifications use every core while the event loop keeps talking to the database
 * (../shared/DESIGN.md §Performance anchors: ~18–19k/s async vs ~11.7k/s on the main thread). The
 * shared inspectHeartbeat still owns the order of checks and the codes: it runs with a verifier that
 * captures the one signature check (always the last check), which then runs asynchronously on
 * exactly the captured (signature, message, key) triple.
 */
export async function classifyAsync(m: BusHeartbeat, rules: IngestRules, now: number = Date.now()): Promise<Classified> {
  const verifyAsync = rules.verifier.verifyAsync;
  if (verifyAsync === undefined) return classify(m, rules, now);
  const env = checkEnvelope(m, rules, now);
  if ('kind' in env) return env;
  const capture = new CapturingVerifier();
  const { heartbeat, problems } = inspectHeartbeat(env.raw, { verifier: capture, networkId: rules.networkId, authenticatedDeviceId: env.deviceId });
  const first = problems[0];
  if (first !== undefined || heartbeat === undefined) return afterVerify(m, err(first?.code ?? 'HB_TRUNCATED', first?.message ?? 'undecodable payload'), rules, env.receivedAt);
  if (capture.args === undefined) return afterVerify(m, err('HB_BAD_SIGNATURE', 'signature was not checked'), rules, env.receivedAt);
  const check = await verifyAsync.call(rules.verifier, ...capture.args);
  if (check !== 'ok') return afterVerify(m, err(SIGNATURE_CODES[check].code, SIGNATURE_CODES[check].message), rules, env.receivedAt);
  return afterVerify(m, ok(heartbeat), rules, env.receivedAt);
}
