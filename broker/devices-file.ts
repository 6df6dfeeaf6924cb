// `pulse broker --devices-file`: a static device directory for single-broker dev setups, read from a
// JSON file and re-read when it changes. Accepted shapes: `[{ "deviceId", "keyId"?, "status"? }]` or
// `{ "devices": [...] }`; status is active (default), revoked or retired-key. Token replay protection
// is then per process (docs/broker.md §Device directory).
import { readFileSync, statSync } from 'node:fs';
import type { DirectoryEntry } from '../shared/device-directory.ts';
import { isDeviceId } from '../shared/protocol/device-id.ts';
import { PulseError } from '../shared/errors.ts';
import { MemoryDirectory } from './memory-directory.ts';

const STATUSES = new Set<DirectoryEntry['status']>(['active', 'revoked', 'retired-key']);

/** Parse the file's text; CLI_INPUT naming the entry when something is wrong. */
export function parseDevicesFile(text: string, path = 'devices file'): DirectoryEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new PulseError('CLI_INPUT', `${path}: not JSON (${(e as Error).message})`);
  }
  const list = Array.isArray(json) ? json : (json as { devices?: unknown })?.devices;
  if (!Array.isArray(list)) throw new PulseError('CLI_INPUT', `${path}: expected an array of devices or {"devices": [...]}`);
  return list.map((item: unknown, i) => {
    const o = (item ?? {}) as Record<string, unknown>;
    const deviceId = o['deviceId'];
    const keyId = o['keyId'] ?? deviceId;
    const status = (o['status'] ?? 'active') as DirectoryEntry['status'];
    if (typeof deviceId !== 'string' || !isDeviceId(deviceId)) throw new PulseError('CLI_INPUT', `${path}: entry ${i}: deviceId must be 64 lowercase hex characters`);
    if (typeof keyId !== 'string' || !isDeviceId(keyId)) throw new PulseError('CLI_INPUT', `${path}: entry ${i}: keyId must be 64 lowercase hex characters`);
    if (!STATUSES.has(status)) throw new PulseError('CLI_INPUT', `${path}: entry ${i}: status must be active, revoked or retired-key`);
    return { deviceId, keyId, status };
  });
}

/** A MemoryDirectory kept in sync with the file (checked every `intervalMs`). */
export function watchDevicesFile(path: string, intervalMs: number, onError: (e: unknown) => void): { directory: MemoryDirectory; stop(): void } {
  const directory = new MemoryDirectory();
  const read = () => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new PulseError('CLI_INPUT', `cannot read devices file ${path}: ${(e as Error).message}`);
    }
    directory.replaceAll(parseDevicesFile(text, path));
  };
  read();
  let last = statSync(path).mtimeMs;
  const timer = setInterval(() => {
    try {
      const m = statSync(path).mtimeMs;
      if (m === last) return;
      last = m;
      read();
    } catch (e) {
      onError(e); // keep the previous entries: a half-written file must not revoke everyone
    }
  }, Math.max(100, intervalMs));
  timer.unref();
  return { directory, stop: () => clearInterval(timer) };
}
