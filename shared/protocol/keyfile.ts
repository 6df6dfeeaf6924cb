// Device key file format (written by `pulse keys new`, read by the CLI and the simulator).
// JSON so a firmware engineer can read it; the secret key is the 32-byte RFC 8032 seed in hex.
import { fromHex, toHex } from '../hex.ts';
import { noblePublicKey } from '../crypto/noble.ts';
import { err, ok, type Result } from '../result.ts';

export type DeviceKey = { readonly secretKey: Uint8Array; readonly publicKey: Uint8Array; readonly deviceId: string };

export function deviceKeyFromSecret(secretKey: Uint8Array): DeviceKey {
  const publicKey = noblePublicKey(secretKey);
  return { secretKey, publicKey, deviceId: toHex(publicKey) };
}

export function formatKeyFile(key: DeviceKey): string {
  return JSON.stringify({ kind: 'pulse-device-key', version: 1, deviceId: key.deviceId, publicKey: toHex(key.publicKey), secretKey: toHex(key.secretKey) }, null, 2) + '\n';
}

/** Parse a key file; the public key is recomputed from the secret and must match if present. */
export function parseKeyFile(text: string): Result<DeviceKey, 'CLI_INPUT'> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return err('CLI_INPUT', 'key file is not JSON');
  }
  const o = json as Record<string, unknown>;
  if (o === null || typeof o !== 'object' || o['kind'] !== 'pulse-device-key' || typeof o['secretKey'] !== 'string')
    return err('CLI_INPUT', 'not a pulse-device-key file');
  const secret = fromHex(o['secretKey'], true);
  if (secret === undefined || secret.length !== 32) return err('CLI_INPUT', 'secretKey must be 64 hex characters');
  const key = deviceKeyFromSecret(secret);
  if (typeof o['publicKey'] === 'string' && o['publicKey'].toLowerCase() !== toHex(key.publicKey))
    return err('CLI_INPUT', 'publicKey does not match secretKey');
  return ok(key);
}
