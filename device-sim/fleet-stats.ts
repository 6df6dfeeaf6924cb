// Live counters of a simulated fleet (issue 8 §1: connected, sent, acknowledged, rejected by reason),
// kept per behaviour so a test can check that each misbehaviour met its expected reason code.
import { BEHAVIOURS, type BehaviourName } from './behaviours.ts';

export type Counters = {
  /** Devices with an open, accepted MQTT session right now. */
  connected: number;
  /** Accepted CONNECTs (first connects and reconnects). */
  connects: number;
  /** CONNECTs the broker refused (CONNACK return code ≠ 0), by return code. */
  refused: Record<string, number>;
  /** Heartbeats written to the socket (QoS 1; a resend after reconnecting is not counted again). */
  sent: number;
  /** PUBLISHes the broker acknowledged with PUBACK. */
  acknowledged: number;
  /** Rejections the broker reported on devices/<id>/events, by reason code. */
  rejected: Record<string, number>;
  /** Onboarding calls that failed, by the API's code (or HTTP status). */
  onboardFailed: Record<string, number>;
  /** Devices onboarded through the API during this run. */
  onboarded: number;
};

export type FleetStats = Counters & {
  readonly devices: number;
  readonly byBehaviour: Readonly<Partial<Record<BehaviourName, Counters>>>;
};

export function emptyCounters(): Counters {
  return { connected: 0, connects: 0, refused: {}, sent: 0, acknowledged: 0, rejected: {}, onboardFailed: {}, onboarded: 0 };
}

function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

/** Mutable fleet-wide and per-behaviour counters; `snapshot()` gives an immutable copy. */
export class StatsRecorder {
  private readonly total = emptyCounters();
  private readonly per = new Map<BehaviourName, Counters>();

  constructor(private readonly deviceCount: number) {}

  private both(b: BehaviourName, f: (c: Counters) => void): void {
    f(this.total);
    let c = this.per.get(b);
    if (c === undefined) {
      c = emptyCounters();
      this.per.set(b, c);
    }
    f(c);
  }

  connected(b: BehaviourName): void {
    this.both(b, (c) => {
      c.connected += 1;
      c.connects += 1;
    });
  }
  disconnected(b: BehaviourName): void {
    this.both(b, (c) => (c.connected -= 1));
  }
  refused(b: BehaviourName, returnCode: number): void {
    this.both(b, (c) => bump(c.refused, String(returnCode)));
  }
  sent(b: BehaviourName, n = 1): void {
    this.both(b, (c) => (c.sent += n));
  }
  acknowledged(b: BehaviourName): void {
    this.both(b, (c) => (c.acknowledged += 1));
  }
  rejected(b: BehaviourName, reason: string): void {
    this.both(b, (c) => bump(c.rejected, reason));
  }
  onboardFailed(b: BehaviourName, code: string): void {
    this.both(b, (c) => bump(c.onboardFailed, code));
  }
  onboarded(b: BehaviourName): void {
    this.both(b, (c) => (c.onboarded += 1));
  }

  snapshot(): FleetStats {
    const copy = (c: Counters): Counters => ({ ...c, refused: { ...c.refused }, rejected: { ...c.rejected }, onboardFailed: { ...c.onboardFailed } });
    const byBehaviour: Partial<Record<BehaviourName, Counters>> = {};
    for (const b of BEHAVIOURS) {
      const c = this.per.get(b);
      if (c !== undefined) byBehaviour[b] = copy(c);
    }
    return { ...copy(this.total), devices: this.deviceCount, byBehaviour };
  }
}

function listCounts(map: Readonly<Record<string, number>>): string {
  return Object.entries(map)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** The one-line live summary printed on stderr. */
export function formatSummary(s: FleetStats): string {
  const parts = [`sim ${s.devices} devices`, `connected ${s.connected}`, `sent ${s.sent}`, `acked ${s.acknowledged}`];
  const rejected = Object.values(s.rejected).reduce((a, b) => a + b, 0);
  parts.push(rejected === 0 ? 'rejected 0' : `rejected ${rejected} (${listCounts(s.rejected)})`);
  const refused = Object.values(s.refused).reduce((a, b) => a + b, 0);
  if (refused > 0) parts.push(`connect refused ${refused}`);
  const failed = Object.values(s.onboardFailed).reduce((a, b) => a + b, 0);
  if (failed > 0) parts.push(`onboard failed ${failed} (${listCounts(s.onboardFailed)})`);
  return parts.join(' · ');
}
