// The outbox log for the fault-suite auditor (issue 10, invariant A1: every heartbeat a device saw
// acknowledged is stored exactly once). One JSON object per line, appended:
//   {"deviceId":"<64 hex>","seq":"<decimal>","hex":"<payload hex>"}            PUBACKed, not rejected
//   {"deviceId":"<64 hex>","seq":"<decimal>","rejected":"<reason code>"}       a rejection event for
//                                                                                 a seq logged above
// The device (sim-device.ts) writes the first form only once the outcome is settled: the PUBACK
// arrived, no rejection event named the seq, and a PINGREQ round trip started after the PUBACK came
// back on the same connection, so no event was still on its way. The second form is a safety net for a broker that delivers an event
// later than that; the reader then drops the heartbeat. seq is a decimal string because it is a u64
// (docs/protocol.md §Heartbeat).
import { createWriteStream, type WriteStream } from 'node:fs';
import { toHex } from '../shared/hex.ts';

export type OutboxEntry =
  | { readonly deviceId: string; readonly seq: string; readonly hex: string }
  | { readonly deviceId: string; readonly seq: string; readonly rejected: string };

export class OutboxLog {
  private readonly out: WriteStream;
  private failed: Error | undefined;

  constructor(readonly path: string) {
    this.out = createWriteStream(path, { flags: 'a' });
    this.out.on('error', (e) => (this.failed = e));
  }

  acknowledged(deviceId: string, seq: bigint, payload: Uint8Array): void {
    this.write({ deviceId, seq: seq.toString(), hex: toHex(payload) });
  }

  rejectedAfterAck(deviceId: string, seq: bigint, reason: string): void {
    this.write({ deviceId, seq: seq.toString(), rejected: reason });
  }

  private write(entry: OutboxEntry): void {
    if (this.failed !== undefined) return;
    this.out.write(JSON.stringify(entry) + '\n');
  }

  /** Flush and close; rejects if any write failed (the auditor must not trust a partial log). */
  close(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.out.end(() => (this.failed === undefined ? resolve() : reject(this.failed)));
    });
  }
}

/**
 * Parse an outbox log into the acknowledged heartbeats that were not later rejected, keyed by
 * `deviceId/seq`. A line that is not complete JSON (the simulator was killed mid-write) is skipped:
 * a heartbeat whose line never made it out was not "seen acknowledged" on record.
 */
export function readOutbox(text: string): Map<string, { deviceId: string; seq: bigint; hex: string }> {
  const acked = new Map<string, { deviceId: string; seq: bigint; hex: string }>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let e: Partial<{ deviceId: string; seq: string; hex: string; rejected: string }>;
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      continue;
    }
    if (typeof e.deviceId !== 'string' || typeof e.seq !== 'string' || !/^\d+$/.test(e.seq)) continue;
    const key = `${e.deviceId}/${e.seq}`;
    if (typeof e.rejected === 'string') acked.delete(key);
    else if (typeof e.hex === 'string') acked.set(key, { deviceId: e.deviceId, seq: BigInt(e.seq), hex: e.hex });
  }
  return acked;
}
