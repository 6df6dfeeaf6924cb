// Broker session reports on the bus (bus/bus.ts SessionReport; docs/broker.md §Session reports): the
// one codec the broker's publishers and the oracle's consumer share, pure, no IO.
//
// Wire form v1, UTF-8 JSON (a report is a handful of messages a minute, so readability beats bytes):
//   {"v":1,"broker":"<id>","seq":<n>,"part":<i>,"parts":<k>,"from":<ms>,"to":<ms>,
//    "intervals":[["<deviceId>",<from ms>,<to ms>],…]}
// A broker with many connected devices splits one report into parts of at most
// MAX_INTERVALS_PER_PART intervals (~100 bytes each as JSON, so a part stays far below NATS's default
// 1 MiB max_payload); every part carries the same window and its own id. A window is at most
// MAX_REPORT_WINDOW_MS long, which bounds what one report can cost the oracle.
//
// Decoding is strict and returns a Result (house style: invalid data is a result, not an exception):
// a consumer counts and terminates what fails (SESSION_BAD_REPORT) and never crashes on it.
import type { BusSessionReport, SessionInterval, SessionReport } from './bus.ts';
import { err, ok } from '../shared/result.ts';

export const SESSION_REPORT_VERSION = 1;
/** Intervals per bus message. 2,000 × ~100 bytes ≈ 200 KB, well under NATS's 1 MiB default. */
export const MAX_INTERVALS_PER_PART = 2_000;
/** Parts per report: 10,000 × 2,000 intervals is far beyond what one broker process holds. */
export const MAX_PARTS = 10_000;
/**
 * Longest report window, ms: 2 h, twice the longest --session-report-interval (1 h, broker/config.ts),
 * so a late timer never reaches it (the broker's tracker cuts a longer gap, broker/session-tracker.ts).
 * It bounds the oracle's work per report: every interval lies in the window, and splitting one at
 * epoch boundaries costs one row per open epoch it touches (oracle/ingest/session-epochs.ts). Without
 * it, one report of a 10-year window over 1-minute epochs was 5 million rows.
 */
export const MAX_REPORT_WINDOW_MS = 2 * 3_600_000;

/** A broker id is one NATS subject token: it names the subject `<prefix>.sessions.<brokerId>`. */
const BROKER_ID = /^[A-Za-z0-9_-]{1,128}$/;
/** Registered device ids are the lowercase hex of the device's first key (docs/protocol.md). */
const DEVICE_ID = /^[0-9a-f]{64}$/;

export function isBrokerId(s: string): boolean {
  return BROKER_ID.test(s);
}

/** The stable id of one report part: broker instance, report seq, part. Dedup key on the bus and in storage. */
export function sessionReportId(r: Pick<SessionReport, 'brokerId' | 'seq' | 'part'>): string {
  return `${r.brokerId}:${r.seq}:${r.part}`;
}

/** Total connected milliseconds in a report part. */
export function connectedMsOf(r: SessionReport): number {
  let ms = 0;
  for (const i of r.intervals) ms += i.to - i.from;
  return ms;
}

/**
 * Cut one report (window + intervals, already merged per device and sorted) into bus messages of at
 * most `maxPerPart` intervals. No intervals → no parts: an idle window is not reported.
 */
export function sessionReportParts(
  head: { readonly brokerId: string; readonly seq: number; readonly from: number; readonly to: number },
  intervals: readonly SessionInterval[],
  maxPerPart = MAX_INTERVALS_PER_PART,
): SessionReport[] {
  const parts = Math.ceil(intervals.length / maxPerPart);
  const out: SessionReport[] = [];
  for (let part = 0; part < parts; part++) {
    out.push({ ...head, part, parts, intervals: intervals.slice(part * maxPerPart, (part + 1) * maxPerPart) });
  }
  return out;
}

// -0 is refused too: JSON may spell it (`-0`), but it would encode back as `0`, so a report that
// carried it would not round-trip to the bytes whose id was deduplicated.
const isNat = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && !Object.is(v, -0);

/** Validate a report's structure; the same rules decodeSessionReport applies to bytes. */
export function checkSessionReport(r: SessionReport): BusSessionReport {
  const bad = (message: string) => err('SESSION_BAD_REPORT' as const, message);
  if (typeof r.brokerId !== 'string' || !BROKER_ID.test(r.brokerId)) return bad('broker id must be 1–128 letters, digits, "-" or "_"');
  if (!isNat(r.seq) || r.seq < 1) return bad('seq must be an integer ≥ 1');
  if (!isNat(r.parts) || r.parts < 1 || r.parts > MAX_PARTS) return bad(`parts must be an integer 1 … ${MAX_PARTS}`);
  if (!isNat(r.part) || r.part >= r.parts) return bad('part must be an integer below parts');
  if (!isNat(r.from) || !isNat(r.to) || r.from >= r.to) return bad('the window must be unix ms with from < to');
  if (r.to - r.from > MAX_REPORT_WINDOW_MS) return bad(`the window must be at most ${MAX_REPORT_WINDOW_MS} ms long`);
  if (!Array.isArray(r.intervals) || r.intervals.length > MAX_INTERVALS_PER_PART) return bad(`intervals must be a list of at most ${MAX_INTERVALS_PER_PART}`);
  let prev: SessionInterval | undefined;
  for (let k = 0; k < r.intervals.length; k++) {
    const i = r.intervals[k]!;
    if (typeof i.deviceId !== 'string' || !DEVICE_ID.test(i.deviceId)) return bad(`interval ${k}: device id must be 64 lowercase hex characters`);
    if (!isNat(i.from) || !isNat(i.to) || i.from >= i.to) return bad(`interval ${k}: must be unix ms with from < to`);
    if (i.from < r.from || i.to > r.to) return bad(`interval ${k}: [${i.from}, ${i.to}) is outside the report window [${r.from}, ${r.to})`);
    // Sorted by device, then time, and disjoint per device: one report can never count a
    // millisecond of one device twice (overlapping sessions are merged by the broker).
    if (prev !== undefined && (i.deviceId < prev.deviceId || (i.deviceId === prev.deviceId && i.from < prev.to)))
      return bad(`interval ${k}: intervals must be sorted by device and time and must not overlap`);
    prev = i;
  }
  return ok(r);
}

export function encodeSessionReport(r: SessionReport): Uint8Array {
  const body = {
    v: SESSION_REPORT_VERSION,
    broker: r.brokerId,
    seq: r.seq,
    part: r.part,
    parts: r.parts,
    from: r.from,
    to: r.to,
    intervals: r.intervals.map((i) => [i.deviceId, i.from, i.to]),
  };
  return new TextEncoder().encode(JSON.stringify(body));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Bytes from the bus → a checked report, or SESSION_BAD_REPORT with the reason. Never throws. */
export function decodeSessionReport(bytes: Uint8Array): BusSessionReport {
  const bad = (message: string) => err('SESSION_BAD_REPORT' as const, message);
  let body: unknown;
  try {
    body = JSON.parse(utf8.decode(bytes));
  } catch {
    return bad('not UTF-8 JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return bad('not a JSON object');
  const o = body as Record<string, unknown>;
  if (o['v'] !== SESSION_REPORT_VERSION) return bad(`unknown version ${JSON.stringify(o['v'])?.slice(0, 20)}`);
  if (!Array.isArray(o['intervals'])) return bad('intervals must be a list');
  const intervals: SessionInterval[] = [];
  for (const [k, item] of (o['intervals'] as unknown[]).entries()) {
    if (k >= MAX_INTERVALS_PER_PART) return bad(`intervals must be a list of at most ${MAX_INTERVALS_PER_PART}`);
    if (!Array.isArray(item) || item.length !== 3) return bad(`interval ${k}: must be [deviceId, from, to]`);
    const [deviceId, from, to] = item as unknown[];
    intervals.push({ deviceId: deviceId as string, from: from as number, to: to as number });
  }
  return checkSessionReport({
    brokerId: o['broker'] as string,
    seq: o['seq'] as number,
    part: o['part'] as number,
    parts: o['parts'] as number,
    from: o['from'] as number,
    to: o['to'] as number,
    intervals,
  });
}
