// What the broker needs from the device registry (the registry itself lives in the oracle's database,
// oracle/registry). A type-only contract so the broker can run against PostgreSQL, PGlite or an
// in-memory directory in tests.
//
// Keys vs devices: the device id is the hex of the device's *first* public key and never changes;
// after a key rotation (docs/protocol.md §Key rotation) the device authenticates with its current key,
// whose hex is the `keyId`. MQTT client id, username and topic all use the current key id.

export type DeviceStatus = 'active' | 'revoked';

export type DirectoryEntry = {
  /** Stable device id (hex of the first key). */
  readonly deviceId: string;
  /** Hex of the key this entry is for. */
  readonly keyId: string;
  /** 'active' only when the device is active AND this key is its current key. */
  readonly status: DeviceStatus | 'retired-key';
};

export interface DeviceDirectory {
  /** The registry entry for a key id, or undefined when no device has this key. */
  lookup(keyId: string): Promise<DirectoryEntry | undefined>;
  /**
   * Atomically record a connect token's timestamp for a key: true when it is newer than the last one
   * accepted (from any broker process), false otherwise (a replayed or stale token).
   */
  acceptToken(keyId: string, timestamp: bigint): Promise<boolean>;
  /** Key ids whose entry changed after `cursor` (revocations, rotations), and the next cursor. */
  changesSince(cursor: string | undefined): Promise<{ readonly keyIds: readonly string[]; readonly cursor: string }>;
}
