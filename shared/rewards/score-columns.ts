// Per-device epoch scores on columns (docs/rewards.md §Scores): the scoring core that both the
// object API (score-epoch.ts) and the epoch closer (oracle/epochs/close-epoch.ts) run. One position
// per device in typed arrays instead of an object and two Maps per device, which is what a
// 100,000-device close can afford; exact for any u64 parameters and sums (int-column.ts). Pure.
import type { RewardCode } from '../error-codes.ts';
import { err, ok, type Result } from '../result.ts';
import type { RewardParams } from './reward-params.ts';
import { IntColumn, SAFE, SAFE_BIG } from './int-column.ts';
import type { EpochWindow } from './score-epoch.ts';

function validWindow(w: EpochWindow): boolean {
  return Number.isSafeInteger(w.firstSlot) && w.firstSlot >= 0 && Number.isSafeInteger(w.slotCount) && w.slotCount >= 1 && Number.isSafeInteger(w.epoch) && w.epoch >= 0;
}

/** The SCORE_INPUT_INVALID error for a malformed window, or undefined for a valid one. */
export function windowError(w: EpochWindow): Result<never, 'SCORE_INPUT_INVALID'> | undefined {
  return validWindow(w) ? undefined : err('SCORE_INPUT_INVALID', `epoch window ${JSON.stringify(w)} needs integers epoch ≥ 0, firstSlot ≥ 0, slotCount ≥ 1`);
}

/** The devices to score, each once, in deviceId order (code units), and each one's position. */
export type ScoringOrder = { readonly ids: readonly string[]; readonly at: ReadonlyMap<string, number> };

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Positions for scoring (docs/rewards.md §Epochs: every registered device is scored, and a device
 * with scoring inputs but no registry row is scored as ownerless): every id of `registry` and of
 * `extra()`, once, sorted. The epoch closer's registry comes sorted with unique ids (ORDER BY a
 * primary key of hex ids, which sort the same under any collation) and holds every device with
 * counters: then its order serves as is, and nothing is sorted. `extra` is called again, to build
 * the union, only when that does not hold.
 */
export function scoringOrder(registry: readonly string[], extra: () => Iterable<string>): ScoringOrder {
  const at = new Map<string, number>();
  let inOrder = true;
  for (let i = 0; i < registry.length && inOrder; i++) {
    if (i > 0 && !(registry[i - 1]! < registry[i]!)) inOrder = false;
    else at.set(registry[i]!, i);
  }
  if (inOrder) {
    let covered = true;
    for (const id of extra()) {
      if (!at.has(id)) {
        covered = false;
        break;
      }
    }
    if (covered) return { ids: registry, at };
  }
  const all = new Set(registry);
  for (const id of extra()) all.add(id);
  const ids = [...all].sort(cmp);
  return { ids, at: new Map(ids.map((id, i) => [id, i])) };
}

/**
 * The scorer's input as columns, one position per device (struct of arrays: a 100,000-device close
 * builds a few typed arrays instead of an object and two Maps per device). Positions are in deviceId
 * order with every id once; `scoringColumns` builds this from registry entries and aggregates, the
 * epoch closer builds it straight from its SQL rows (oracle/epochs/close-epoch.ts).
 */
export type ScoringColumns = {
  /** Every device to score, strictly increasing in code-unit order. */
  readonly ids: readonly string[];
  /** Owner address as registered (either case), or null when none is bound. */
  readonly owners: readonly (string | null)[];
  /** 1 for a revoked (not active) device. */
  readonly revoked: Uint8Array;
  readonly connectedMs: Float64Array;
  /** Credited slots (DeviceAggregate.creditedSlots; 0 for a device without counters). */
  readonly credited: Float64Array;
  /** FLAG_SLOT_CAPPED | FLAG_UNWEIGHTED per device. */
  readonly flags: Uint8Array;
  /** Per rule of params.metrics, in that order: the raw epoch sum; absent when the device reported none of that metric. */
  readonly raw: readonly IntColumn[];
  /** Per rule: Σ over slots of min(slot sum, capPerSlot); absent counts as 0 where raw is present. */
  readonly slotCapped: readonly IntColumn[];
};

/** ScoringColumns.flags: some slot sum exceeded its capPerSlot (DeviceAggregate.anySlotCapped). */
export const FLAG_SLOT_CAPPED = 1;
/** ScoringColumns.flags: the device reported a metric id the parameters do not weight. */
export const FLAG_UNWEIGHTED = 2;

/** One weighted metric's scores for every device; absent where the device reported none of it. */
export type MetricColumns = { readonly metricId: number; readonly raw: IntColumn; readonly capped: IntColumn; readonly points: IntColumn };

/** EpochScores as columns (see ScoringColumns); `scoresOf` turns it into DeviceScore objects. */
export type ScoreColumns = {
  readonly window: EpochWindow;
  /** Sorted by deviceId. */
  readonly ids: readonly string[];
  /** Lowercase owner address or null. */
  readonly owners: readonly (string | null)[];
  readonly credited: Float64Array;
  readonly connectedMs: Float64Array;
  /** 1 when the device earns from the pools. */
  readonly eligible: Uint8Array;
  /** Reason codes as a bit set: `reasonCodes(reasons[i])`. */
  readonly reasons: Uint8Array;
  readonly contribution: IntColumn;
  /** Per weighted metric, in params.metrics order. */
  readonly metrics: readonly MetricColumns[];
  readonly ignoredRollups: number;
};

// Reason bits in the order DeviceScore.reasons lists them (docs/rewards.md §Reason codes), so a bit
// set names one list and a close builds each distinct list once.
const REASON_ORDER: readonly RewardCode[] = ['REVOKED', 'NO_OWNER', 'LOW_UPTIME', 'PARTIAL_UPTIME', 'METRIC_CAPPED', 'NO_CONTRIBUTION', 'UNWEIGHTED_METRIC'];
const [R_REVOKED, R_NO_OWNER, R_LOW_UPTIME, R_PARTIAL_UPTIME, R_METRIC_CAPPED, R_NO_CONTRIBUTION, R_UNWEIGHTED] = REASON_ORDER.map((_, k) => 1 << k) as [number, number, number, number, number, number, number];
const reasonLists = new Map<number, readonly RewardCode[]>();

/** The reason codes of a ScoreColumns.reasons bit set, in DeviceScore order. Shared and frozen: do not modify. */
export function reasonCodes(mask: number): readonly RewardCode[] {
  let list = reasonLists.get(mask);
  if (list === undefined) reasonLists.set(mask, (list = Object.freeze(REASON_ORDER.filter((_, k) => (mask & (1 << k)) !== 0))));
  return list;
}

/**
 * Returns the address in lowercase when `s` is 0x followed by 40 hex digits (either case; the x in
 * lowercase, as the ADDRESS pattern), else undefined. Hand-written because it runs once per device
 * and returns `s` itself when it is already lowercase, which the registry's owners always are.
 */
function lowerAddress(s: string): string | undefined {
  if (s.length !== 42 || s.charCodeAt(0) !== 48 || s.charCodeAt(1) !== 120) return undefined;
  let upper = false;
  for (let k = 2; k < 42; k++) {
    const c = s.charCodeAt(k);
    if ((c >= 48 && c <= 57) || (c >= 97 && c <= 102)) continue;
    if (c >= 65 && c <= 70) upper = true;
    else return undefined;
  }
  return upper ? s.toLowerCase() : s;
}

/**
 * The per-epoch step on columns (docs/rewards.md §Scores): epoch caps, weights, eligibility and
 * reason codes. Arithmetic runs on doubles while every operand and result is below 2^53 (exact, see
 * int-column.ts) and on bigints for any device and metric where one is not, so results are exact for
 * any u64 parameters and any sums.
 */
export function scoreColumns(window: EpochWindow, params: RewardParams, input: ScoringColumns, ignoredRollups = 0): Result<ScoreColumns, 'SCORE_INPUT_INVALID'> {
  const w = window;
  const bad = windowError(w);
  if (bad !== undefined) return bad;
  const { ids } = input;
  const n = ids.length;
  const rules = params.metrics;
  const m = rules.length;
  if (input.owners.length !== n || input.revoked.length !== n || input.connectedMs.length !== n || input.credited.length !== n || input.flags.length !== n ||
    input.raw.length !== m || input.slotCapped.length !== m || input.raw.some((c) => c.length !== n) || input.slotCapped.some((c) => c.length !== n)) {
    return err('SCORE_INPUT_INVALID', `scoring columns do not all hold ${n} devices and ${m} metrics`);
  }
  const owners = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    if (i > 0 && !(ids[i - 1]! < ids[i]!)) return err('SCORE_INPUT_INVALID', `device ${ids[i]}: scoring columns must list each device once, sorted by deviceId`);
    const o = input.owners[i]!;
    if (o === null) {
      owners[i] = null;
      continue;
    }
    const lower = lowerAddress(o);
    if (lower === undefined) return err('SCORE_INPUT_INVALID', `device ${ids[i]}: owner ${JSON.stringify(o)} is not an address`);
    owners[i] = lower;
  }
  for (let i = 0; i < n; i++) {
    const c = input.credited[i]!;
    if (!Number.isSafeInteger(c) || c < 0 || c > w.slotCount) return err('SCORE_INPUT_INVALID', `device ${ids[i]}: ${c} credited slots in an epoch of ${w.slotCount}`);
  }
  // Per rule: the epoch cap and the weight as doubles. A cap above 2^53 can never cut a sum that is
  // below 2^53 (Infinity says so); a weight above 2^53 is NaN, which sends every product to bigints.
  const capEpoch = rules.map((r) => (r.capPerEpoch <= SAFE_BIG ? Number(r.capPerEpoch) : Infinity));
  const weight = rules.map((r) => (r.weight <= SAFE_BIG ? Number(r.weight) : NaN));
  const metrics: MetricColumns[] = rules.map((r, k) => ({ metricId: r.metricId, raw: input.raw[k]!, capped: new IntColumn(n), points: new IntColumn(n) }));
  const eligible = new Uint8Array(n);
  const reasons = new Uint8Array(n);
  const contribution = new IntColumn(n, true);
  const payContribution = rules.length > 0 && params.availabilityBps < 10000;
  const minUptime = params.minUptimeBps * w.slotCount;

  for (let i = 0; i < n; i++) {
    let capped = (input.flags[i]! & FLAG_SLOT_CAPPED) !== 0;
    // Σ points: a double while it stays below 2^53, a bigint (big) from the first sum that does not.
    let sum = 0;
    let big: bigint | undefined;
    for (let k = 0; k < m; k++) {
      const mc = metrics[k]!;
      if (!mc.raw.has(i)) continue;
      const sc = input.slotCapped[k]!;
      let c = sc.has(i) ? sc.safe(i) : 0;
      let p = NaN;
      if (!Number.isNaN(c)) {
        if (c > capEpoch[k]!) {
          c = capEpoch[k]!;
          capped = true;
        }
        mc.capped.setSafe(i, c);
        p = c * weight[k]!;
      }
      if (p <= SAFE) {
        mc.points.setSafe(i, p);
        if (big !== undefined) big += BigInt(p);
        else if (sum + p <= SAFE) sum += p;
        else big = BigInt(sum) + BigInt(p);
        continue;
      }
      // Exact path: a capped sum or a product of 2^53 or more.
      const rule = rules[k]!;
      let cb = sc.get(i) ?? 0n;
      if (cb > rule.capPerEpoch) {
        cb = rule.capPerEpoch;
        capped = true;
      }
      mc.capped.set(i, cb);
      const pb = cb * rule.weight;
      mc.points.set(i, pb);
      big = (big ?? BigInt(sum)) + pb;
    }
    if (big === undefined) contribution.setSafe(i, sum);
    else contribution.set(i, big);

    const credited = input.credited[i]!;
    const owner = owners[i]!;
    const revoked = input.revoked[i] === 1;
    // credited / slotCount ≥ minUptimeBps / 10000, in integers so no rounding decides eligibility.
    const uptimeOk = credited * 10000 >= minUptime;
    let r = 0;
    if (revoked) r |= R_REVOKED;
    if (owner === null) r |= R_NO_OWNER;
    if (!uptimeOk) r |= R_LOW_UPTIME;
    else if (credited < w.slotCount) r |= R_PARTIAL_UPTIME;
    if (capped) r |= R_METRIC_CAPPED;
    const ok_ = !revoked && owner !== null && uptimeOk;
    if (ok_ && payContribution && (big === undefined ? sum === 0 : big === 0n)) r |= R_NO_CONTRIBUTION;
    if ((input.flags[i]! & FLAG_UNWEIGHTED) !== 0) r |= R_UNWEIGHTED;
    eligible[i] = ok_ ? 1 : 0;
    reasons[i] = r;
  }
  return ok({ window: w, ids, owners, credited: input.credited, connectedMs: input.connectedMs, eligible, reasons, contribution, metrics, ignoredRollups });
}
