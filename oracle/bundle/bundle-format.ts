// The epoch bundle format, version 1 (docs/bundle.md is the normative text; keep the two in step).
//
// A bundle is UTF-8 text: one JSON object per line, each line ended by "\n", no other whitespace.
// Every object is written with its keys in the fixed order documented in docs/bundle.md and only
// the value types listed there: safe integers as JSON numbers (counts, ms times, slots), every
// token amount, seq and metric value as a decimal string, bytes as lowercase hex, addresses as
// lowercase 0x-hex. Records come in sections, in this order, each sorted as documented:
//   header · device* · hb* · rej* · score* · reward* · prev* · result
// The bundle hash (the `inputsHash` posted on chain) is keccak256 of these uncompressed bytes; the
// file is stored gzip-compressed, so recompressing never changes the hash.
//
// decodeBundle() accepts only canonical bytes: it re-encodes every parsed record and requires the
// identical line, so two different files can never decode to the same bundle.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { RewardParamsJson } from '../epochs/params-json.ts';
import type { StandardTreeDump } from '../../shared/merkle/reward-tree.ts';
import { err, ok, type Result } from '../../shared/result.ts';
import { keccak256Hex } from './keccak-stream.ts';

export const BUNDLE_FORMAT = 'pulse-epoch-bundle';
export const BUNDLE_VERSION = 1;

export type BundleTiming = {
  readonly genesisMs: number;
  readonly slotMs: number;
  readonly epochSlots: number;
  readonly graceMs: number;
  /** Ingest skew window (docs/protocol.md §Replay and time rules): |timestamp − receivedAt| ≤ skewMs. */
  readonly skewMs: number;
};

export type BundleHeader = {
  readonly epoch: number;
  readonly networkId: number;
  readonly timing: BundleTiming;
  readonly firstSlot: number;
  readonly slotCount: number;
  readonly scorerVersion: string;
  readonly paramsVersion: number;
  readonly paramsHash: string;
  readonly params: RewardParamsJson;
  readonly counts: BundleCounts;
};

export type BundleCounts = {
  readonly devices: number;
  readonly heartbeats: number;
  readonly rejections: number;
  readonly scores: number;
  readonly rewards: number;
  readonly previous: number;
};

export type BundleKey = { readonly key: string; readonly activeFromMs: number; readonly retiredAtMs: number | null };
export type BundleEvent = {
  readonly event: string;
  readonly status: string;
  readonly owner: string | null;
  readonly key: string | null;
  /** The signed registry message (docs/protocol.md §Identity) as hex, when the event has one. */
  readonly signed: string | null;
  readonly atMs: number;
};
/** Registry snapshot of one device as the epoch closer used it (docs/bundle.md §device). */
export type BundleDevice = {
  readonly device: string;
  readonly owner: string | null;
  readonly status: 'active' | 'revoked';
  readonly keys: readonly BundleKey[];
  readonly events: readonly BundleEvent[];
};
export type BundleHeartbeat = { readonly device: string; readonly receivedAt: number; readonly raw: string };
export type BundleRejection = {
  readonly receivedAt: number;
  readonly device: string | null;
  readonly seq: string | null;
  readonly reason: string;
  readonly detail: string;
  readonly raw: string;
  readonly rawLength: number;
};
export type BundleMetricScore = { readonly metricId: number; readonly raw: string; readonly capped: string; readonly points: string };
export type BundleScore = {
  readonly device: string;
  readonly owner: string | null;
  readonly creditedSlots: number;
  readonly slotCount: number;
  readonly uptimeBps: number;
  readonly connectedMs: number;
  readonly contribution: string;
  readonly metrics: readonly BundleMetricScore[];
  readonly eligible: boolean;
  readonly reasons: readonly string[];
  readonly availabilityReward: string;
  readonly contributionReward: string;
};
export type BundleReward = { readonly owner: string; readonly amount: string; readonly cumulative: string };
export type BundleLeaf = { readonly owner: string; readonly cumulative: string };
export type BundleUnallocated = { readonly pool: string; readonly amount: string; readonly code: string };
export type BundleResult = {
  readonly emission: string;
  readonly allocated: string;
  readonly unallocated: string;
  readonly unallocatedParts: readonly BundleUnallocated[];
  readonly cumulativeTotal: string;
  readonly root: string | null;
  readonly tree: StandardTreeDump | null;
};

export type Bundle = {
  readonly header: BundleHeader;
  readonly devices: readonly BundleDevice[];
  readonly heartbeats: readonly BundleHeartbeat[];
  readonly rejections: readonly BundleRejection[];
  readonly scores: readonly BundleScore[];
  readonly rewards: readonly BundleReward[];
  readonly previous: readonly BundleLeaf[];
  readonly result: BundleResult;
};

// ---- encoding: objects are built key by key in the documented order ----

export function headerLine(h: BundleHeader): string {
  const p = h.params;
  return JSON.stringify({
    t: 'header',
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    epoch: h.epoch,
    networkId: h.networkId,
    timing: { genesisMs: h.timing.genesisMs, slotMs: h.timing.slotMs, epochSlots: h.timing.epochSlots, graceMs: h.timing.graceMs, skewMs: h.timing.skewMs },
    firstSlot: h.firstSlot,
    slotCount: h.slotCount,
    scorerVersion: h.scorerVersion,
    paramsVersion: h.paramsVersion,
    paramsHash: h.paramsHash,
    params: {
      version: p.version,
      emissionPerEpoch: p.emissionPerEpoch,
      availabilityBps: p.availabilityBps,
      minUptimeBps: p.minUptimeBps,
      metrics: p.metrics.map((m) => ({ metricId: m.metricId, weight: m.weight, capPerSlot: m.capPerSlot, capPerEpoch: m.capPerEpoch })),
    },
    counts: { devices: h.counts.devices, heartbeats: h.counts.heartbeats, rejections: h.counts.rejections, scores: h.counts.scores, rewards: h.counts.rewards, previous: h.counts.previous },
  });
}

export function deviceLine(d: BundleDevice): string {
  return JSON.stringify({
    t: 'device',
    device: d.device,
    owner: d.owner,
    status: d.status,
    keys: d.keys.map((k) => ({ key: k.key, activeFromMs: k.activeFromMs, retiredAtMs: k.retiredAtMs })),
    events: d.events.map((e) => ({ event: e.event, status: e.status, owner: e.owner, key: e.key, signed: e.signed, atMs: e.atMs })),
  });
}

export function heartbeatLine(h: BundleHeartbeat): string {
  return JSON.stringify({ t: 'hb', device: h.device, receivedAt: h.receivedAt, raw: h.raw });
}

export function rejectionLine(r: BundleRejection): string {
  return JSON.stringify({ t: 'rej', receivedAt: r.receivedAt, device: r.device, seq: r.seq, reason: r.reason, detail: r.detail, raw: r.raw, rawLength: r.rawLength });
}

export function scoreLine(s: BundleScore): string {
  return JSON.stringify({
    t: 'score',
    device: s.device,
    owner: s.owner,
    creditedSlots: s.creditedSlots,
    slotCount: s.slotCount,
    uptimeBps: s.uptimeBps,
    connectedMs: s.connectedMs,
    contribution: s.contribution,
    metrics: s.metrics.map((m) => ({ metricId: m.metricId, raw: m.raw, capped: m.capped, points: m.points })),
    eligible: s.eligible,
    reasons: [...s.reasons],
    availabilityReward: s.availabilityReward,
    contributionReward: s.contributionReward,
  });
}

export function rewardLine(r: BundleReward): string {
  return JSON.stringify({ t: 'reward', owner: r.owner, amount: r.amount, cumulative: r.cumulative });
}

export function leafLine(l: BundleLeaf): string {
  return JSON.stringify({ t: 'prev', owner: l.owner, cumulative: l.cumulative });
}

export function resultLine(r: BundleResult): string {
  return JSON.stringify({
    t: 'result',
    emission: r.emission,
    allocated: r.allocated,
    unallocated: r.unallocated,
    unallocatedParts: r.unallocatedParts.map((p) => ({ pool: p.pool, amount: p.amount, code: p.code })),
    cumulativeTotal: r.cumulativeTotal,
    root: r.root,
    tree:
      r.tree === null
        ? null
        : {
            format: r.tree.format,
            leafEncoding: [...r.tree.leafEncoding],
            tree: [...r.tree.tree],
            values: r.tree.values.map((v) => ({ value: [v.value[0], v.value[1]], treeIndex: v.treeIndex })),
          },
  });
}

/** Code-unit order, the sort order of every section (docs/bundle.md §Order). */
export function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Rejections sort by receive time, then device, seq (numerically), reason, raw, detail. */
export function cmpRejection(a: BundleRejection, b: BundleRejection): number {
  if (a.receivedAt !== b.receivedAt) return a.receivedAt - b.receivedAt;
  const da = a.device ?? '', db = b.device ?? '';
  if (da !== db) return cmpStr(da, db);
  const sa = a.seq === null ? -1n : BigInt(a.seq), sb = b.seq === null ? -1n : BigInt(b.seq);
  if (sa !== sb) return sa < sb ? -1 : 1;
  return cmpStr(a.reason, b.reason) || cmpStr(a.raw, b.raw) || cmpStr(a.detail, b.detail);
}

/** The canonical uncompressed bytes of a bundle. Sections must already be in canonical order. */
export function encodeBundle(b: Bundle): Buffer {
  const lines: string[] = [headerLine(b.header)];
  for (const d of b.devices) lines.push(deviceLine(d));
  for (const h of b.heartbeats) lines.push(heartbeatLine(h));
  for (const r of b.rejections) lines.push(rejectionLine(r));
  for (const s of b.scores) lines.push(scoreLine(s));
  for (const r of b.rewards) lines.push(rewardLine(r));
  for (const l of b.previous) lines.push(leafLine(l));
  lines.push(resultLine(b.result));
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}

/** keccak256 of the uncompressed bytes, 0x-hex: the bundle hash = inputsHash on chain. */
export function bundleHash(uncompressed: Uint8Array): string {
  return keccak256Hex(uncompressed);
}

/** The stored file: gzip of the canonical bytes (docs/bundle.md §File). */
export function compressBundle(uncompressed: Uint8Array): Buffer {
  return gzipSync(uncompressed, { level: 6 });
}

/** Gunzip a stored bundle file; plain (uncompressed) bytes are accepted as they are. */
export function uncompressBundle(file: Uint8Array): Result<Buffer, 'BUNDLE_MALFORMED'> {
  if (file.length >= 2 && file[0] === 0x1f && file[1] === 0x8b) {
    try {
      return ok(gunzipSync(file));
    } catch (e) {
      return err('BUNDLE_MALFORMED', `the file looks like gzip but does not decompress: ${(e as Error).message}`);
    }
  }
  return ok(Buffer.from(file.buffer, file.byteOffset, file.byteLength));
}

// ---- decoding: strict shape checks, then the canonical re-encoding check ----

class Malformed extends Error {}

function fail(msg: string): never {
  throw new Malformed(msg);
}
type Obj = Record<string, unknown>;
function obj(v: unknown, what: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`${what} must be an object`);
  return v as Obj;
}
function int(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`${what} must be a non-negative safe integer`);
  return v;
}
function str(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(`${what} must be a string`);
  return v;
}
function dec(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^(0|[1-9][0-9]*)$/.test(v)) fail(`${what} must be a decimal string`);
  return v;
}
function hex(v: unknown, what: string, bytes?: number): string {
  if (typeof v !== 'string' || !/^([0-9a-f]{2})*$/.test(v) || (bytes !== undefined && v.length !== 2 * bytes)) fail(`${what} must be lowercase hex${bytes === undefined ? '' : ` of ${bytes} bytes`}`);
  return v;
}
function id(v: unknown, what: string): string {
  return hex(v, what, 32);
}
function addr(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^0x[0-9a-f]{40}$/.test(v)) fail(`${what} must be a lowercase 0x address`);
  return v;
}
function h32(v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^0x[0-9a-f]{64}$/.test(v)) fail(`${what} must be 0x + 64 lowercase hex`);
  return v;
}
function nul<T>(v: unknown, f: (v: unknown, what: string) => T, what: string): T | null {
  return v === null ? null : f(v, what);
}
function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} must be an array`);
  return v;
}
function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') fail(`${what} must be a boolean`);
  return v;
}

function parseHeader(o: Obj): BundleHeader {
  if (o['format'] !== BUNDLE_FORMAT) fail(`format must be "${BUNDLE_FORMAT}"`);
  if (o['version'] !== BUNDLE_VERSION) fail(`unsupported bundle version ${JSON.stringify(o['version'])}; this verifier reads version ${BUNDLE_VERSION}`);
  const t = obj(o['timing'], 'timing');
  const p = obj(o['params'], 'params');
  const c = obj(o['counts'], 'counts');
  return {
    epoch: int(o['epoch'], 'epoch'),
    networkId: int(o['networkId'], 'networkId'),
    timing: { genesisMs: int(t['genesisMs'], 'timing.genesisMs'), slotMs: int(t['slotMs'], 'timing.slotMs'), epochSlots: int(t['epochSlots'], 'timing.epochSlots'), graceMs: int(t['graceMs'], 'timing.graceMs'), skewMs: int(t['skewMs'], 'timing.skewMs') },
    firstSlot: int(o['firstSlot'], 'firstSlot'),
    slotCount: int(o['slotCount'], 'slotCount'),
    scorerVersion: str(o['scorerVersion'], 'scorerVersion'),
    paramsVersion: int(o['paramsVersion'], 'paramsVersion'),
    paramsHash: h32(o['paramsHash'], 'paramsHash'),
    params: {
      version: int(p['version'], 'params.version'),
      emissionPerEpoch: dec(p['emissionPerEpoch'], 'params.emissionPerEpoch'),
      availabilityBps: int(p['availabilityBps'], 'params.availabilityBps'),
      minUptimeBps: int(p['minUptimeBps'], 'params.minUptimeBps'),
      metrics: arr(p['metrics'], 'params.metrics').map((m0, i) => {
        const m = obj(m0, `params.metrics[${i}]`);
        return { metricId: int(m['metricId'], 'metricId'), weight: dec(m['weight'], 'weight'), capPerSlot: dec(m['capPerSlot'], 'capPerSlot'), capPerEpoch: dec(m['capPerEpoch'], 'capPerEpoch') };
      }),
    },
    counts: { devices: int(c['devices'], 'counts.devices'), heartbeats: int(c['heartbeats'], 'counts.heartbeats'), rejections: int(c['rejections'], 'counts.rejections'), scores: int(c['scores'], 'counts.scores'), rewards: int(c['rewards'], 'counts.rewards'), previous: int(c['previous'], 'counts.previous') },
  };
}

function parseDevice(o: Obj): BundleDevice {
  const status = o['status'];
  if (status !== 'active' && status !== 'revoked') fail('status must be "active" or "revoked"');
  return {
    device: id(o['device'], 'device'),
    owner: nul(o['owner'], addr, 'owner'),
    status,
    keys: arr(o['keys'], 'keys').map((k0, i) => {
      const k = obj(k0, `keys[${i}]`);
      return { key: id(k['key'], 'key'), activeFromMs: int(k['activeFromMs'], 'activeFromMs'), retiredAtMs: nul(k['retiredAtMs'], int, 'retiredAtMs') };
    }),
    events: arr(o['events'], 'events').map((e0, i) => {
      const e = obj(e0, `events[${i}]`);
      return { event: str(e['event'], 'event'), status: str(e['status'], 'status'), owner: nul(e['owner'], addr, 'owner'), key: nul(e['key'], id, 'key'), signed: nul(e['signed'], hex, 'signed'), atMs: int(e['atMs'], 'atMs') };
    }),
  };
}

function parseScore(o: Obj): BundleScore {
  return {
    device: id(o['device'], 'device'),
    owner: nul(o['owner'], addr, 'owner'),
    creditedSlots: int(o['creditedSlots'], 'creditedSlots'),
    slotCount: int(o['slotCount'], 'slotCount'),
    uptimeBps: int(o['uptimeBps'], 'uptimeBps'),
    connectedMs: int(o['connectedMs'], 'connectedMs'),
    contribution: dec(o['contribution'], 'contribution'),
    metrics: arr(o['metrics'], 'metrics').map((m0, i) => {
      const m = obj(m0, `metrics[${i}]`);
      return { metricId: int(m['metricId'], 'metricId'), raw: dec(m['raw'], 'raw'), capped: dec(m['capped'], 'capped'), points: dec(m['points'], 'points') };
    }),
    eligible: bool(o['eligible'], 'eligible'),
    reasons: arr(o['reasons'], 'reasons').map((r, i) => str(r, `reasons[${i}]`)),
    availabilityReward: dec(o['availabilityReward'], 'availabilityReward'),
    contributionReward: dec(o['contributionReward'], 'contributionReward'),
  };
}

function parseResult(o: Obj): BundleResult {
  let tree: StandardTreeDump | null = null;
  if (o['tree'] !== null) {
    const t = obj(o['tree'], 'tree');
    if (t['format'] !== 'standard-v1') fail('tree.format must be "standard-v1"');
    tree = {
      format: 'standard-v1',
      leafEncoding: arr(t['leafEncoding'], 'tree.leafEncoding').map((x) => str(x, 'leafEncoding')),
      tree: arr(t['tree'], 'tree.tree').map((x) => h32(x, 'tree node')),
      values: arr(t['values'], 'tree.values').map((v0, i) => {
        const v = obj(v0, `tree.values[${i}]`);
        const pair = arr(v['value'], 'value');
        if (pair.length !== 2) fail('tree value must be [address, amount]');
        return { value: [addr(pair[0], 'value[0]'), dec(pair[1], 'value[1]')] as const, treeIndex: int(v['treeIndex'], 'treeIndex') };
      }),
    };
  }
  return {
    emission: dec(o['emission'], 'emission'),
    allocated: dec(o['allocated'], 'allocated'),
    unallocated: dec(o['unallocated'], 'unallocated'),
    unallocatedParts: arr(o['unallocatedParts'], 'unallocatedParts').map((p0, i) => {
      const p = obj(p0, `unallocatedParts[${i}]`);
      return { pool: str(p['pool'], 'pool'), amount: dec(p['amount'], 'amount'), code: str(p['code'], 'code') };
    }),
    cumulativeTotal: dec(o['cumulativeTotal'], 'cumulativeTotal'),
    root: nul(o['root'], h32, 'root'),
    tree,
  };
}

const SECTION_ORDER = ['header', 'device', 'hb', 'rej', 'score', 'reward', 'prev', 'result'] as const;
type Kind = (typeof SECTION_ORDER)[number];

/**
 * Parse canonical bundle bytes. Structure only: signatures, replay rules and every recomputation
 * are oracle/bundle/verify-bundle.ts. Errors name the 1-based line.
 */
export function decodeBundle(bytes: Uint8Array): Result<Bundle, 'BUNDLE_MALFORMED'> {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (!text.endsWith('\n')) return err('BUNDLE_MALFORMED', 'the bundle must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  let header: BundleHeader | undefined;
  let result: BundleResult | undefined;
  const devices: BundleDevice[] = [], heartbeats: BundleHeartbeat[] = [], rejections: BundleRejection[] = [];
  const scores: BundleScore[] = [], rewards: BundleReward[] = [], previous: BundleLeaf[] = [];
  let section = -1;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    try {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        fail('not JSON');
      }
      const o = obj(parsed, 'a record');
      const t = o['t'] as Kind;
      const at = SECTION_ORDER.indexOf(t);
      if (at < 0) fail(`unknown record type ${JSON.stringify(o['t'])}`);
      if (at < section || ((t === 'header' || t === 'result') && at === section)) fail(`a "${t}" record cannot follow a "${SECTION_ORDER[section]}" record`);
      if (i === 0 && t !== 'header') fail('the first record must be the header');
      section = at;
      let canonical: string;
      switch (t) {
        case 'header':
          header = parseHeader(o);
          canonical = headerLine(header);
          break;
        case 'device': {
          const d = parseDevice(o);
          const prev = devices[devices.length - 1];
          if (prev !== undefined && prev.device >= d.device) fail('devices must be sorted by id, each once');
          devices.push(d);
          canonical = deviceLine(d);
          break;
        }
        case 'hb': {
          // Order and uniqueness of heartbeats are replay rules, checked (and reported) by verify.
          const h = { device: id(o['device'], 'device'), receivedAt: int(o['receivedAt'], 'receivedAt'), raw: hex(o['raw'], 'raw') };
          heartbeats.push(h);
          canonical = heartbeatLine(h);
          break;
        }
        case 'rej': {
          const r = {
            receivedAt: int(o['receivedAt'], 'receivedAt'),
            device: nul(o['device'], id, 'device'),
            seq: nul(o['seq'], dec, 'seq'),
            reason: str(o['reason'], 'reason'),
            detail: str(o['detail'], 'detail'),
            raw: hex(o['raw'], 'raw'),
            rawLength: int(o['rawLength'], 'rawLength'),
          };
          const prev = rejections[rejections.length - 1];
          if (prev !== undefined && cmpRejection(prev, r) > 0) fail('rejections must be sorted (receivedAt, device, seq, reason, raw, detail)');
          rejections.push(r);
          canonical = rejectionLine(r);
          break;
        }
        case 'score': {
          const s = parseScore(o);
          const prev = scores[scores.length - 1];
          if (prev !== undefined && prev.device >= s.device) fail('scores must be sorted by device id, each once');
          scores.push(s);
          canonical = scoreLine(s);
          break;
        }
        case 'reward': {
          const r = { owner: addr(o['owner'], 'owner'), amount: dec(o['amount'], 'amount'), cumulative: dec(o['cumulative'], 'cumulative') };
          const prev = rewards[rewards.length - 1];
          if (prev !== undefined && prev.owner >= r.owner) fail('rewards must be sorted by owner, each once');
          rewards.push(r);
          canonical = rewardLine(r);
          break;
        }
        case 'prev': {
          const l = { owner: addr(o['owner'], 'owner'), cumulative: dec(o['cumulative'], 'cumulative') };
          const prev = previous[previous.length - 1];
          if (prev !== undefined && prev.owner >= l.owner) fail('previous leaves must be sorted by owner, each once');
          previous.push(l);
          canonical = leafLine(l);
          break;
        }
        case 'result':
          result = parseResult(o);
          canonical = resultLine(result);
          break;
      }
      if (canonical !== line) fail('the record is not in canonical form (key order, spacing or value types differ from docs/bundle.md)');
    } catch (e) {
      if (e instanceof Malformed) return err('BUNDLE_MALFORMED', `line ${i + 1}: ${e.message}`);
      throw e;
    }
  }
  if (header === undefined) return err('BUNDLE_MALFORMED', 'no header record');
  if (result === undefined) return err('BUNDLE_MALFORMED', 'no result record (the file is truncated)');
  const c = header.counts;
  const counts: [string, number, number][] = [
    ['devices', c.devices, devices.length], ['heartbeats', c.heartbeats, heartbeats.length], ['rejections', c.rejections, rejections.length],
    ['scores', c.scores, scores.length], ['rewards', c.rewards, rewards.length], ['previous', c.previous, previous.length],
  ];
  for (const [name, stated, found] of counts) {
    if (stated !== found) return err('BUNDLE_MALFORMED', `the header states ${stated} ${name} records, the file holds ${found}`);
  }
  return ok({ header, devices, heartbeats, rejections, scores, rewards, previous, result });
}
