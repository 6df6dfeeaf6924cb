// Device identity (docs/protocol.md §Identity): the device id is the lowercase hex of its 32-byte
// Ed25519 public key, 64 characters. Upper case is not the same id.
import { fromHex, toHex } from '../hex.ts';

const DEVICE_ID = /^[0-9a-f]{64}$/;

export function isDeviceId(s: string): boolean {
  return DEVICE_ID.test(s);
}

export function deviceIdOf(publicKey: Uint8Array): string {
  return toHex(publicKey);
}

/** The public key of a device id, or undefined when `id` is not 64 lowercase hex characters. */
export function publicKeyOf(id: string): Uint8Array | undefined {
  return isDeviceId(id) ? fromHex(id) : undefined;
}
