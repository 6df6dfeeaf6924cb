// Token buckets for publish and connect rates (docs/broker.md §Limits), with a controlled clock.
import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limiter.ts';

describe('RateLimiter', () => {
  it('allows a burst, then the sustained rate, per key', () => {
    let t = 0;
    const r = new RateLimiter(2, 3, () => t);
    expect([r.take('a'), r.take('a'), r.take('a'), r.take('a')]).toEqual([true, true, true, false]);
    expect(r.take('b')).toBe(true);
    t += 500; // one token at 2/s
    expect([r.take('a'), r.take('a')]).toEqual([true, false]);
    t += 10_000;
    expect([r.take('a'), r.take('a'), r.take('a'), r.take('a')]).toEqual([true, true, true, false]);
  });

  it('prunes only buckets that would be full again', () => {
    let t = 0;
    const r = new RateLimiter(1, 2, () => t);
    r.take('a');
    t += 1_000;
    r.take('b');
    t += 1_500;
    r.prune();
    expect(r.size).toBe(1); // a was full after 2 s; b still refilling
  });
});
