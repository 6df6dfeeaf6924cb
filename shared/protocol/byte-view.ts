// Big-endian integer read/write helpers for the wire codecs (docs/protocol.md: all integers are
// unsigned big-endian).

export function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function writeU64(dv: DataView, offset: number, value: bigint): void {
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw new RangeError(`u64 out of range: ${value}`);
  dv.setBigUint64(offset, value, false);
}

export function writeU32(dv: DataView, offset: number, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`u32 out of range: ${value}`);
  dv.setUint32(offset, value, false);
}

export function writeU16(dv: DataView, offset: number, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) throw new RangeError(`u16 out of range: ${value}`);
  dv.setUint16(offset, value, false);
}
