// Connected time by epoch (docs/rewards.md §Connected time; docs/storage.md §Session reports): split
// broker-reported session intervals at epoch boundaries and sum them per (epoch, device). Pure, no
// IO: session ingest (session-ingest.ts) reads the layout from the epoch cursor and writes the sums.
//
// The layout is the cursor's (migrations/006_epoch_stats.sql): slot = floor(t / slotMs), and
// epoch = floor((slot − genesisSlot) / epochSlots), so epoch e covers the unix ms
// [(genesisSlot + e·epochSlots)·slotMs, (genesisSlot + (e+1)·epochSlots)·slotMs). The same rule
// places a heartbeat by its signed timestamp, so connected time and credited uptime share epochs.
import type { SessionInterval } from '../../bus/bus.ts';

export type EpochLayout = { readonly genesisSlot: number; readonly epochSlots: number; readonly slotMs: number };

/** The epoch holding unix ms `t`; negative before genesis. */
export function epochOfTime(t: number, l: EpochLayout): number {
  return Math.floor((Math.floor(t / l.slotMs) - l.genesisSlot) / l.epochSlots);
}

/** First unix ms of epoch `e`. */
export function epochStartMs(e: number, l: EpochLayout): number {
  return (l.genesisSlot + e * l.epochSlots) * l.slotMs;
}

export function epochLengthMs(l: EpochLayout): number {
  return l.epochSlots * l.slotMs;
}

export type EpochPiece = { readonly epoch: number; readonly from: number; readonly to: number };

/**
 * [from, to) cut at every epoch boundary inside it; the pieces are contiguous and cover it exactly.
 * One piece per epoch touched: callers pass only the range they need split (connectedTimeByEpoch
 * passes the open part of an interval).
 */
export function splitAtEpochs(from: number, to: number, l: EpochLayout): EpochPiece[] {
  const out: EpochPiece[] = [];
  let at = from;
  while (at < to) {
    const epoch = epochOfTime(at, l);
    const end = Math.min(to, epochStartMs(epoch + 1, l));
    out.push({ epoch, from: at, to: end });
    at = end;
  }
  return out;
}

export type ConnectedTime = {
  /** Milliseconds to add per (epoch, device), each epoch ≥ nextEpoch and ≤ the epoch length; sorted by device, then epoch. */
  readonly add: readonly { readonly epoch: number; readonly deviceId: string; readonly ms: number }[];
  /** Time in epochs already closed (epoch < nextEpoch): a closed epoch's inputs never change. */
  readonly epochClosedMs: number;
  /** Time before the network's genesis (no epoch). */
  readonly beforeGenesisMs: number;
  /** Time left out because one device's total in one epoch would exceed the epoch's length. */
  readonly cappedMs: number;
};

/** Milliseconds of [from, to) that lie in [lo, hi). */
function overlapMs(from: number, to: number, lo: number, hi: number): number {
  return Math.max(0, Math.min(to, hi) - Math.max(from, lo));
}

/**
 * Sum intervals per (epoch, device) for the open epochs. One device's intervals in one report never
 * overlap (bus/session-report.ts), but two broker processes may both report it for the same moment
 * (a failover whose old connection had not closed yet), so the sum per epoch is capped at the epoch's
 * length; the database applies the same cap across batches.
 *
 * Bounded work: time before genesis and in closed epochs is one contiguous range of the timeline each
 * (everything before epoch 0, and epochs 0 … nextEpoch − 1), so it is measured by overlap, never
 * walked epoch by epoch; only the open part of an interval, [max(from, start of nextEpoch), to), is
 * split. The work per report is therefore proportional to its intervals × the open epochs they touch,
 * and the codec bounds every interval by the report window (MAX_REPORT_WINDOW_MS). Walking closed
 * epochs one by one let one report of a 10-year interval over 1-minute epochs build 5 million pieces
 * (17 s synchronous, 1.6 GB), a crash loop on redelivery.
 */
export function connectedTimeByEpoch(intervals: Iterable<SessionInterval>, l: EpochLayout, nextEpoch: number): ConnectedTime {
  const sums = new Map<string, { epoch: number; deviceId: string; ms: number }>();
  let epochClosedMs = 0;
  let beforeGenesisMs = 0;
  let cappedMs = 0;
  const cap = epochLengthMs(l);
  const genesisMs = epochStartMs(0, l);
  // The cursor's next epoch is never negative (migrations/004: next_epoch >= 0); clamp anyway, so
  // pre-genesis time can never be taken for open time.
  const openMs = epochStartMs(Math.max(0, nextEpoch), l);
  for (const i of intervals) {
    beforeGenesisMs += overlapMs(i.from, i.to, -Infinity, genesisMs);
    epochClosedMs += overlapMs(i.from, i.to, genesisMs, openMs);
    const from = Math.max(i.from, openMs);
    if (from >= i.to) continue;
    for (const p of splitAtEpochs(from, i.to, l)) {
      const ms = p.to - p.from;
      const key = `${i.deviceId}:${p.epoch}`;
      const s = sums.get(key) ?? { epoch: p.epoch, deviceId: i.deviceId, ms: 0 };
      const room = cap - s.ms;
      s.ms += Math.min(ms, room);
      cappedMs += Math.max(0, ms - room);
      sums.set(key, s);
    }
  }
  const add = [...sums.values()].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.epoch - b.epoch));
  return { add, epochClosedMs, beforeGenesisMs, cappedMs };
}
