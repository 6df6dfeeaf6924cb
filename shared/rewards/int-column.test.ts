// IntColumn keeps values below 2^53 as doubles and larger ones as bigints (int-column.ts): both sides
// of the boundary must read back exactly, as bigints and as decimal text.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IntColumn } from './int-column.ts';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

describe('IntColumn', () => {
  it('reads back every value exactly, from a bigint or from decimal text', () => {
    const value = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: SAFE - 3n, max: SAFE + 3n }), fc.bigInt({ min: 0n, max: 2n ** 300n }));
    fc.assert(
      fc.property(fc.array(fc.option(value, { nil: undefined }), { maxLength: 20 }), (vs) => {
        const a = new IntColumn(vs.length);
        const b = new IntColumn(vs.length);
        vs.forEach((v, i) => {
          if (v === undefined) return;
          a.set(i, v);
          expect(b.setText(i, v.toString())).toBe(true);
        });
        vs.forEach((v, i) => {
          for (const c of [a, b]) {
            expect(c.has(i)).toBe(v !== undefined);
            expect(c.get(i)).toBe(v);
            expect(c.text(i, '-')).toBe(v === undefined ? '-' : v.toString());
            // safe() is the value only below 2^53; NaN says "absent or ask get()".
            expect(c.safe(i)).toBe(v !== undefined && v <= SAFE ? Number(v) : NaN);
          }
        });
      }),
    );
  });

  it('starts absent, or zero when asked', () => {
    expect(new IntColumn(2).get(1)).toBeUndefined();
    expect(new IntColumn(2, true).get(1)).toBe(0n);
    expect(new IntColumn(2, true).text(1)).toBe('0');
  });

  it('refuses text that is not plain decimal digits, and negative values', () => {
    const c = new IntColumn(1);
    for (const bad of ['', '-1', '+1', '1.0', '1e3', '0x10', ' 1', '1 ', '١']) {
      expect(c.setText(0, bad)).toBe(false);
      expect(c.has(0)).toBe(false);
    }
    expect(c.setText(0, '007')).toBe(true);
    expect(c.get(0)).toBe(7n);
    expect(() => c.set(0, -1n)).toThrow(RangeError);
  });
});
