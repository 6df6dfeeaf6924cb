// Device health rules (issue 7 §2, docs/operations.md §Device health). Pure: no IO, no clock; the
// monitor (health-monitor.ts) supplies observations and `now`.
//
// Health comes from signed heartbeats only, never from MQTT sockets: a socket can stay open while the
// device stops signing, and a device can reconnect without ever sending a valid heartbeat. Times are
// the device timestamps inside accepted heartbeats (docs/protocol.md §Heartbeat), which ingest already
// bounded to the skew window around the broker's receive time.
//
// - online:  the latest accepted heartbeat is at most `missedIntervals` slot intervals old;
// - offline: it is older; the transition time is last heartbeat + missedIntervals × interval, the
//            moment the rule fired, not the moment the monitor happened to look;
// - online again: at the device timestamp of the first heartbeat after the gap;
// - revoked: the registry revoked the device (final; health stops tracking it);
// - unseen:  registered, but no accepted heartbeat yet;
// - flapping: at least `flapThreshold` online/offline changes within `flapWindowMs`; it clears once the
//            device has gone a whole window without a change.

export type HealthStatus = 'unseen' | 'online' | 'offline' | 'revoked';
export type HealthEventKind = 'online' | 'offline' | 'revoked' | 'flapping' | 'stable';

export const HEALTH_STATUSES: readonly HealthStatus[] = Object.freeze(['unseen', 'online', 'offline', 'revoked']);

export type HealthRules = {
  /** Slot interval in ms (docs/protocol.md §Replay and time rules: a device sends one heartbeat per slot). */
  readonly intervalMs: number;
  /** Offline after this many whole intervals without an accepted heartbeat. */
  readonly missedIntervals: number;
  readonly flapWindowMs: number;
  /** Online/offline changes within the window that make a device flapping. */
  readonly flapThreshold: number;
};

export type HealthState = {
  readonly status: HealthStatus;
  readonly sinceMs: number;
  readonly lastTs: number | null;
  readonly lastSeq: string | null;
  readonly flapping: boolean;
  /** Times (at_ms) of the online/offline changes within the flap window, ascending. */
  readonly changes: readonly number[];
};

export type Observation = {
  readonly revoked: boolean;
  /** Device timestamp and seq of the latest accepted heartbeat, or null when none. */
  readonly lastTs: number | null;
  readonly lastSeq: string | null;
  /**
   * Device timestamp of the first accepted heartbeat after the one in the previous state (when the
   * latest one is newer), so a comeback is dated by its first heartbeat and a gap shorter than a
   * monitor tick is still seen.
   */
  readonly firstTsAfterPrevious?: number;
};

export type HealthEvent = {
  readonly event: HealthEventKind;
  readonly from: HealthStatus;
  readonly to: HealthStatus;
  readonly flapping: boolean;
  readonly atMs: number;
  readonly lastSeq: string | null;
  readonly lastTs: number | null;
  readonly reason: string;
};

export function offlineAfterMs(rules: HealthRules): number {
  return rules.missedIntervals * rules.intervalMs;
}

/**
 * Next state and the transitions that lead to it. `prev` undefined means the device has no health row
 * yet (new device or first run): it starts from 'unseen' at `registeredMs`.
 */
export function evaluateHealth(
  prev: HealthState | undefined,
  obs: Observation,
  nowMs: number,
  rules: HealthRules,
  registeredMs = nowMs,
): { readonly state: HealthState; readonly events: readonly HealthEvent[] } {
  const limit = offlineAfterMs(rules);
  let status: HealthStatus = prev?.status ?? 'unseen';
  let sinceMs = prev?.sinceMs ?? registeredMs;
  let flapping = prev?.flapping ?? false;
  let changes = [...(prev?.changes ?? [])];
  const events: HealthEvent[] = [];
  const lastTs = obs.lastTs;
  const lastSeq = obs.lastSeq;

  const move = (to: 'online' | 'offline' | 'revoked', atMs: number, reason: string): void => {
    if (to === status) return;
    events.push({ event: to, from: status, to, flapping, atMs, lastSeq, lastTs, reason });
    if ((to === 'online' && status === 'offline') || to === 'offline') changes.push(atMs);
    status = to;
    sinceMs = atMs;
  };

  if (status === 'revoked') {
    return { state: { status, sinceMs, lastTs: lastTs ?? prev?.lastTs ?? null, lastSeq: lastSeq ?? prev?.lastSeq ?? null, flapping: false, changes: [] }, events };
  }
  if (obs.revoked) {
    move('revoked', nowMs, 'revoked in the registry');
    return { state: { status, sinceMs, lastTs, lastSeq, flapping: false, changes: [] }, events };
  }

  if (lastTs !== null) {
    const prevTs = prev?.lastTs ?? null;
    const advanced = prevTs === null || lastTs > prevTs;
    if (advanced) {
      const first = obs.firstTsAfterPrevious ?? lastTs;
      // A gap longer than the limit between the previous and the next heartbeat is an outage even if
      // no tick fell inside it (a short monitor pause, or the oracle restarting).
      if (status === 'online' && prevTs !== null && first - prevTs > limit) move('offline', prevTs + limit, `no heartbeat for ${rules.missedIntervals} intervals`);
      if (status !== 'online') move('online', Math.max(first, status === 'offline' ? sinceMs : 0), status === 'unseen' ? 'first accepted heartbeat' : 'accepted heartbeat after a gap');
    }
    if (status === 'online' && nowMs - lastTs > limit) move('offline', lastTs + limit, `no heartbeat for ${rules.missedIntervals} intervals`);
  }

  // Flapping: count status changes inside the window ending now.
  changes = changes.filter((t) => t > nowMs - rules.flapWindowMs).sort((a, b) => a - b);
  if (!flapping && changes.length >= rules.flapThreshold) {
    flapping = true;
    events.push({ event: 'flapping', from: status, to: status, flapping, atMs: changes[changes.length - 1] ?? nowMs, lastSeq, lastTs, reason: `${changes.length} online/offline changes within ${Math.round(rules.flapWindowMs / 60_000)} min` });
  } else if (flapping && changes.length === 0) {
    flapping = false;
    const lastChange = prev?.changes[prev.changes.length - 1];
    events.push({ event: 'stable', from: status, to: status, flapping, atMs: lastChange !== undefined ? lastChange + rules.flapWindowMs : nowMs, lastSeq, lastTs, reason: `no online/offline change for ${Math.round(rules.flapWindowMs / 60_000)} min` });
  }

  return { state: { status, sinceMs, lastTs: lastTs ?? prev?.lastTs ?? null, lastSeq: lastSeq ?? prev?.lastSeq ?? null, flapping, changes }, events };
}
