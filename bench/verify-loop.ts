// The measured loop of the `verify` workload, shared by the main thread and worker threads.
import { signHeartbeat, verifyHeartbeat } from '../shared/protocol/heartbeat.ts';
import { signerFor } from '../shared/protocol/signer.ts';
import { deviceKeyFromSecret } from '../shared/protocol/keyfile.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import { nobleVerifier } from '../shared/crypto/noble.ts';

/** Full heartbeat verifications (decode + key policy + Ed25519) per second over `seconds`. */
export function verifyLoop(impl: 'native' | 'noble', seconds: number): { count: number; seconds: number } {
  const key = deviceKeyFromSecret(new Uint8Array(32).fill(42));
  const hb = signHeartbeat({ networkId: 1, publicKey: key.publicKey, seq: 1n, timestamp: 1_700_000_000_000n, metrics: [{ id: 1, value: 10n }] }, signerFor(key.secretKey));
  const ctx = { verifier: impl === 'native' ? nativeVerifier : nobleVerifier, networkId: 1 };
  if (!verifyHeartbeat(hb, ctx).ok) throw new Error('bench heartbeat does not verify');
  const start = performance.now();
  const until = start + seconds * 1000;
  let count = 0;
  while (performance.now() < until) {
    for (let i = 0; i < 50; i++) if (verifyHeartbeat(hb, ctx).ok) count++;
  }
  return { count, seconds: (performance.now() - start) / 1000 };
}
