// `pulse migrate` and `pulse device` as an operator runs them: direct database mode and API mode
// against a running oracle HTTP server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freshDatabase, needs } from './support/services.ts';
import { PgStore } from '../oracle/store/pg-store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { createOracleHttpServer, type OracleHttpServer } from '../oracle/http/server.ts';
import { newDevice, TEST_NETWORK } from '../oracle/ingest/testing.ts';

const ok = await needs('postgres');
const PULSE = fileURLToPath(new URL('../bin/pulse.js', import.meta.url));

function pulse(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PULSE, ...args], { env: { ...process.env, PULSE_OPERATOR_TOKEN: '' } }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

describe.skipIf(!ok)('pulse migrate and pulse device', () => {
  let db: { url: string; drop: () => Promise<void> };
  let store: PgStore;
  let http: OracleHttpServer;
  let api: string;
  beforeAll(async () => {
    db = await freshDatabase();
    store = new PgStore({ url: db.url });
  });
  afterAll(async () => {
    await http?.close();
    await store?.close();
    await db?.drop();
  });

  it('migrates, then adds and refuses devices directly in the database', async () => {
    const m = await pulse(['migrate', '--database-url', db.url]);
    expect(m.code).toBe(0);
    expect(JSON.parse(m.stdout)).toMatchObject({ store: 'postgres', alreadyApplied: 0, storageMode: 'plain' });
    const d = newDevice();
    const owner = `0x${'ab'.repeat(20)}`;
    const add = await pulse(['device', 'add', '--id', d.deviceId, '--owner', owner, '--model', 'm1', '--database-url', db.url]);
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ deviceId: d.deviceId, owner, model: 'm1', status: 'active' });
    const again = await pulse(['device', 'add', '--id', d.deviceId, '--database-url', db.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('REG_DEVICE_EXISTS');
    const usage = await pulse(['device', 'add', '--database-url', db.url]);
    expect(usage.code).toBe(2);
  });

  it('adds, shows and revokes through the API with the operator token', async () => {
    http = createOracleHttpServer({ store, registry: new Registry({ store, networkId: TEST_NETWORK }), operatorToken: 'op-token', log: () => undefined });
    api = `http://127.0.0.1:${await http.listen(0)}`;
    const d = newDevice();
    const denied = await pulse(['device', 'add', '--id', d.deviceId, '--api', api, '--token', 'nope']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('API_UNAUTHORIZED');
    const add = await pulse(['device', 'add', '--id', d.deviceId, '--owner', `0x${'cd'.repeat(20)}`, '--api', api, '--token', 'op-token']);
    expect(add.code).toBe(0);
    const revoke = await pulse(['device', 'revoke', '--id', d.deviceId, '--api', api, '--token', 'op-token']);
    expect(JSON.parse(revoke.stdout)).toMatchObject({ deviceId: d.deviceId, status: 'revoked' });
    const show = await pulse(['device', 'show', '--id', d.deviceId, '--database-url', db.url]);
    expect(JSON.parse(show.stdout)).toMatchObject({ status: 'revoked', owner: `0x${'cd'.repeat(20)}` });
  });
}, 120_000);
