// Device registry and onboarding (issue 4 §Registry, docs/protocol.md §Identity messages): trusted
// makers; operator registration; self-onboarding with a maker certificate plus an owner binding
// signed by the device; owner transfer signed by the device (increasing nonce); key rotation signed
// by the old key (history kept in device_keys, the device id and its credit stay); revocation.
// Invalid requests are Results with reason codes; every write is one transaction that also records
// the event (device_events) and the affected key ids (registry_changes, the broker's change feed).
import type { Sql, Store } from '../store/store.ts';
import { err, ok, type Result } from '../../shared/result.ts';
import type { ErrorCode, IdentityCode } from '../../shared/error-codes.ts';
import { isAcceptablePublicKey } from '../../shared/crypto/noble.ts';
import { nativeVerifier } from '../../shared/crypto/native.ts';
import type { Ed25519Verifier } from '../../shared/crypto/signature-check.ts';
import { concatBytes, fromHex, toHex } from '../../shared/hex.ts';
import { isDeviceId } from '../../shared/protocol/device-id.ts';
import { KeyRotation, MakerCertificate, OwnerBinding, OwnerTransfer, verifyIdentity } from '../../shared/protocol/identity.ts';

export type RegistryCode =
  | IdentityCode
  | 'REG_BAD_INPUT'
  | 'REG_WEAK_KEY'
  | 'REG_DEVICE_EXISTS'
  | 'REG_UNKNOWN_DEVICE'
  | 'REG_UNKNOWN_MAKER'
  | 'REG_DEVICE_REVOKED'
  | 'REG_STALE_NONCE'
  | 'REG_NOT_CURRENT_KEY';

export type DeviceRecord = {
  readonly deviceId: string;
  /** 0x-prefixed lowercase hex, or null when not bound yet. */
  readonly owner: string | null;
  readonly makerKey: string | null;
  readonly model: string | null;
  readonly status: 'active' | 'revoked';
  readonly registeredVia: 'operator' | 'onboarding';
  readonly registeredAt: string;
  readonly currentKeyId: string | null;
  readonly keys: readonly { readonly keyId: string; readonly activeFrom: string; readonly retiredAt: string | null }[];
};

export type RegistryContext = {
  readonly store: Store;
  readonly networkId: number;
  readonly verifier?: Ed25519Verifier;
};

// Outsider text (model, maker name) must be printable: PostgreSQL text cannot hold NUL, and control
// characters in a name only serve to confuse logs and dashboards.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

function checkText(field: string, value: unknown): Result<string, 'REG_BAD_INPUT'> {
  if (typeof value !== 'string') return err('REG_BAD_INPUT', `${field} must be a string`);
  const len = [...value].length;
  if (len < 1 || len > 64) return err('REG_BAD_INPUT', `${field} must be 1 to 64 characters`);
  if (CONTROL.test(value)) return err('REG_BAD_INPUT', `${field} must not contain control characters`);
  return ok(value);
}

/** A device or maker public key given as 64 lowercase hex characters, under the key policy. */
export function parseKey(field: string, value: unknown): Result<Uint8Array, 'REG_BAD_INPUT' | 'REG_WEAK_KEY'> {
  if (typeof value !== 'string' || !isDeviceId(value)) return err('REG_BAD_INPUT', `${field} must be 64 lowercase hex characters`);
  const key = fromHex(value)!;
  // docs/protocol.md §Signatures rule 1: small-order, mixed-order and non-canonical keys are refused.
  if (!isAcceptablePublicKey(key)) return err('REG_WEAK_KEY', `${field} is not a canonical prime-order Ed25519 key`);
  return ok(key);
}

/** An EVM address, 0x + 40 hex (either case), not the zero address. */
export function parseOwner(value: unknown): Result<Uint8Array, 'REG_BAD_INPUT'> {
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(value)) return err('REG_BAD_INPUT', 'owner must be 0x followed by 40 hex characters');
  const bytes = fromHex(value.slice(2), true)!;
  if (bytes.every((b) => b === 0)) return err('REG_BAD_INPUT', 'owner must not be the zero address');
  return ok(bytes);
}

function parseSigned(field: string, value: unknown): Result<Uint8Array, 'REG_BAD_INPUT'> {
  if (typeof value !== 'string' || value.length > 1024) return err('REG_BAD_INPUT', `${field} must be a hex string of at most 512 bytes`);
  const bytes = fromHex(value, true);
  if (bytes === undefined) return err('REG_BAD_INPUT', `${field} is not valid hex`);
  return ok(bytes);
}

function isUniqueViolation(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === '23505';
}

/** Record changed key ids for the broker's change feed. The EXCLUSIVE lock orders ids by commit. */
async function recordChanges(tx: Sql, keyIds: readonly string[]): Promise<void> {
  await tx.query('LOCK TABLE registry_changes IN EXCLUSIVE MODE');
  await tx.query('INSERT INTO registry_changes (key_id) SELECT unnest($1::text[])', [keyIds]);
}

async function recordEvent(tx: Sql, deviceId: string, event: string, extra: { owner?: Uint8Array | null; keyId?: string | null; signed?: Uint8Array | null } = {}): Promise<void> {
  await tx.query(
    `INSERT INTO device_events (device_id, event, status, owner, key_id, signed)
     SELECT device_id, $2, status, $3, $4, $5 FROM devices WHERE device_id = $1`,
    [deviceId, event, extra.owner ?? null, extra.keyId ?? null, extra.signed ?? null],
  );
}

export class Registry {
  private readonly verifier: Ed25519Verifier;
  constructor(private readonly ctx: RegistryContext) {
    this.verifier = ctx.verifier ?? nativeVerifier;
  }

  get store(): Store {
    return this.ctx.store;
  }

  /** Trust a maker key (operator). Re-adding a key renames it. */
  async addMaker(input: { publicKey: unknown; name: unknown }): Promise<Result<{ makerKey: string; created: boolean }, RegistryCode>> {
    const key = parseKey('publicKey', input.publicKey);
    if (!key.ok) return key;
    const name = checkText('name', input.name);
    if (!name.ok) return name;
    const rows = await this.ctx.store.query<{ created: boolean }>(
      `INSERT INTO makers (maker_key, name) VALUES ($1, $2)
       ON CONFLICT (maker_key) DO UPDATE SET name = excluded.name
       RETURNING (xmax = 0) AS created`,
      [key.value, name.value],
    );
    return ok({ makerKey: toHex(key.value), created: rows[0]?.created === true });
  }

  /** Operator registration (`pulse device add`, POST /api/devices). */
  async addDevice(input: { id: unknown; owner?: unknown; maker?: unknown; model?: unknown }): Promise<Result<DeviceRecord, RegistryCode>> {
    const key = parseKey('id', input.id);
    if (!key.ok) return key;
    const deviceId = toHex(key.value);
    let owner: Uint8Array | null = null;
    if (input.owner !== undefined && input.owner !== null) {
      const o = parseOwner(input.owner);
      if (!o.ok) return o;
      owner = o.value;
    }
    let maker: Uint8Array | null = null;
    if (input.maker !== undefined && input.maker !== null) {
      const m = parseKey('maker', input.maker);
      if (!m.ok) return m;
      maker = m.value;
    }
    let model: string | null = null;
    if (input.model !== undefined && input.model !== null) {
      const m = checkText('model', input.model);
      if (!m.ok) return m;
      model = m.value;
    }
    return this.insertDevice({ deviceId, owner, maker, model, via: 'operator', ownerNonce: 0n, signed: null });
  }

  /** Self-onboarding (POST /api/onboard): a maker certificate and an owner binding, both hex. */
  async onboard(input: { certificate: unknown; binding: unknown }): Promise<Result<DeviceRecord, RegistryCode>> {
    const certBytes = parseSigned('certificate', input.certificate);
    if (!certBytes.ok) return certBytes;
    const bindBytes = parseSigned('binding', input.binding);
    if (!bindBytes.ok) return bindBytes;
    const vctx = { verifier: this.verifier, networkId: this.ctx.networkId };
    const cert = verifyIdentity(MakerCertificate, certBytes.value, vctx);
    if (!cert.ok) return cert;
    const binding = verifyIdentity(OwnerBinding, bindBytes.value, vctx);
    if (!binding.ok) return binding;
    const deviceKey = cert.value.values.deviceKey;
    if (toHex(binding.value.values.deviceKey) !== toHex(deviceKey))
      return err('MSG_BAD_FIELD', 'the owner binding is signed by a different device than the certificate names');
    // verifyIdentity checks the non-signing keys; the device key signed the binding, so the verifier
    // already applied the key policy to it. Model text is signed, but must still be storable.
    const model = checkText('model', cert.value.values.model);
    if (!model.ok) return err('MSG_BAD_FIELD', model.message);
    return this.insertDevice({
      deviceId: toHex(deviceKey),
      owner: binding.value.values.owner,
      maker: cert.value.values.makerKey,
      model: model.value,
      via: 'onboarding',
      ownerNonce: binding.value.values.nonce,
      signed: concatBytes(certBytes.value, bindBytes.value),
    });
  }

  private async insertDevice(d: {
    deviceId: string;
    owner: Uint8Array | null;
    maker: Uint8Array | null;
    model: string | null;
    via: 'operator' | 'onboarding';
    ownerNonce: bigint;
    signed: Uint8Array | null;
  }): Promise<Result<DeviceRecord, RegistryCode>> {
    try {
      const outcome = await this.ctx.store.transaction(async (tx): Promise<Result<true, RegistryCode>> => {
        if (d.maker !== null) {
          const m = await tx.query('SELECT 1 FROM makers WHERE maker_key = $1', [d.maker]);
          if (m.length === 0) return err('REG_UNKNOWN_MAKER', `maker ${toHex(d.maker)} is not a registered maker`);
        }
        // A device id is also a key id: refuse a key that any device already has (or had).
        const taken = await tx.query('SELECT device_id FROM device_keys WHERE key_id = $1 UNION SELECT device_id FROM devices WHERE device_id = $1', [d.deviceId]);
        if (taken.length > 0) return err('REG_DEVICE_EXISTS', `key ${d.deviceId} is already registered`);
        await tx.query(
          `INSERT INTO devices (device_id, owner, maker_key, model, registered_via, owner_nonce) VALUES ($1, $2, $3, $4, $5, $6::numeric)`,
          [d.deviceId, d.owner, d.maker, d.model, d.via, d.ownerNonce.toString()],
        );
        await tx.query('INSERT INTO device_keys (key_id, device_id) VALUES ($1, $1)', [d.deviceId]);
        await recordEvent(tx, d.deviceId, d.via === 'operator' ? 'registered' : 'onboarded', { owner: d.owner, keyId: d.deviceId, signed: d.signed });
        await recordChanges(tx, [d.deviceId]);
        return ok(true);
      });
      if (!outcome.ok) return outcome;
    } catch (e) {
      // Two registrations racing: the loser hits the primary key.
      if (isUniqueViolation(e)) return err('REG_DEVICE_EXISTS', `key ${d.deviceId} is already registered`);
      throw e;
    }
    return ok((await this.getDevice(d.deviceId))!);
  }

  /** Owner transfer signed by the device's current key, with a nonce above the last one. */
  async transfer(deviceId: string, input: { message: unknown }): Promise<Result<DeviceRecord, RegistryCode>> {
    const bytes = parseSigned('message', input.message);
    if (!bytes.ok) return bytes;
    const msg = verifyIdentity(OwnerTransfer, bytes.value, { verifier: this.verifier, networkId: this.ctx.networkId });
    if (!msg.ok) return msg;
    const { deviceKey, newOwner, nonce } = msg.value.values;
    const outcome = await this.ctx.store.transaction(async (tx): Promise<Result<true, RegistryCode>> => {
      const current = await this.lockCurrent(tx, deviceId, toHex(deviceKey));
      if (!current.ok) return current;
      const moved = await tx.query(
        'UPDATE devices SET owner = $2, owner_nonce = $3::numeric WHERE device_id = $1 AND owner_nonce < $3::numeric RETURNING 1',
        [deviceId, newOwner, nonce.toString()],
      );
      if (moved.length === 0) return err('REG_STALE_NONCE', `nonce ${nonce} is not above the device's last owner nonce`);
      await recordEvent(tx, deviceId, 'owner-transfer', { owner: newOwner, keyId: toHex(deviceKey), signed: bytes.value });
      return ok(true);
    });
    if (!outcome.ok) return outcome;
    return ok((await this.getDevice(deviceId))!);
  }

  /** Key rotation signed by the old (current) key; the device id, history and credit stay. */
  async rotate(deviceId: string, input: { message: unknown }): Promise<Result<DeviceRecord, RegistryCode>> {
    const bytes = parseSigned('message', input.message);
    if (!bytes.ok) return bytes;
    const msg = verifyIdentity(KeyRotation, bytes.value, { verifier: this.verifier, networkId: this.ctx.networkId });
    if (!msg.ok) return msg;
    const { oldKey, newKey, nonce } = msg.value.values;
    const oldId = toHex(oldKey);
    const newId = toHex(newKey);
    try {
      const outcome = await this.ctx.store.transaction(async (tx): Promise<Result<true, RegistryCode>> => {
        const current = await this.lockCurrent(tx, deviceId, oldId);
        if (!current.ok) return current;
        // Checks before writes: an err result commits nothing (the transaction only rolls back on throw).
        const taken = await tx.query('SELECT 1 FROM device_keys WHERE key_id = $1 UNION SELECT 1 FROM devices WHERE device_id = $1', [newId]);
        if (taken.length > 0) return err('REG_DEVICE_EXISTS', `new key ${newId} is already registered`);
        const bumped = await tx.query('UPDATE devices SET key_nonce = $2::numeric WHERE device_id = $1 AND key_nonce < $2::numeric RETURNING 1', [deviceId, nonce.toString()]);
        if (bumped.length === 0) return err('REG_STALE_NONCE', `nonce ${nonce} is not above the device's last key rotation nonce`);
        await tx.query('UPDATE device_keys SET retired_at = now() WHERE key_id = $1', [oldId]);
        await tx.query('INSERT INTO device_keys (key_id, device_id) VALUES ($1, $2)', [newId, deviceId]);
        await recordEvent(tx, deviceId, 'key-rotation', { keyId: newId, signed: bytes.value });
        await recordChanges(tx, [oldId, newId]);
        return ok(true);
      });
      if (!outcome.ok) return outcome;
    } catch (e) {
      if (isUniqueViolation(e)) return err('REG_DEVICE_EXISTS', `new key ${newId} is already registered`);
      throw e;
    }
    return ok((await this.getDevice(deviceId))!);
  }

  /** Revoke a device (operator). Revoking twice is harmless. */
  async revoke(deviceId: string): Promise<Result<DeviceRecord, RegistryCode>> {
    if (!isDeviceId(deviceId)) return err('REG_BAD_INPUT', 'device id must be 64 lowercase hex characters');
    const outcome = await this.ctx.store.transaction(async (tx): Promise<Result<true, RegistryCode>> => {
      const rows = await tx.query<{ status: string }>('SELECT status FROM devices WHERE device_id = $1 FOR UPDATE', [deviceId]);
      if (rows.length === 0) return err('REG_UNKNOWN_DEVICE', `no device ${deviceId}`);
      if (rows[0]!.status === 'revoked') return ok(true);
      await tx.query("UPDATE devices SET status = 'revoked' WHERE device_id = $1", [deviceId]);
      await recordEvent(tx, deviceId, 'revoked');
      const keys = await tx.query<{ key_id: string }>('SELECT key_id FROM device_keys WHERE device_id = $1', [deviceId]);
      await recordChanges(tx, keys.map((k) => k.key_id));
      return ok(true);
    });
    if (!outcome.ok) return outcome;
    return ok((await this.getDevice(deviceId))!);
  }

  /** Lock the device row and check that `keyId` is its current key and it is active. */
  private async lockCurrent(tx: Sql, deviceId: string, keyId: string): Promise<Result<true, RegistryCode>> {
    if (!isDeviceId(deviceId)) return err('REG_BAD_INPUT', 'device id must be 64 lowercase hex characters');
    const rows = await tx.query<{ status: string }>('SELECT status FROM devices WHERE device_id = $1 FOR UPDATE', [deviceId]);
    if (rows.length === 0) return err('REG_UNKNOWN_DEVICE', `no device ${deviceId}`);
    if (rows[0]!.status !== 'active') return err('REG_DEVICE_REVOKED', `device ${deviceId} is revoked`);
    const key = await tx.query<{ current: boolean }>('SELECT retired_at IS NULL AS current FROM device_keys WHERE key_id = $1 AND device_id = $2', [keyId, deviceId]);
    if (key.length === 0 || key[0]!.current !== true) return err('REG_NOT_CURRENT_KEY', `key ${keyId} is not the current key of device ${deviceId}`);
    return ok(true);
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    if (!isDeviceId(deviceId)) return undefined;
    const rows = await this.ctx.store.query<{ device_id: string; owner: Uint8Array | null; maker_key: Uint8Array | null; model: string | null; status: 'active' | 'revoked'; registered_via: 'operator' | 'onboarding'; registered_at: string }>(
      `SELECT device_id, owner, maker_key, model, status, registered_via, to_char(registered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS registered_at
         FROM devices WHERE device_id = $1`,
      [deviceId],
    );
    const d = rows[0];
    if (d === undefined) return undefined;
    const keys = await this.ctx.store.query<{ key_id: string; active_from: string; retired_at: string | null }>(
      `SELECT key_id, to_char(active_from AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS active_from,
              to_char(retired_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS retired_at
         FROM device_keys WHERE device_id = $1 ORDER BY active_from, retired_at NULLS LAST`,
      [deviceId],
    );
    return {
      deviceId: d.device_id,
      owner: d.owner === null ? null : `0x${toHex(d.owner)}`,
      makerKey: d.maker_key === null ? null : toHex(d.maker_key),
      model: d.model,
      status: d.status,
      registeredVia: d.registered_via,
      registeredAt: d.registered_at,
      currentKeyId: keys.find((k) => k.retired_at === null)?.key_id ?? null,
      keys: keys.map((k) => ({ keyId: k.key_id, activeFrom: k.active_from, retiredAt: k.retired_at })),
    };
  }
}

/** HTTP status for a registry reason code (oracle/http). */
export function statusForCode(code: ErrorCode): number {
  switch (code) {
    case 'REG_UNKNOWN_DEVICE':
    case 'API_NOT_FOUND':
      return 404;
    case 'REG_DEVICE_EXISTS':
    case 'REG_STALE_NONCE':
    case 'REG_DEVICE_REVOKED':
      return 409;
    case 'REG_NOT_CURRENT_KEY':
      return 403;
    case 'API_UNAUTHORIZED':
      return 401;
    case 'API_PAYLOAD_TOO_LARGE':
      return 413;
    case 'API_INTERNAL':
    case 'STORE_UNAVAILABLE':
      return 503;
    default:
      return 400;
  }
}
