// Token-bucket rate limits keyed by device (publish rate) or source address (connect rate).
// Buckets are kept per key across reconnects so a device cannot refill its bucket by reconnecting;
// buckets that have been full for a while are pruned so the map stays bounded by active keys.

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /**
   * @param ratePerSecond sustained rate (refill)
   * @param burst bucket size (back-to-back allowance)
   */
  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Take one token for `key`; false when the bucket is empty (the caller counts the violation). */
  take(key: string): boolean {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Drop buckets that would be full by now (they carry no information). */
  prune(): void {
    const now = this.now();
    const fullAfterMs = (this.burst / this.ratePerSecond) * 1000;
    for (const [k, b] of this.buckets) if (now - b.at >= fullAfterMs) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }
}
