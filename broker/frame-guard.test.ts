// FrameScanner: the MQTT fixed-header walk that guards Aedes against oversized frames (MQTT-2.2.3).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameScanner } from './frame-guard.ts';

/** Encode one MQTT frame: type byte, remaining length (variable byte integer), body. */
function frame(type: number, body: Uint8Array): Uint8Array {
  const len: number[] = [];
  let x = body.length;
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    len.push(b);
  } while (x > 0);
  return Uint8Array.from([type, ...len, ...body]);
}

function chunked(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  return out;
}

describe('FrameScanner', () => {
  it('accepts any sequence of frames within the limit, however the stream is chunked', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (bodies, cuts) => {
          const all = Uint8Array.from(bodies.flatMap((b) => [...frame(0x30, b)]));
          const s = new FrameScanner(300);
          return chunked(all, cuts).every((c) => s.scan(c) === undefined);
        },
      ),
    );
  });

  it('flags the first frame over the limit as soon as its length is read, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.integer({ min: 301, max: 268_435_455 }), fc.array(fc.nat(), { maxLength: 6 }), (size, cuts) => {
        const ok = frame(0x30, new Uint8Array(10));
        // Then the header of a frame announcing `size` bytes, no body sent.
        const varint: number[] = [];
        let x = size;
        do {
          let b = x % 128;
          x = Math.floor(x / 128);
          if (x > 0) b |= 0x80;
          varint.push(b);
        } while (x > 0);
        const bytes = Uint8Array.from([...ok, 0x30, ...varint]);
        const s = new FrameScanner(300);
        const results = chunked(bytes, cuts).map((c) => s.scan(c));
        // Never during the valid frame; reported once the announced length passes the limit; sticky.
        const chunks = chunked(bytes, cuts);
        let offset = 0;
        let first = -1;
        chunks.forEach((c, i) => {
          if (first < 0 && results[i] !== undefined) first = i;
          if (first < 0) offset += c.length;
        });
        return first >= 0 && offset + chunks[first]!.length > ok.length && results.slice(first).every((r) => r === 'frame_too_large');
      }),
    );
  });

  it('flags a remaining length that needs a fifth byte', () => {
    expect(new FrameScanner(1 << 30).scan(Uint8Array.from([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))).toBe('malformed_length');
  });

  it('handles zero-length frames (PINGREQ, DISCONNECT) back to back', () => {
    const s = new FrameScanner(10);
    expect(s.scan(Uint8Array.from([0xc0, 0x00, 0xe0, 0x00, 0xc0]))).toBeUndefined();
    expect(s.scan(Uint8Array.from([0x00, 0x30, 0x0b]))).toBe('frame_too_large');
  });
});
