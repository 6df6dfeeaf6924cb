// A short-lived cache in front of the DeviceDirectory (the oracle's registry in PostgreSQL). Lookups
// on CONNECT are cached for `ttlMs` (positive and negative answers alike, so a flood of CONNECTs for
// an unknown key does not reach the database) and concurrent lookups for one key share one query.
// poll() asks the directory what changed since the last poll and drops those keys, so a revocation or
// a new device is seen within one poll interval, without a restart. acceptToken is never cached: the
// directory decides it atomically for every broker process (cross-broker replay protection).
import type { DeviceDirectory, DirectoryEntry } from '../shared/device-directory.ts';

type Cached = { readonly entry: DirectoryEntry | undefined; readonly expires: number };

export class DirectoryCache {
  private readonly cache = new Map<string, Cached>();
  private readonly pending = new Map<string, Promise<DirectoryEntry | undefined>>();
  private cursor: string | undefined;
  private primed = false;

  constructor(
    readonly directory: DeviceDirectory,
    private readonly ttlMs: number,
    private readonly maxEntries = 200_000,
    private readonly now: () => number = Date.now,
  ) {}

  async lookup(keyId: string): Promise<DirectoryEntry | undefined> {
    const hit = this.cache.get(keyId);
    if (hit !== undefined && hit.expires > this.now()) return hit.entry;
    return this.fetch(keyId);
  }

  /** Bypass the cache (after a change was reported) and refresh it. */
  fetch(keyId: string): Promise<DirectoryEntry | undefined> {
    const inflight = this.pending.get(keyId);
    if (inflight !== undefined) return inflight;
    const p = this.directory
      .lookup(keyId)
      .then((entry) => {
        if (this.cache.size >= this.maxEntries) this.cache.clear(); // bounded; entries are cheap to refetch
        this.cache.set(keyId, { entry, expires: this.now() + this.ttlMs });
        return entry;
      })
      .finally(() => this.pending.delete(keyId));
    this.pending.set(keyId, p);
    return p;
  }

  invalidate(keyId: string): void {
    this.cache.delete(keyId);
  }

  /**
   * Changed key ids since the previous poll; their cache entries are dropped. The first poll only
   * establishes the cursor (nothing is cached or connected yet, so history does not matter).
   */
  async poll(): Promise<readonly string[]> {
    const { keyIds, cursor } = await this.directory.changesSince(this.cursor);
    this.cursor = cursor;
    if (!this.primed) {
      this.primed = true;
      return [];
    }
    for (const k of keyIds) this.cache.delete(k);
    return keyIds;
  }
}
