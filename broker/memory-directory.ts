// An in-memory DeviceDirectory (shared/device-directory.ts): for tests and for `pulse broker
// --devices-file` on a single-broker dev setup. The production directory is the oracle's registry in
// PostgreSQL; this one keeps the same contract: acceptToken is atomic (single-threaded JS) and
// strictly increasing per key, and changesSince reports every key whose entry changed.
import type { DeviceDirectory, DirectoryEntry } from '../shared/device-directory.ts';

export class MemoryDirectory implements DeviceDirectory {
  private readonly entries = new Map<string, DirectoryEntry>();
  private readonly lastToken = new Map<string, bigint>();
  /** Change log: position i holds the key id of change number i + 1. */
  private readonly changes: string[] = [];
  /** Calls made, so tests can see the cache at work. */
  lookups = 0;

  /** Register (or replace) a device key; `keyId` defaults to the device id (no rotation yet). */
  set(deviceId: string, status: DirectoryEntry['status'] = 'active', keyId: string = deviceId): void {
    this.entries.set(keyId, { deviceId, keyId, status });
    this.changes.push(keyId);
  }

  revoke(keyId: string): void {
    const e = this.entries.get(keyId);
    if (e === undefined) return;
    this.entries.set(keyId, { ...e, status: 'revoked' });
    this.changes.push(keyId);
  }

  /** Key rotation: the old key becomes 'retired-key', the new key is the device's active key. */
  rotate(oldKeyId: string, newKeyId: string): void {
    const e = this.entries.get(oldKeyId);
    if (e === undefined) return;
    this.entries.set(oldKeyId, { ...e, status: 'retired-key' });
    this.entries.set(newKeyId, { deviceId: e.deviceId, keyId: newKeyId, status: 'active' });
    this.changes.push(oldKeyId, newKeyId);
  }

  /** Replace every entry (the devices file was re-read); changed keys are reported. */
  replaceAll(entries: readonly DirectoryEntry[]): void {
    const next = new Map(entries.map((e) => [e.keyId, e] as const));
    for (const [k, e] of this.entries) {
      const n = next.get(k);
      if (n === undefined || n.status !== e.status || n.deviceId !== e.deviceId) this.changes.push(k);
    }
    for (const k of next.keys()) if (!this.entries.has(k)) this.changes.push(k);
    this.entries.clear();
    for (const [k, e] of next) this.entries.set(k, e);
  }

  async lookup(keyId: string): Promise<DirectoryEntry | undefined> {
    this.lookups++;
    return this.entries.get(keyId);
  }

  async acceptToken(keyId: string, timestamp: bigint): Promise<boolean> {
    const last = this.lastToken.get(keyId);
    if (last !== undefined && timestamp <= last) return false;
    this.lastToken.set(keyId, timestamp);
    return true;
  }

  async changesSince(cursor: string | undefined): Promise<{ readonly keyIds: readonly string[]; readonly cursor: string }> {
    const from = cursor === undefined ? 0 : Number(cursor);
    const start = Number.isInteger(from) && from >= 0 ? Math.min(from, this.changes.length) : 0;
    return { keyIds: [...new Set(this.changes.slice(start))], cursor: String(this.changes.length) };
  }
}
