// Frame-size guard in front of Aedes. Aedes 1.2 and mqtt-packet 9 have no packet-size limit: a client
// can announce a 256 MB PUBLISH (remaining length up to 268,435,455, MQTT-2.2.3) and the parser
// buffers all of it. The guard reads only the fixed headers (MQTT-2.2: one type byte, then the
// remaining length as a variable byte integer of at most 4 bytes) as bytes stream past, skips bodies
// without copying, and closes the connection as soon as a header announces a frame above the limit,
// before any of its body is buffered.
import { Duplex } from 'node:stream';

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
 * A Duplex that passes bytes between a transport (TCP/TLS socket or WebSocket stream) and Aedes,
 * scanning inbound bytes with a FrameScanner. Writes are batched (mqtt-packet corks the stream per
 * packet) and respect the transport's backpressure.
 */
export class GuardedStream extends Duplex {
  constructor(
    private readonly inner: Duplex,
    maxRemainingLength: number,
    onViolation: (v: FrameViolation) => void,
  ) {
    super({ allowHalfOpen: false });
    const scanner = new FrameScanner(maxRemainingLength);
    inner.on('data', (chunk: Buffer) => {
      if (this.destroyed) return;
      const bad = scanner.scan(chunk);
      if (bad !== undefined) {
        onViolation(bad);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.once('end', () => this.push(null));
    inner.on('error', (e: Error) => this.destroy(e));
    inner.once('close', () => this.destroy());
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    if (this.inner.write(chunk)) cb();
    else this.inner.once('drain', () => cb());
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (error?: Error | null) => void): void {
    this._write(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)), 'binary', cb);
  }

  override _final(cb: (error?: Error | null) => void): void {
    this.inner.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.inner.destroy();
    cb(err);
  }
}
