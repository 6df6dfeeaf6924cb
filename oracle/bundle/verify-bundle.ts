// `pulse verify`'s logic (issue 6 part 2; docs/verify.md): from the bundle alone, re-check every
// heartbeat (signature, network, key history, replay rules, slot, skew), recompute scores, rewards,
// cumulative leaves, the tree and the root with the same pure code the epoch closer runs
// (shared/rewards/settle-epoch.ts), and compare everything with what the bundle states and, when
// given, with what the chain holds. No database, no oracle: only the bundle bytes (and the chain).
//
// The result is the FIRST difference, in this order: format → header and parameters → heartbeats
// (in bundle order) → scores (by device) → owner rewards and totals → leaves, total, tree, root →
// bundle hash vs the expected/posted hash → chain root, cumulativeTotal, paramsHash.
import { epochWindow, validateTiming } from '../../shared/epoch-timing.ts';
import { decodeHeartbeat } from '../../shared/protocol/heartbeat.ts';
import { fromHex, toHex } from '../../shared/hex.ts';
import { rewardParamsHash } from '../../shared/rewards/reward-params.ts';
import { settleEpoch } from '../../shared/rewards/settle-epoch.ts';
import type { DeviceInfo, DeviceScore, SlotRollup } from '../../shared/rewards/score-epoch.ts';
import type { DeviceReward } from '../../shared/rewards/allocate-rewards.ts';
import type { BundleCode } from '../../shared/error-codes.ts';
import { SCORER_VERSION } from '../epochs/close-epoch.ts';
import { paramsFromJson } from '../epochs/params-json.ts';
import {
  bundleHash,
  decodeBundle,
  resultLine,
  rewardLine,
  scoreLine,
  uncompressBundle,
  type Bundle,
  type BundleResult,
  type BundleScore,
} from './bundle-format.ts';
import type { SignatureFailure } from './check-signatures.ts';

/** What RewardDistributor.rootOf(epoch) returns (contracts/RewardDistributor.sol Root). */
export type ChainRoot = {
  readonly root: string;
  readonly cumulativeTotal: bigint;
  readonly inputsHash: string;
  readonly paramsHash: string;
  readonly postedAt: number;
  readonly vetoed: boolean;
};

export type VerifySummary = {
  readonly epoch: number;
  readonly hash: string;
  readonly heartbeats: number;
  readonly devices: number;
  readonly owners: number;
  readonly root: string | null;
  readonly cumulativeTotal: string;
  readonly chainChecked: boolean;
};

export type VerifyOutcome =
  | { readonly ok: true; readonly summary: VerifySummary }
  | { readonly ok: false; readonly code: BundleCode; readonly message: string; readonly hash?: string };

export type VerifyOptions = {
  /** The epoch the user asked for; the bundle must be that epoch's. */
  readonly epoch?: number;
  /** A hash the bundle must have (e.g. from an operator announcement) when there is no chain. */
  readonly expectedHash?: string;
  /** rootOf(epoch) from the chain; null = the chain has no root for the epoch; undefined = no chain check. */
  readonly chain?: ChainRoot | null;
  /** Signature re-check of the raw heartbeats (check-signatures.ts: every core). */
  readonly checkSignatures: (raws: readonly Uint8Array[]) => Promise<readonly SignatureFailure[]>;
  readonly onPhase?: (phase: string) => void;
};

type Fail = { ok: false; code: BundleCode; message: string; hash?: string };
const fail = (code: BundleCode, message: string, hash?: string): Fail => (hash === undefined ? { ok: false, code, message } : { ok: false, code, message, hash });

/** The first key whose JSON value differs between two canonical lines, for a readable message. */
function firstFieldDiff(stated: string, computed: string): string {
  const a = JSON.parse(stated) as Record<string, unknown>;
  const b = JSON.parse(computed) as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    const x = JSON.stringify(a[k]);
    const y = JSON.stringify(b[k]);
    if (x !== y) return `${k}: bundle says ${clip(x)}, recomputed ${clip(y)}`;
  }
  return 'records differ';
}
function clip(s: string | undefined): string {
  if (s === undefined) return 'nothing';
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** The score record the closer would have written for a recomputed score (oracle/epochs/close-epoch.ts). */
export function scoreRecord(d: DeviceScore, reward: DeviceReward | undefined): BundleScore {
  return {
    device: d.deviceId,
    owner: d.owner,
    creditedSlots: d.creditedSlots,
    slotCount: d.slotCount,
    uptimeBps: d.uptimeBps,
    connectedMs: d.connectedMs,
    contribution: String(d.contribution),
    metrics: d.metrics.map((m) => ({ metricId: m.metricId, raw: String(m.raw), capped: String(m.capped), points: String(m.points) })),
    eligible: d.eligible,
    reasons: [...d.reasons],
    availabilityReward: String(reward?.availability ?? 0n),
    contributionReward: String(reward?.contribution ?? 0n),
  };
}

const short = (id: string) => `${id.slice(0, 12)}…`;

/** Same 32-byte public key (bytes 6..38) in two heartbeats. */
function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (b.length < 38) return false;
  for (let i = 6; i < 38; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Verify a bundle file (gzip or plain). Never throws on bad input: every problem is an outcome. */
export async function verifyBundleFile(file: Uint8Array, opts: VerifyOptions): Promise<VerifyOutcome> {
  const raw = uncompressBundle(file);
  if (!raw.ok) return fail('BUNDLE_MALFORMED', raw.message);
  opts.onPhase?.('parsing');
  const decoded = decodeBundle(raw.value);
  if (!decoded.ok) return fail('BUNDLE_MALFORMED', decoded.message, bundleHash(raw.value));
  // The hash is only needed at the end: it is computed while the signature workers run.
  return verifyBundle(decoded.value, () => bundleHash(raw.value), opts);
}

/** `hashOf`: the bundle hash, or a function computing it (called once, while signatures are checked). */
export async function verifyBundle(b: Bundle, hashOf: string | (() => string), opts: VerifyOptions): Promise<VerifyOutcome> {
  const h = b.header;
  let hashValue: string | undefined;
  const hashNow = (): string => (hashValue ??= typeof hashOf === 'string' ? hashOf : hashOf());
  const F = (code: BundleCode, message: string) => fail(code, message, hashNow());

  // ---- header: the epoch asked for, timing, scorer and parameters ----
  if (opts.epoch !== undefined && h.epoch !== opts.epoch) return F('BUNDLE_MALFORMED', `this is the bundle of epoch ${h.epoch}, not epoch ${opts.epoch}`);
  const timingProblem = validateTiming(h.timing);
  if (timingProblem !== undefined) return F('BUNDLE_MALFORMED', `header timing: ${timingProblem}`);
  const window = epochWindow(h.timing, h.epoch);
  if (window.firstSlot !== h.firstSlot || window.slotCount !== h.slotCount) {
    return F('BUNDLE_MALFORMED', `header says slots [${h.firstSlot}, +${h.slotCount}); the timing puts epoch ${h.epoch} at [${window.firstSlot}, +${window.slotCount})`);
  }
  if (h.scorerVersion !== SCORER_VERSION) return F('VERIFY_PARAMS_MISMATCH', `scorer version ${JSON.stringify(h.scorerVersion)} is not ${SCORER_VERSION}, the one this verifier implements`);
  const params = paramsFromJson(h.params);
  if (!params.ok) return F('VERIFY_PARAMS_MISMATCH', params.message);
  if (params.value.version !== h.paramsVersion) return F('VERIFY_PARAMS_MISMATCH', `params.version ${params.value.version} differs from paramsVersion ${h.paramsVersion}`);
  const paramsValue = params.value;
  const paramsHash = rewardParamsHash(paramsValue);
  if (paramsHash !== h.paramsHash) return F('VERIFY_PARAMS_MISMATCH', `the reward parameters in the bundle hash to ${paramsHash}, the bundle states paramsHash ${h.paramsHash}`);

  // ---- heartbeats: signatures on every core while this thread checks everything else ----
  const total = b.heartbeats.length;
  const raws: Uint8Array[] = new Array<Uint8Array>(total);
  for (let i = 0; i < total; i++) {
    const bytes = fromHex(b.heartbeats[i]!.raw);
    if (bytes === undefined) return F('BUNDLE_MALFORMED', `heartbeat #${i + 1}: raw is not hex`);
    raws[i] = bytes;
  }
  // Signatures run on the worker threads while this thread checks the rules, hashes and rescores;
  // a signature failure at or before the first rule failure is reported first (bundle order).
  opts.onPhase?.(`checking ${total} signatures; replay rules, slots and scores meanwhile`);
  // Called synchronously: the pool hands the work to its threads before the rules below run.
  const sigPromise = opts.checkSignatures(raws);
  sigPromise.catch(() => undefined);
  const outcome = checkRest();
  const sigFailures = await sigPromise;
  const firstSig = sigFailures[0];
  if (firstSig !== undefined && (outcome.ruleFailAt === undefined || firstSig.index <= outcome.ruleFailAt)) {
    const hb = b.heartbeats[firstSig.index]!;
    const decoded = decodeHeartbeat(raws[firstSig.index]!);
    const seq = decoded.ok ? `, seq ${decoded.value.seq}` : '';
    return F('VERIFY_BAD_HEARTBEAT', `heartbeat #${firstSig.index + 1} (device ${short(hb.device)}${seq}): ${firstSig.code}: ${firstSig.message} (forged or altered heartbeat)`);
  }
  return outcome.result;

  function checkRest(): { ruleFailAt?: number; result: VerifyOutcome } {
    const devices = new Map(b.devices.map((d) => [d.device, d]));
    // Key history sanity (docs/bundle.md §device): a device id is its first key, so it is in its own
    // history, and a key belongs to one device only (device_keys.key_id is unique in the oracle).
    const keyOwner = new Map<string, string>();
    for (const d of b.devices) {
      if (!d.keys.some((k) => k.key === d.device)) return { result: F('VERIFY_WRONG_KEY', `device ${short(d.device)}: its own key is missing from its key history`) };
      for (const k of d.keys) {
        const other = keyOwner.get(k.key);
        if (other !== undefined && other !== d.device) return { result: F('VERIFY_WRONG_KEY', `key ${short(k.key)} is listed for two devices, ${short(other)} and ${short(d.device)}`) };
        keyOwner.set(k.key, d.device);
      }
    }
    const end = window.firstSlot + window.slotCount;
    const slotMs = BigInt(h.timing.slotMs);
    const skew = BigInt(h.timing.skewMs);
    type Acc = { deviceId: string; slot: number; heartbeats: number; metrics: Map<number, bigint> };
    /** device → slot → rollup; the bundle is sorted by device, so one device's map is filled at a time. */
    const rollups = new Map<string, Map<number, Acc>>();
    let deviceSlots = new Map<number, Acc>();
    const firstSlot = BigInt(window.firstSlot);
    const endSlot = BigInt(end);
    let lastKeyRaw: Uint8Array = new Uint8Array(0);
    let lastKeyHex = '';
    let prevDevice = '';
    let prevSeq = 0n;
    for (let i = 0; i < total; i++) {
      const hb = b.heartbeats[i]!;
      const where = `heartbeat #${i + 1} (device ${short(hb.device)}`;
      const raw = raws[i]!;
      if (raw.length < 119 || raw.length !== 119 + 10 * raw[54]!) {
        // Only failing heartbeats go through the full decoder, for the message. (The length test keeps
        // the in-place reads below in bounds even if a signature checker missed a malformed payload.)
        const decoded = decodeHeartbeat(raw);
        return { ruleFailAt: i, result: F('VERIFY_BAD_HEARTBEAT', decoded.ok ? `${where}, seq ${decoded.value.seq}): HB_BAD_LENGTH: length does not match the metric count` : `${where}): ${decoded.code}: ${decoded.message}`) };
      }
      // The signature check decoded the structure (docs/protocol.md §Heartbeat) and found it valid, so
      // the fields are read in place: network id u32 at 2, key at 6..38, seq u64 at 38, timestamp u64
      // at 46, metric count at 54, then (id u16, value u64) pairs.
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      const networkId = dv.getUint32(2, false);
      const seq = dv.getBigUint64(38, false);
      const timestamp = dv.getBigUint64(46, false);
      const at = `${where}, seq ${seq})`;
      if (networkId !== h.networkId) return { ruleFailAt: i, result: F('VERIFY_WRONG_NETWORK', `${at}: network id ${networkId}, the bundle's network is ${h.networkId}`) };
      const dev = devices.get(hb.device);
      if (dev === undefined) return { ruleFailAt: i, result: F('VERIFY_UNKNOWN_DEVICE', `${at}: the device is not in the registry snapshot`) };
      if (lastKeyHex === '' || !sameKey(raw, lastKeyRaw)) {
        lastKeyRaw = raw;
        lastKeyHex = toHex(raw.subarray(6, 38));
      }
      // Key history (docs/bundle.md §Rules): signed by one of the device's keys, received before that
      // key was retired (ingest refuses a retired key, and a heartbeat is stored after it is received).
      const key = dev.keys.find((k) => k.key === lastKeyHex);
      if (key === undefined) return { ruleFailAt: i, result: F('VERIFY_WRONG_KEY', `${at}: signed by key ${short(lastKeyHex)}, which is not in the device's key history`) };
      if (key.retiredAtMs !== null && hb.receivedAt >= key.retiredAtMs) return { ruleFailAt: i, result: F('VERIFY_WRONG_KEY', `${at}: received at ${hb.receivedAt}, after its key was retired at ${key.retiredAtMs}`) };
      // Replay rules: per device strictly increasing seq, so no heartbeat is credited twice.
      if (hb.device < prevDevice) return { ruleFailAt: i, result: F('BUNDLE_MALFORMED', `${at}: heartbeats are not sorted by device`) };
      if (hb.device === prevDevice && seq <= prevSeq) {
        return { ruleFailAt: i, result: F('VERIFY_REPLAY', seq === prevSeq ? `${at}: seq ${seq} appears twice (a duplicated heartbeat)` : `${at}: seq ${seq} follows seq ${prevSeq}; seqs must strictly increase`) };
      }
      if (hb.device !== prevDevice) {
        deviceSlots = new Map();
        rollups.set(hb.device, deviceSlots);
      }
      prevDevice = hb.device;
      prevSeq = seq;
      // Slot and skew (docs/protocol.md §Replay and time rules).
      const slot = timestamp / slotMs;
      if (slot < firstSlot || slot >= endSlot) return { ruleFailAt: i, result: F('VERIFY_OUTSIDE_EPOCH', `${at}: slot ${slot} is outside epoch ${h.epoch} [${window.firstSlot}, ${end})`) };
      const diff = timestamp - BigInt(hb.receivedAt);
      if ((diff < 0n ? -diff : diff) > skew) return { ruleFailAt: i, result: F('VERIFY_OUTSIDE_EPOCH', `${at}: timestamp ${timestamp} is ${diff} ms from its receive time ${hb.receivedAt} (skew window ${skew} ms)`) };
      const slotN = Number(slot);
      let r = deviceSlots.get(slotN);
      if (r === undefined) deviceSlots.set(slotN, (r = { deviceId: hb.device, slot: slotN, heartbeats: 0, metrics: new Map() }));
      r.heartbeats++;
      const n = raw[54]!;
      for (let m = 0; m < n; m++) {
        const id = dv.getUint16(55 + 10 * m, false);
        r.metrics.set(id, (r.metrics.get(id) ?? 0n) + dv.getBigUint64(57 + 10 * m, false));
      }
    }

    // ---- recompute with the closer's pure settlement ----
    opts.onPhase?.('recomputing scores, rewards and the merkle tree');
    const stated = new Map(b.scores.map((s) => [s.device, s]));
    for (const s of b.scores) if (!devices.has(s.device)) return { result: F('VERIFY_UNKNOWN_DEVICE', `score of device ${short(s.device)}: the device is not in the registry snapshot`) };
    const infos: DeviceInfo[] = b.devices.map((d) => ({ deviceId: d.device, owner: d.owner, revoked: d.status === 'revoked', connectedMs: stated.get(d.device)?.connectedMs ?? 0 }));
    const slotRollups: SlotRollup[] = [...rollups.values()].flatMap((m) => [...m.values()]).map((r) => ({ deviceId: r.deviceId, slot: r.slot, heartbeats: r.heartbeats, metrics: [...r.metrics].sort((x, y) => x[0] - y[0]) }));
    const settled = settleEpoch({
      window,
      params: paramsValue,
      devices: infos,
      rollups: slotRollups,
      previous: b.previous.map((l) => ({ account: l.owner, cumulative: BigInt(l.cumulative) })),
    });
    if (!settled.ok) return { result: F('VERIFY_SCORE_MISMATCH', `the bundle's inputs cannot be settled: ${settled.code}: ${settled.message}`) };
    const s = settled.value;

    const rewardBy = new Map(s.allocation.devices.map((d) => [d.deviceId, d]));
    const computedScores = s.scores.devices.map((d) => scoreRecord(d, rewardBy.get(d.deviceId)));
    const n = Math.max(computedScores.length, b.scores.length);
    for (let i = 0; i < n; i++) {
      const c = computedScores[i];
      const st = b.scores[i];
      if (c === undefined || st === undefined || c.device !== st.device) {
        const dev = c === undefined ? st!.device : st === undefined ? c.device : c.device < st.device ? c.device : st.device;
        return { result: F('VERIFY_SCORE_MISMATCH', `device ${short(dev)}: ${c !== undefined && c.device === dev ? 'recomputed a score the bundle does not state' : 'the bundle states a score that does not follow from its inputs'}`) };
      }
    }
    // Two passes: scores follow from the inputs, device rewards from all the scores, so a changed
    // input is reported on its own device before the rewards it shifts on every other device.
    const noReward = (x: BundleScore): BundleScore => ({ ...x, availabilityReward: '0', contributionReward: '0' });
    for (const full of [false, true]) {
      for (let i = 0; i < n; i++) {
        const c = computedScores[i]!, st = b.scores[i]!;
        const x = scoreLine(full ? st : noReward(st)), y = scoreLine(full ? c : noReward(c));
        if (x !== y) return { result: F(full ? 'VERIFY_REWARD_MISMATCH' : 'VERIFY_SCORE_MISMATCH', `device ${short(c.device)}: ${firstFieldDiff(x, y)}`) };
      }
    }

    const leafBy = new Map(s.leaves.map((l) => [l.account, l.cumulative]));
    const computedRewards = s.allocation.owners.map((o) => ({ owner: o.owner, amount: String(o.total), cumulative: String(leafBy.get(o.owner) ?? o.total) }));
    const m = Math.max(computedRewards.length, b.rewards.length);
    for (let i = 0; i < m; i++) {
      const c = computedRewards[i], st = b.rewards[i];
      if (c === undefined || st === undefined || c.owner !== st.owner) {
        const who = c === undefined ? st!.owner : st === undefined ? c.owner : c.owner < st.owner ? c.owner : st.owner;
        return { result: F('VERIFY_REWARD_MISMATCH', `owner ${who}: ${c !== undefined && c.owner === who ? 'recomputed a reward the bundle does not state' : 'the bundle states a reward that does not follow from the scores'}`) };
      }
      const x = rewardLine(st), y = rewardLine(c);
      if (x !== y) return { result: F('VERIFY_REWARD_MISMATCH', `owner ${c.owner}: ${firstFieldDiff(x, y)}`) };
    }

    const a = s.allocation;
    const computed: BundleResult = {
      emission: String(a.emission),
      allocated: String(a.allocated),
      unallocated: String(a.unallocated),
      unallocatedParts: a.unallocatedParts.map((p) => ({ pool: p.pool, amount: String(p.amount), code: p.code })),
      cumulativeTotal: String(s.cumulativeTotal),
      root: s.root,
      tree: s.tree === null ? null : s.tree.dump(),
    };
    const r = b.result;
    for (const f of ['emission', 'allocated', 'unallocated'] as const) {
      if (r[f] !== computed[f]) return { result: F('VERIFY_REWARD_MISMATCH', `${f}: bundle says ${r[f]}, recomputed ${computed[f]}`) };
    }
    if (JSON.stringify(r.unallocatedParts) !== JSON.stringify(computed.unallocatedParts)) return { result: F('VERIFY_REWARD_MISMATCH', `unallocatedParts: bundle says ${clip(JSON.stringify(r.unallocatedParts))}, recomputed ${clip(JSON.stringify(computed.unallocatedParts))}`) };
    if (r.cumulativeTotal !== computed.cumulativeTotal) return { result: F('VERIFY_ROOT_MISMATCH', `cumulativeTotal: bundle says ${r.cumulativeTotal}, recomputed ${computed.cumulativeTotal}`) };
    if (r.root !== computed.root) return { result: F('VERIFY_ROOT_MISMATCH', `merkle root: bundle says ${r.root}, recomputed ${computed.root}`) };
    if (resultLine(r) !== resultLine(computed)) return { result: F('VERIFY_ROOT_MISMATCH', 'the tree dump differs from the tree recomputed from the leaves') };

    // ---- the hash and the chain ----
    const hash = hashNow();
    if (opts.expectedHash !== undefined && opts.expectedHash.toLowerCase() !== hash) return { result: F('VERIFY_HASH_MISMATCH', `the bundle hashes to ${hash}, expected ${opts.expectedHash.toLowerCase()}`) };
    if (opts.chain !== undefined) {
      const c = opts.chain;
      if (c === null) return { result: F('VERIFY_CHAIN_MISMATCH', `the contract holds no root for epoch ${h.epoch}`) };
      if (c.inputsHash.toLowerCase() !== hash) return { result: F('VERIFY_HASH_MISMATCH', `the bundle hashes to ${hash}, the chain's inputsHash for epoch ${h.epoch} is ${c.inputsHash.toLowerCase()}`) };
      if (c.root.toLowerCase() !== (s.root ?? '')) return { result: F('VERIFY_CHAIN_MISMATCH', `root: the chain holds ${c.root.toLowerCase()}, the bundle recomputes to ${s.root}`) };
      if (c.cumulativeTotal !== s.cumulativeTotal) return { result: F('VERIFY_CHAIN_MISMATCH', `cumulativeTotal: the chain holds ${c.cumulativeTotal}, the bundle recomputes to ${s.cumulativeTotal}`) };
      if (c.paramsHash.toLowerCase() !== paramsHash) return { result: F('VERIFY_CHAIN_MISMATCH', `paramsHash: the chain holds ${c.paramsHash.toLowerCase()}, the bundle's parameters hash to ${paramsHash}`) };
    }
    return {
      result: {
        ok: true,
        summary: { epoch: h.epoch, hash, heartbeats: total, devices: b.devices.length, owners: s.allocation.owners.length, root: s.root, cumulativeTotal: String(s.cumulativeTotal), chainChecked: opts.chain !== undefined },
      },
    };
  }
}
