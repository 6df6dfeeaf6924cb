// `pulse verify` on a 10,000-device epoch (issue 6 tests): 10,000 registered devices under 500
// owners, 20,000 heartbeats signed with each device's own key (native signer), stored through the
// ingest writer, the epoch closed by the real closer, bundled, and verified by the CLI command with
// the signature checks on every core. Devices are registered with two UNNEST statements (the
// registry API's per-device transactions would dominate the run); everything else is production code.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from './support/services.ts';
import { pgliteBackend, postgresBackend } from '../oracle/store/testing.ts';
import type { Store } from '../oracle/store/store.ts';
import { writeBatch } from '../oracle/ingest/write-batch.ts';
import type { Candidate } from '../oracle/ingest/classify.ts';
import { decodeHeartbeat, signHeartbeat } from '../shared/protocol/heartbeat.ts';
import { nativeSigner } from '../shared/crypto/native.ts';
import { closeNextEpoch } from '../oracle/epochs/close-epoch.ts';
import { epochEndMs, type EpochTiming } from '../shared/epoch-timing.ts';
import { buildEpochBundle, type BuiltBundle } from '../oracle/bundle/build-bundle.ts';
import { FIXTURE_PARAMS } from '../oracle/bundle/testing.ts';
import { run } from '../cli/commands/verify.ts';

const pgOk = await needs('postgres');
const backend = pgOk ? postgresBackend : pgliteBackend;
const DEVICES = 10_000;
const OWNERS = 500;
const SLOTS = 2;
const NETWORK = 7;

describe(`pulse verify on a ${DEVICES}-device epoch (${backend.name})`, () => {
  let store: Store;
  let cleanup: () => Promise<void>;
  let dir: string;
  let built: BuiltBundle;

  beforeAll(async () => {
    const t0 = performance.now();
    const phase = (what: string) => console.log(`[verify-large] ${what} at +${((performance.now() - t0) / 1000).toFixed(1)} s`);
    ({ store, cleanup } = await backend.open());
    dir = mkdtempSync(join(tmpdir(), 'pulse-large-'));
    const slotMs = 1000;
    const timing: EpochTiming = { genesisMs: Math.floor((Date.now() - 600_000) / slotMs) * slotMs, slotMs, epochSlots: SLOTS, graceMs: 0 };
    const g = timing.genesisMs / slotMs;
    const owners = Array.from({ length: OWNERS }, () => randomBytes(20).toString('hex'));
    const ids: string[] = [];
    const candidates: Candidate[] = [];
    for (let i = 0; i < DEVICES; i++) {
      // Yield now and then: ~7 s of synchronous key generation and signing starved the worker's
      // event loop, and two full-suite runs hung idle right after this point (vitest's hook timeout
      // never fired); with the loop yielding, the worker keeps talking to the vitest main process.
      if (i % 250 === 0) await new Promise((r) => setImmediate(r));
      // node:crypto key generation (OpenSSL): ~50× faster than deriving public keys with noble.
      const { publicKey, privateKey } = generateKeyPairSync('ed25519');
      const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
      const sign = nativeSigner(Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url'));
      ids.push(pub.toString('hex'));
      for (let s = 0; s < SLOTS; s++) {
        const ts = (g + s) * slotMs + 100 + (i % 800);
        const raw = signHeartbeat({ networkId: NETWORK, publicKey: pub, seq: BigInt(s + 1), timestamp: BigInt(ts), metrics: [{ id: 1, value: BigInt(1 + (i % 150)) }] }, sign);
        const hb = decodeHeartbeat(raw);
        if (!hb.ok) throw new Error(hb.message);
        candidates.push({ heartbeat: hb.value, slot: BigInt(g + s), receivedAt: ts + 7 });
      }
    }
    phase(`signed ${candidates.length} heartbeats`);
    await store.query(
      `INSERT INTO devices (device_id, owner, registered_via) SELECT d, decode(o, 'hex'), 'operator' FROM unnest($1::text[], $2::text[]) AS t(d, o)`,
      [ids, ids.map((_, i) => owners[i % OWNERS]!)],
    );
    await store.query('INSERT INTO device_keys (key_id, device_id) SELECT d, d FROM unnest($1::text[]) AS t(d)', [ids]);
    for (let i = 0; i < candidates.length; i += 4000) {
      const out = await writeBatch(store, candidates.slice(i, i + 4000), []);
      if (out.accepted !== Math.min(4000, candidates.length - i)) throw new Error(`batch at ${i}: only ${out.accepted} accepted`);
    }
    phase('stored');
    const closed = await closeNextEpoch(store, timing, FIXTURE_PARAMS, epochEndMs(timing, 0) + 1);
    if (closed.kind !== 'closed') throw new Error('epoch 0 did not close');
    phase('closed');
    built = await buildEpochBundle(store, 0, { dir, timing, networkId: NETWORK });
    phase('bundled');
  }, 240_000);

  afterAll(async () => {
    await cleanup?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('re-checks all 20,000 signatures on every core, recomputes the root and PASSes, with progress on stderr', async () => {
    const out: string[] = [];
    let progress = '';
    const started = performance.now();
    const code = await run(['--epoch', '0', '--bundle', built.file, '--expect-hash', built.hash], { out: (l) => out.push(l), err: (t) => (progress += t) });
    const seconds = (performance.now() - started) / 1000;
    expect(out[0]).toMatch(new RegExp(`^PASS epoch 0: ${DEVICES * SLOTS} heartbeats from ${DEVICES} devices re-checked, ${OWNERS} owners paid, root 0x[0-9a-f]{64}`));
    expect(code).toBe(0);
    expect(progress).toContain(`checking ${DEVICES * SLOTS} signatures`);
    expect(progress).toMatch(new RegExp(`signatures ${DEVICES * SLOTS}/${DEVICES * SLOTS} \\(100%`));
    // Reported for the record (speed is measured in bench/verify-epoch.ts, never asserted).
    console.log(`verify of ${DEVICES} devices / ${DEVICES * SLOTS} heartbeats: ${seconds.toFixed(1)} s; bundle ${built.bytes} bytes gzip, ${built.uncompressedBytes} uncompressed`);
  }, 180_000);
});
