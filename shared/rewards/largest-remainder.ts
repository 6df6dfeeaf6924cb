// Largest-remainder apportionment in bigint (docs/rewards.md §Allocation): split `total` in
// proportion to integer weights so the parts add up to exactly `total`. Each key gets
// floor(total × w / W); the units left over (fewer than the number of keys with weight) go one each
// to the largest remainders (total × w mod W), ties to the smaller key in code-unit order. The
// result depends only on the (key, weight) set, never on input order.

export type Weighted = { readonly key: string; readonly weight: bigint };

/** Parts by key (only keys with weight > 0). Empty when the total weight is 0: the caller reports it. */
export function largestRemainder(total: bigint, items: readonly Weighted[]): Map<string, bigint> {
  if (total < 0n) throw new RangeError('largestRemainder: total must be ≥ 0');
  const positive = items.filter((i) => {
    if (i.weight < 0n) throw new RangeError(`largestRemainder: weight of ${i.key} is negative`);
    return i.weight > 0n;
  });
  const out = new Map<string, bigint>();
  const sum = positive.reduce((s, i) => s + i.weight, 0n);
  if (sum === 0n) return out;
  let given = 0n;
  const rest: { key: string; rem: bigint }[] = [];
  for (const i of positive) {
    const num = total * i.weight;
    const q = num / sum;
    out.set(i.key, (out.get(i.key) ?? 0n) + q);
    given += q;
    rest.push({ key: i.key, rem: num % sum });
  }
  let left = total - given;
  rest.sort((a, b) => (a.rem > b.rem ? -1 : a.rem < b.rem ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  for (const r of rest) {
    if (left === 0n) break;
    out.set(r.key, out.get(r.key)! + 1n);
    left--;
  }
  return out;
}
