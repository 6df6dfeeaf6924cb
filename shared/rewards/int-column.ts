// One non-negative integer per device, for the epoch close's struct-of-arrays scoring (issue 5:
// 100,000 devices). Amounts in docs/rewards.md are exact integers of any size, but nearly all of a
// close's per-device numbers (metric sums, capped sums, points, contributions) are far below 2^53.
// Those live as doubles in one Float64Array, which the garbage collector never scans or copies; only
// values of 2^53 and above are kept as bigints, in a side array filled on first use. A million
// bigints and Maps per close (one per device and metric) were what made the close spend ~1 s per run
// in garbage collection.
//
// A double holds every integer up to 2^53 − 1 exactly (ECMA-262 §6.1.6.1), and a sum or product of
// two such integers is exact whenever the exact result is at most 2^53 − 1; when it is not, the
// rounded double is ≥ 2^53, so `x <= MAX_SAFE_INTEGER` after the operation says which case holds.

/** 2^53 − 1 as a double and as a bigint: the largest integer a double holds with every one below it. */
export const SAFE = Number.MAX_SAFE_INTEGER;
export const SAFE_BIG = BigInt(SAFE);
/** small[i] of a value kept in `big`. */
const BIG = -1;

export class IntColumn {
  /** The value when ≤ 2^53 − 1; BIG (−1) when it is in `big`; NaN when absent. */
  readonly small: Float64Array;
  private big: (bigint | undefined)[] | undefined;

  /** `length` values, all absent (NaN) or, with `zero`, all 0. */
  constructor(length: number, zero = false) {
    this.small = new Float64Array(length);
    if (!zero) this.small.fill(NaN);
  }

  get length(): number {
    return this.small.length;
  }

  has(i: number): boolean {
    return !Number.isNaN(this.small[i]!);
  }

  /** The value as a bigint, or undefined when absent. */
  get(i: number): bigint | undefined {
    const x = this.small[i]!;
    if (x === BIG) return this.big![i]!;
    return Number.isNaN(x) ? undefined : BigInt(x);
  }

  /** The value as a double when it is below 2^53 (exact), else NaN (absent or large: see `get`). */
  safe(i: number): number {
    const x = this.small[i]!;
    return x === BIG ? NaN : x;
  }

  set(i: number, v: bigint): void {
    if (v < 0n) throw new RangeError(`IntColumn: ${v} is negative`);
    if (v <= SAFE_BIG) {
      this.small[i] = Number(v);
    } else {
      this.small[i] = BIG;
      (this.big ??= new Array<bigint | undefined>(this.small.length))[i] = v;
    }
  }

  /** Stores a double that the caller knows is a safe non-negative integer. */
  setSafe(i: number, v: number): void {
    this.small[i] = v;
  }

  /**
   * Stores a value given as decimal digits (what `numeric::text` gives for an integer). False, and
   * nothing stored, when `s` is not a non-empty run of ASCII digits.
   */
  setText(i: number, s: string): boolean {
    const n = s.length;
    if (n === 0) return false;
    for (let k = 0; k < n; k++) {
      const c = s.charCodeAt(k);
      if (c < 48 || c > 57) return false;
    }
    // Number() of a digit string is correctly rounded, so a result ≤ 2^53 − 1 is the exact value.
    const x = Number(s);
    if (x <= SAFE) this.small[i] = x;
    else this.set(i, BigInt(s));
    return true;
  }

  /** Decimal digits of the value; `absent` when there is none. */
  text(i: number, absent = ''): string {
    const x = this.small[i]!;
    if (x === BIG) return this.big![i]!.toString();
    // Integers below 2^53 print as plain digits (Number::toString switches to exponents at 10^21).
    return Number.isNaN(x) ? absent : String(x);
  }
}
