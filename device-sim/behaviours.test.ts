// Behaviour mixing (issue 8 §1): parsing --mix, apportioning a fleet by share, and interleaving.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BEHAVIOURS, BEHAVIOUR_INFO, apportion, assignBehaviours, parseMix, type BehaviourName, type Mix } from './behaviours.ts';
import { ERROR_CODES } from '../shared/error-codes.ts';
import { isPulseError } from '../shared/errors.ts';

const mixArb: fc.Arbitrary<Mix> = fc
  .dictionary(fc.constantFrom(...BEHAVIOURS), fc.integer({ min: 0, max: 1000 }), { minKeys: 1 })
  .filter((m) => Object.values(m).some((v) => v > 0));

describe('parseMix', () => {
  it('reads name=share lists', () => {
    expect(parseMix('honest=80,flaky=10, forge=5.5')).toEqual({ honest: 80, flaky: 10, forge: 5.5 });
  });

  it.each([
    ['honest', 'not name=share'],
    ['honest=80,bogus=1', 'unknown behaviour'],
    ['honest=1,honest=2', 'given twice'],
    ['honest=0', 'add up to 0'],
    ['honest=-1', 'not name=share'],
    ['', 'add up to 0'],
  ])('refuses %j with CLI_USAGE', (text, why) => {
    try {
      parseMix(text);
      expect.unreachable();
    } catch (e) {
      expect(isPulseError(e, 'CLI_USAGE')).toBe(true);
      expect((e as Error).message).toContain(why);
    }
  });

  it('round-trips any mix written as text', () => {
    fc.assert(
      fc.property(mixArb, (mix) => {
        const entries = Object.entries(mix);
        if (entries.every(([, v]) => v === 0)) return;
        expect(parseMix(entries.map(([k, v]) => `${k}=${v}`).join(','))).toEqual(mix);
      }),
    );
  });
});

describe('apportion and assignBehaviours', () => {
  it('gives exactly n devices, each behaviour within one of its exact share, none to a zero share', () => {
    fc.assert(
      fc.property(mixArb, fc.integer({ min: 0, max: 500 }), (mix, n) => {
        const counts = apportion(mix, n);
        const total = BEHAVIOURS.reduce((s, b) => s + (mix[b] ?? 0), 0);
        expect(BEHAVIOURS.reduce((s, b) => s + counts[b], 0)).toBe(n);
        for (const b of BEHAVIOURS) {
          const exact = (n * (mix[b] ?? 0)) / total;
          expect(counts[b]).toBeGreaterThanOrEqual(Math.floor(exact));
          expect(counts[b]).toBeLessThanOrEqual(Math.ceil(exact));
          if ((mix[b] ?? 0) === 0) expect(counts[b]).toBe(0);
        }
      }),
    );
  });

  it('assigns each behaviour as many devices as apportioned, spread out rather than in blocks', () => {
    fc.assert(
      fc.property(mixArb, fc.integer({ min: 1, max: 300 }), (mix, n) => {
        const list = assignBehaviours(mix, n);
        const counts = apportion(mix, n);
        expect(list).toHaveLength(n);
        for (const b of BEHAVIOURS) expect(list.filter((x) => x === b).length).toBe(counts[b]);
        // Every prefix holds each behaviour within 1 of its share of that prefix.
        const seen = new Map<BehaviourName, number>();
        list.forEach((b, i) => {
          seen.set(b, (seen.get(b) ?? 0) + 1);
          for (const c of BEHAVIOURS) expect(Math.abs((seen.get(c) ?? 0) - ((i + 1) * counts[c]) / n)).toBeLessThanOrEqual(1 + 1e-9);
        });
      }),
    );
  });

  it('is deterministic', () => {
    expect(assignBehaviours({ honest: 80, flaky: 10, forge: 10 }, 10)).toEqual(assignBehaviours({ honest: 80, flaky: 10, forge: 10 }, 10));
    expect(apportion({ honest: 1, forge: 1 }, 3)).toMatchObject({ honest: 2, forge: 1 });
  });
});

describe('behaviour catalogue', () => {
  it('every expected reason is a catalogued code', () => {
    for (const b of BEHAVIOURS) {
      const e = BEHAVIOUR_INFO[b].expect;
      if (e.outcome === 'rejected') expect(Object.keys(ERROR_CODES)).toContain(e.reason);
    }
  });
});
