// `--devices-file`: parsing and live reload (docs/broker.md §Authentication, device directory).
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDevicesFile, watchDevicesFile } from './devices-file.ts';
import { isPulseError } from '../shared/errors.ts';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('devices file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pulse-devices-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses both shapes with defaults, and names the bad entry', () => {
    expect(parseDevicesFile(JSON.stringify([{ deviceId: A }]))).toEqual([{ deviceId: A, keyId: A, status: 'active' }]);
    expect(parseDevicesFile(JSON.stringify({ devices: [{ deviceId: A, keyId: B, status: 'revoked' }] }))).toEqual([{ deviceId: A, keyId: B, status: 'revoked' }]);
    for (const bad of ['nope', '{}', JSON.stringify([{ deviceId: 'A'.repeat(64) }]), JSON.stringify([{ deviceId: A, status: 'paused' }])]) {
      let e: unknown;
      try {
        parseDevicesFile(bad, 'f.json');
      } catch (x) {
        e = x;
      }
      expect(isPulseError(e, 'CLI_INPUT'), bad).toBe(true);
    }
  });

  it('reloads on change and reports the changed keys; keeps the old entries when the new file is broken', async () => {
    const path = join(dir, 'devices.json');
    writeFileSync(path, JSON.stringify([{ deviceId: A }, { deviceId: B }]));
    const errors: unknown[] = [];
    const w = watchDevicesFile(path, 100, (e) => errors.push(e));
    try {
      const { cursor } = await w.directory.changesSince(undefined);
      expect((await w.directory.lookup(A))?.status).toBe('active');
      writeFileSync(path, JSON.stringify([{ deviceId: A, status: 'revoked' }, { deviceId: B }]));
      utimesSync(path, new Date(), new Date(Date.now() + 5_000));
      for (let i = 0; i < 50 && (await w.directory.lookup(A))?.status !== 'revoked'; i++) await new Promise((r) => setTimeout(r, 50));
      expect((await w.directory.lookup(A))?.status).toBe('revoked');
      expect((await w.directory.changesSince(cursor)).keyIds).toEqual([A]);
      writeFileSync(path, '[{"deviceId": ');
      utimesSync(path, new Date(), new Date(Date.now() + 10_000));
      for (let i = 0; i < 50 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(errors.length).toBeGreaterThan(0);
      expect((await w.directory.lookup(B))?.status).toBe('active');
    } finally {
      w.stop();
    }
  });
});
