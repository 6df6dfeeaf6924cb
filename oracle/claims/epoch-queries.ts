// Read side of issue 6 parts 3 and 4: an owner's proof for an epoch, and the slot-by-slot
// explanation of one device's epoch (evidence, reason codes, score parts, reward, leaf and proof).
// Everything is read from what the epoch closer and the bundle builder stored; invalid requests
// are results with a code (the HTTP layer maps them to 400/404), never exceptions.
import type { Store } from '../store/store.ts';
import type { StandardTreeDump } from '../../shared/merkle/reward-tree.ts';
import { ERROR_CODES, type ErrorCode } from '../../shared/error-codes.ts';
import { isDeviceId } from '../../shared/protocol/device-id.ts';
import { err, ok, type Result } from '../../shared/result.ts';
import { proofFromDump } from './proof-from-dump.ts';

export type EpochProof = {
  readonly epoch: number;
  readonly account: string;
  /** What the account earned in this epoch (0 when it earned nothing new but holds a leaf). */
  readonly amountThisEpoch: string;
  /** The leaf amount: everything ever allocated to the account up to this epoch. */
  readonly cumulative: string;
  readonly proof: readonly string[];
  readonly root: string;
  /** The bundle hash (inputsHash on chain), once the epoch is bundled. */
  readonly inputsHash: string | null;
  readonly status: string;
  readonly leafEncoding: readonly string[];
};

export type QueryCode = Extract<ErrorCode, 'API_BAD_REQUEST' | 'BUNDLE_NOT_CLOSED' | 'CLAIM_NO_LEAF' | 'API_UNKNOWN_DEVICE' | 'API_INTERNAL'>;

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export function parseEpoch(text: string): number | undefined {
  return /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

type EpochMeta = { epoch: string; root: string | null; status: string; bundle_hash: string | null; bundle_file: string | null; first_slot: string; slot_count: number; slot_ms: string };

async function epochMeta(store: Store, epoch: number): Promise<EpochMeta | undefined> {
  return (await store.query<EpochMeta>(
    'SELECT epoch::text, root, status, bundle_hash, bundle_file, first_slot::text, slot_count, slot_ms::text FROM epochs WHERE epoch = $1',
    [String(epoch)],
  ))[0];
}

async function treeDump(store: Store, epoch: number): Promise<StandardTreeDump | undefined> {
  return (await store.query<{ dump: StandardTreeDump }>('SELECT dump FROM epoch_trees WHERE epoch = $1', [String(epoch)]))[0]?.dump;
}

/** GET /api/epochs/:n/proofs/:address */
export async function epochProof(store: Store, epoch: number, address: string): Promise<Result<EpochProof, QueryCode>> {
  if (!ADDRESS.test(address)) return err('API_BAD_REQUEST', `${JSON.stringify(address)} is not a 0x-prefixed 20-byte address`);
  const account = address.toLowerCase();
  const meta = await epochMeta(store, epoch);
  if (meta === undefined) return err('BUNDLE_NOT_CLOSED', `epoch ${epoch} is not closed`);
  const dump = await treeDump(store, epoch);
  if (dump === undefined) return err('CLAIM_NO_LEAF', `epoch ${epoch} has no reward tree (nobody has earned anything yet)`);
  const p = proofFromDump(dump, account);
  if (!p.ok) {
    return p.reason === 'no-leaf'
      ? err('CLAIM_NO_LEAF', `${account} has no leaf in the tree of epoch ${epoch}`)
      : err('API_INTERNAL', `the stored tree of epoch ${epoch} does not prove ${account}'s leaf`);
  }
  const amount = (await store.query<{ amount: string }>('SELECT amount::text FROM epoch_rewards WHERE epoch = $1 AND owner = $2', [String(epoch), account]))[0];
  return ok({
    epoch,
    account,
    amountThisEpoch: amount?.amount ?? '0',
    cumulative: String(p.value.cumulative),
    proof: p.value.proof,
    root: p.value.root,
    inputsHash: meta.bundle_hash,
    status: meta.status,
    leafEncoding: [...dump.leafEncoding],
  });
}

/** The bundle file of an epoch (GET /api/epochs/:n/bundle). */
export async function epochBundleFile(store: Store, epoch: number): Promise<Result<{ file: string; hash: string }, QueryCode>> {
  const meta = await epochMeta(store, epoch);
  if (meta === undefined) return err('BUNDLE_NOT_CLOSED', `epoch ${epoch} is not closed`);
  if (meta.bundle_file === null || meta.bundle_hash === null) return err('BUNDLE_NOT_CLOSED', `epoch ${epoch} is closed but not bundled yet`);
  return ok({ file: meta.bundle_file, hash: meta.bundle_hash });
}

export type SlotEvidence = {
  readonly slot: number;
  readonly startMs: number;
  /** true when at least one accepted heartbeat lies in the slot (docs/rewards.md §Scores). */
  readonly credited: boolean;
  readonly heartbeats: readonly { readonly seq: string; readonly timestamp: string; readonly receivedAt: string; readonly keyId: string; readonly metrics: Readonly<Record<string, string>> }[];
};

export type DeviceEpochExplanation = {
  readonly epoch: number;
  readonly deviceId: string;
  readonly status: string;
  readonly window: { readonly firstSlot: number; readonly slotCount: number; readonly slotMs: number; readonly startMs: number; readonly endMs: number };
  readonly score: {
    readonly owner: string | null;
    readonly creditedSlots: number;
    readonly slotCount: number;
    readonly uptimeBps: number;
    readonly connectedMs: string;
    readonly contribution: string;
    readonly metrics: readonly { readonly metricId: number; readonly raw: string; readonly capped: string; readonly points: string }[];
    readonly eligible: boolean;
  };
  /** Each reason code with its catalogue text (docs/errors.md). */
  readonly reasons: readonly { readonly code: string; readonly summary: string }[];
  readonly reward: { readonly availability: string; readonly contribution: string; readonly total: string; readonly ownerAmountThisEpoch: string };
  readonly slots: readonly SlotEvidence[];
  /** Rejections of this device received inside the epoch window. */
  readonly rejections: readonly { readonly receivedAt: string; readonly seq: string | null; readonly reason: string; readonly detail: string }[];
  /** The owner's leaf and proof (null when the owner has no leaf). */
  readonly leaf: { readonly account: string; readonly cumulative: string; readonly proof: readonly string[]; readonly root: string } | null;
  readonly inputsHash: string | null;
};

/** GET /api/devices/:id/epochs/:n */
export async function explainDeviceEpoch(store: Store, epoch: number, deviceId: string): Promise<Result<DeviceEpochExplanation, QueryCode>> {
  if (!isDeviceId(deviceId)) return err('API_BAD_REQUEST', 'device id must be 64 lowercase hex characters');
  const meta = await epochMeta(store, epoch);
  if (meta === undefined) return err('BUNDLE_NOT_CLOSED', `epoch ${epoch} is not closed`);
  const s = (await store.query<{
    owner: string | null; credited_slots: number; slot_count: number; uptime_bps: number; connected_ms: string; contribution: string;
    metrics: { metricId: number; raw: string; capped: string; points: string }[]; eligible: boolean; reasons: string[]; availability_reward: string; contribution_reward: string;
  }>(
    `SELECT owner, credited_slots, slot_count, uptime_bps, connected_ms::text, contribution::text, metrics, eligible, reasons,
            availability_reward::text, contribution_reward::text
       FROM epoch_device_scores WHERE epoch = $1 AND device_id = $2`,
    [String(epoch), deviceId],
  ))[0];
  if (s === undefined) return err('API_UNKNOWN_DEVICE', `device ${deviceId} was not scored in epoch ${epoch} (not registered at the close)`);
  const firstSlot = Number(meta.first_slot);
  const slotMs = Number(meta.slot_ms);
  const slotCount = Number(meta.slot_count);
  const startMs = firstSlot * slotMs;
  const endMs = (firstSlot + slotCount) * slotMs;
  const hbs = await store.query<{ seq: string; ts: string; received_at: string; key_id: string; slot: string; metrics: Record<string, unknown> }>(
    `SELECT seq::text, ts::text, received_at::text, key_id, slot::text, metrics FROM heartbeats
      WHERE device_id = $1 AND slot >= $2 AND slot < $3 ORDER BY seq`,
    [deviceId, String(firstSlot), String(firstSlot + slotCount)],
  );
  const bySlot = new Map<number, SlotEvidence['heartbeats'][number][]>();
  for (const h of hbs) {
    const k = Number(h.slot);
    let l = bySlot.get(k);
    if (l === undefined) bySlot.set(k, (l = []));
    l.push({ seq: h.seq, timestamp: h.ts, receivedAt: h.received_at, keyId: h.key_id, metrics: Object.fromEntries(Object.entries(h.metrics).map(([id, v]) => [id, String(v)])) });
  }
  const slots: SlotEvidence[] = Array.from({ length: slotCount }, (_, i) => {
    const slot = firstSlot + i;
    const list = bySlot.get(slot) ?? [];
    return { slot, startMs: slot * slotMs, credited: list.length > 0, heartbeats: list };
  });
  const rejections = await store.query<{ received_at: string; seq: string | null; reason: string; detail: string }>(
    `SELECT received_at::text, seq::text, reason, detail FROM rejections
      WHERE device_id = $1 AND received_at >= $2 AND received_at < $3 ORDER BY received_at, id`,
    [deviceId, String(startMs), String(endMs)],
  );
  let ownerAmount = '0';
  let leaf: DeviceEpochExplanation['leaf'] = null;
  if (s.owner !== null) {
    ownerAmount = (await store.query<{ amount: string }>('SELECT amount::text FROM epoch_rewards WHERE epoch = $1 AND owner = $2', [String(epoch), s.owner]))[0]?.amount ?? '0';
    const dump = await treeDump(store, epoch);
    const p = dump === undefined ? undefined : proofFromDump(dump, s.owner);
    if (p?.ok === true) leaf = { account: p.value.account, cumulative: String(p.value.cumulative), proof: p.value.proof, root: p.value.root };
  }
  const codes = ERROR_CODES as Readonly<Record<string, { readonly summary: string }>>;
  return ok({
    epoch,
    deviceId,
    status: meta.status,
    window: { firstSlot, slotCount, slotMs, startMs, endMs },
    score: {
      owner: s.owner,
      creditedSlots: Number(s.credited_slots),
      slotCount: Number(s.slot_count),
      uptimeBps: Number(s.uptime_bps),
      connectedMs: s.connected_ms,
      contribution: s.contribution,
      metrics: s.metrics.map((m) => ({ metricId: Number(m.metricId), raw: String(m.raw), capped: String(m.capped), points: String(m.points) })),
      eligible: s.eligible,
    },
    reasons: s.reasons.map((code) => ({ code, summary: codes[code]?.summary ?? 'unknown code' })),
    reward: {
      availability: s.availability_reward,
      contribution: s.contribution_reward,
      total: String(BigInt(s.availability_reward) + BigInt(s.contribution_reward)),
      ownerAmountThisEpoch: ownerAmount,
    },
    slots,
    rejections: rejections.map((r) => ({ receivedAt: r.received_at, seq: r.seq, reason: r.reason, detail: r.detail })),
    leaf,
    inputsHash: meta.bundle_hash,
  });
}
