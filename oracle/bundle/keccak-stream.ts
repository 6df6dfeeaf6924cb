// Keccak-256 over inputs of any length (Ethereum's pre-FIPS padding: pad10*1 with domain byte 0x01,
// rate 136 bytes; FIPS 202 §5.1 with the original Keccak domain). The bundle hash (docs/bundle.md
// §Hash) is keccak256 of a file of tens of megabytes; @noble/hashes needs ~4 s for 20 MB on these
// machines, so this reuses the unrolled permutation of shared/merkle/keccak.ts and absorbs whole
// 136-byte blocks as 32-bit little-endian words (a lane is two LE halves, lo first).
import { keccakF1600 } from '../../shared/merkle/keccak.ts';
import { toHex } from '../../shared/hex.ts';

const RATE = 136;

/** Incremental keccak256: update() any number of times, then digest() once. */
export class Keccak256Stream {
  private readonly state = new Int32Array(50);
  private readonly block = new Uint8Array(RATE);
  private readonly blockWords = new Int32Array(this.block.buffer, 0, RATE / 4);
  private fill = 0;
  private done = false;

  update(data: Uint8Array): this {
    if (this.done) throw new Error('keccak256: update after digest');
    let off = 0;
    const n = data.length;
    // Top up a partial block first.
    if (this.fill > 0) {
      const take = Math.min(RATE - this.fill, n);
      this.block.set(data.subarray(0, take), this.fill);
      this.fill += take;
      off = take;
      if (this.fill < RATE) return this;
      this.absorbBlock();
    }
    // Whole blocks straight from the input (copied so the words are aligned little-endian int32s).
    while (n - off >= RATE) {
      this.block.set(data.subarray(off, off + RATE));
      this.absorbBlock();
      off += RATE;
    }
    if (off < n) {
      this.block.set(data.subarray(off), 0);
      this.fill = n - off;
    }
    return this;
  }

  private absorbBlock(): void {
    const s = this.state;
    const w = this.blockWords;
    for (let i = 0; i < RATE / 4; i++) s[i] = s[i]! ^ w[i]!;
    keccakF1600(s);
    this.fill = 0;
  }

  /** 32-byte digest. */
  digest(): Uint8Array {
    if (this.done) throw new Error('keccak256: digest called twice');
    this.done = true;
    this.block.fill(0, this.fill);
    this.block[this.fill] = this.block[this.fill]! ^ 0x01;
    this.block[RATE - 1] = this.block[RATE - 1]! ^ 0x80;
    this.absorbBlock();
    return new Uint8Array(this.state.buffer.slice(0, 32));
  }
}

/** keccak256 of `data` as 0x-prefixed lowercase hex (a bytes32 for the chain). */
export function keccak256Hex(data: Uint8Array): string {
  return '0x' + toHex(new Keccak256Stream().update(data).digest());
}
