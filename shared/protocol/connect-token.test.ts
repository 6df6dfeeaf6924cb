// Connect token properties (docs/protocol.md §Connect token).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { vectorSecretKey } from '../../scripts/gen-vectors.ts';
import { NativeVerifier } from '../crypto/native.ts';
import { noblePublicKey, nobleVerifier } from '../crypto/noble.ts';
import { CONNECT_TOKEN_HEX_LENGTH, DOMAIN } from './constants.ts';
import { connectPassword, connectTokenSigningInput, makeConnectToken, verifyConnectToken } from './connect-token.ts';
import { signerFor } from './signer.ts';
import { toHex } from '../hex.ts';

const native = new NativeVerifier();
const secretKey = vectorSecretKey('device-a');
const publicKey = noblePublicKey(secretKey);
const deviceId = toHex(publicKey);
const sign = signerFor(secretKey);

describe('connect token', () => {
  it('round trip: any network and timestamp verifies at that time and network, with either verifier', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 0, max: 2 ** 52 }), fc.integer({ min: -30_000, max: 30_000 }), (networkId, ts, drift) => {
        const password = connectPassword(networkId, publicKey, BigInt(ts), sign);
        expect(password).toMatch(/^[0-9a-f]{144}$/);
        const r = verifyConnectToken({ clientId: deviceId, username: deviceId, password }, { verifier: native, networkId, now: ts + drift, skewMs: 30_000 });
        if (!r.ok) throw new Error(r.code);
        expect(r.value.timestamp).toBe(BigInt(ts));
        expect(r.value.deviceId).toBe(deviceId);
      }),
      { numRuns: 500 },
    );
  });

  it('signs DOMAIN || 0x01 || 0x02 || network id || public key || timestamp and carries timestamp || signature', () => {
    const input = connectTokenSigningInput(0x01020304, publicKey, 0x05060708090a0b0cn);
    expect(toHex(input)).toBe(toHex(DOMAIN) + '0102' + '01020304' + deviceId + '05060708090a0b0c');
    const token = makeConnectToken(0x01020304, publicKey, 0x05060708090a0b0cn, sign);
    expect(token.length).toBe(72);
    expect(toHex(token)).toBe('05060708090a0b0c' + toHex(sign(input)));
  });

  it('never throws on arbitrary credentials and receiver clocks', () => {
    const passwordArb = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: CONNECT_TOKEN_HEX_LENGTH, maxLength: CONNECT_TOKEN_HEX_LENGTH }),
      fc.uint8Array({ maxLength: 200 }),
      fc.constant(undefined),
    );
    const idArb = fc.oneof(fc.constant(deviceId), fc.string({ maxLength: 70 }), fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }));
    fc.assert(
      fc.property(idArb, fc.option(idArb, { nil: undefined }), passwordArb, fc.double({ noNaN: true, min: 0, max: 2 ** 60 }), fc.double({ noNaN: true, min: 0, max: 1e9 }), fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }), (clientId, username, password, now, skewMs, last) => {
        const r = verifyConnectToken(
          { clientId, username: username ?? clientId, password },
          { verifier: native, networkId: 1, now, skewMs, ...(last === undefined ? {} : { lastAcceptedTimestamp: last }) },
        );
        if (!r.ok) expect(r.code).toMatch(/^TOKEN_/);
      }),
      { numRuns: 3000 },
    );
  });

  it('never throws on a well-formed password over arbitrary bytes, and both verifiers agree on it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 72, maxLength: 72 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (token, key) => {
        const ts = new DataView(token.buffer).getBigUint64(0, false);
        const id = toHex(key);
        // Number(ts) rounds to within 2^11 ms of ts, inside the window, so the key and signature checks run.
        const ctx = { networkId: 1, now: Number(ts), skewMs: 30_000 };
        const a = verifyConnectToken({ clientId: id, username: id, password: toHex(token) }, { verifier: native, ...ctx });
        const b = verifyConnectToken({ clientId: id, username: id, password: toHex(token) }, { verifier: nobleVerifier, ...ctx });
        expect(a.ok ? 'ok' : a.code).toBe(b.ok ? 'ok' : b.code);
        expect(['TOKEN_WEAK_KEY', 'TOKEN_NON_CANONICAL_SIGNATURE', 'TOKEN_BAD_SIGNATURE']).toContain(a.ok ? 'ok' : a.code);
      }),
      { numRuns: 1000 },
    );
  });

  it('a token is fresh only when strictly newer than the last accepted one', () => {
    const password = connectPassword(1, publicKey, 1000n, sign);
    const ctx = { verifier: native, networkId: 1, now: 1000, skewMs: 30_000 };
    const creds = { clientId: deviceId, username: deviceId, password };
    expect(verifyConnectToken(creds, { ...ctx, lastAcceptedTimestamp: 999n }).ok).toBe(true);
    const stale = verifyConnectToken(creds, { ...ctx, lastAcceptedTimestamp: 1000n });
    expect(stale.ok ? 'ok' : stale.code).toBe('TOKEN_STALE');
  });

  it('accepts the password as bytes (MQTT binary data) and a fractional broker clock', () => {
    const password = connectPassword(1, publicKey, 5000n, sign);
    const r = verifyConnectToken({ clientId: deviceId, username: deviceId, password: new TextEncoder().encode(password) }, { verifier: native, networkId: 1, now: 5000.5, skewMs: 30_000 });
    expect(r.ok).toBe(true);
    const raw = verifyConnectToken({ clientId: deviceId, username: deviceId, password: makeConnectToken(1, publicKey, 5000n, sign) }, { verifier: native, networkId: 1, now: 5000, skewMs: 30_000 });
    expect(raw.ok ? 'ok' : raw.code).toBe('TOKEN_BAD_ENCODING');
  });
});
