// Keccak-256 for 32- and 64-byte inputs as a small WebAssembly module, generated here at load time
// (no binary is committed, no toolchain is needed). Why: a 1,000,000-leaf tree needs ~3,000,000
// keccak calls; the unrolled JavaScript permutation in keccak.ts costs ~4 µs here because JS has no
// 64-bit integers and spills 100 32-bit halves, while WebAssembly has native i64 lanes and
// `i64.rotl`, so one permutation is a few hundred straight-line instructions.
//
// The module exports one linear memory and three functions, each (src: i32, dst: i32) -> ():
//   hash32(src, dst)      keccak256(mem[src .. src+32))            → mem[dst .. dst+32)
//   hash64(src, dst)      keccak256(mem[src .. src+64))            → mem[dst .. dst+32)
//   hash64Swap(src, dst)  keccak256(mem[src+32 .. src+64) ‖ mem[src .. src+32)) → mem[dst .. dst+32)
// hash64Swap serves the sorted-pair node hash (OpenZeppelin `standardNodeHash`): children stored
// side by side are hashed in ascending order without copying them.
//
// Keccak-f[1600] per FIPS 202 §3.2 (θ, ρ, π, χ, ι, 24 rounds), lanes little-endian (§B.1), which is
// exactly WebAssembly's i64.load byte order; Ethereum's padding 0x01 … 0x80 (original Keccak, not
// SHA-3's 0x06). Every body is fully unrolled; locals start at zero on each call, so only the lanes
// that carry input or padding are set. test/merkle-keccak.test.ts compares it with @noble/hashes.

const ROT: readonly (readonly number[])[] = [
  // ρ offsets r[x][y], FIPS 202 §3.2.2 Table 2, indexed [x][y].
  [0, 36, 3, 41, 18],
  [1, 44, 10, 45, 2],
  [62, 6, 43, 15, 61],
  [28, 55, 25, 21, 56],
  [27, 20, 39, 8, 14],
];

/** Round constants from the rc LFSR of FIPS 202 §3.2.5 (computed, not typed in). */
function roundConstants(): bigint[] {
  const rc = (t: number): number => {
    if (t % 255 === 0) return 1;
    let r = 1;
    for (let i = 1; i <= t % 255; i++) {
      r <<= 1;
      if (r & 0x100) r ^= 0x171;
    }
    return r & 1;
  };
  const out: bigint[] = [];
  for (let i = 0; i < 24; i++) {
    let v = 0n;
    for (let j = 0; j <= 6; j++) if (rc(j + 7 * i)) v |= 1n << BigInt((1 << j) - 1);
    out.push(v);
  }
  return out;
}

// WebAssembly binary encoding (core spec §5).
const OP = {
  localGet: 0x20,
  localSet: 0x21,
  i64Load: 0x29,
  i64Store: 0x37,
  i64Const: 0x42,
  i64And: 0x83,
  i64Xor: 0x85,
  i64Rotl: 0x89,
  end: 0x0b,
} as const;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb64(v: bigint): number[] {
  // Signed LEB128 of the two's-complement 64-bit value.
  let x = BigInt.asIntN(64, v);
  const out: number[] = [];
  for (;;) {
    const b = Number(x & 0x7fn);
    x >>= 7n;
    const done = (x === 0n && (b & 0x40) === 0) || (x === -1n && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

// Local indices: 0 = src, 1 = dst (i32 params); then i64 locals a0..a24, b0..b24, c0..c4, d.
const A = (i: number): number => 2 + i;
const B = (i: number): number => 27 + i;
const C = (x: number): number => 52 + x;
const D = 57;
const I64_LOCALS = 56;

function body(inputWords: number, swap: boolean, rc: readonly bigint[]): number[] {
  const code: number[] = [];
  const get = (l: number) => code.push(OP.localGet, ...uleb(l));
  const set = (l: number) => code.push(OP.localSet, ...uleb(l));
  const konst = (v: bigint) => code.push(OP.i64Const, ...sleb64(v));
  // Absorb: lanes 0 .. inputWords-1 from memory (alignment hint 3 = 8 bytes; a hint only).
  for (let i = 0; i < inputWords; i++) {
    let off = 8 * i;
    if (swap) off = i < 4 ? 32 + 8 * i : 8 * (i - 4);
    get(0);
    code.push(OP.i64Load, 3, ...uleb(off));
    set(A(i));
  }
  // Padding: 0x01 right after the message (lane inputWords, byte 0), 0x80 in byte 135 (lane 16, bit 63).
  konst(1n);
  set(A(inputWords));
  konst(1n << 63n);
  set(A(16));
  for (let r = 0; r < 24; r++) {
    // θ
    for (let x = 0; x < 5; x++) {
      get(A(x));
      for (let y = 1; y < 5; y++) {
        get(A(x + 5 * y));
        code.push(OP.i64Xor);
      }
      set(C(x));
    }
    for (let x = 0; x < 5; x++) {
      get(C((x + 4) % 5));
      get(C((x + 1) % 5));
      konst(1n);
      code.push(OP.i64Rotl, OP.i64Xor);
      set(D);
      for (let y = 0; y < 5; y++) {
        get(A(x + 5 * y));
        get(D);
        code.push(OP.i64Xor);
        set(A(x + 5 * y));
      }
    }
    // ρ and π: B[y, 2x+3y] = rot(A[x, y], r[x, y])
    for (let x = 0; x < 5; x++) {
      for (let y = 0; y < 5; y++) {
        const n = ROT[x]![y]!;
        get(A(x + 5 * y));
        if (n !== 0) {
          konst(BigInt(n));
          code.push(OP.i64Rotl);
        }
        set(B(y + 5 * ((2 * x + 3 * y) % 5)));
      }
    }
    // χ: A[x, y] = B[x, y] ^ (~B[x+1, y] & B[x+2, y])
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 5; x++) {
        get(B(x + 5 * y));
        get(B(((x + 1) % 5) + 5 * y));
        konst(-1n);
        code.push(OP.i64Xor);
        get(B(((x + 2) % 5) + 5 * y));
        code.push(OP.i64And, OP.i64Xor);
        set(A(x + 5 * y));
      }
    }
    // ι
    get(A(0));
    konst(rc[r]!);
    code.push(OP.i64Xor);
    set(A(0));
  }
  // Squeeze the first 32 bytes (4 lanes).
  for (let w = 0; w < 4; w++) {
    get(1);
    get(A(w));
    code.push(OP.i64Store, 3, ...uleb(8 * w));
  }
  code.push(OP.end);
  const locals = [1, ...uleb(I64_LOCALS), 0x7e];
  const fn = [...locals, ...code];
  return [...uleb(fn.length), ...fn];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const rc = roundConstants();
  const fns: [string, number[]][] = [
    ['hash32', body(4, false, rc)],
    ['hash64', body(8, false, rc)],
    ['hash64Swap', body(8, true, rc)],
  ];
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 2, 0x7f, 0x7f, 0]), // one type: (i32, i32) -> ()
    ...section(3, [fns.length, ...fns.map(() => 0)]),
    ...section(5, [1, 0x00, ...uleb(1)]), // one memory, 1 page minimum, grown by the caller
    ...section(7, [
      fns.length + 1,
      ...fns.flatMap(([n], i) => [...name(n), 0x00, i]),
      ...name('memory'), 0x02, 0,
    ]),
    ...section(10, [...uleb(fns.length), ...fns.flatMap(([, b]) => b)]),
  ];
  return new Uint8Array(bytes);
}

export type KeccakWasm = {
  readonly memory: WebAssembly.Memory;
  hash32(src: number, dst: number): void;
  hash64(src: number, dst: number): void;
  hash64Swap(src: number, dst: number): void;
};

let compiled: WebAssembly.Module | undefined;

/** A fresh instance with its own memory of at least `bytes` bytes (compiled once per process). */
export function keccakWasm(bytes: number): KeccakWasm {
  compiled ??= new WebAssembly.Module(moduleBytes());
  const inst = new WebAssembly.Instance(compiled, {});
  const ex = inst.exports as unknown as KeccakWasm;
  const pages = Math.ceil(bytes / 65536);
  const have = ex.memory.buffer.byteLength / 65536;
  if (pages > have) ex.memory.grow(pages - have);
  return ex;
}
