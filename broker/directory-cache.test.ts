// DirectoryCache: TTL caching, shared in-flight lookups, and change polling (docs/broker.md §Authentication).
import { describe, expect, it } from 'vitest';
import { DirectoryCache } from './directory-cache.ts';
import { MemoryDirectory } from './memory-directory.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('DirectoryCache', () => {
  it('caches answers (also "unknown") for the TTL and shares concurrent lookups', async () => {
    let t = 0;
    const dir = new MemoryDirectory();
    dir.set(A);
    const cache = new DirectoryCache(dir, 1_000, 100, () => t);
    await Promise.all([cache.lookup(A), cache.lookup(A), cache.lookup(B)]);
    expect(dir.lookups).toBe(2);
    await cache.lookup(B);
    expect(dir.lookups).toBe(2);
    dir.set(B);
    expect(await cache.lookup(B)).toBeUndefined(); // still cached as unknown
    t += 1_001;
    expect((await cache.lookup(B))?.status).toBe('active');
  });

  it('drops changed keys on poll, so a revocation is seen before the TTL runs out', async () => {
    const dir = new MemoryDirectory();
    dir.set(A);
    dir.set(B);
    const cache = new DirectoryCache(dir, 60_000);
    expect(await cache.poll()).toEqual([]); // first poll only sets the cursor
    expect((await cache.lookup(A))?.status).toBe('active');
    dir.revoke(A);
    expect(await cache.poll()).toEqual([A]);
    expect((await cache.lookup(A))?.status).toBe('revoked');
    dir.rotate(B, 'c'.repeat(64));
    expect(await cache.poll()).toEqual([B, 'c'.repeat(64)]);
    expect(await cache.poll()).toEqual([]);
  });
});
