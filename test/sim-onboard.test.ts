// The simulator's onboarding through the real path: maker certificate + owner binding POSTed to the
// oracle registry API (oracle/http on an embedded PGlite store), the broker reading the same registry
// (StoreDeviceDirectory). Onboarded devices connect and are acknowledged; a device whose maker is
// unknown is refused by the API (REG_UNKNOWN_MAKER) and then at CONNECT.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBroker, type BrokerHandle } from '../broker/broker.ts';
import { brokerConfig } from '../broker/config.ts';
import { MemoryBus } from '../bus/memory.ts';
import { pgliteBackend } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { Registry } from '../oracle/registry/registry.ts';
import { StoreDeviceDirectory } from '../oracle/registry/store-device-directory.ts';
import { createOracleHttpServer, type OracleHttpServer } from '../oracle/http/server.ts';
import { startFleet } from '../device-sim/start-fleet.ts';
import { SimState, publicKeyFromSeed } from '../device-sim/sim-state.ts';
import { parseOwner, type MakerIdentity } from '../device-sim/onboard.ts';
import { signerFor } from '../shared/protocol/signer.ts';
import { toHex } from '../shared/hex.ts';

const NETWORK = 11;
const TOKEN = 'operator-secret';

function maker(): MakerIdentity {
  const secret = new Uint8Array(randomBytes(32));
  return { publicKey: publicKeyFromSeed(secret), sign: signerFor(secret) };
}

async function until(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('pulse sim onboarding through the registry API', () => {
  let dir: string;
  let store: Store;
  let cleanup: () => Promise<void>;
  let http: OracleHttpServer;
  let api: string;
  let bus: MemoryBus;
  let broker: BrokerHandle;
  let brokerUrl: string;
  const trusted = maker();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pulse-sim-onboard-'));
    ({ store, cleanup } = await pgliteBackend.open());
    const registry = new Registry({ store, networkId: NETWORK });
    http = createOracleHttpServer({ store, registry, operatorToken: TOKEN });
    api = `http://127.0.0.1:${await http.listen(0, '127.0.0.1')}`;
    const res = await fetch(`${api}/api/makers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ publicKey: toHex(trusted.publicKey), name: 'Sim Devices Ltd' }),
    });
    expect(res.status).toBe(201);
    bus = new MemoryBus();
    broker = await startBroker(
      brokerConfig({ mqttHost: '127.0.0.1', mqttPort: 0, wsPort: undefined, tlsPort: undefined, wssPort: undefined, metricsPort: undefined, networkId: NETWORK, bus: 'memory', directoryTtlMs: 200 }),
      { bus, directory: new StoreDeviceDirectory(store) },
    );
    brokerUrl = `mqtt://127.0.0.1:${broker.addresses.mqtt!.port}`;
  });

  afterAll(async () => {
    await broker?.close();
    await bus?.close();
    await http?.close();
    await cleanup?.();
    await rm(dir, { recursive: true, force: true });
  });

  it('onboards new devices once, binds them to their owners, and they are acknowledged', async () => {
    const owners = ['0x' + '11'.repeat(20), '0x' + 'ab'.repeat(20)].map(parseOwner);
    const opts = {
      devices: 3,
      brokerUrl,
      networkId: NETWORK,
      intervalMs: 500,
      stateDir: dir,
      seed: 3,
      onboard: { url: api, maker: trusted, owners, model: 'sim-one' },
    };
    const fleet = await startFleet(opts);
    try {
      expect(fleet.stats().onboarded).toBe(3);
      await until('every device acknowledged twice', () => fleet.stats().acknowledged >= 6);
    } finally {
      await fleet.stop();
    }
    expect(fleet.stats().onboardFailed).toEqual({});
    expect(fleet.stats().refused).toEqual({});
    const rows = await store.query<{ device_id: string; owner: Uint8Array; model: string; registered_via: string }>(
      'SELECT device_id, owner, model, registered_via FROM devices ORDER BY device_id',
    );
    const byId = new Map(rows.map((r) => [r.device_id, r]));
    fleet.devices.forEach((d, i) => {
      const row = byId.get(d.deviceId);
      expect(row?.registered_via).toBe('onboarding');
      expect(row?.model).toBe('sim-one');
      expect(toHex(new Uint8Array(row!.owner))).toBe(toHex(owners[i % 2]!));
    });
    const state = JSON.parse(await readFile(SimState.fileFor(dir, NETWORK), 'utf8')) as { devices: { onboarded: boolean }[] };
    expect(state.devices.map((d) => d.onboarded)).toEqual([true, true, true]);

    // A restart does not onboard again (the state file remembers), and the devices still connect.
    const again = await startFleet(opts);
    try {
      await until('acknowledged after restart', () => again.stats().acknowledged >= 3);
    } finally {
      await again.stop();
    }
    expect(again.stats().onboarded).toBe(0);
    expect(again.stats().onboardFailed).toEqual({});
  });

  it('a device certified by an unknown maker is refused by the API and then at CONNECT', async () => {
    const errors: string[] = [];
    const fleet = await startFleet({
      devices: 1,
      brokerUrl,
      networkId: NETWORK,
      intervalMs: 500,
      tuning: { reconnectPeriodMs: 200 },
      onboard: { url: api, maker: maker(), owners: [parseOwner('0x' + '22'.repeat(20))] },
      onError: (_id, e) => errors.push(e.message),
    });
    try {
      await until('a refused CONNECT', () => Object.keys(fleet.stats().refused).length > 0);
    } finally {
      await fleet.stop();
    }
    expect(fleet.stats().onboardFailed).toEqual({ REG_UNKNOWN_MAKER: 1 });
    expect(Object.keys(fleet.stats().refused)).toEqual(['5']); // CONNACK 5: not authorized (TOKEN_UNKNOWN_DEVICE)
    expect(fleet.stats().acknowledged).toBe(0);
    expect(errors.some((m) => m.includes('REG_UNKNOWN_MAKER'))).toBe(true);
  });
});
