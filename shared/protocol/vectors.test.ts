// The committed vectors (shared/vectors/*.json) are exactly what scripts/gen-vectors.ts produces, and
// every vector gives its declared outcome under both verifiers (native node:crypto and noble) and
// both signers. Regenerate with: npx tsx scripts/gen-vectors.ts
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderVectors, VECTORS_DIR } from '../../scripts/gen-vectors.ts';
import { NativeVerifier } from '../crypto/native.ts';
import { nobleVerifier } from '../crypto/noble.ts';
import type { Ed25519Verifier } from '../crypto/signature-check.ts';
import { fromHex, toHex } from '../hex.ts';
import { decodeHeartbeat, heartbeatSigningInput, signHeartbeat, verifyHeartbeat, withinSkew } from './heartbeat.ts';
import { connectTokenSigningInput, verifyConnectToken } from './connect-token.ts';
import { KeyRotation, MakerCertificate, OwnerBinding, OwnerTransfer, signIdentity, verifyIdentity } from './identity.ts';
import { signerFor } from './signer.ts';
import { deviceKeyFromSecret } from './keyfile.ts';

type J = Record<string, unknown>;
const load = (name: string) => JSON.parse(readFileSync(VECTORS_DIR + name, 'utf8')) as { valid: J[]; broken: J[]; edgeValid?: J[] };
const hex = (s: unknown) => fromHex(s as string)!;
// A fresh native verifier so its key cache starts empty for these vectors.
const verifiers: Ed25519Verifier[] = [new NativeVerifier(), nobleVerifier];

describe('committed vectors', () => {
  it('are byte for byte what scripts/gen-vectors.ts generates', () => {
    const generated = renderVectors();
    expect(Object.keys(generated).sort()).toEqual(['connect-token.json', 'heartbeat.json', 'identity.json']);
    for (const [name, text] of Object.entries(generated)) expect(readFileSync(VECTORS_DIR + name, 'utf8'), name).toBe(text);
  });
});

describe('heartbeat vectors', () => {
  const v = load('heartbeat.json');

  it('valid: fields decode, both signers reproduce the bytes, both verifiers accept', () => {
    expect(v.valid.length).toBeGreaterThanOrEqual(3);
    for (const c of v.valid) {
      const bytes = hex(c['hex']);
      const key = deviceKeyFromSecret(hex(c['secretKey']));
      expect(toHex(key.publicKey)).toBe(c['publicKey']);
      const decoded = decodeHeartbeat(bytes);
      if (!decoded.ok) throw new Error(`${String(c['name'])}: ${decoded.code}`);
      const hb = decoded.value;
      expect(hb.deviceId).toBe(c['deviceId']);
      expect(hb.networkId).toBe(c['networkId']);
      expect(hb.seq.toString()).toBe(c['seq']);
      expect(hb.timestamp.toString()).toBe(c['timestamp']);
      expect(hb.metrics.map((m) => ({ id: m.id, value: m.value.toString() }))).toEqual(c['metrics']);
      expect(toHex(heartbeatSigningInput(bytes.subarray(0, bytes.length - 64)))).toBe(c['signedMessage']);
      for (const impl of ['native', 'noble'] as const) expect(toHex(signHeartbeat(hb, signerFor(key.secretKey, impl)))).toBe(c['hex']);
      for (const verifier of verifiers) {
        const r = verifyHeartbeat(bytes, { verifier, networkId: hb.networkId, topic: c['topic'] as string });
        expect(r.ok, `${verifier.name} ${String(c['name'])}`).toBe(true);
      }
    }
  });

  it('edge-valid cases are accepted by both verifiers', () => {
    for (const c of v.edgeValid ?? []) {
      for (const verifier of verifiers) expect(verifyHeartbeat(hex(c['hex']), { verifier, ...(c['context'] as object) }).ok, String(c['name'])).toBe(true);
    }
    expect(v.edgeValid?.length).toBeGreaterThan(0);
  });

  it('clock: the skew rule holds at its edges', () => {
    const clock = (v as unknown as { clock: J[] }).clock;
    expect(clock.length).toBe(5);
    for (const c of clock) {
      const r = verifyHeartbeat(hex(c['hex']), { verifier: verifiers[0]! });
      if (!r.ok) throw new Error(r.code);
      expect(r.value.timestamp.toString()).toBe(c['timestamp']);
      expect(withinSkew(r.value.timestamp, c['receivedAt'] as number, c['skewMs'] as number) ? 'ok' : 'HB_CLOCK_SKEW', String(c['name'])).toBe(c['expected']);
    }
  });

  it('broken: both verifiers return the declared reason code first', () => {
    const seen = new Set<string>();
    for (const c of v.broken) {
      for (const verifier of verifiers) {
        const r = verifyHeartbeat(hex(c['hex']), { verifier, ...(c['context'] as object) });
        expect(r.ok ? 'ok' : r.code, `${verifier.name}: ${String(c['name'])}`).toBe(c['expected']);
      }
      seen.add(c['expected'] as string);
    }
    // Every stateless heartbeat code has at least one vector.
    for (const code of ['HB_TRUNCATED', 'HB_BAD_LENGTH', 'HB_BAD_VERSION', 'HB_BAD_TYPE', 'HB_TOO_MANY_METRICS', 'HB_METRICS_UNORDERED', 'HB_BAD_SEQ', 'HB_WEAK_KEY', 'HB_NON_CANONICAL_SIGNATURE', 'HB_BAD_SIGNATURE', 'HB_WRONG_NETWORK', 'HB_TOPIC_MISMATCH'])
      expect(seen, code).toContain(code);
  });
});

describe('connect token vectors', () => {
  const v = load('connect-token.json');
  const ctxOf = (c: J, verifier: Ed25519Verifier) => ({
    verifier,
    networkId: c['networkId'] as number,
    now: c['now'] as number,
    skewMs: c['skewMs'] as number,
    ...(c['lastAcceptedTimestamp'] === undefined ? {} : { lastAcceptedTimestamp: BigInt(c['lastAcceptedTimestamp'] as string) }),
  });
  const credsOf = (c: J) => ({ clientId: c['clientId'] as string, username: (c['username'] ?? undefined) as string | undefined, password: (c['password'] ?? undefined) as string | undefined });

  it('valid tokens verify with both verifiers and the signed message matches', () => {
    for (const c of v.valid) {
      const key = deviceKeyFromSecret(hex(c['secretKey']));
      expect(key.deviceId).toBe(c['clientId']);
      expect(toHex(connectTokenSigningInput(c['networkId'] as number, key.publicKey, BigInt(c['timestamp'] as string)))).toBe(c['signedMessage']);
      for (const verifier of verifiers) {
        const r = verifyConnectToken(credsOf(c), ctxOf(c, verifier));
        expect(r.ok ? r.value.timestamp.toString() : r.code).toBe(c['timestamp']);
      }
      // The password is also accepted as the raw bytes an MQTT library hands over.
      const asBuffer = verifyConnectToken({ ...credsOf(c), password: Buffer.from(c['password'] as string, 'latin1') }, ctxOf(c, verifiers[0]!));
      expect(asBuffer.ok).toBe(true);
    }
  });

  it('broken tokens give the declared code under both verifiers', () => {
    for (const c of v.broken) {
      for (const verifier of verifiers) {
        const r = verifyConnectToken(credsOf(c), ctxOf(c, verifier));
        expect(r.ok ? 'ok' : r.code, `${verifier.name}: ${String(c['name'])}`).toBe(c['expected']);
      }
    }
    const codes = new Set(v.broken.map((c) => c['expected']));
    for (const code of ['TOKEN_BAD_ENCODING', 'TOKEN_BAD_CLIENT_ID', 'TOKEN_WEAK_KEY', 'TOKEN_NON_CANONICAL_SIGNATURE', 'TOKEN_BAD_SIGNATURE', 'TOKEN_CLOCK_SKEW', 'TOKEN_STALE']) expect(codes, code).toContain(code);
  });
});

describe('identity vectors', () => {
  const v = load('identity.json');
  type Kind = 'maker-certificate' | 'owner-binding' | 'owner-transfer' | 'key-rotation';
  const verify = (kind: Kind, bytes: Uint8Array, verifier: Ed25519Verifier, networkId?: number) => {
    const ctx = { verifier, ...(networkId === undefined ? {} : { networkId }) };
    switch (kind) {
      case 'maker-certificate': return verifyIdentity(MakerCertificate, bytes, ctx);
      case 'owner-binding': return verifyIdentity(OwnerBinding, bytes, ctx);
      case 'owner-transfer': return verifyIdentity(OwnerTransfer, bytes, ctx);
      case 'key-rotation': return verifyIdentity(KeyRotation, bytes, ctx);
    }
  };
  const fieldsJson = (values: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(values).map(([k, x]) => [k, x instanceof Uint8Array ? toHex(x) : typeof x === 'bigint' ? x.toString() : x]));

  it('valid messages verify, decode to the listed fields and re-sign to the same bytes', () => {
    for (const c of v.valid) {
      const kind = c['kind'] as Kind;
      const bytes = hex(c['hex']);
      for (const verifier of verifiers) {
        const r = verify(kind, bytes, verifier, 1);
        if (!r.ok) throw new Error(`${verifier.name} ${String(c['name'])}: ${r.code}`);
        expect(fieldsJson(r.value.values as Record<string, unknown>)).toEqual(c['fields']);
        // Re-encode from the decoded values with both signers: identical bytes (round trip).
        for (const impl of ['native', 'noble'] as const) {
          const signer = signerFor(hex(c['signerSecretKey']), impl);
          const again = kind === 'maker-certificate' ? signIdentity(MakerCertificate, r.value.values as never, signer)
            : kind === 'owner-binding' ? signIdentity(OwnerBinding, r.value.values as never, signer)
            : kind === 'owner-transfer' ? signIdentity(OwnerTransfer, r.value.values as never, signer)
            : signIdentity(KeyRotation, r.value.values as never, signer);
          expect(toHex(again)).toBe(c['hex']);
        }
      }
      expect(c['signedMessage']).toBe('50554c53452d5631' + (c['hex'] as string).slice(0, -128));
    }
  });

  it('broken messages give the declared code under both verifiers', () => {
    for (const c of v.broken) {
      const networkId = (c['context'] as { networkId?: number } | undefined)?.networkId;
      for (const verifier of verifiers) {
        const r = verify(c['kind'] as Kind, hex(c['hex']), verifier, networkId);
        expect(r.ok ? 'ok' : r.code, `${verifier.name}: ${String(c['name'])}`).toBe(c['expected']);
      }
    }
    const codes = new Set(v.broken.map((c) => c['expected']));
    for (const code of ['MSG_TRUNCATED', 'MSG_BAD_LENGTH', 'MSG_BAD_VERSION', 'MSG_BAD_TYPE', 'MSG_WEAK_KEY', 'MSG_NON_CANONICAL_SIGNATURE', 'MSG_BAD_SIGNATURE', 'MSG_WRONG_NETWORK', 'MSG_BAD_FIELD']) expect(codes, code).toContain(code);
  });
});

describe('docs/protocol.md', () => {
  it('shows the worked examples exactly as the vectors hold them', () => {
    const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
    const hb = load('heartbeat.json').valid.find((c) => c['name'] === 'three metrics')!;
    expect(doc).toContain(hb['hex'] as string);
    expect(doc).toContain(hb['signedMessage'] as string);
    expect(doc).toContain(hb['secretKey'] as string);
    expect(doc).toContain(`\`${(hb['signature'] as string).slice(0, 64)}\``);
    expect(doc).toContain(`\`${(hb['signature'] as string).slice(64)}\``);
    const token = load('connect-token.json').valid[0]!;
    expect(doc).toContain(token['password'] as string);
    expect(doc).toContain(token['signedMessage'] as string);
    const binding = load('identity.json').valid.find((c) => c['name'] === 'owner binding')!;
    expect(doc).toContain(binding['hex'] as string);
  });
});
