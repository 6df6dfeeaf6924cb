// Connected time by epoch (oracle/ingest/session-epochs.ts), pure: the pieces of an interval sum to
// it, follow each other, and none crosses an epoch boundary; the per-(epoch, device) sums conserve
// every millisecond (added + closed + before genesis + capped = reported) and never exceed an epoch.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { connectedTimeByEpoch, epochLengthMs, epochOfTime, epochStartMs, splitAtEpochs, type EpochLayout } from './session-epochs.ts';

const dev = (n: number) => n.toString(16).padStart(64, '0');

const layout: fc.Arbitrary<EpochLayout> = fc.record({
  genesisSlot: fc.integer({ min: 0, max: 30_000_000 }),
  epochSlots: fc.integer({ min: 1, max: 100 }),
  slotMs: fc.integer({ min: 1, max: 60_000 }),
});

/** An interval somewhere around genesis (some of it may lie before genesis). */
const around = (l: EpochLayout) =>
  fc
    .tuple(fc.integer({ min: -3 * epochLengthMs(l), max: 20 * epochLengthMs(l) }), fc.integer({ min: 1, max: 8 * epochLengthMs(l) }))
    .map(([offset, len]) => {
      const from = Math.max(0, l.genesisSlot * l.slotMs + offset);
      return { from, to: from + len };
    });

describe('connected time by epoch', () => {
  it('epochOfTime follows floor((floor(t / slotMs) − genesisSlot) / epochSlots), and epochs start where it says', () => {
    const l = { genesisSlot: 100, epochSlots: 6, slotMs: 5_000 };
    expect(epochOfTime(500_000, l)).toBe(0);
    expect(epochOfTime(529_999, l)).toBe(0);
    expect(epochOfTime(530_000, l)).toBe(1);
    expect(epochOfTime(499_999, l)).toBe(-1);
    expect(epochStartMs(2, l)).toBe(560_000);
    fc.assert(
      fc.property(layout, fc.integer({ min: 0, max: 4_000_000_000_000 }), (l, t) => {
        const e = epochOfTime(t, l);
        expect(e).toBe(Math.floor((Math.floor(t / l.slotMs) - l.genesisSlot) / l.epochSlots));
        expect(epochStartMs(e, l)).toBeLessThanOrEqual(t);
        expect(t).toBeLessThan(epochStartMs(e + 1, l));
      }),
    );
  });

  it('splits an interval into contiguous pieces that sum to it, none crossing an epoch boundary', () => {
    fc.assert(
      fc.property(
        layout.chain((l) => fc.tuple(fc.constant(l), around(l))),
        ([l, { from, to }]) => {
          const pieces = splitAtEpochs(from, to, l);
          expect(pieces.reduce((a, p) => a + (p.to - p.from), 0)).toBe(to - from);
          expect(pieces[0]!.from).toBe(from);
          expect(pieces.at(-1)!.to).toBe(to);
          pieces.forEach((p, i) => {
            expect(p.to).toBeGreaterThan(p.from);
            if (i > 0) expect(p.from).toBe(pieces[i - 1]!.to);
            // The whole piece lies in one epoch: its first and last millisecond agree.
            expect(epochOfTime(p.from, l)).toBe(p.epoch);
            expect(epochOfTime(p.to - 1, l)).toBe(p.epoch);
            if (i > 0) expect(p.epoch).toBe(pieces[i - 1]!.epoch + 1);
          });
        },
      ),
    );
  });

  it('splits the worked case at the boundaries', () => {
    const l = { genesisSlot: 0, epochSlots: 10, slotMs: 1_000 }; // 10 s epochs from t = 0
    expect(splitAtEpochs(25_000, 47_500, l)).toEqual([
      { epoch: 2, from: 25_000, to: 30_000 },
      { epoch: 3, from: 30_000, to: 40_000 },
      { epoch: 4, from: 40_000, to: 47_500 },
    ]);
    const t = connectedTimeByEpoch(
      [
        { deviceId: dev(2), from: 25_000, to: 47_500 },
        { deviceId: dev(1), from: 39_000, to: 41_000 },
      ],
      l,
      3,
    );
    expect(t.add).toEqual([
      { epoch: 3, deviceId: dev(1), ms: 1_000 },
      { epoch: 4, deviceId: dev(1), ms: 1_000 },
      { epoch: 3, deviceId: dev(2), ms: 10_000 },
      { epoch: 4, deviceId: dev(2), ms: 7_500 },
    ]);
    expect(t.epochClosedMs).toBe(5_000);
    expect(t.beforeGenesisMs).toBe(0);
  });

  it('conserves every millisecond and keeps each (epoch, device) within the epoch length', () => {
    fc.assert(
      fc.property(
        layout.chain((l) =>
          fc.tuple(
            fc.constant(l),
            fc.array(fc.tuple(fc.integer({ min: 1, max: 3 }), around(l)), { maxLength: 12 }),
            fc.integer({ min: 0, max: 10 }),
          ),
        ),
        ([l, raw, nextEpoch]) => {
          const intervals = raw.map(([d, i]) => ({ deviceId: dev(d), ...i }));
          const t = connectedTimeByEpoch(intervals, l, nextEpoch);
          const total = intervals.reduce((a, i) => a + (i.to - i.from), 0);
          const added = t.add.reduce((a, x) => a + x.ms, 0);
          expect(added + t.epochClosedMs + t.beforeGenesisMs + t.cappedMs).toBe(total);
          const keys = new Set<string>();
          for (const x of t.add) {
            expect(x.epoch).toBeGreaterThanOrEqual(nextEpoch);
            expect(x.ms).toBeGreaterThan(0);
            expect(x.ms).toBeLessThanOrEqual(epochLengthMs(l));
            keys.add(`${x.deviceId}:${x.epoch}`);
          }
          expect(keys.size).toBe(t.add.length); // one row per (epoch, device): one upsert each
          // Without overlap nothing is capped: disjoint intervals of one device fit in their epochs.
          if (new Set(intervals.map((i) => i.deviceId)).size === intervals.length) expect(t.cappedMs).toBe(0);
        },
      ),
    );
  });
});
