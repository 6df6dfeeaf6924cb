// The simulator's device behaviours (issue 8 §1): what each simulated device does on every tick, and
// the outcome a correct network gives it. Tests compare the observed outcome with `expect`, so a
// behaviour without a stated expectation cannot exist.
import type { ErrorCode } from '../shared/error-codes.ts';
import { PulseError } from '../shared/errors.ts';

export const BEHAVIOURS = [
  'honest',
  'flaky',
  'offline',
  'skew',
  'drift',
  'replay',
  'forge',
  'impersonate',
  'oversized',
  'burst',
  'inflate',
] as const;

export type BehaviourName = (typeof BEHAVIOURS)[number];

/**
 * What a correct network does with a behaviour's misbehaving messages.
 * - `accepted`: every heartbeat is valid and is acknowledged and credited (flaky and offline devices
 *   simply earn less uptime; inflated metrics are capped by contribution scoring, not rejected).
 * - `rejected` at `connect`: the CONNECT is refused (MQTT 3.1.1 CONNACK carries no reason, so the
 *   device only sees the refusal; the broker counts the reason).
 * - `rejected` at `edge`: the broker rejects the message and says why on devices/<id>/events.
 * - `rejected` at `ingest`: the broker acknowledges the message (its checks are stateless); the
 *   bus's duplicate window or the oracle drops it, and it is never credited.
 */
export type Expectation =
  | { readonly outcome: 'accepted'; readonly note?: string }
  | { readonly outcome: 'rejected'; readonly stage: 'connect' | 'edge' | 'ingest'; readonly reason: ErrorCode; readonly note?: string };

export type BehaviourInfo = { readonly summary: string; readonly expect: Expectation };

export const BEHAVIOUR_INFO: { readonly [B in BehaviourName]: BehaviourInfo } = Object.freeze({
  honest: { summary: 'one valid heartbeat per interval', expect: { outcome: 'accepted' } },
  flaky: {
    summary: 'valid heartbeats, but the TCP connection drops at random; in-flight QoS 1 messages are resent after reconnecting',
    expect: { outcome: 'accepted' },
  },
  offline: { summary: 'valid heartbeats, with offline stretches of several intervals (powered off: nothing is sent)', expect: { outcome: 'accepted' } },
  skew: {
    summary: 'the whole device clock is off by the skew offset, so even its connect token is outside the window',
    expect: { outcome: 'rejected', stage: 'connect', reason: 'TOKEN_CLOCK_SKEW' },
  },
  drift: {
    summary: 'connects with a correct clock, then stamps heartbeats with a clock off by the skew offset',
    expect: { outcome: 'rejected', stage: 'edge', reason: 'HB_CLOCK_SKEW' },
  },
  replay: {
    summary: 'resends an earlier, already acknowledged heartbeat byte for byte (a lower seq)',
    expect: {
      outcome: 'rejected',
      stage: 'ingest',
      reason: 'HB_REPLAY',
      note: 'the edge checks are stateless, so the broker acknowledges it; the bus drops it as a duplicate (device id + seq) or the oracle records HB_REPLAY',
    },
  },
  forge: { summary: 'sends heartbeats whose signature does not verify (one bit flipped)', expect: { outcome: 'rejected', stage: 'edge', reason: 'HB_BAD_SIGNATURE' } },
  impersonate: {
    summary: "publishes, on its own topic, a heartbeat in another device's name (the other device's key in the payload)",
    expect: { outcome: 'rejected', stage: 'edge', reason: 'HB_TOPIC_MISMATCH' },
  },
  oversized: {
    summary: 'publishes a 1500-byte payload, above the default 1 KiB limit but small enough that the broker answers instead of closing the connection',
    expect: { outcome: 'rejected', stage: 'edge', reason: 'HB_OVERSIZED' },
  },
  burst: {
    summary: 'sends a burst of valid heartbeats back to back; the excess over the per-device rate is refused',
    expect: { outcome: 'rejected', stage: 'edge', reason: 'HB_RATE_LIMITED' },
  },
  inflate: {
    summary: 'valid heartbeats claiming absurd metric amounts',
    expect: { outcome: 'accepted', note: 'accepted at the edge; contribution scoring caps the metrics' },
  },
});

/** Shares per behaviour, e.g. { honest: 80, flaky: 10, forge: 10 }. Shares are weights, not percentages. */
export type Mix = Readonly<Partial<Record<BehaviourName, number>>>;

export const DEFAULT_MIX: Mix = Object.freeze({ honest: 100 });

export function isBehaviourName(s: string): s is BehaviourName {
  return (BEHAVIOURS as readonly string[]).includes(s);
}

/**
 * Parse `honest=80,flaky=10,forge=5`. Throws PulseError CLI_USAGE naming the bad part, since a
 * typo in a mix would otherwise silently run a different fleet.
 */
export function parseMix(text: string): Mix {
  const out: Partial<Record<BehaviourName, number>> = {};
  let total = 0;
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const m = /^([a-z]+)=(\d+(?:\.\d+)?)$/.exec(part);
    if (!m) throw new PulseError('CLI_USAGE', `--mix: ${JSON.stringify(part)} is not name=share (e.g. honest=80,flaky=10)`);
    const name = m[1]!;
    if (!isBehaviourName(name)) throw new PulseError('CLI_USAGE', `--mix: unknown behaviour ${JSON.stringify(name)}; known: ${BEHAVIOURS.join(', ')}`);
    if (out[name] !== undefined) throw new PulseError('CLI_USAGE', `--mix: ${name} is given twice`);
    const share = Number(m[2]);
    out[name] = share;
    total += share;
  }
  if (total <= 0) throw new PulseError('CLI_USAGE', '--mix: the shares add up to 0');
  return Object.freeze(out);
}

/**
 * How many of `n` devices get each behaviour: the largest-remainder (Hamilton) method, so the
 * counts add up to exactly `n` and each is within one of its exact share. Ties go to the behaviour
 * listed first in BEHAVIOURS, so the result is deterministic.
 */
export function apportion(mix: Mix, n: number): Record<BehaviourName, number> {
  if (!Number.isInteger(n) || n < 0) throw new RangeError('device count must be a non-negative integer');
  const counts = Object.fromEntries(BEHAVIOURS.map((b) => [b, 0])) as Record<BehaviourName, number>;
  const total = BEHAVIOURS.reduce((s, b) => s + (mix[b] ?? 0), 0);
  if (total <= 0) throw new RangeError('mix shares add up to 0');
  const rema: { b: BehaviourName; r: number; i: number }[] = [];
  let given = 0;
  BEHAVIOURS.forEach((b, i) => {
    const exact = (n * (mix[b] ?? 0)) / total;
    const whole = Math.floor(exact);
    counts[b] = whole;
    given += whole;
    if ((mix[b] ?? 0) > 0) rema.push({ b, r: exact - whole, i });
  });
  rema.sort((x, y) => y.r - x.r || x.i - y.i);
  for (let k = 0; given < n; k++, given++) counts[rema[k % rema.length]!.b] += 1;
  return counts;
}

/**
 * The behaviour of each device index 0 … n−1. Behaviours are interleaved (each device takes the
 * behaviour furthest behind its quota) rather than in blocks, so the first few devices of any fleet
 * already show the mix and growing a fleet keeps earlier devices' behaviours mostly stable.
 */
export function assignBehaviours(mix: Mix, n: number): BehaviourName[] {
  const counts = apportion(mix, n);
  const out: BehaviourName[] = [];
  const used = Object.fromEntries(BEHAVIOURS.map((b) => [b, 0])) as Record<BehaviourName, number>;
  // The chairman assignment problem (Tijdeman 1980): with m behaviours and δ = 1/(2m − 2), place at
  // step t, among the behaviours that are "ready" (t·share − used ≥ δ), the one whose next device has
  // the earliest deadline (used + 1 − δ) / share. Every prefix then holds each behaviour within
  // 1 − δ of its share, so a fleet of any size gets its misbehaving devices spread out, not in blocks.
  const active = BEHAVIOURS.filter((b) => counts[b] > 0).length;
  const delta = active > 1 ? 1 / (2 * active - 2) : 0;
  for (let i = 0; i < n; i++) {
    const t = i + 1;
    let best: BehaviourName | undefined;
    let bestDue = Infinity;
    let fallback: BehaviourName | undefined;
    let fallbackDue = Infinity;
    for (const b of BEHAVIOURS) {
      if (used[b] >= counts[b]) continue;
      const share = counts[b] / n;
      const due = (used[b] + 1 - delta) / share;
      if (due < fallbackDue) {
        fallbackDue = due;
        fallback = b;
      }
      if (t * share - used[b] >= delta - 1e-12 && due < bestDue) {
        bestDue = due;
        best = b;
      }
    }
    best ??= fallback;
    used[best!] += 1;
    out.push(best!);
  }
  return out;
}
