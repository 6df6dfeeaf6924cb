// shared/device-directory.ts on the oracle's store, for the broker: key lookup, atomic connect-token
// acceptance across broker processes, and a change feed for cache invalidation.
import type { DeviceDirectory, DirectoryEntry } from '../../shared/device-directory.ts';
import type { Store } from '../store/store.ts';
import { isDeviceId } from '../../shared/protocol/device-id.ts';
import { MAX_SEQ } from '../../shared/protocol/constants.ts';

/** Changes returned per changesSince call; call again with the returned cursor for more. */
export const CHANGES_PAGE = 10_000;

export class StoreDeviceDirectory implements DeviceDirectory {
  constructor(private readonly store: Store) {}

  async lookup(keyId: string): Promise<DirectoryEntry | undefined> {
    if (!isDeviceId(keyId)) return undefined;
    const rows = await this.store.query<{ device_id: string; status: 'active' | 'revoked'; retired: boolean }>(
      `SELECT d.device_id, d.status, (k.retired_at IS NOT NULL) AS retired
         FROM device_keys k JOIN devices d ON d.device_id = k.device_id WHERE k.key_id = $1`,
      [keyId],
    );
    const r = rows[0];
    if (r === undefined) return undefined;
    return { deviceId: r.device_id, keyId, status: r.status === 'revoked' ? 'revoked' : r.retired ? 'retired-key' : 'active' };
  }

  /**
   * docs/protocol.md §Connect token: a token is accepted only if newer than the last accepted one.
   * One conditional UPDATE makes check-and-set atomic across every broker process.
   */
  async acceptToken(keyId: string, timestamp: bigint): Promise<boolean> {
    if (!isDeviceId(keyId) || timestamp <= 0n || timestamp > MAX_SEQ) return false;
    const rows = await this.store.query('UPDATE device_keys SET last_token_ts = $2::bigint WHERE key_id = $1 AND last_token_ts < $2::bigint RETURNING 1', [keyId, timestamp.toString()]);
    return rows.length === 1;
  }

  /**
   * Key ids changed after `cursor` (undefined = from the beginning), at most CHANGES_PAGE per call,
   * and the cursor to pass next. Writers insert under an EXCLUSIVE lock on registry_changes, so ids
   * become visible in commit order and a cursor never skips a late commit.
   */
  async changesSince(cursor: string | undefined): Promise<{ readonly keyIds: readonly string[]; readonly cursor: string }> {
    const from = cursor !== undefined && /^\d{1,18}$/.test(cursor) ? cursor : '0';
    const rows = await this.store.query<{ id: string; key_id: string }>(
      'SELECT id::text AS id, key_id FROM registry_changes WHERE id > $1::bigint ORDER BY id LIMIT $2',
      [from, CHANGES_PAGE],
    );
    const last = rows[rows.length - 1];
    return { keyIds: [...new Set(rows.map((r) => r.key_id))], cursor: last === undefined ? from : last.id };
  }
}
