// `pulse verify` against tampered bundles (issue 6 part 2): one case per lie the issue lists, each
// caught with its own code and a message naming the first difference; plus the honest bundle
// passing. Bundles come from a real closed epoch (oracle/bundle/testing.ts) and are tampered the
// way a competent forger would (canonical form and counts kept), then run through the CLI command.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pgliteBackend } from '../oracle/store/testing.ts';
import { buildEpochFixture, loadBundle, reencode, type EpochFixture } from '../oracle/bundle/testing.ts';
import { heartbeatMessage, newDevice } from '../oracle/ingest/testing.ts';
import { decodeHeartbeat } from '../shared/protocol/heartbeat.ts';
import { fromHex, toHex } from '../shared/hex.ts';
import { rewardParamsHash } from '../shared/rewards/reward-params.ts';
import { paramsFromJson } from '../oracle/epochs/params-json.ts';
import { run } from '../cli/commands/verify.ts';
import { verifyBundleFile } from '../oracle/bundle/verify-bundle.ts';
import { checkSignatures } from '../oracle/bundle/check-signatures.ts';
import type { Bundle, BundleHeartbeat } from '../oracle/bundle/bundle-format.ts';

let fx: EpochFixture;
let honest: Bundle;
let n = 0;

beforeAll(async () => {
  fx = await buildEpochFixture(pgliteBackend);
  honest = loadBundle(fx.bundles[0].file);
}, 60_000);
afterAll(async () => {
  await fx?.cleanup();
  if (fx) rmSync(fx.dir, { recursive: true, force: true });
});

async function verifyCli(file: Buffer | string, extra: string[] = []): Promise<{ code: number; out: string }> {
  let path = typeof file === 'string' ? file : '';
  if (typeof file !== 'string') {
    path = join(fx.dir, `tampered-${n++}.pulse.gz`);
    writeFileSync(path, file);
  }
  const lines: string[] = [];
  const code = await run(['--epoch', '0', '--bundle', path, '--quiet', ...extra], { out: (l) => lines.push(l), err: () => undefined });
  return { code, out: lines.join('\n') };
}

const seqOf = (h: BundleHeartbeat) => {
  const d = decodeHeartbeat(fromHex(h.raw)!);
  if (!d.ok) throw new Error(d.message);
  return d.value.seq;
};
/** Canonical heartbeat order: device, then seq. */
function sorted(hbs: BundleHeartbeat[]): BundleHeartbeat[] {
  return hbs.sort((x, y) => (x.device < y.device ? -1 : x.device > y.device ? 1 : seqOf(x) < seqOf(y) ? -1 : 1));
}
const slotMs = () => fx.timing.slotMs;
const hbOf = (id: string) => honest.heartbeats.filter((h) => h.device === id);

describe('pulse verify', () => {
  it('passes the honest bundle (exit 0) and with --expect-hash', async () => {
    const r = await verifyCli(fx.bundles[0].file, ['--expect-hash', fx.bundles[0].hash]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^PASS epoch 0: 49 heartbeats from 6 devices re-checked, 2 owners paid, root 0x[0-9a-f]{64}/);
  });

  it('catches a forged (altered) heartbeat: its signature no longer verifies', async () => {
    const i = honest.heartbeats.indexOf(hbOf(fx.devices.a.deviceId)[4]!);
    const raw = fromHex(honest.heartbeats[i]!.raw)!;
    raw[63] = raw[63]! ^ 0x01; // a bit of the timestamp
    const hbs = [...honest.heartbeats];
    hbs[i] = { ...hbs[i]!, raw: toHex(raw) };
    const r = await verifyCli(reencode({ ...honest, heartbeats: hbs }));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^FAIL VERIFY_BAD_HEARTBEAT: heartbeat #${i + 1} \\(device ${fx.devices.a.deviceId.slice(0, 12)}…, seq 5\\): HB_BAD_SIGNATURE`));
  });

  it('catches a heartbeat signed by a key that is not the device\'s', async () => {
    const stranger = newDevice();
    const victim = hbOf(fx.devices.a.deviceId)[0]!;
    const d = decodeHeartbeat(fromHex(victim.raw)!);
    if (!d.ok) throw new Error(d.message);
    const m = heartbeatMessage(stranger, 1, { ts: Number(d.value.timestamp), receivedAt: victim.receivedAt, networkId: fx.networkId });
    const hbs = honest.heartbeats.map((h) => (h === victim ? { ...h, raw: toHex(m.raw) } : h));
    const r = await verifyCli(reencode({ ...honest, heartbeats: hbs }));
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAIL VERIFY_WRONG_KEY');
    expect(r.out).toContain("not in the device's key history");
  });

  it('catches a key history that lends one device\'s key to another', async () => {
    const { a, b } = fx.devices;
    // The forger lists a's key under b too, so a's heartbeats could be credited to b.
    const devices = honest.devices.map((d) => (d.device === b.deviceId ? { ...d, keys: [...d.keys, { key: a.deviceId, activeFromMs: 0, retiredAtMs: null }] } : d));
    const r = await verifyCli(reencode({ ...honest, devices }));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL VERIFY_WRONG_KEY: key [0-9a-f]{12}… is listed for two devices/);
  });

  it('catches a heartbeat signed by a retired key after its retirement', async () => {
    const { rotated } = fx.devices;
    const dev = honest.devices.find((x) => x.device === rotated.deviceId)!;
    const retiredAt = dev.keys[0]!.retiredAtMs!;
    // A validly signed old-key heartbeat for the last slot, "received" after the rotation.
    const ts = (fx.g + 9) * slotMs() + 900;
    const m = heartbeatMessage(rotated, 99, { ts, receivedAt: retiredAt + 1, networkId: fx.networkId });
    const hbs = sorted([...honest.heartbeats, { device: rotated.deviceId, receivedAt: retiredAt + 1, raw: toHex(m.raw) }]);
    const r = await verifyCli(reencode({ ...honest, heartbeats: hbs }));
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^FAIL VERIFY_WRONG_KEY: .*after its key was retired/);
  });

  it('catches an added heartbeat: the posted score no longer follows', async () => {
    const { c } = fx.devices; // 3 slots in the bundle, seq 1..3
    const ts = (fx.g + 5) * slotMs() + 100;
    const m = heartbeatMessage(c, 4, { ts, receivedAt: ts + 5, networkId: fx.networkId });
    const hbs = sorted([...honest.heartbeats, { device: c.deviceId, receivedAt: ts + 5, raw: toHex(m.raw) }]);
    const r = await verifyCli(reencode({ ...honest, heartbeats: hbs }));
    expect(r.code).toBe(1);
    expect(r.out).toBe(`FAIL VERIFY_SCORE_MISMATCH: device ${c.deviceId.slice(0, 12)}…: creditedSlots: bundle says 3, recomputed 4`);
  });

  it('catches a removed heartbeat: the posted score no longer follows', async () => {
    const victim = hbOf(fx.devices.a.deviceId)[3]!;
    const r = await verifyCli(reencode({ ...honest, heartbeats: honest.heartbeats.filter((h) => h !== victim) }));
    expect(r.code).toBe(1);
    expect(r.out).toBe(`FAIL VERIFY_SCORE_MISMATCH: device ${fx.devices.a.deviceId.slice(0, 12)}…: creditedSlots: bundle says 10, recomputed 9`);
  });

  it('catches a duplicated heartbeat (replay rule: strictly increasing seq)', async () => {
    const victim = hbOf(fx.devices.b.deviceId)[2]!;
    const i = honest.heartbeats.indexOf(victim);
    const hbs = [...honest.heartbeats.slice(0, i + 1), victim, ...honest.heartbeats.slice(i + 1)];
    const r = await verifyCli(reencode({ ...honest, heartbeats: hbs }));
    expect(r.code).toBe(1);
    expect(r.out).toBe(`FAIL VERIFY_REPLAY: heartbeat #${i + 2} (device ${fx.devices.b.deviceId.slice(0, 12)}…, seq 3): seq 3 appears twice (a duplicated heartbeat)`);
  });

  it('catches a heartbeat from outside the epoch and one from another network', async () => {
    const { a } = fx.devices;
    const ts = (fx.g + 10) * slotMs() + 500; // first slot of epoch 1
    const late = heartbeatMessage(a, 50, { ts, receivedAt: ts, networkId: fx.networkId });
    const r1 = await verifyCli(reencode({ ...honest, heartbeats: sorted([...honest.heartbeats, { device: a.deviceId, receivedAt: ts, raw: toHex(late.raw) }]) }));
    expect(r1.out).toMatch(new RegExp(`^FAIL VERIFY_OUTSIDE_EPOCH: .*slot ${fx.g + 10} is outside epoch 0`));
    const ts2 = (fx.g + 9) * slotMs() + 700;
    const foreign = heartbeatMessage(a, 51, { ts: ts2, receivedAt: ts2, networkId: fx.networkId + 1 });
    const r2 = await verifyCli(reencode({ ...honest, heartbeats: sorted([...honest.heartbeats, { device: a.deviceId, receivedAt: ts2, raw: toHex(foreign.raw) }]) }));
    expect(r2.out).toMatch(/^FAIL VERIFY_WRONG_NETWORK: .*network id 8, the bundle's network is 7/);
  });

  it('catches a changed parameter, with or without a matching paramsHash', async () => {
    const params = { ...honest.header.params, emissionPerEpoch: '2000000' };
    const r1 = await verifyCli(reencode({ ...honest, header: { ...honest.header, params } }));
    expect(r1.code).toBe(1);
    expect(r1.out).toMatch(/^FAIL VERIFY_PARAMS_MISMATCH: the reward parameters in the bundle hash to 0x[0-9a-f]{64}, the bundle states paramsHash /);
    // The forger also restates the hash: the stated rewards no longer follow from the parameters.
    const p = paramsFromJson(params);
    if (!p.ok) throw new Error(p.message);
    const r2 = await verifyCli(reencode({ ...honest, header: { ...honest.header, params, paramsHash: rewardParamsHash(p.value) } }));
    expect(r2.code).toBe(1);
    expect(r2.out).toMatch(/^FAIL VERIFY_REWARD_MISMATCH: device [0-9a-f]{12}…: availabilityReward: bundle says "\d+", recomputed "\d+"/);
  });

  it('catches an altered reward', async () => {
    const rewards = honest.rewards.map((r, i) => (i === 0 ? { ...r, amount: String(BigInt(r.amount) + 1n) } : r));
    const r = await verifyCli(reencode({ ...honest, rewards }));
    expect(r.code).toBe(1);
    expect(r.out).toBe(`FAIL VERIFY_REWARD_MISMATCH: owner ${honest.rewards[0]!.owner}: amount: bundle says "${BigInt(honest.rewards[0]!.amount) + 1n}", recomputed "${honest.rewards[0]!.amount}"`);
  });

  it('catches an altered stated root', async () => {
    const r = await verifyCli(reencode({ ...honest, result: { ...honest.result, root: `0x${'12'.repeat(32)}` } }));
    expect(r.out).toMatch(/^FAIL VERIFY_ROOT_MISMATCH: merkle root: bundle says 0x1212/);
  });

  it('catches a bundle that does not match its posted hash (and an --expect-hash mismatch)', async () => {
    // A change that leaves every recomputation intact: only the hash can tell.
    const rejections = honest.rejections.map((x, i) => (i === 0 ? { ...x, detail: `${x.detail} (edited)` } : x));
    const edited = reencode({ ...honest, rejections });
    const r1 = await verifyCli(edited);
    expect(r1.code).toBe(0);
    const r2 = await verifyCli(edited, ['--expect-hash', fx.bundles[0].hash]);
    expect(r2.code).toBe(1);
    expect(r2.out).toMatch(new RegExp(`^FAIL VERIFY_HASH_MISMATCH: the bundle hashes to 0x[0-9a-f]{64}, expected ${fx.bundles[0].hash}`));
    const posted = { root: honest.result.root!, cumulativeTotal: BigInt(honest.result.cumulativeTotal), inputsHash: fx.bundles[0].hash, paramsHash: honest.header.paramsHash, postedAt: 1, vetoed: false };
    const sigs = (raws: readonly Uint8Array[]) => checkSignatures(raws, { threads: 1 });
    const r3 = await verifyBundleFile(edited, { epoch: 0, chain: posted, checkSignatures: sigs });
    expect(r3).toMatchObject({ ok: false, code: 'VERIFY_HASH_MISMATCH' });
    expect(await verifyBundleFile(readFileSync(fx.bundles[0].file), { epoch: 0, chain: posted, checkSignatures: sigs })).toMatchObject({ ok: true });
  });

  it('catches a root that does not match the chain, and an epoch the chain does not hold', async () => {
    const sigs = (raws: readonly Uint8Array[]) => checkSignatures(raws, { threads: 1 });
    const file = readFileSync(fx.bundles[0].file);
    const posted = { root: `0x${'ab'.repeat(32)}`, cumulativeTotal: BigInt(honest.result.cumulativeTotal), inputsHash: fx.bundles[0].hash, paramsHash: honest.header.paramsHash, postedAt: 1, vetoed: false };
    const r = await verifyBundleFile(file, { epoch: 0, chain: posted, checkSignatures: sigs });
    expect(r).toMatchObject({ ok: false, code: 'VERIFY_CHAIN_MISMATCH' });
    expect(!r.ok && r.message).toBe(`root: the chain holds 0x${'ab'.repeat(32)}, the bundle recomputes to ${honest.result.root}`);
    const t = await verifyBundleFile(file, { epoch: 0, chain: { ...posted, root: honest.result.root!, cumulativeTotal: 1n }, checkSignatures: sigs });
    expect(!t.ok && t.message).toMatch(/^cumulativeTotal: the chain holds 1, the bundle recomputes to 1000000/);
    expect(await verifyBundleFile(file, { epoch: 0, chain: null, checkSignatures: sigs })).toMatchObject({ ok: false, code: 'VERIFY_CHAIN_MISMATCH', message: 'the contract holds no root for epoch 0' });
  });

  it('refuses malformed files: truncated, non-canonical, wrong epoch, missing', async () => {
    const raw = reencode(honest);
    const plain = (await import('node:zlib')).gunzipSync(raw).toString('utf8');
    const truncated = plain.split('\n').slice(0, 20).join('\n') + '\n';
    expect((await verifyCli(Buffer.from(truncated))).out).toMatch(/^FAIL BUNDLE_MALFORMED: no result record/);
    const spaced = plain.replace('{"t":"hb","device"', '{"t": "hb","device"');
    expect((await verifyCli(Buffer.from(spaced))).out).toMatch(/^FAIL BUNDLE_MALFORMED: line \d+: the record is not in canonical form/);
    const lines: string[] = [];
    expect(await run(['--epoch', '1', '--bundle', fx.bundles[0].file, '--quiet'], { out: (l) => lines.push(l), err: () => undefined })).toBe(1);
    expect(lines[0]).toBe('FAIL BUNDLE_MALFORMED: this is the bundle of epoch 0, not epoch 1');
    await expect(run(['--epoch', '0', '--bundle', join(fx.dir, 'nope.gz')], { out: () => undefined, err: () => undefined })).rejects.toMatchObject({ code: 'BUNDLE_UNAVAILABLE' });
  });

  it('checks signatures on worker threads with the same verdicts', async () => {
    const i = honest.heartbeats.indexOf(hbOf(fx.devices.c.deviceId)[1]!);
    const raws = honest.heartbeats.map((h) => fromHex(h.raw)!);
    raws[i]![70] = raws[i]![70]! ^ 4;
    const progress: number[] = [];
    const parallel = await checkSignatures(raws, { threads: 2, minParallel: 0, onProgress: (d) => progress.push(d) });
    expect(parallel).toEqual(await checkSignatures(raws, { threads: 1 }));
    expect(parallel.map((f) => [f.index, f.code])).toEqual([[i, 'HB_BAD_SIGNATURE']]);
    expect(progress.at(-1)).toBe(raws.length);
  });
});
