// Build the bundle of one closed epoch from the store (issue 6 part 1; docs/bundle.md §Sources).
// Everything comes from what the epoch closer wrote in its one transaction (epochs, reward_params,
// epoch_device_scores, epoch_rewards, epoch_trees of this and the previous epoch) plus the raw
// inputs it summarised (heartbeats of the epoch's slots, rejections received in its window) and the
// registry history up to the close. Nothing read here changes after the close (ingest refuses
// heartbeats of closed epochs, HB_EPOCH_CLOSED), so rebuilding gives the same bytes and hash.
//
// The pipeline calls buildEpochBundle after closing and then posts the root with
// inputsHash = bundle_hash. Idempotent: an epoch already bundled whose file is intact is returned
// as it is; a rebuild that would change a recorded hash is refused (BUNDLE_CHANGED).
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Sql, Store } from '../store/store.ts';
import { epochWindow, validateTiming, type EpochTiming } from '../../shared/epoch-timing.ts';
import { DEFAULT_SKEW_MS } from '../../shared/protocol/constants.ts';
import { toHex } from '../../shared/hex.ts';
import { PulseError } from '../../shared/errors.ts';
import { paramsFromJson, paramsToJson } from '../epochs/params-json.ts';
import type { StandardTreeDump } from '../../shared/merkle/reward-tree.ts';
import {
  bundleHash,
  cmpRejection,
  cmpStr,
  compressBundle,
  encodeBundle,
  uncompressBundle,
  type Bundle,
  type BundleDevice,
  type BundleEvent,
  type BundleKey,
  type BundleLeaf,
  type BundleRejection,
  type BundleScore,
} from './bundle-format.ts';

export type BuildBundleOptions = {
  /** Directory of bundle files (synced as is to an object store or IPFS). */
  readonly dir: string;
  readonly timing: EpochTiming;
  readonly networkId: number;
  /** Ingest skew window, default 30 s (docs/protocol.md §Replay and time rules). */
  readonly skewMs?: number;
};

export type BuiltBundle = {
  readonly epoch: number;
  /** keccak256 of the uncompressed bytes: the inputsHash posted on chain. */
  readonly hash: string;
  /** Absolute path of `<dir>/epoch-<n>.pulse.gz`. */
  readonly file: string;
  /** Size of the compressed file. */
  readonly bytes: number;
  readonly uncompressedBytes: number;
  /** false when the epoch was already bundled and its file was intact. */
  readonly built: boolean;
};

export function bundleFileName(epoch: number): string {
  return `epoch-${epoch}.pulse.gz`;
}

type EpochRow = {
  epoch: string; first_slot: string; slot_count: number; slot_ms: string; params_version: string; params_hash: string; scorer_version: string;
  emission: string; allocated: string; unallocated: string; unallocated_parts: { pool: string; amount: string; code: string }[];
  cumulative_total: string; root: string | null; bundle_hash: string | null; bundle_file: string | null; status: string;
};

/** The canonical contents of epoch `epoch`'s bundle, read in one transaction (a consistent snapshot). */
export async function readBundleContents(store: Store, epoch: number, opts: Omit<BuildBundleOptions, 'dir'>): Promise<{ bundle: Bundle; row: EpochRow }> {
  const bad = validateTiming(opts.timing);
  if (bad !== undefined) throw new PulseError('TIMING_INVALID', bad);
  return store.transaction(async (tx) => {
    const row = (await tx.query<EpochRow>(
      `SELECT epoch::text, first_slot::text, slot_count, slot_ms::text, params_version::text, params_hash, scorer_version, emission::text,
              allocated::text, unallocated::text, unallocated_parts, cumulative_total::text, root, bundle_hash, bundle_file, status
         FROM epochs WHERE epoch = $1`,
      [String(epoch)],
    ))[0];
    if (row === undefined) throw new PulseError('BUNDLE_NOT_CLOSED', `epoch ${epoch} is not closed (no epochs row)`);
    const window = epochWindow(opts.timing, epoch);
    if (Number(row.first_slot) !== window.firstSlot || row.slot_count !== window.slotCount || Number(row.slot_ms) !== opts.timing.slotMs) {
      throw new PulseError('TIMING_INVALID', `epoch ${epoch} was closed with first slot ${row.first_slot}, ${row.slot_count} slots of ${row.slot_ms} ms; the given timing says ${window.firstSlot}, ${window.slotCount}, ${opts.timing.slotMs}`);
    }
    const endSlot = window.firstSlot + window.slotCount;
    const paramsRow = (await tx.query<{ params: unknown; params_hash: string }>('SELECT params, params_hash FROM reward_params WHERE version = $1', [row.params_version]))[0];
    if (paramsRow === undefined) throw new PulseError('EPOCH_CLOSE_FAILED', `reward parameters version ${row.params_version} of epoch ${epoch} are missing`);
    const params = paramsFromJson(paramsRow.params);
    if (!params.ok) throw new PulseError('PARAMS_INVALID', `stored parameters version ${row.params_version}: ${params.message}`);

    const scoreRows = await tx.query<{
      device_id: string; owner: string | null; credited_slots: number; slot_count: number; uptime_bps: number; connected_ms: string; contribution: string;
      metrics: { metricId: number; raw: string; capped: string; points: string }[]; eligible: boolean; reasons: string[]; availability_reward: string; contribution_reward: string;
    }>(
      `SELECT device_id, owner, credited_slots, slot_count, uptime_bps, connected_ms::text, contribution::text, metrics, eligible, reasons,
              availability_reward::text, contribution_reward::text
         FROM epoch_device_scores WHERE epoch = $1 ORDER BY device_id`,
      [String(epoch)],
    );
    const scores: BundleScore[] = scoreRows.map((s) => ({
      device: s.device_id,
      owner: s.owner,
      creditedSlots: Number(s.credited_slots),
      slotCount: Number(s.slot_count),
      uptimeBps: Number(s.uptime_bps),
      connectedMs: Number(s.connected_ms),
      contribution: s.contribution,
      metrics: s.metrics.map((m) => ({ metricId: Number(m.metricId), raw: String(m.raw), capped: String(m.capped), points: String(m.points) })),
      eligible: s.eligible,
      reasons: [...s.reasons],
      availabilityReward: s.availability_reward,
      contributionReward: s.contribution_reward,
    }));

    // Registry snapshot: the scored devices (every device registered at the close, docs/rewards.md
    // §Epochs), with owner and status exactly as the closer used them (its score rows), and the key
    // and event history up to the close.
    const keyRows = await tx.query<{ device_id: string; key_id: string; active_from: string; retired_at: string | null }>(
      `SELECT k.device_id, k.key_id, floor(extract(epoch FROM k.active_from) * 1000)::bigint::text AS active_from,
              CASE WHEN k.retired_at IS NOT NULL AND k.retired_at <= e.closed_at THEN floor(extract(epoch FROM k.retired_at) * 1000)::bigint::text END AS retired_at
         FROM device_keys k
         JOIN epoch_device_scores s ON s.device_id = k.device_id AND s.epoch = $1
         JOIN epochs e ON e.epoch = $1
        WHERE k.active_from <= e.closed_at`,
      [String(epoch)],
    );
    const eventRows = await tx.query<{ device_id: string; id: string; event: string; status: string; owner: Uint8Array | null; key_id: string | null; signed: Uint8Array | null; at: string }>(
      `SELECT v.device_id, v.id::text, v.event, v.status, v.owner, v.key_id, v.signed, floor(extract(epoch FROM v.at) * 1000)::bigint::text AS at
         FROM device_events v
         JOIN epoch_device_scores s ON s.device_id = v.device_id AND s.epoch = $1
         JOIN epochs e ON e.epoch = $1
        WHERE v.at <= e.closed_at
        ORDER BY v.device_id, v.id`,
      [String(epoch)],
    );
    const keysBy = new Map<string, BundleKey[]>();
    for (const k of keyRows) {
      let l = keysBy.get(k.device_id);
      if (l === undefined) keysBy.set(k.device_id, (l = []));
      l.push({ key: k.key_id, activeFromMs: Number(k.active_from), retiredAtMs: k.retired_at === null ? null : Number(k.retired_at) });
    }
    const eventsBy = new Map<string, BundleEvent[]>();
    for (const v of eventRows) {
      let l = eventsBy.get(v.device_id);
      if (l === undefined) eventsBy.set(v.device_id, (l = []));
      l.push({ event: v.event, status: v.status, owner: v.owner === null ? null : `0x${toHex(v.owner)}`, key: v.key_id, signed: v.signed === null ? null : toHex(v.signed), atMs: Number(v.at) });
    }
    const devices: BundleDevice[] = scores.map((s) => ({
      device: s.device,
      owner: s.owner,
      status: s.reasons.includes('REVOKED') ? 'revoked' : 'active',
      // Key order: activation time, then key id (docs/bundle.md §device).
      keys: (keysBy.get(s.device) ?? []).sort((a, b) => a.activeFromMs - b.activeFromMs || cmpStr(a.key, b.key)),
      events: eventsBy.get(s.device) ?? [],
    }));

    const hbRows = await tx.query<{ device_id: string; received_at: string; raw: Uint8Array }>(
      'SELECT device_id, received_at::text AS received_at, raw FROM heartbeats WHERE slot >= $1 AND slot < $2 ORDER BY device_id, seq',
      [String(window.firstSlot), String(endSlot)],
    );
    const heartbeats = hbRows.map((h) => ({ device: h.device_id, receivedAt: Number(h.received_at), raw: toHex(h.raw) }));

    const startMs = window.firstSlot * opts.timing.slotMs;
    const endMs = endSlot * opts.timing.slotMs;
    const rejRows = await tx.query<{ received_at: string; device_id: string | null; seq: string | null; reason: string; detail: string; raw: Uint8Array; raw_length: number }>(
      'SELECT received_at::text AS received_at, device_id, seq::text AS seq, reason, detail, raw, raw_length FROM rejections WHERE received_at >= $1 AND received_at < $2',
      [String(startMs), String(endMs)],
    );
    const rejections: BundleRejection[] = rejRows
      .map((r) => ({ receivedAt: Number(r.received_at), device: r.device_id, seq: r.seq, reason: r.reason, detail: r.detail, raw: toHex(r.raw), rawLength: Number(r.raw_length) }))
      .sort(cmpRejection);

    const rewardRows = await tx.query<{ owner: string; amount: string; cumulative: string }>(
      'SELECT owner, amount::text, cumulative::text FROM epoch_rewards WHERE epoch = $1 ORDER BY owner',
      [String(epoch)],
    );
    const trees = await tx.query<{ epoch: string; dump: StandardTreeDump }>('SELECT epoch::text, dump FROM epoch_trees WHERE epoch = $1 OR epoch = $2', [String(epoch), String(epoch - 1)]);
    const treeOf = (n: number) => trees.find((t) => Number(t.epoch) === n)?.dump ?? null;
    // The leaves the closer started from are the leaves after the previous epoch: its tree's values.
    const prevDump = epoch > 0 ? treeOf(epoch - 1) : null;
    const previous: BundleLeaf[] = (prevDump?.values ?? []).map((v) => ({ owner: String(v.value[0]), cumulative: String(v.value[1]) })).sort((a, b) => cmpStr(a.owner, b.owner));
    const dump = treeOf(epoch);

    const bundle: Bundle = {
      header: {
        epoch,
        networkId: opts.networkId,
        timing: { genesisMs: opts.timing.genesisMs, slotMs: opts.timing.slotMs, epochSlots: opts.timing.epochSlots, graceMs: opts.timing.graceMs, skewMs: opts.skewMs ?? DEFAULT_SKEW_MS },
        firstSlot: window.firstSlot,
        slotCount: window.slotCount,
        scorerVersion: row.scorer_version,
        paramsVersion: Number(row.params_version),
        paramsHash: row.params_hash,
        params: paramsToJson(params.value),
        counts: { devices: devices.length, heartbeats: heartbeats.length, rejections: rejections.length, scores: scores.length, rewards: rewardRows.length, previous: previous.length },
      },
      devices,
      heartbeats,
      rejections,
      scores,
      rewards: rewardRows.map((r) => ({ owner: r.owner, amount: r.amount, cumulative: r.cumulative })),
      previous,
      result: {
        emission: row.emission,
        allocated: row.allocated,
        unallocated: row.unallocated,
        unallocatedParts: row.unallocated_parts.map((p) => ({ pool: String(p.pool), amount: String(p.amount), code: String(p.code) })),
        cumulativeTotal: row.cumulative_total,
        root: row.root,
        tree:
          dump === null
            ? null
            : {
                format: 'standard-v1',
                leafEncoding: [...dump.leafEncoding],
                tree: [...dump.tree],
                values: dump.values.map((v) => ({ value: [String(v.value[0]), String(v.value[1])] as const, treeIndex: Number(v.treeIndex) })),
              },
      },
    };
    return { bundle, row };
  });
}

/** Uncompressed size of the file when it exists and still hashes to `hash`. */
function intactSize(file: string, hash: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const raw = uncompressBundle(readFileSync(file));
  return raw.ok && bundleHash(raw.value) === hash ? raw.value.length : undefined;
}

/**
 * Write `<dir>/epoch-<n>.pulse.gz` and record bundle_hash, bundle_file, bundle_bytes and
 * status 'bundled' (only from 'closed': a posted or failed epoch keeps its status). Safe to call any number of times.
 */
export async function buildEpochBundle(store: Store, epoch: number, opts: BuildBundleOptions): Promise<BuiltBundle> {
  const file = resolve(join(opts.dir, bundleFileName(epoch)));
  const existing = (await store.query<{ bundle_hash: string | null; bundle_file: string | null; bundle_bytes: string | null }>(
    'SELECT bundle_hash, bundle_file, bundle_bytes::text FROM epochs WHERE epoch = $1',
    [String(epoch)],
  ))[0];
  if (existing === undefined) throw new PulseError('BUNDLE_NOT_CLOSED', `epoch ${epoch} is not closed (no epochs row)`);
  if (existing.bundle_hash !== null && existing.bundle_file === file) {
    const size = intactSize(file, existing.bundle_hash);
    if (size !== undefined) return { epoch, hash: existing.bundle_hash, file, bytes: Number(existing.bundle_bytes), uncompressedBytes: size, built: false };
  }
  const { bundle } = await readBundleContents(store, epoch, opts);
  const bytes = encodeBundle(bundle);
  const hash = bundleHash(bytes);
  if (existing.bundle_hash !== null && existing.bundle_hash !== hash) {
    throw new PulseError('BUNDLE_CHANGED', `epoch ${epoch}: the bundle recorded with hash ${existing.bundle_hash} now hashes to ${hash}; its stored inputs changed after the close`);
  }
  const gz = compressBundle(bytes);
  mkdirSync(opts.dir, { recursive: true });
  // Write then rename: a reader (the API, a sync job) never sees a half-written file.
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, gz);
  renameSync(tmp, file);
  await sqlRecord(store, epoch, hash, file, gz.length);
  return { epoch, hash, file, bytes: gz.length, uncompressedBytes: bytes.length, built: true };
}

async function sqlRecord(sql: Sql, epoch: number, hash: string, file: string, bytes: number): Promise<void> {
  await sql.query(
    `UPDATE epochs SET bundle_hash = $2, bundle_file = $3, bundle_bytes = $4,
            status = CASE WHEN status = 'closed' THEN 'bundled' ELSE status END
      WHERE epoch = $1`,
    [String(epoch), hash, file, String(bytes)],
  );
}
