// The session report codec (bus/session-report.ts): valid reports round-trip byte-exactly through
// JSON, every malformation decodes to SESSION_BAD_REPORT (never a throw), and a large report splits
// into valid parts whose intervals concatenate to the original.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { SessionInterval, SessionReport } from './bus.ts';
import { MAX_INTERVALS_PER_PART, checkSessionReport, connectedMsOf, decodeSessionReport, encodeSessionReport, sessionReportId, sessionReportParts } from './session-report.ts';

const dev = (n: number) => n.toString(16).padStart(64, '0');
const T0 = 1_700_000_000_000;

function report(intervals: SessionInterval[], over: Partial<SessionReport> = {}): SessionReport {
  return { brokerId: 'pulse-broker-1', seq: 1, part: 0, parts: 1, from: T0, to: T0 + 30_000, intervals, ...over };
}

const bytes = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
const wire = (over: Record<string, unknown> = {}) => ({ v: 1, broker: 'b1', seq: 1, part: 0, parts: 1, from: T0, to: T0 + 10, intervals: [[dev(1), T0, T0 + 10]], ...over });

/** Valid reports: per device, disjoint sorted intervals inside the window. */
const validReport = fc
  .record({
    from: fc.integer({ min: 0, max: 4_000_000_000_000 }),
    len: fc.integer({ min: 1, max: 3_600_000 }),
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    broker: fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/),
    devices: fc.uniqueArray(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 8 }),
    cuts: fc.array(fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), { minLength: 8, maxLength: 8 }),
  })
  .map(({ from, len, seq, broker, devices, cuts }) => {
    const to = from + len;
    const intervals: SessionInterval[] = [];
    [...devices].sort((a, b) => (dev(a) < dev(b) ? -1 : 1)).forEach((d, k) => {
      // Sorted, distinct points in the window, paired into disjoint intervals.
      const pts = [...new Set(cuts[k]!.map((c) => from + Math.floor(c * len)))].sort((a, b) => a - b);
      for (let i = 0; i + 1 < pts.length; i += 2) intervals.push({ deviceId: dev(d), from: pts[i]!, to: pts[i + 1]! });
    });
    return report(intervals, { brokerId: broker, seq, from, to });
  });

describe('session report codec', () => {
  it('round-trips every valid report and checks it valid', () => {
    fc.assert(
      fc.property(validReport, (r) => {
        expect(checkSessionReport(r).ok).toBe(true);
        const back = decodeSessionReport(encodeSessionReport(r));
        expect(back).toEqual({ ok: true, value: r });
      }),
    );
  });

  it('names a part by broker, seq and part', () => {
    expect(sessionReportId(report([], { brokerId: 'b-7', seq: 12, part: 3, parts: 4 }))).toBe('b-7:12:3');
  });

  it('sums the connected milliseconds of a part', () => {
    expect(connectedMsOf(report([{ deviceId: dev(1), from: T0, to: T0 + 5 }, { deviceId: dev(2), from: T0 + 1, to: T0 + 30_000 }]))).toBe(5 + 29_999);
  });

  it.each([
    ['not JSON', new TextEncoder().encode('{"v":1,')],
    ['invalid UTF-8', Uint8Array.of(0x7b, 0xff, 0x7d)],
    ['a JSON array', bytes([1, 2])],
    ['null', bytes(null)],
    ['unknown version', bytes(wire({ v: 2 }))],
    ['broker id with a dot (a NATS token separator)', bytes(wire({ broker: 'a.b' }))],
    ['empty broker id', bytes(wire({ broker: '' }))],
    ['seq 0', bytes(wire({ seq: 0 }))],
    ['seq as a string', bytes(wire({ seq: '1' }))],
    ['fractional seq', bytes(wire({ seq: 1.5 }))],
    ['seq beyond 2^53', bytes(wire({ seq: 2 ** 60 }))],
    ['part = parts', bytes(wire({ part: 1, parts: 1 }))],
    ['zero parts', bytes(wire({ part: 0, parts: 0 }))],
    ['empty window', bytes(wire({ to: T0, intervals: [] }))],
    ['negative time', bytes(wire({ from: -10, intervals: [] }))],
    ['intervals not a list', bytes(wire({ intervals: {} }))],
    ['interval not a triple', bytes(wire({ intervals: [[dev(1), T0]] }))],
    ['interval as an object', bytes(wire({ intervals: [{ deviceId: dev(1), from: T0, to: T0 + 1 }] }))],
    ['uppercase device id', bytes(wire({ intervals: [[dev(1).toUpperCase().replace(/0/g, 'A'), T0, T0 + 1]] }))],
    ['short device id', bytes(wire({ intervals: [['ab', T0, T0 + 1]] }))],
    ['empty interval', bytes(wire({ intervals: [[dev(1), T0 + 1, T0 + 1]] }))],
    ['interval before the window', bytes(wire({ intervals: [[dev(1), T0 - 1, T0 + 1]] }))],
    ['interval after the window', bytes(wire({ intervals: [[dev(1), T0 + 1, T0 + 11]] }))],
    ['overlapping intervals of one device', bytes(wire({ intervals: [[dev(1), T0, T0 + 5], [dev(1), T0 + 4, T0 + 8]] }))],
    ['devices out of order', bytes(wire({ intervals: [[dev(2), T0, T0 + 5], [dev(1), T0, T0 + 5]] }))],
    ['too many intervals', bytes(wire({ to: T0 + 10_000, intervals: Array.from({ length: MAX_INTERVALS_PER_PART + 1 }, (_, i) => [dev(i + 1), T0, T0 + 1]) }))],
  ])('refuses %s with SESSION_BAD_REPORT', (_name, raw) => {
    const r = decodeSessionReport(raw);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe('SESSION_BAD_REPORT');
  });

  // A window is at most 2 h (twice the longest --session-report-interval): one report can no longer
  // make the oracle split years of connected time into millions of rows (review: split-blowup).
  it('refuses a window longer than 2 h, and accepts one of exactly 2 h', () => {
    const H2 = 2 * 3_600_000;
    expect(decodeSessionReport(bytes(wire({ to: T0 + H2, intervals: [[dev(1), T0, T0 + H2]] }))).ok).toBe(true);
    for (const span of [H2 + 1, 3.15e11]) {
      const r = decodeSessionReport(bytes(wire({ from: T0 - span, to: T0, intervals: [[dev(1), T0 - span, T0]] })));
      expect(r).toMatchObject({ ok: false, code: 'SESSION_BAD_REPORT' });
      expect(checkSessionReport(report([], { from: T0 - span, to: T0 })).ok).toBe(false);
    }
    // Also a window far beyond any clock: the bound holds however large the numbers are.
    expect(decodeSessionReport(bytes(wire({ from: 0, to: Number.MAX_SAFE_INTEGER, intervals: [] }))).ok).toBe(false);
  });

  it('refuses -0 in an integer field: it would encode back as 0 and not round-trip (found by fast-check, seed 305579015)', () => {
    // JSON.stringify cannot spell -0, so the raw text is edited.
    const withMinusZero = (o: unknown, field: string) => new TextEncoder().encode(JSON.stringify(o).replace(`"${field}":0`, `"${field}":-0`));
    expect(decodeSessionReport(withMinusZero(wire(), 'part')).ok).toBe(false);
    expect(decodeSessionReport(withMinusZero(wire({ from: 0, to: 10, intervals: [[dev(1), 1, 10]] }), 'from')).ok).toBe(false);
    expect(decodeSessionReport(bytes(wire({ from: 0, to: 10, intervals: [[dev(1), 1, 10]] }))).ok).toBe(true);
  });

  it('accepts an interval that ends where the next one of the same device starts', () => {
    expect(decodeSessionReport(bytes(wire({ intervals: [[dev(1), T0, T0 + 5], [dev(1), T0 + 5, T0 + 8]] }))).ok).toBe(true);
  });

  it('never throws on arbitrary bytes or arbitrary JSON: they decode to SESSION_BAD_REPORT', () => {
    const refused = (raw: Uint8Array) => {
      const r = decodeSessionReport(raw);
      expect(r).toMatchObject({ ok: false, code: 'SESSION_BAD_REPORT' });
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => refused(b)));
    fc.assert(fc.property(fc.jsonValue(), (j) => refused(bytes(j))));
    // Near misses: a valid report with one field replaced by an arbitrary JSON value. Whatever
    // decodes is a checked report that encodes back to exactly those fields; the rest is refused.
    fc.assert(
      fc.property(fc.constantFrom('v', 'broker', 'seq', 'part', 'parts', 'from', 'to', 'intervals'), fc.jsonValue(), (key, value) => {
        const o: Record<string, unknown> = wire();
        o[key] = value;
        const r = decodeSessionReport(bytes(o));
        if (r.ok) {
          expect(checkSessionReport(r.value).ok).toBe(true);
          expect(JSON.parse(new TextDecoder().decode(encodeSessionReport(r.value)))).toEqual(o);
        } else {
          expect(r.code).toBe('SESSION_BAD_REPORT');
        }
      }),
    );
  });

  it('splits a large report into valid parts that concatenate to the original', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.integer({ min: 1, max: 7 }), (n, max) => {
        const intervals = Array.from({ length: n }, (_, i) => ({ deviceId: dev(i + 1), from: T0 + i, to: T0 + i + 100 }));
        const parts = sessionReportParts({ brokerId: 'b', seq: 4, from: T0, to: T0 + 30_000 }, intervals, max);
        expect(parts).toHaveLength(Math.ceil(n / max));
        expect(parts.flatMap((p) => p.intervals)).toEqual(intervals);
        parts.forEach((p, i) => {
          expect(p.part).toBe(i);
          expect(p.parts).toBe(parts.length);
          expect(p.intervals.length).toBeLessThanOrEqual(max);
          expect(checkSessionReport(p).ok).toBe(true);
        });
      }),
    );
  });

  it('a full part stays far below the NATS default max_payload of 1 MiB', () => {
    const intervals = Array.from({ length: MAX_INTERVALS_PER_PART }, (_, i) => ({ deviceId: dev(i + 1).replace(/0/g, 'f'), from: 4_000_000_000_000 + i, to: 4_000_000_030_000 }));
    const [part] = sessionReportParts({ brokerId: `pulse-broker-${'e'.repeat(36)}`, seq: Number.MAX_SAFE_INTEGER, from: 4_000_000_000_000, to: 4_000_000_030_000 }, intervals);
    expect(encodeSessionReport(part!).length).toBeLessThan(512 * 1024);
  });
});
