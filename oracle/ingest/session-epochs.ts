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

/** [from, to) cut at every epoch boundary inside it; the pieces are contiguous and cover it exactly. */
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

/**
 * Sum intervals per (epoch, device) for the open epochs. One device's intervals in one report never
 * overlap (bus/session-report.ts), but two broker processes may both report it for the same moment
 * (a failover whose old connection had not closed yet), so the sum per epoch is capped at the epoch's
 * length; the database applies the same cap across batches.
 */
export function connectedTimeByEpoch(intervals: Iterable<SessionInterval>, l: EpochLayout, nextEpoch: number): ConnectedTime {
  const sums = new Map<string, { epoch: number; deviceId: string; ms: number }>();
  let epochClosedMs = 0;
  let beforeGenesisMs = 0;
  let cappedMs = 0;
  const cap = epochLengthMs(l);
  for (const i of intervals) {
    for (const p of splitAtEpochs(i.from, i.to, l)) {
      const ms = p.to - p.from;
      if (p.epoch < 0) beforeGenesisMs += ms;
      else if (p.epoch < nextEpoch) epochClosedMs += ms;
      else {
        const key = `${i.deviceId}:${p.epoch}`;
        const s = sums.get(key) ?? { epoch: p.epoch, deviceId: i.deviceId, ms: 0 };
        const room = cap - s.ms;
        s.ms += Math.min(ms, room);
        cappedMs += Math.max(0, ms - room);
        sums.set(key, s);
      }
    }
  }
  const add = [...sums.values()].sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : a.epoch - b.epoch));
  return { add, epochClosedMs, beforeGenesisMs, cappedMs };
}
