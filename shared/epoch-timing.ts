// Epoch timing (docs/rewards.md §Epochs). A slot is floor(timestamp / slotMs) (docs/protocol.md
// §Replay and time rules); an epoch is a fixed run of `epochSlots` slots counted from the network's
// genesis slot. Epoch n covers slots [genesisSlot + n·epochSlots, genesisSlot + (n+1)·epochSlots) and
// may be closed once its last slot has ended and the grace period for late heartbeats has passed.
import type { EpochWindow } from './rewards/score-epoch.ts';

export type EpochTiming = {
  /** Network genesis, unix ms; must be a multiple of slotMs. */
  readonly genesisMs: number;
  readonly slotMs: number;
  readonly epochSlots: number;
  /** How long after an epoch's end late heartbeats are still taken before it closes. */
  readonly graceMs: number;
};

export function validateTiming(t: EpochTiming): string | undefined {
  if (!Number.isSafeInteger(t.slotMs) || t.slotMs < 1) return 'slot interval must be a positive integer of ms';
  if (!Number.isSafeInteger(t.epochSlots) || t.epochSlots < 1) return 'an epoch must have at least one slot';
  if (!Number.isSafeInteger(t.genesisMs) || t.genesisMs < 0 || t.genesisMs % t.slotMs !== 0) return 'genesis must be a non-negative multiple of the slot interval';
  if (!Number.isSafeInteger(t.graceMs) || t.graceMs < 0) return 'grace must be a non-negative integer of ms';
  return undefined;
}

export function genesisSlot(t: EpochTiming): number {
  return t.genesisMs / t.slotMs;
}

export function epochWindow(t: EpochTiming, epoch: number): EpochWindow {
  return { epoch, firstSlot: genesisSlot(t) + epoch * t.epochSlots, slotCount: t.epochSlots };
}

/** Unix ms at which epoch `epoch` ends (exclusive). */
export function epochEndMs(t: EpochTiming, epoch: number): number {
  return (genesisSlot(t) + (epoch + 1) * t.epochSlots) * t.slotMs;
}

export function epochStartMs(t: EpochTiming, epoch: number): number {
  return (genesisSlot(t) + epoch * t.epochSlots) * t.slotMs;
}

/** The epoch a slot belongs to, or -1 for a slot before genesis. */
export function epochOfSlot(t: EpochTiming, slot: number): number {
  const rel = slot - genesisSlot(t);
  return rel < 0 ? -1 : Math.floor(rel / t.epochSlots);
}

/** True when epoch `epoch` may be closed at `nowMs`. */
export function isEpochDue(t: EpochTiming, epoch: number, nowMs: number): boolean {
  return nowMs >= epochEndMs(t, epoch) + t.graceMs;
}
