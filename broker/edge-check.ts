// Edge verification of one heartbeat (docs/protocol.md §Heartbeat, §Replay and time rules) with the
// shared codec: structure, network id, topic == payload key == authenticated key, key policy and
// signature, then the skew window. Stateful rules (duplicate, replay by seq, registry at ingest time)
// belong to the oracle; JetStream drops resends by (deviceId, seq).
//
// The signature is checked on the libuv threadpool (NativeVerifier.verifyAsync, ~18–19k/s on two
// cores against ~11.7k/s on the main thread, ../shared/DESIGN.md §Performance anchors), so the
// event loop keeps serving sockets. To do that with the shared inspectHeartbeat (which owns the order
// of checks and the reason codes) it runs with a capturing verifier that records the signature check
// instead of doing it; the captured check then runs asynchronously and maps to the same codes.
import type { Ed25519Verifier, SignatureCheck } from '../shared/crypto/signature-check.ts';
import type { NativeVerifier } from '../shared/crypto/native.ts';
import { inspectHeartbeat, withinSkew, type Heartbeat } from '../shared/protocol/heartbeat.ts';
import type { HeartbeatCode } from '../shared/error-codes.ts';
import { peekSeq } from './peek-seq.ts';

const NOTHING = new Uint8Array(0);

class CapturingVerifier implements Ed25519Verifier {
  readonly name = 'capture';
  captured = false;
  signature: Uint8Array = NOTHING;
  message: Uint8Array = NOTHING;
  publicKey: Uint8Array = NOTHING;
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): SignatureCheck {
    this.captured = true;
    this.signature = signature;
    this.message = message;
    this.publicKey = publicKey;
    return 'ok';
  }
}

/**
 * One capturing verifier for every check: inspectHeartbeat is synchronous, and the captured values
 * are read before checkHeartbeat first awaits, so no other check can run in between.
 */
const capture = new CapturingVerifier();

export type EdgeContext = {
  readonly verifier: NativeVerifier;
  readonly networkId: number;
  /** Key id of the authenticated session (from the connect token). */
  readonly keyId: string;
  readonly topic: string;
  readonly receivedAt: number;
  readonly skewMs: number;
};

export type EdgeVerdict =
  | { readonly ok: true; readonly heartbeat: Heartbeat }
  | { readonly ok: false; readonly code: HeartbeatCode; readonly message: string; readonly seq: bigint | undefined };

const SIGNATURE_CODES: Record<Exclude<SignatureCheck, 'ok'>, { code: HeartbeatCode; message: string }> = {
  'weak-key': { code: 'HB_WEAK_KEY', message: 'public key is small-order, mixed-order or non-canonical' },
  'non-canonical': { code: 'HB_NON_CANONICAL_SIGNATURE', message: 'signature scalar S is not below the group order L' },
  bad: { code: 'HB_BAD_SIGNATURE', message: 'signature does not verify over DOMAIN || body' },
};

export async function checkHeartbeat(payload: Uint8Array, ctx: EdgeContext): Promise<EdgeVerdict> {
  capture.captured = false;
  const { heartbeat, problems } = inspectHeartbeat(payload, {
    verifier: capture,
    networkId: ctx.networkId,
    topic: ctx.topic,
    authenticatedDeviceId: ctx.keyId,
  });
  const { captured, signature, message, publicKey } = capture;
  // Drop the references, so the shared capture does not keep the last payload's buffers alive.
  capture.signature = capture.message = capture.publicKey = NOTHING;
  const first = problems[0];
  if (first !== undefined || heartbeat === undefined) {
    // A payload the codec cannot decode (truncated, trailing bytes, too many metrics) may still carry
    // a readable seq at its fixed offset: report it so the device knows which heartbeat failed.
    return { ok: false, code: first?.code ?? 'HB_TRUNCATED', message: first?.message ?? 'undecodable payload', seq: heartbeat?.seq ?? peekSeq(payload) };
  }
  if (!captured) return { ok: false, code: 'HB_BAD_SIGNATURE', message: 'signature was not checked', seq: heartbeat.seq };
  const check = await ctx.verifier.verifyAsync(signature, message, publicKey);
  if (check !== 'ok') return { ok: false, ...SIGNATURE_CODES[check], seq: heartbeat.seq };
  // Skew last: only an authentic heartbeat's timestamp is worth comparing (docs/protocol.md §Replay and time rules).
  if (!withinSkew(heartbeat.timestamp, ctx.receivedAt, ctx.skewMs)) {
    return { ok: false, code: 'HB_CLOCK_SKEW', message: `timestamp is ${heartbeat.timestamp - BigInt(Math.floor(ctx.receivedAt))} ms from the broker clock (window ±${ctx.skewMs} ms)`, seq: heartbeat.seq };
  }
  return { ok: true, heartbeat };
}
