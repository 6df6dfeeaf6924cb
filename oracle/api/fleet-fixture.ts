// Test fixture for the operator-surface tests (test/api-*.test.ts, test/dashboard-*.test.ts): devices
// with real Ed25519 keys whose signed heartbeats go through the real ingest path (classify, then the
// one-transaction writer), so the API reads exactly what production ingest writes.
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/store.ts';
import { classify, type Candidate, type IngestRules, type Rejection } from '../ingest/classify.ts';
import { writeBatch, type BatchOutcome } from '../ingest/write-batch.ts';
import { signHeartbeat, type Metric } from '../../shared/protocol/heartbeat.ts';
import { deviceKeyFromSecret, type DeviceKey } from '../../shared/protocol/keyfile.ts';
import { signerFor, type Signer } from '../../shared/protocol/signer.ts';
import { nativeVerifier } from '../../shared/crypto/native.ts';

export const FIXTURE_NETWORK_ID = 7;

export type FixtureDevice = { readonly key: DeviceKey; readonly sign: Signer; seq: bigint };

export function fixtureDevice(): FixtureDevice {
  const key = deviceKeyFromSecret(new Uint8Array(randomBytes(32)));
  return { key, sign: signerFor(key.secretKey), seq: 0n };
}

export function fixtureRules(slotIntervalMs: number): IngestRules {
  return { networkId: FIXTURE_NETWORK_ID, skewMs: 30_000, slotIntervalMs, maxPayloadBytes: 1024, verifier: nativeVerifier };
}

export type FixtureHeartbeat = {
  readonly device: FixtureDevice;
  /** Device timestamp (unix ms). */
  readonly ts: number;
  /** Broker receive time; defaults to ts. */
  readonly receivedAt?: number;
  /** Explicit seq (for replays); defaults to the device's next seq. */
  readonly seq?: bigint;
  readonly metrics?: readonly Metric[];
  /** Sign for another network (an HB_WRONG_NETWORK rejection). */
  readonly networkId?: number;
};

/** Sign, classify and store heartbeats in one ingest batch; returns the writer's outcome. */
export async function ingest(store: Store, rules: IngestRules, items: readonly FixtureHeartbeat[]): Promise<BatchOutcome & { readonly rejected: readonly Rejection[] }> {
  const candidates: Candidate[] = [];
  const rejected: Rejection[] = [];
  for (const it of items) {
    const seq = it.seq ?? (it.device.seq += 1n);
    const raw = signHeartbeat(
      { networkId: it.networkId ?? rules.networkId, publicKey: it.device.key.publicKey, seq, timestamp: BigInt(it.ts), metrics: it.metrics ?? [{ id: 1, value: 10n }] },
      it.device.sign,
    );
    const c = classify({ deviceId: it.device.key.deviceId, seq, raw, receivedAt: it.receivedAt ?? it.ts }, rules, it.receivedAt ?? it.ts);
    if (c.kind === 'candidate') candidates.push(c.candidate);
    else rejected.push(c.rejection);
  }
  const out = await writeBatch(store, candidates, rejected);
  return { ...out, rejected: [...rejected, ...out.verdicts.filter((v): v is Rejection => v !== undefined)] };
}
