// Application-level hostile input (issue 10 §Hostile input), end to end on the real pipeline: the
// edge broker (in process, token auth against the PostgreSQL registry) → MemoryBus → ingest workers
// → PostgreSQL, plus the bus fed directly (what a compromised broker or a foreign publisher could
// put there). Covers what the codec, agreement and ingest-rule suites do not: the degenerate
// small-order key + signature pairs that node:crypto accepts for ANY message (so the key must be
// refused before the signature is checked), S+L over MQTT, equivocation through the whole path,
// and SQL metacharacters and NUL in every field an outsider controls at the MQTT layer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { freshDatabase, needs } from '../support/services.ts';
import { PgStore } from '../../oracle/store/pg-store.ts';
import { migrate } from '../../oracle/store/migrate.ts';
import { Registry } from '../../oracle/registry/registry.ts';
import { StoreDeviceDirectory } from '../../oracle/registry/store-device-directory.ts';
import { startIngest, type IngestService } from '../../oracle/ingest/ingest-service.ts';
import { nativeVerifier } from '../../shared/crypto/native.ts';
import { MemoryBus } from '../../bus/memory.ts';
import { startBroker, type BrokerHandle } from '../../broker/broker.ts';
import { brokerConfig } from '../../broker/config.ts';
import { TestDevice, connectDevice, nextMessage } from '../../broker/test-kit.ts';
import { RawClient, connectPacket } from './raw-mqtt.ts';

const ok = await needs('postgres');
const NETWORK = 43;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

// The eight small-order points of edwards25519 (orders 1, 2, 4, 8) and non-canonical encodings of
// small-order points (y ≥ p), the classic "weak keys" (RFC 8032 §5.1.3 decoding; Chalkias et al.,
// "Taming the many EdDSAs", 2020).
const WEAK_KEYS = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
];

/** An unsigned heartbeat body (docs/protocol.md §Heartbeat) with the given key and a signature appended. */
function heartbeatWith(publicKey: Buffer, seq: bigint, signature: Buffer, ts = Date.now()): Buffer {
  const body = Buffer.alloc(55);
  body[0] = 1;
  body[1] = 1;
  body.writeUInt32BE(NETWORK, 2);
  publicKey.copy(body, 6);
  body.writeBigUInt64BE(seq, 38);
  body.writeBigUInt64BE(BigInt(ts), 46);
  body[54] = 0;
  return Buffer.concat([body, signature]);
}

function spki(raw: Buffer) {
  return createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
}

function withSPlusL(hb: Uint8Array): Buffer {
  const b = Buffer.from(hb);
  const sOff = b.length - 32;
  const s = BigInt(`0x${Buffer.from(b.subarray(sOff)).reverse().toString('hex')}`);
  const sl = (s + L).toString(16).padStart(64, '0');
  Buffer.from(sl, 'hex').reverse().copy(b, sOff);
  return b;
}

describe.skipIf(!ok)('hostile input through broker → bus → ingest → PostgreSQL', () => {
  let db: { url: string; drop: () => Promise<void> };
  let store: PgStore;
  let broker: BrokerHandle;
  let ingest: IngestService;
  const bus = new MemoryBus({ ackWaitMs: 2_000 });
  const device = new TestDevice(NETWORK);
  let url: string;

  beforeAll(async () => {
    db = await freshDatabase('pulse_hostile');
    store = new PgStore({ url: db.url });
    await migrate(store);
    const registry = new Registry({ store, networkId: NETWORK });
    const r = await registry.addDevice({ id: device.id, owner: `0x${'22'.repeat(20)}` });
    expect(r.ok).toBe(true);
    broker = await startBroker(
      brokerConfig({ mqttPort: 0, mqttHost: '127.0.0.1', wsPort: undefined, metricsPort: undefined, networkId: NETWORK, publishRate: 1_000, publishBurst: 1_000, connectTimeoutMs: 1_000 }),
      { bus, directory: new StoreDeviceDirectory(store) },
    );
    url = `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`;
    ingest = await startIngest({
      store,
      bus,
      rules: { networkId: NETWORK, skewMs: 30_000, slotIntervalMs: 60_000, maxPayloadBytes: 1024, verifier: nativeVerifier },
      durable: 'hostile',
      workers: 1,
      batchSize: 50,
      log: () => undefined,
    });
  });
  afterAll(async () => {
    await ingest?.stop();
    await broker?.close();
    await bus.close();
    await store?.close();
    await db?.drop();
  });

  const rows = async <T extends Record<string, unknown>>(sql: string, params: unknown[] = []) => store.query<T>(sql, params);
  async function waitRejection(reason: string, seq: bigint | null, timeoutMs = 10_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = (await rows<{ n: number }>('SELECT count(*)::int AS n FROM rejections WHERE reason = $1 AND ($2::bigint IS NULL OR seq = $2)', [reason, seq === null ? null : String(seq)]))[0]!.n;
      if (n > 0 || Date.now() > deadline) return n;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('node:crypto accepts a degenerate signature under a small-order key for any message; Pulse refuses the key first', async () => {
    // The identity key with R = identity, S = 0 verifies for every message in OpenSSL's Ed25519
    // (it does not reject small-order A): the reason the key must be refused before any verify.
    const identity = Buffer.from(WEAK_KEYS[0]!, 'hex');
    const degenerate = Buffer.concat([identity, Buffer.alloc(32)]);
    expect(nodeVerify(null, Buffer.from('any message at all'), spki(identity), degenerate)).toBe(true);

    const pub = bus.publisher();
    for (const [i, hex] of WEAK_KEYS.entries()) {
      const key = Buffer.from(hex, 'hex');
      const sig = Buffer.concat([key, Buffer.alloc(32)]); // R = the same small-order point, S = 0
      const raw = heartbeatWith(key, BigInt(1000 + i), sig);
      await pub.publish({ deviceId: hex, seq: BigInt(1000 + i), raw, receivedAt: Date.now() });
    }
    for (const [i] of WEAK_KEYS.entries()) expect(await waitRejection('HB_WEAK_KEY', BigInt(1000 + i)), WEAK_KEYS[i]).toBe(1);
    expect((await rows<{ n: number }>('SELECT count(*)::int AS n FROM heartbeats WHERE seq >= 1000'))[0]!.n).toBe(0);

    // Nor can such a key connect: its token is refused (CONNACK 4/5), whatever the signature.
    for (const hex of WEAK_KEYS.slice(0, 4)) {
      const c = await RawClient.open(broker.addresses.mqtt!.port);
      const token = Buffer.concat([Buffer.alloc(8), Buffer.from(hex, 'hex'), Buffer.alloc(32)]).toString('hex');
      c.write(connectPacket({ clientId: hex, username: hex, password: token }));
      const code = await c.waitConnack();
      expect(code === undefined || code !== 0).toBe(true);
      c.destroy();
    }
  });

  it('S+L over MQTT: rejected as HB_NON_CANONICAL_SIGNATURE at the edge, never stored', async () => {
    const c = await connectDevice(url, device);
    await c.subscribeAsync(device.eventsTopic, { qos: 1 });
    const seq = 50n;
    const event = nextMessage(c, device.eventsTopic);
    await c.publishAsync(device.topic, withSPlusL(device.heartbeat({ seq })), { qos: 1 });
    const ev = JSON.parse((await event).toString()) as { reason: string };
    expect(ev.reason).toBe('HB_NON_CANONICAL_SIGNATURE');
    // The same heartbeat with its canonical S is accepted and stored once.
    await c.publishAsync(device.topic, Buffer.from(device.heartbeat({ seq: seq + 1n })), { qos: 1 });
    await c.endAsync();
    const deadline = Date.now() + 10_000;
    while ((await rows('SELECT 1 FROM heartbeats WHERE device_id = $1 AND seq = 51', [device.id])).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await rows('SELECT seq FROM heartbeats WHERE device_id = $1 AND seq = 50', [device.id])).length).toBe(0);
    expect((await rows('SELECT seq FROM heartbeats WHERE device_id = $1 AND seq = 51', [device.id])).length).toBe(1);
  });

  // Equivocation: the same seq signed twice with different bytes. Ingest records HB_EQUIVOCATION
  // (test/ingest-rules.test.ts), but only if the second copy reaches it: the bus message id covers
  // the signature (bus/bus.ts heartbeatMessageId), so inside the duplicate window (default 2 min) the
  // second, different message is not taken for a resend of the first.
  async function equivocate(seq: bigint): Promise<{ first: Buffer }> {
    const c = await connectDevice(url, device);
    const first = Buffer.from(device.heartbeat({ seq, metrics: [{ id: 1, value: 5n }] }));
    const second = Buffer.from(device.heartbeat({ seq, metrics: [{ id: 1, value: 500_000n }] }));
    await c.publishAsync(device.topic, first, { qos: 1 });
    const deadline = Date.now() + 10_000;
    while ((await rows('SELECT 1 FROM heartbeats WHERE device_id = $1 AND seq = $2', [device.id, String(seq)])).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await c.publishAsync(device.topic, second, { qos: 1 });
    await c.endAsync();
    return { first };
  }

  it('equivocation over MQTT (same seq, different signed bytes) is credited once with the first bytes', async () => {
    const { first } = await equivocate(70n);
    await new Promise((r) => setTimeout(r, 1_000));
    const stored = await rows<{ raw: Buffer }>('SELECT raw FROM heartbeats WHERE device_id = $1 AND seq = 70', [device.id]);
    expect(stored.map((r) => r.raw.toString('hex'))).toEqual([first.toString('hex')]);
    const rollup = await rows<{ total: string }>("SELECT total::text AS total FROM slot_metric_sums WHERE device_id = $1 AND metric_id = 1 AND total >= 500000", [device.id]);
    expect(rollup).toEqual([]);
  });

  it('equivocation inside the bus duplicate window is recorded as HB_EQUIVOCATION (the bus message id covers the signature)', async () => {
    await equivocate(80n);
    expect(await waitRejection('HB_EQUIVOCATION', 80n, 5_000)).toBe(1);
  });

  it('SQL metacharacters and NUL in client id, username, password and topic: refused, tables intact', async () => {
    const nasty = ["'; DROP TABLE heartbeats; --", "\u0000", "x' OR '1'='1", '"; DELETE FROM devices; --', '\\', "$$; SELECT pg_sleep(5); $$", `${device.id}\u0000`, `${device.id}'--`];
    const port = broker.addresses.mqtt!.port;
    for (const s of nasty) {
      for (const fields of [
        { clientId: s, username: s, password: s },
        { clientId: device.id, username: device.id, password: s },
        { clientId: s, username: device.id, password: device.password() },
      ]) {
        const c = await RawClient.open(port);
        c.write(connectPacket(fields));
        const code = await c.waitConnack(2_000);
        expect(code === undefined || code !== 0, JSON.stringify(fields)).toBe(true);
        c.destroy();
      }
    }
    const m = await connectDevice(url, device);
    for (const s of nasty) m.publish(`devices/${device.id}/${s}`, Buffer.from('x'), { qos: 0 });
    await m.endAsync().catch(() => undefined);
    const tables = await rows<{ n: number }>("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('heartbeats', 'devices', 'rejections')");
    expect(tables[0]!.n).toBe(3);
    expect((await rows('SELECT device_id FROM devices')).length).toBe(1);
  });
});
