// The threadpool path (classifyAsync) and the main-thread path (classify, verifyHeartbeat with the
// native verifier) must give the same verdict and code on every input, including mutated payloads
// and a valid signature transplanted onto another heartbeat's body in the same batch.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { classify, classifyAsync, type Classified, type IngestRules } from '../oracle/ingest/classify.ts';
import { TEST_NETWORK, heartbeatMessage, newDevice } from '../oracle/ingest/testing.ts';
import { nativeVerifier } from '../shared/crypto/native.ts';
import type { BusHeartbeat } from '../bus/bus.ts';

const rules: IngestRules = { networkId: TEST_NETWORK, skewMs: 30_000, slotIntervalMs: 60_000, maxPayloadBytes: 1024, verifier: nativeVerifier };
const summary = (c: Classified) => (c.kind === 'candidate' ? `ok:${c.candidate.heartbeat.seq}:${c.candidate.slot}` : `${c.rejection.reason}:${c.poison}`);

describe('classify vs classifyAsync', () => {
  const device = newDevice();
  const now = Date.now();
  const base = heartbeatMessage(device, 42, { receivedAt: now, metrics: [{ id: 1, value: 5n }, { id: 3, value: 7n }] });

  it('agree on byte flips, truncations and extensions of a valid heartbeat', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(base.raw.length - 1), fc.integer({ min: 1, max: 255 }), fc.integer({ min: -5, max: 3 }), async (pos, xor, lenDelta) => {
        const raw = new Uint8Array(Math.max(0, base.raw.length + lenDelta));
        raw.set(base.raw.subarray(0, raw.length));
        if (pos < raw.length) raw[pos] = raw[pos]! ^ xor;
        const m: BusHeartbeat = { ...base, raw };
        expect(summary(await classifyAsync(m, rules, now))).toBe(summary(classify(m, rules, now)));
      }),
      { numRuns: 300 },
    );
  });

  it('a valid signature moved onto another body is rejected on both paths', async () => {
    const other = heartbeatMessage(device, 43, { receivedAt: now });
    const forged = Uint8Array.from(other.raw);
    forged.set(base.raw.subarray(base.raw.length - 64), forged.length - 64);
    const m = { ...other, raw: forged };
    const [a, b] = await Promise.all([classifyAsync(base, rules, now), classifyAsync(m, rules, now)]);
    expect(summary(a)).toBe(`ok:42:${BigInt(now) / 60_000n}`);
    expect(summary(b)).toBe('HB_BAD_SIGNATURE:false');
    expect(summary(classify(m, rules, now))).toBe('HB_BAD_SIGNATURE:false');
  });
});
