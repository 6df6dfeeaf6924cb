// peekSeq reads the seq at its fixed offset (docs/protocol.md §Heartbeat) and agrees with the codec.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { decodeHeartbeat, encodeHeartbeatBody } from '../shared/protocol/heartbeat.ts';
import { MAX_SEQ } from '../shared/protocol/constants.ts';
import { TestDevice } from './test-kit.ts';
import { peekSeq } from './peek-seq.ts';

describe('peekSeq', () => {
  const device = new TestDevice(3);

  it('agrees with the codec on every seq, including above 2^53', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: MAX_SEQ }), (seq) => {
        const hb = device.heartbeat({ seq });
        const decoded = decodeHeartbeat(hb);
        expect(decoded.ok && decoded.value.seq).toBe(seq);
        expect(peekSeq(hb)).toBe(seq);
      }),
      { numRuns: 200 },
    );
  });

  it('reads the seq of payloads the codec refuses, as long as the header holds it', () => {
    const hb = device.heartbeat({ seq: 0x0102030405060708n });
    expect(peekSeq(hb.subarray(0, 46))).toBe(0x0102030405060708n); // truncated right after the seq
    const oversized = new Uint8Array(1500);
    oversized.set(hb);
    expect(peekSeq(oversized)).toBe(0x0102030405060708n);
    // Out-of-range values are reported as read (the codec calls them HB_BAD_SEQ).
    const body = encodeHeartbeatBody({ networkId: 3, publicKey: device.key.publicKey, seq: 1n, timestamp: 0n, metrics: [] });
    body.fill(0xff, 38, 46);
    expect(peekSeq(body)).toBe((1n << 64n) - 1n);
  });

  it('is undefined when the seq cannot be read: short, not v1, not a heartbeat', () => {
    const hb = device.heartbeat();
    expect(peekSeq(new Uint8Array(0))).toBeUndefined();
    expect(peekSeq(hb.subarray(0, 45))).toBeUndefined();
    const v2 = Uint8Array.from(hb);
    v2[0] = 0x02;
    expect(peekSeq(v2)).toBeUndefined();
    const token = Uint8Array.from(hb);
    token[1] = 0x02;
    expect(peekSeq(token)).toBeUndefined();
    expect(peekSeq(new Uint8Array(1500))).toBeUndefined();
    // Random bytes: a seq only when the two leading bytes happen to say v1 heartbeat.
    for (let i = 0; i < 200; i++) {
      const junk = randomBytes(1 + (i % 300));
      expect(peekSeq(junk) !== undefined).toBe(junk.length >= 46 && junk[0] === 1 && junk[1] === 1);
    }
  });
});
