// Frame-size guard in front of Aedes. Aedes 1.2 and mqtt-packet 9 have no packet-size limit: a client
// can announce a 256 MB PUBLISH (remaining length up to 268,435,455, MQTT-2.2.3) and the parser
// buffers all of it. The guard reads only the fixed headers (MQTT-2.2: one type byte, then the
// remaining length as a variable byte integer of at most 4 bytes) as bytes stream past, skips bodies
// without copying, and closes the connection as soon as a header announces a frame above the limit,
// before any of its body is buffered.
import type { Readable } from 'node:stream';

export type FrameViolation = 'frame_too_large' | 'malformed_length';

/** Incremental MQTT fixed-header scanner; state survives chunk boundaries. */
export class FrameScanner {
  /** 0: expecting a type byte; 1: reading the remaining length; 2: skipping the body. */
  private state: 0 | 1 | 2 = 0;
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private bodyLeft = 0;
  /** Sticky: once a stream broke the rules its framing can no longer be trusted. */
  private failed: FrameViolation | undefined;

  constructor(private readonly maxRemainingLength: number) {}

  /** Scan a chunk; returns a violation as soon as one is seen, otherwise undefined. */
  scan(chunk: Uint8Array): FrameViolation | undefined {
    if (this.failed !== undefined) return this.failed;
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.state === 2) {
        const take = Math.min(this.bodyLeft, n - i);
        i += take;
        this.bodyLeft -= take;
        if (this.bodyLeft === 0) this.state = 0;
        continue;
      }
      if (this.state === 0) {
        i++; // packet type and flags: Aedes/mqtt-packet validate them (MQTT-2.2.2-2)
        this.state = 1;
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        continue;
      }
      const b = chunk[i++]!;
      this.length += (b & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.lengthBytes++;
      if (this.length > this.maxRemainingLength) return (this.failed = 'frame_too_large');
      if (b & 0x80) {
        // MQTT-2.2.3: at most four bytes encode the remaining length.
        if (this.lengthBytes >= 4) return (this.failed = 'malformed_length');
        continue;
      }
      this.bodyLeft = this.length;
      this.state = this.length === 0 ? 0 : 2;
    }
    return undefined;
  }
}

/**
 * Guard a transport in place: Aedes consumes a connection only through `readable` events and
 * `read()` (aedes lib/client.js), so wrapping the instance's `read` scans every byte before the MQTT
 * parser sees it, without a second stream per connection (an extra Duplex costs memory on every idle
 * connection and a copy on every chunk). On a violation the chunk is withheld and the transport is
 * destroyed.
 */
export function guardReads(stream: Readable, maxRemainingLength: number, onViolation: (v: FrameViolation) => void): void {
  const scanner = new FrameScanner(maxRemainingLength);
  const read = stream.read.bind(stream);
  stream.read = (size?: number): unknown => {
    const chunk: unknown = read(size);
    if (chunk === null || stream.destroyed) return chunk;
    const bad = scanner.scan(chunk as Uint8Array);
    if (bad === undefined) return chunk;
    onViolation(bad);
    stream.destroy();
    return null;
  };
}
