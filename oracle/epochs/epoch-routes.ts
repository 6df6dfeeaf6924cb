// Epoch endpoints (issue 7 §1, issue 5): GET /api/epochs and GET /api/epochs/:n. The status a reader
// sees combines what the oracle stored with the challenge period: a posted root is 'challengeable'
// until posted_at + challenge period, then 'final' (docs/contracts.md §Challenge period).
import type { Store } from '../store/store.ts';
import { errorResponse, type Router } from '../http/router.ts';
import { epochEndMs, epochStartMs, type EpochTiming } from '../../shared/epoch-timing.ts';

export type EpochRoutesOptions = {
  readonly store: Store;
  readonly timing: EpochTiming;
  /** Seconds a posted root can be vetoed before it becomes claimable. */
  readonly challengeSeconds: number;
  readonly now?: () => number;
};

type EpochRow = {
  epoch: string;
  root: string | null;
  cumulative_total: string;
  allocated: string;
  unallocated: string;
  emission: string;
  devices: number;
  owners: number;
  heartbeats: string;
  status: string;
  tx_hash: string | null;
  posted_at: Date | string | null;
  closed_at: Date | string;
  bundle_hash: string | null;
  params_hash: string;
  params_version: string;
  post_error: string | null;
};

const COLUMNS = `epoch::text, root, cumulative_total::text, allocated::text, unallocated::text, emission::text, devices, owners,
  heartbeats::text, status, tx_hash, posted_at, closed_at, bundle_hash, params_hash, params_version::text, post_error`;

function iso(v: Date | string | null): string | null {
  if (v === null) return null;
  return (v instanceof Date ? v : new Date(v)).toISOString();
}

export function publicStatus(status: string, postedAt: Date | string | null, challengeSeconds: number, nowMs: number): string {
  if (status !== 'posted' || postedAt === null) return status;
  const posted = (postedAt instanceof Date ? postedAt : new Date(postedAt)).getTime();
  return nowMs < posted + challengeSeconds * 1000 ? 'challengeable' : 'final';
}

function present(r: EpochRow, o: EpochRoutesOptions) {
  const epoch = Number(r.epoch);
  return {
    epoch,
    startMs: epochStartMs(o.timing, epoch),
    endMs: epochEndMs(o.timing, epoch),
    status: publicStatus(r.status, r.posted_at, o.challengeSeconds, (o.now ?? Date.now)()),
    root: r.root,
    cumulativeTotal: r.cumulative_total,
    emission: r.emission,
    allocated: r.allocated,
    unallocated: r.unallocated,
    devices: r.devices,
    owners: r.owners,
    heartbeats: Number(r.heartbeats),
    txHash: r.tx_hash,
    closedAt: iso(r.closed_at),
    postedAt: iso(r.posted_at),
    inputsHash: r.bundle_hash,
    paramsHash: r.params_hash,
    paramsVersion: Number(r.params_version),
    postError: r.post_error,
    bundleUrl: r.bundle_hash === null ? null : `/api/epochs/${epoch}/bundle`,
  };
}

export function addEpochRoutes(router: Router, o: EpochRoutesOptions): void {
  router.add('GET', '/api/epochs', async (req) => {
    const limitRaw = req.query.get('limit') ?? '50';
    if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > 1000) return errorResponse(400, 'API_BAD_QUERY', 'limit must be 1 … 1000');
    const rows = await o.store.query<EpochRow>(`SELECT ${COLUMNS} FROM epochs ORDER BY epoch DESC LIMIT $1`, [Number(limitRaw)]);
    const cursor = await o.store.query<{ next_epoch: string }>('SELECT next_epoch::text FROM epoch_cursor');
    return { status: 200, body: { nextEpoch: cursor[0] ? Number(cursor[0].next_epoch) : 0, epochs: rows.map((r) => present(r, o)) } };
  });

  router.add('GET', '/api/epochs/:n', async (req) => {
    const n = req.params['n']!;
    if (!/^\d{1,15}$/.test(n)) return errorResponse(400, 'API_BAD_QUERY', 'epoch must be a non-negative integer');
    const row = (await o.store.query<EpochRow>(`SELECT ${COLUMNS} FROM epochs WHERE epoch = $1`, [n]))[0];
    if (row === undefined) return errorResponse(404, 'API_UNKNOWN_EPOCH', `epoch ${n} is not closed yet`);
    const params = (await o.store.query<{ params: unknown }>('SELECT params FROM reward_params WHERE version = $1', [row.params_version]))[0];
    return { status: 200, body: { ...present(row, o), params: params?.params ?? null } };
  });
}
