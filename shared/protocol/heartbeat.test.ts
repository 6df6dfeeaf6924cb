// Heartbeat codec properties (docs/protocol.md §Heartbeat): round trips, no throw on any input,
// every stateless reason code reachable, and the single-bit-flip table over a valid heartbeat.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectedCodeForFlip, flipBit, rawHeartbeatBody, vectorSecretKey } from '../../scripts/gen-vectors.ts';
import { NativeVerifier } from '../crypto/native.ts';
import { noblePublicKey, nobleVerifier } from '../crypto/noble.ts';
import { DOMAIN, MAX_SEQ, heartbeatLength } from './constants.ts';
import { decodeHeartbeat, encodeHeartbeatBody, heartbeatSigningInput, inspectHeartbeat, signHeartbeat, verifyHeartbeat, withinSkew, type HeartbeatFields } from './heartbeat.ts';
import { signerFor } from './signer.ts';
import { heartbeatTopic } from './topics.ts';
import { concatBytes, toHex } from '../hex.ts';

const native = new NativeVerifier();
const secretKey = vectorSecretKey('device-a');
const publicKey = noblePublicKey(secretKey);
const sign = signerFor(secretKey);

const metricsArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 0xffff }), { maxLength: 16 })
  .chain((ids) => fc.tuple(...ids.sort((a, b) => a - b).map((id) => fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((value) => ({ id, value })))));
const fieldsArb: fc.Arbitrary<HeartbeatFields> = fc.record({
  networkId: fc.integer({ min: 0, max: 0xffff_ffff }),
  publicKey: fc.constant(publicKey),
  seq: fc.bigInt({ min: 1n, max: MAX_SEQ }),
  timestamp: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  metrics: metricsArb,
});

describe('heartbeat round trip', () => {
  it('encode → decode gives back every field; length is 119 + 10·n; the signature verifies', () => {
    fc.assert(
      fc.property(fieldsArb, (f) => {
        const bytes = signHeartbeat(f, sign);
        expect(bytes.length).toBe(heartbeatLength(f.metrics.length));
        const d = decodeHeartbeat(bytes);
        if (!d.ok) throw new Error(d.code);
        expect(d.value.networkId).toBe(f.networkId);
        expect(d.value.seq).toBe(f.seq);
        expect(d.value.timestamp).toBe(f.timestamp);
        expect(d.value.metrics).toEqual(f.metrics);
        expect(d.value.deviceId).toBe(toHex(publicKey));
        expect(toHex(encodeHeartbeatBody(d.value))).toBe(toHex(bytes.subarray(0, bytes.length - 64)));
        const v = verifyHeartbeat(bytes, { verifier: native, networkId: f.networkId, topic: heartbeatTopic(toHex(publicKey)), authenticatedDeviceId: toHex(publicKey) });
        expect(v.ok).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it('the signed message is DOMAIN || body', () => {
    const body = encodeHeartbeatBody({ networkId: 1, publicKey, seq: 1n, timestamp: 0n, metrics: [] });
    expect(toHex(heartbeatSigningInput(body))).toBe(toHex(concatBytes(DOMAIN, body)));
    expect(toHex(DOMAIN)).toBe(Buffer.from('PULSE-V1').toString('hex'));
  });

  it('the encoder refuses what no device may send', () => {
    const ok = { networkId: 1, publicKey, seq: 1n, timestamp: 0n, metrics: [] };
    expect(() => encodeHeartbeatBody({ ...ok, seq: 0n })).toThrow(RangeError);
    expect(() => encodeHeartbeatBody({ ...ok, seq: MAX_SEQ + 1n })).toThrow(RangeError);
    expect(() => encodeHeartbeatBody({ ...ok, networkId: 2 ** 32 })).toThrow(RangeError);
    expect(() => encodeHeartbeatBody({ ...ok, timestamp: -1n })).toThrow(RangeError);
    expect(() => encodeHeartbeatBody({ ...ok, publicKey: publicKey.subarray(1) })).toThrow(RangeError);
    expect(() => encodeHeartbeatBody({ ...ok, metrics: [{ id: 2, value: 0n }, { id: 2, value: 0n }] })).toThrow(RangeError);
    expect(() => encodeHeartbeatBody({ ...ok, metrics: Array.from({ length: 17 }, (_, id) => ({ id, value: 0n })) })).toThrow(RangeError);
    expect(() => encodeHeartbeatBody({ ...ok, metrics: [{ id: 1, value: 1n << 64n }] })).toThrow(RangeError);
  });
});

describe('heartbeat decoding never throws', () => {
  const ctx = { verifier: native, networkId: 1, topic: heartbeatTopic(toHex(publicKey)) };
  const check = (bytes: Uint8Array) => {
    const d = decodeHeartbeat(bytes);
    const v = verifyHeartbeat(bytes, ctx);
    const i = inspectHeartbeat(bytes, ctx);
    // Any result is a value or a coded error; verify's code is inspect's first problem.
    if (!v.ok) expect(v.code).toBe(i.problems[0]!.code);
    else expect(i.problems).toEqual([]);
    if (!d.ok) expect(d.code).toMatch(/^HB_/);
  };

  it('on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: 5000 });
  });

  it('on bytes with a plausible header and exact length (reaching the key and signature checks)', () => {
    const arb = fc.integer({ min: 0, max: 16 }).chain((n) =>
      fc.uint8Array({ minLength: heartbeatLength(n), maxLength: heartbeatLength(n) }).map((b) => {
        b[0] = 1;
        b[1] = 1;
        b[54] = n;
        return b;
      }),
    );
    fc.assert(fc.property(arb, check), { numRuns: 1000 });
  });

  it('on valid heartbeats with random byte edits, insertions and deletions', () => {
    const valid = signHeartbeat({ networkId: 1, publicKey, seq: 5n, timestamp: 1_767_225_600_000n, metrics: [{ id: 1, value: 10n }, { id: 9, value: 20n }] }, sign);
    const arb = fc.tuple(fc.nat({ max: valid.length }), fc.nat({ max: 3 }), fc.uint8Array({ maxLength: 4 })).map(([at, del, ins]) => concatBytes(valid.subarray(0, at), ins, valid.subarray(Math.min(valid.length, at + del))));
    fc.assert(fc.property(arb, check), { numRuns: 2000 });
  });
});

describe('every stateless heartbeat code is reachable', () => {
  const good = signHeartbeat({ networkId: 1, publicKey, seq: 1n, timestamp: 0n, metrics: [{ id: 3, value: 1n }] }, sign);
  const body = (over: Partial<Parameters<typeof rawHeartbeatBody>[0]>) => rawHeartbeatBody({ networkId: 1, publicKey, seq: 1n, timestamp: 0n, metrics: [[3, 1n]], ...over });
  const signed = (b: Uint8Array) => concatBytes(b, sign(concatBytes(DOMAIN, b)));
  const cases: [string, Uint8Array, object, string][] = [
    ['HB_TRUNCATED', good.subarray(0, 10), {}, 'short'],
    ['HB_BAD_LENGTH', concatBytes(good, Uint8Array.of(1)), {}, 'long'],
    ['HB_BAD_VERSION', signed(body({ version: 0 })), {}, 'version'],
    ['HB_BAD_TYPE', signed(body({ type: 3 })), {}, 'type'],
    ['HB_TOO_MANY_METRICS', signed(body({ n: 17 })), {}, 'n'],
    ['HB_METRICS_UNORDERED', signed(body({ metrics: [[3, 1n], [2, 1n]] })), {}, 'order'],
    ['HB_BAD_SEQ', signed(body({ seq: 0n })), {}, 'seq'],
    ['HB_WEAK_KEY', signed(body({ publicKey: new Uint8Array(32) })), {}, 'small-order key'],
    ['HB_NON_CANONICAL_SIGNATURE', concatBytes(good.subarray(0, 97), new Uint8Array(32).fill(0xff)), {}, 'S'],
    ['HB_BAD_SIGNATURE', flipBit(good, 46 * 8), {}, 'timestamp'],
    ['HB_WRONG_NETWORK', good, { networkId: 9 }, 'network'],
    ['HB_TOPIC_MISMATCH', good, { topic: 'devices/x/heartbeat' }, 'topic'],
    ['HB_TOPIC_MISMATCH', good, { authenticatedDeviceId: '00'.repeat(32) }, 'session'],
  ];
  for (const [code, bytes, ctx, what] of cases) {
    it(`${code} (${what})`, () => {
      for (const verifier of [native, nobleVerifier]) {
        const r = verifyHeartbeat(bytes, { verifier, ...ctx });
        expect(r.ok ? 'ok' : r.code).toBe(code);
      }
    });
  }

  it('inspect lists every problem it can see, not only the first', () => {
    const b = signed(body({ version: 2, seq: 0n, metrics: [[3, 1n], [3, 1n]] }));
    const { problems } = inspectHeartbeat(b, { verifier: native, networkId: 5 });
    expect(problems.map((p) => p.code)).toEqual(['HB_BAD_VERSION', 'HB_BAD_SEQ', 'HB_METRICS_UNORDERED', 'HB_WRONG_NETWORK']);
  });
});

describe('single-bit flips of a valid heartbeat', () => {
  const valid = signHeartbeat({ networkId: 1, publicKey, seq: 1n, timestamp: 1_767_225_600_000n, metrics: [{ id: 1, value: 3600n }, { id: 2, value: 7n }, { id: 40, value: 1n }] }, sign);
  const contexts: { name: string; ctx: { networkId?: number; topic?: string } }[] = [
    { name: 'receiver with network and topic', ctx: { networkId: 1, topic: heartbeatTopic(toHex(publicKey)) } },
    { name: 'receiver with network only', ctx: { networkId: 1 } },
    { name: 'no receiver context (hb inspect without options)', ctx: {} },
  ];
  for (const { name, ctx } of contexts) {
    it(`every one of the ${valid.length * 8} bits fails with the code of its field: ${name}`, () => {
      const got = new Map<string, number>();
      for (let bit = 0; bit < valid.length * 8; bit++) {
        const expected = expectedCodeForFlip(valid, bit, ctx);
        const r = verifyHeartbeat(flipBit(valid, bit), { verifier: native, ...ctx });
        expect(r.ok ? 'ok' : r.code, `bit ${bit} (byte ${bit >> 3})`).toBe(expected);
        got.set(expected, (got.get(expected) ?? 0) + 1);
      }
      // The flips reach the field-specific codes, not only HB_BAD_SIGNATURE.
      for (const code of ['HB_BAD_VERSION', 'HB_BAD_TYPE', 'HB_BAD_SEQ', 'HB_TOO_MANY_METRICS', 'HB_TRUNCATED', 'HB_BAD_LENGTH', 'HB_METRICS_UNORDERED', 'HB_NON_CANONICAL_SIGNATURE', 'HB_BAD_SIGNATURE'])
        expect(got.has(code), code).toBe(true);
    });
  }

  it('noble agrees with native on every flipped bit', () => {
    const ctx = { networkId: 1 };
    for (let bit = 0; bit < valid.length * 8; bit++) {
      const bytes = flipBit(valid, bit);
      const a = verifyHeartbeat(bytes, { verifier: native, ...ctx });
      const b = verifyHeartbeat(bytes, { verifier: nobleVerifier, ...ctx });
      expect(b.ok ? 'ok' : b.code, `bit ${bit}`).toBe(a.ok ? 'ok' : a.code);
    }
  });
});

describe('clock rule', () => {
  it('|timestamp − receivedAt| ≤ skew, inclusive at the edge', () => {
    expect(withinSkew(1_000_000n, 1_030_000, 30_000)).toBe(true);
    expect(withinSkew(1_000_000n, 1_030_001, 30_000)).toBe(false);
    expect(withinSkew(1_030_000n, 1_000_000, 30_000)).toBe(true);
    expect(withinSkew(1_030_001n, 1_000_000, 30_000)).toBe(false);
    expect(withinSkew((1n << 64n) - 1n, Date.now(), 30_000)).toBe(false);
  });

  it('accepts a fractional receive time (a clock from performance.timeOrigin + now()) without throwing', () => {
    expect(withinSkew(1_000_000n, 1_000_000.7, 30_000)).toBe(true);
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.double({ min: 0, max: 2 ** 50, noNaN: true }), (ts, now) => {
      expect(typeof withinSkew(ts, now, 30_000)).toBe('boolean');
    }));
  });
});
