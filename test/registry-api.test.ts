// Registry and onboarding over the real HTTP server, on PostgreSQL and PGlite: operator auth, weak
// keys, makers, self-onboarding, owner transfer, key rotation, revocation, hostile inputs, and the
// broker's DeviceDirectory on the same store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { needs } from './support/services.ts';
import { backends } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { StoreDeviceDirectory } from '../oracle/registry/store-device-directory.ts';
import { createOracleHttpServer, type OracleHttpServer } from '../oracle/http/server.ts';
import { TEST_NETWORK, newDevice } from '../oracle/ingest/testing.ts';
import { KeyRotation, MakerCertificate, OwnerBinding, OwnerTransfer, signIdentity } from '../shared/protocol/identity.ts';
import { fromHex, toHex } from '../shared/hex.ts';

const pgOk = await needs('postgres');
const TOKEN = 'operator-secret-token';
// Small-order points (docs/protocol.md §Signatures rule 1): the identity (0, 1) and (0, -1).
const IDENTITY_POINT = '01' + '00'.repeat(31);
const ORDER_TWO_POINT = 'ec' + 'ff'.repeat(30) + '7f';
const OWNER_A = `0x${'aa'.repeat(20)}`;
const OWNER_B = `0x${'bb'.repeat(20)}`;

for (const backend of backends(pgOk)) {
  describe(`registry API on ${backend.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    let http: OracleHttpServer;
    let base: string;
    beforeAll(async () => {
      ({ store, cleanup } = await backend.open());
      const registry = new Registry({ store, networkId: TEST_NETWORK });
      http = createOracleHttpServer({ store, registry, operatorToken: TOKEN, log: () => undefined });
      base = `http://127.0.0.1:${await http.listen(0)}`;
    });
    afterAll(async () => {
      await http.close();
      await cleanup();
    });

    async function call(method: string, path: string, body?: unknown, token: string | null = TOKEN): Promise<{ status: number; json: Record<string, unknown> }> {
      const res = await fetch(base + path, {
        method,
        headers: { 'content-type': 'application/json', ...(token !== null ? { authorization: `Bearer ${token}` } : {}) },
        ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    }
    const code = (r: { json: Record<string, unknown> }) => (r.json['error'] as { code: string } | undefined)?.code;

    it('serves /health and /metrics', async () => {
      const h = await call('GET', '/health');
      expect(h).toEqual({ status: 200, json: { status: 'ok', store: backend.name } });
      const m = await fetch(`${base}/metrics`);
      expect(m.headers.get('content-type')).toContain('text/plain');
      expect(await m.text()).toContain('pulse_http_requests_total{route="/health",method="GET",status="200"} 1');
    });

    it('operator writes need the token; weak and malformed keys are refused', async () => {
      const d = newDevice();
      expect(code(await call('POST', '/api/devices', { id: d.deviceId }, null))).toBe('API_UNAUTHORIZED');
      expect(code(await call('POST', '/api/devices', { id: d.deviceId }, 'wrong'))).toBe('API_UNAUTHORIZED');
      for (const id of [IDENTITY_POINT, ORDER_TWO_POINT]) {
        const r = await call('POST', '/api/devices', { id });
        expect([r.status, code(r)]).toEqual([400, 'REG_WEAK_KEY']);
      }
      expect(code(await call('POST', '/api/devices', { id: d.deviceId.toUpperCase() }))).toBe('REG_BAD_INPUT');
      expect(code(await call('POST', '/api/devices', { id: d.deviceId, owner: `0x${'00'.repeat(20)}` }))).toBe('REG_BAD_INPUT');
      const ok = await call('POST', '/api/devices', { id: d.deviceId, owner: OWNER_A, model: 'sensor-1' });
      expect(ok.status).toBe(201);
      expect(ok.json).toMatchObject({ deviceId: d.deviceId, owner: OWNER_A, model: 'sensor-1', status: 'active', registeredVia: 'operator', currentKeyId: d.deviceId });
      expect(code(await call('POST', '/api/devices', { id: d.deviceId }))).toBe('REG_DEVICE_EXISTS');
      expect((await call('GET', `/api/devices/${d.deviceId}`, undefined, null)).json['owner']).toBe(OWNER_A);
      expect(code(await call('POST', '/api/makers', { publicKey: IDENTITY_POINT, name: 'weak' }))).toBe('REG_WEAK_KEY');
    });

    it('self-onboards with a maker certificate and an owner binding; checks maker, signer and network', async () => {
      const maker = newDevice();
      const d = newDevice();
      const other = newDevice();
      const cert = (net = TEST_NETWORK, signer = maker) =>
        toHex(signIdentity(MakerCertificate, { networkId: net, makerKey: maker.publicKey, deviceKey: d.publicKey, model: 'Pulse Node v2', issuedAt: 1n }, signer.sign));
      const binding = (dev = d) => toHex(signIdentity(OwnerBinding, { networkId: TEST_NETWORK, deviceKey: dev.publicKey, owner: fromHex(OWNER_A.slice(2))!, nonce: 1n }, dev.sign));
      expect(code(await call('POST', '/api/onboard', { certificate: cert(), binding: binding() }, null))).toBe('REG_UNKNOWN_MAKER');
      const mk = await call('POST', '/api/makers', { publicKey: maker.deviceId, name: "Robert'); DROP TABLE devices;--" });
      expect(mk.status).toBe(201);
      expect(code(await call('POST', '/api/onboard', { certificate: cert(TEST_NETWORK + 1), binding: binding() }, null))).toBe('MSG_WRONG_NETWORK');
      expect(code(await call('POST', '/api/onboard', { certificate: cert(TEST_NETWORK, other), binding: binding() }, null))).toBe('MSG_BAD_SIGNATURE');
      expect(code(await call('POST', '/api/onboard', { certificate: cert(), binding: binding(other) }, null))).toBe('MSG_BAD_FIELD');
      const nulModel = toHex(signIdentity(MakerCertificate, { networkId: TEST_NETWORK, makerKey: maker.publicKey, deviceKey: d.publicKey, model: "x'\u0000; DROP TABLE devices", issuedAt: 1n }, maker.sign));
      expect(code(await call('POST', '/api/onboard', { certificate: nulModel, binding: binding() }, null))).toBe('MSG_BAD_FIELD'); // signed, but not storable text
      const r = await call('POST', '/api/onboard', { certificate: cert(), binding: binding() }, null);
      expect(r.status).toBe(201);
      expect(r.json).toMatchObject({ deviceId: d.deviceId, owner: OWNER_A, makerKey: maker.deviceId, model: 'Pulse Node v2', registeredVia: 'onboarding' });
      expect(code(await call('POST', '/api/onboard', { certificate: cert(), binding: binding() }, null))).toBe('REG_DEVICE_EXISTS');
      const names = await store.query<{ name: string }>('SELECT name FROM makers WHERE maker_key = $1', [maker.publicKey]);
      expect(names[0]!.name).toBe("Robert'); DROP TABLE devices;--"); // stored verbatim, never spliced into SQL
    });

    it('transfers ownership with increasing nonces, rotates keys keeping history, revokes', async () => {
      const d = newDevice();
      const k2 = newDevice();
      const k3 = newDevice();
      await call('POST', '/api/devices', { id: d.deviceId, owner: OWNER_A });
      const transfer = (nonce: bigint, signer = d, owner = OWNER_B) =>
        toHex(signIdentity(OwnerTransfer, { networkId: TEST_NETWORK, deviceKey: signer.publicKey, newOwner: fromHex(owner.slice(2))!, nonce }, signer.sign));
      const t = await call('POST', `/api/devices/${d.deviceId}/transfer`, { message: transfer(5n) }, null);
      expect([t.status, t.json['owner']]).toEqual([200, OWNER_B]);
      expect(code(await call('POST', `/api/devices/${d.deviceId}/transfer`, { message: transfer(5n) }, null))).toBe('REG_STALE_NONCE');
      expect(code(await call('POST', `/api/devices/${d.deviceId}/transfer`, { message: transfer(4n, d, OWNER_A) }, null))).toBe('REG_STALE_NONCE');
      expect(code(await call('POST', `/api/devices/${d.deviceId}/transfer`, { message: transfer(9n, k2) }, null))).toBe('REG_NOT_CURRENT_KEY');

      const rotate = (from: typeof d, to: typeof d, nonce: bigint) =>
        toHex(signIdentity(KeyRotation, { networkId: TEST_NETWORK, oldKey: from.publicKey, newKey: to.publicKey, nonce }, from.sign));
      const r1 = await call('POST', `/api/devices/${d.deviceId}/rotate`, { message: rotate(d, k2, 1n) }, null);
      expect(r1.status).toBe(200);
      expect(r1.json['currentKeyId']).toBe(k2.deviceId);
      expect(r1.json['deviceId']).toBe(d.deviceId);
      expect(code(await call('POST', `/api/devices/${d.deviceId}/rotate`, { message: rotate(d, k3, 2n) }, null))).toBe('REG_NOT_CURRENT_KEY');
      expect(code(await call('POST', `/api/devices/${d.deviceId}/rotate`, { message: rotate(k2, k3, 1n) }, null))).toBe('REG_STALE_NONCE');
      const weak = toHex(signIdentity(KeyRotation, { networkId: TEST_NETWORK, oldKey: k2.publicKey, newKey: fromHex(IDENTITY_POINT)!, nonce: 2n }, k2.sign));
      expect(code(await call('POST', `/api/devices/${d.deviceId}/rotate`, { message: weak }, null))).toBe('MSG_WEAK_KEY');
      const r2 = await call('POST', `/api/devices/${d.deviceId}/rotate`, { message: rotate(k2, k3, 2n) }, null);
      expect((r2.json['keys'] as { keyId: string; retiredAt: string | null }[]).map((k) => [k.keyId, k.retiredAt === null])).toEqual([
        [d.deviceId, false],
        [k2.deviceId, false],
        [k3.deviceId, true],
      ]);

      expect(code(await call('POST', `/api/devices/${d.deviceId}/revoke`, {}, null))).toBe('API_UNAUTHORIZED');
      const rv = await call('POST', `/api/devices/${d.deviceId}/revoke`, {});
      expect(rv.json['status']).toBe('revoked');
      expect(code(await call('POST', `/api/devices/${d.deviceId}/transfer`, { message: transfer(10n, k3) }, null))).toBe('REG_DEVICE_REVOKED');
      const events = await store.query<{ event: string }>('SELECT event FROM device_events WHERE device_id = $1 ORDER BY id', [d.deviceId]);
      expect(events.map((e) => e.event)).toEqual(['registered', 'owner-transfer', 'key-rotation', 'key-rotation', 'revoked']);
    });

    it('hostile inputs: NUL and control characters, bad JSON, oversized bodies, unknown routes', async () => {
      const d = newDevice();
      expect(code(await call('POST', '/api/devices', { id: d.deviceId, model: 'evil\u0000model' }))).toBe('REG_BAD_INPUT');
      expect(code(await call('POST', '/api/devices', { id: `${d.deviceId}\u0000` }))).toBe('REG_BAD_INPUT');
      expect(code(await call('POST', '/api/makers', { publicKey: d.deviceId, name: "x'\u0000" }))).toBe('REG_BAD_INPUT');
      expect(code(await call('POST', '/api/devices', { id: "' OR 1=1 --" }))).toBe('REG_BAD_INPUT');
      expect(code(await call('GET', `/api/devices/${encodeURIComponent("x'; DROP TABLE devices;--\u0000")}`))).toBe('REG_BAD_INPUT');
      expect(code(await call('POST', '/api/devices', '{"id": '))).toBe('API_BAD_REQUEST');
      expect(code(await call('POST', '/api/devices', '[1,2]'))).toBe('API_BAD_REQUEST');
      expect(code(await call('POST', '/api/onboard', { certificate: 'zz', binding: 12 }, null))).toBe('REG_BAD_INPUT');
      expect(code(await call('POST', '/api/onboard', { certificate: '00'.repeat(100), binding: '00' }, null))).toBe('MSG_BAD_VERSION');
      const big = await call('POST', '/api/devices', JSON.stringify({ id: d.deviceId, pad: 'x'.repeat(70_000) }));
      expect([big.status, code(big)]).toEqual([413, 'API_PAYLOAD_TOO_LARGE']);
      expect(code(await call('GET', '/api/nothing'))).toBe('API_NOT_FOUND');
      expect((await call('GET', '/health')).status).toBe(200); // still serving
      const [c] = await store.query<{ n: number }>('SELECT count(*)::integer AS n FROM devices WHERE device_id = $1', [d.deviceId]);
      expect(c!.n).toBe(0);
    });

    it('DeviceDirectory: lookup, atomic token acceptance, change feed', async () => {
      const dir = new StoreDeviceDirectory(store);
      const d = newDevice();
      const k2 = newDevice();
      const start = (await dir.changesSince(undefined)).cursor;
      let cursor = start;
      for (;;) {
        const page = await dir.changesSince(cursor);
        if (page.cursor === cursor) break;
        cursor = page.cursor;
      }
      await call('POST', '/api/devices', { id: d.deviceId });
      expect(await dir.lookup(d.deviceId)).toEqual({ deviceId: d.deviceId, keyId: d.deviceId, status: 'active' });
      expect(await dir.lookup(k2.deviceId)).toBeUndefined();
      expect(await dir.lookup("'; --")).toBeUndefined();
      // Twenty brokers race with the same token: exactly one wins; an older one then loses.
      const wins = await Promise.all(Array.from({ length: 20 }, () => dir.acceptToken(d.deviceId, 1_700_000_000_000n)));
      expect(wins.filter((w) => w)).toHaveLength(1);
      expect(await dir.acceptToken(d.deviceId, 1_699_999_999_999n)).toBe(false);
      expect(await dir.acceptToken(d.deviceId, 1_700_000_000_001n)).toBe(true);
      expect(await dir.acceptToken(d.deviceId, 1n << 64n)).toBe(false);

      const rot = toHex(signIdentity(KeyRotation, { networkId: TEST_NETWORK, oldKey: d.publicKey, newKey: k2.publicKey, nonce: 1n }, d.sign));
      await call('POST', `/api/devices/${d.deviceId}/rotate`, { message: rot }, null);
      expect((await dir.lookup(d.deviceId))?.status).toBe('retired-key');
      expect(await dir.lookup(k2.deviceId)).toEqual({ deviceId: d.deviceId, keyId: k2.deviceId, status: 'active' });
      await call('POST', `/api/devices/${d.deviceId}/revoke`, {});
      expect((await dir.lookup(k2.deviceId))?.status).toBe('revoked');
      const changes = await dir.changesSince(cursor);
      expect([...changes.keyIds].sort()).toEqual([d.deviceId, k2.deviceId].sort());
      expect((await dir.changesSince(changes.cursor)).keyIds).toEqual([]);
    });
  });
}
