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

  /**
   * A layout that counts how often it is read and throws past `budget` reads: every epoch the
   * splitter visits reads it a few times (epochOfTime, epochStartMs), so the count measures the work
   * without a clock, and a splitter that walks closed or pre-genesis epochs one by one fails fast
   * instead of allocating millions of pieces.
   */
  function budgeted(l: EpochLayout, budget: number): EpochLayout & { readonly reads: number } {
    let reads = 0;
    const read = <T>(v: T): T => {
      if (++reads > budget) throw new Error(`layout read more than ${budget} times: the splitter visits epochs one by one`);
      return v;
    };
    return {
      get genesisSlot() { return read(l.genesisSlot); },
      get epochSlots() { return read(l.epochSlots); },
      get slotMs() { return read(l.slotMs); },
      get reads() { return reads; },
    };
  }

  it('accounts closed and pre-genesis time arithmetically: a 10-year interval over 1-minute epochs costs a few open epochs (review: split-blowup)', () => {
    const T = 1_700_000_000_000;
    const span = 3.15e11; // ~10 years: 5.25 million 1-minute epochs
    const l = { genesisSlot: 0, epochSlots: 1, slotMs: 60_000 };
    const nextEpoch = epochOfTime(T, l) - 2; // the last 3 epochs (the last one partial) are open
    const b = budgeted(l, 1_000);
    const t = connectedTimeByEpoch([{ deviceId: dev(1), from: T - span, to: T }], b, nextEpoch);
    expect(t.add).toEqual([
      { epoch: nextEpoch, deviceId: dev(1), ms: 60_000 },
      { epoch: nextEpoch + 1, deviceId: dev(1), ms: 60_000 },
      { epoch: nextEpoch + 2, deviceId: dev(1), ms: T - epochStartMs(nextEpoch + 2, l) },
    ]);
    expect(t.epochClosedMs).toBe(epochStartMs(nextEpoch, l) - (T - span));
    expect(t.beforeGenesisMs).toBe(0);

    // The same ten years entirely before genesis, and straddling it with genesis closed.
    const late = { genesisSlot: Math.floor(T / 60_000) + 10, epochSlots: 1, slotMs: 60_000 };
    expect(connectedTimeByEpoch([{ deviceId: dev(1), from: T - span, to: T }], budgeted(late, 1_000), 0)).toEqual({ add: [], epochClosedMs: 0, beforeGenesisMs: span, cappedMs: 0 });
    const mid = { genesisSlot: Math.floor((T - span / 2) / 60_000), epochSlots: 1, slotMs: 60_000 };
    const m = connectedTimeByEpoch([{ deviceId: dev(2), from: T - span, to: T }], budgeted(mid, 1_000), epochOfTime(T, mid) + 1);
    expect(m).toEqual({ add: [], epochClosedMs: T - mid.genesisSlot * 60_000, beforeGenesisMs: mid.genesisSlot * 60_000 - (T - span), cappedMs: 0 });
  });

  it('visits only the epochs that are open, for any layout, interval length and cursor', () => {
    fc.assert(
      fc.property(
        layout,
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.integer({ min: 1, max: 2 ** 45 }),
        fc.integer({ min: 0, max: 6 }),
        (l, offset, len, openEpochs) => {
          const from = Math.max(0, l.genesisSlot * l.slotMs - 2 ** 39) + offset;
          const to = from + len;
          // The cursor leaves only the last `openEpochs` epochs of the interval open (or none).
          const nextEpoch = Math.max(0, epochOfTime(to - 1, l) + 1 - openEpochs);
          const open = Math.max(0, epochOfTime(to - 1, l) + 1 - Math.max(nextEpoch, epochOfTime(from, l)));
          const b = budgeted(l, 50 + 20 * open);
          const t = connectedTimeByEpoch([{ deviceId: dev(1), from, to }], b, nextEpoch);
          expect(t.add.length).toBe(open);
          expect(t.add.reduce((a, x) => a + x.ms, 0) + t.epochClosedMs + t.beforeGenesisMs + t.cappedMs).toBe(len);
          expect(t.cappedMs).toBe(0);
        },
      ),
    );
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
