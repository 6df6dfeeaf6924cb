// Largest-remainder apportionment in bigint (docs/rewards.md §Allocation): split `total` in
// proportion to integer weights so the parts add up to exactly `total`. Each key gets
// floor(total × w / W); the units left over (fewer than the number of keys with weight) go one each
// to the largest remainders (total × w mod W), ties to the smaller key in code-unit order. The
// result depends only on the (key, weight) set, never on input order.

export type Weighted = { readonly key: string; readonly weight: bigint };

/**
 * The parts by position: part i belongs to keys[i] / weights[i]; 0n for a weight of 0 and for every
 * position when the total weight is 0. Array in, array out, so an epoch close that splits each of
 * 20,000 owners' amounts over their devices builds no Map and no object per device. Keys break ties
 * between equal remainders only, so they may repeat (largestRemainder below adds such parts up).
 */
export function largestRemainderParts(total: bigint, keys: readonly string[], weights: readonly bigint[]): bigint[] {
  if (total < 0n) throw new RangeError('largestRemainder: total must be ≥ 0');
  const n = weights.length;
  if (keys.length !== n) throw new RangeError(`largestRemainder: ${keys.length} keys for ${n} weights`);
  let sum = 0n;
  for (let i = 0; i < n; i++) {
    const w = weights[i]!;
    if (w < 0n) throw new RangeError(`largestRemainder: weight of ${keys[i]} is negative`);
    sum += w;
  }
  const parts = new Array<bigint>(n).fill(0n);
  if (sum === 0n) return parts;
  let left = total;
  const rems = new Array<bigint>(n);
  // Each remainder also as a double: Number() is monotonic (a < b ⇒ Number(a) ≤ Number(b)), so
  // unequal doubles order their bigints the same way, and only equal doubles need the exact bigint
  // comparison. Sorting 20,000 owners compares doubles instead of bigints.
  const approx = new Float64Array(n);
  const order: number[] = [];
  for (let i = 0; i < n; i++) {
    const w = weights[i]!;
    if (w === 0n) continue;
    const num = total * w;
    const q = num / sum;
    parts[i] = q;
    left -= q;
    const r = num % sum;
    rems[i] = r;
    approx[i] = Number(r);
    order.push(i);
  }
  // Only when units are left over does anyone need the remainder order (left < number of keys).
  if (left > 0n) {
    order.sort((a, b) => {
      const fa = approx[a]!;
      const fb = approx[b]!;
      if (fa !== fb) return fa > fb ? -1 : 1;
      const ra = rems[a]!;
      const rb = rems[b]!;
      if (ra !== rb) return ra > rb ? -1 : 1;
      const ka = keys[a]!;
      const kb = keys[b]!;
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
    for (let j = 0; left > 0n; j++, left--) {
      const i = order[j]!;
      parts[i] = parts[i]! + 1n;
    }
  }
  return parts;
}

/** Parts by key (only keys with weight > 0). Empty when the total weight is 0: the caller reports it. */
export function largestRemainder(total: bigint, items: readonly Weighted[]): Map<string, bigint> {
  const keys = items.map((i) => i.key);
  const parts = largestRemainderParts(total, keys, items.map((i) => i.weight));
  const out = new Map<string, bigint>();
  for (let i = 0; i < items.length; i++) {
    if (items[i]!.weight === 0n) continue;
    const k = keys[i]!;
    out.set(k, (out.get(k) ?? 0n) + parts[i]!);
  }
  return out;
}
