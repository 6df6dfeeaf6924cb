// Hex helpers shared by every side. Device ids, connect tokens and CLI input are all lowercase hex
// (docs/protocol.md §Identity), so decoding is strict: even length, [0-9a-f] only unless told to
// accept upper case. Invalid input returns undefined rather than throwing; callers turn that into a
// result with a reason code.

const HEX = '0123456789abcdef';
const LUT: string[] = Array.from({ length: 256 }, (_, i) => HEX[i >> 4]! + HEX[i & 15]!);

/** Lowercase hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += LUT[bytes[i]!]!;
  return out;
}

function nibble(c: number, allowUpper: boolean): number {
  if (c >= 48 && c <= 57) return c - 48; // 0-9
  if (c >= 97 && c <= 102) return c - 87; // a-f
  if (allowUpper && c >= 65 && c <= 70) return c - 55; // A-F
  return -1;
}

/**
 * Strict hex decode. Returns undefined for odd length or any non-hex character.
 * `allowUpper` is for human input (CLI); wire fields (device id, token) are lowercase only.
 */
export function fromHex(hex: string, allowUpper = false): Uint8Array | undefined {
  if (hex.length % 2 !== 0) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    const hi = nibble(hex.charCodeAt(2 * i), allowUpper);
    const lo = nibble(hex.charCodeAt(2 * i + 1), allowUpper);
    if (hi < 0 || lo < 0) return undefined;
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Constant-shape byte equality (not constant time; nothing secret is compared with it). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
