// How each weight dtype is laid out in a GPU buffer, and the WGSL that reads it back.
//
// Shaders read storage buffers as array<u32>, so every block must start on a 4-byte boundary.
// GGML's Q8_0 (34 bytes), Q4_0 (18), Q5_0 (22), IQ4_NL (18), Q3_K (110) and Q6_K (210) blocks do
// not; they are repacked at upload into two planes per buffer: the blocks' 4-byte-aligned bodies
// first, then their f16 scales packed two to a word (`aux` is where that plane starts, in words;
// MXFP4's one-byte exponents four to a word). Q4_K (144 bytes), Q5_K (176), Q2_K (84), IQ4_XS
// (136), Q4_1 (20), Q5_1 (24) and the float types are kept byte for byte. Nothing is expanded: a
// weight takes its stored size (plus at most a word).
//
// Every dtype provides the same WGSL function, which the matmul and embed kernels are built on:
//   fn load8(row: u32, g: u32) -> W8   // elements 8g .. 8g+7 of `row`, as two vec4<f32>
// reading `W: array<u32>` and the uniform fields `p.k` (elements per row) and `p.aux`.
import type { DType } from '../../quant/dtype.js';
import { DTYPE_LAYOUT } from '../../quant/dtype.js';

/** The weight dtypes the webgpu backend computes with. */
export const GPU_WEIGHT_DTYPES: readonly DType[] = [
  'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K',
  'IQ4_XS',
  'MXFP4',
  'Q5_K', 'Q3_K', 'Q2_K',
  'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL',
];

/** Float types whose rows are padded with zeros to a multiple of 8 elements when they are not one. */
const FLOATS: ReadonlySet<DType> = new Set(['F32', 'F16', 'BF16']);

/** What the kernels need to know about a stored matrix part. */
export interface GpuLayout {
  /** Elements per row as stored (a multiple of 8; float rows padded with zeros). */
  k: number;
  /** Word offset of the f16 scale plane (planar types), else 0. */
  aux: number;
  /** Bytes of the buffer. */
  bytes: number;
}

/** Elements per row the GPU stores for a row of `k` elements of `dtype`. */
export function paddedRow(dtype: DType, k: number): number {
  return FLOATS.has(dtype) ? Math.ceil(k / 8) * 8 : k;
}

/** Bytes one stored row of `k` elements takes on the GPU (both planes). */
export function gpuRowBytes(dtype: DType, k: number): number {
  const kp = paddedRow(dtype, k);
  const { blockSize, blockBytes } = DTYPE_LAYOUT[dtype];
  return (kp / blockSize) * blockBytes;
}

/**
 * Planar types: bytes of a block's body (before the scale plane), where its scale sits, and the
 * scale's size (2: an f16, the default; 1: MXFP4's E8M0 exponent byte).
 */
const PLANAR: Partial<Record<DType, { body: number; scaleAt: number; scaleBytes?: 1 | 2 }>> = {
  Q8_0: { body: 32, scaleAt: 0 }, // [d][32 × int8]   → body = the int8s
  Q4_0: { body: 16, scaleAt: 0 }, // [d][16 bytes]    → body = the nibbles
  Q6_K: { body: 208, scaleAt: 208 }, // [ql 128][qh 64][scales 16][d] → body = all but d
  MXFP4: { body: 16, scaleAt: 0, scaleBytes: 1 }, // [e][16 bytes] → body = the nibbles; e bytes packed four to a word
  Q3_K: { body: 108, scaleAt: 108 }, // [hmask 32][qs 64][scales 12][d] → body = all but d
  Q5_0: { body: 20, scaleAt: 0 }, // [d][qh 4][16 bytes] → body = qh and the nibbles
  IQ4_NL: { body: 16, scaleAt: 0 }, // [d][16 bytes]    → body = the indices
};

/**
 * The GPU bytes of rows [r0, r1) of a matrix of `k` elements per row stored as `data` (the whole
 * tensor, in its file layout).
 */
export function repack(dtype: DType, data: Uint8Array, k: number, r0: number, r1: number): { bytes: Uint8Array; layout: GpuLayout } {
  const rows = r1 - r0;
  const { blockSize, blockBytes } = DTYPE_LAYOUT[dtype];
  const kp = paddedRow(dtype, k);
  const planar = PLANAR[dtype];
  if (!planar) {
    const rowIn = (k / blockSize) * blockBytes, rowOut = (kp / blockSize) * blockBytes;
    const total = Math.ceil((rows * rowOut) / 4) * 4;
    if (rowIn === rowOut) {
      const src = data.subarray(r0 * rowIn, r1 * rowIn);
      const bytes = total === src.length ? src : new Uint8Array(total);
      if (bytes !== src) bytes.set(src);
      return { bytes, layout: { k: kp, aux: 0, bytes: total } };
    }
    const bytes = new Uint8Array(total); // padded float rows, zeros after each row
    for (let r = 0; r < rows; r++) bytes.set(data.subarray((r0 + r) * rowIn, (r0 + r + 1) * rowIn), r * rowOut);
    return { bytes, layout: { k: kp, aux: 0, bytes: total } };
  }
  const blocks = rows * (k / blockSize);
  const bodyBytes = blocks * planar.body; // a multiple of 4: 16, 32 and 208 are
  const scaleBytes = planar.scaleBytes ?? 2;
  const total = bodyBytes + Math.ceil((blocks * scaleBytes) / 4) * 4;
  const bytes = new Uint8Array(total);
  const first = r0 * (k / blockSize);
  const bodyStart = planar.scaleAt === 0 ? scaleBytes : 0;
  for (let b = 0; b < blocks; b++) {
    const at = (first + b) * blockBytes;
    bytes.set(data.subarray(at + bodyStart, at + bodyStart + planar.body), b * planar.body);
    for (let i = 0; i < scaleBytes; i++) bytes[bodyBytes + scaleBytes * b + i] = data[at + planar.scaleAt + i]!;
  }
  return { bytes, layout: { k: kp, aux: bodyBytes / 4, bytes: total } };
}

/** WGSL shared by every dtype: the W8 pair and byte helpers. */
const COMMON = /* wgsl */ `
struct W8 { a: vec4<f32>, b: vec4<f32> }
fn byteOf(w: u32, j: u32) -> u32 { return (w >> (8u * j)) & 0xffu; }
// Byte j of w as a signed int8.
fn sbyteOf(w: u32, j: u32) -> f32 { return f32((bitcast<i32>(w) << (24u - 8u * j)) >> 24u); }
// The f16 at half-word index h of the scale plane.
fn scaleAt(h: u32) -> f32 {
  let pair = unpack2x16float(W[p.aux + (h >> 1u)]);
  return select(pair.x, pair.y, (h & 1u) == 1u);
}
`;

/** load8 for each dtype (see the file comment). */
const LOAD8: Record<string, string> = {
  F32: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let i = row * p.k + 8u * g;
  return W8(bitcast<vec4<f32>>(vec4<u32>(W[i], W[i + 1u], W[i + 2u], W[i + 3u])),
            bitcast<vec4<f32>>(vec4<u32>(W[i + 4u], W[i + 5u], W[i + 6u], W[i + 7u])));
}`,
  F16: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let i = (row * p.k + 8u * g) >> 1u;
  return W8(vec4<f32>(unpack2x16float(W[i]), unpack2x16float(W[i + 1u])),
            vec4<f32>(unpack2x16float(W[i + 2u]), unpack2x16float(W[i + 3u])));
}`,
  BF16: /* wgsl */ `
fn bf2(w: u32) -> vec2<f32> { return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u)); }
fn load8(row: u32, g: u32) -> W8 {
  let i = (row * p.k + 8u * g) >> 1u;
  return W8(vec4<f32>(bf2(W[i]), bf2(W[i + 1u])), vec4<f32>(bf2(W[i + 2u]), bf2(W[i + 3u])));
}`,
  // Block b = 4 groups; its 32 int8s are 8 words of the body plane.
  Q8_0: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let blk = row * (p.k >> 5u) + (g >> 2u);
  let d = scaleAt(blk);
  let i = blk * 8u + (g & 3u) * 2u;
  let w0 = W[i]; let w1 = W[i + 1u];
  return W8(d * vec4<f32>(sbyteOf(w0, 0u), sbyteOf(w0, 1u), sbyteOf(w0, 2u), sbyteOf(w0, 3u)),
            d * vec4<f32>(sbyteOf(w1, 0u), sbyteOf(w1, 1u), sbyteOf(w1, 2u), sbyteOf(w1, 3u)));
}`,
  // Byte j of a block holds element j (low nibble) and j + 16 (high nibble); x = d·(q − 8).
  Q4_0: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let blk = row * (p.k >> 5u) + (g >> 2u);
  let d = scaleAt(blk);
  let s = g & 3u;                      // elements 8s .. 8s+7 of the block
  let i = blk * 4u + (s & 1u) * 2u;    // bytes 8(s mod 2) .. +7
  let shift = (s >> 1u) * 4u;          // high nibbles for the second half of the block
  let w0 = W[i] >> shift; let w1 = W[i + 1u] >> shift;
  let m = 0x0f0f0f0fu;
  let q0 = w0 & m; let q1 = w1 & m;
  return W8(d * (vec4<f32>(f32(byteOf(q0, 0u)), f32(byteOf(q0, 1u)), f32(byteOf(q0, 2u)), f32(byteOf(q0, 3u))) - 8.0),
            d * (vec4<f32>(f32(byteOf(q1, 0u)), f32(byteOf(q1, 1u)), f32(byteOf(q1, 2u)), f32(byteOf(q1, 3u))) - 8.0));
}`,
  // Super-blocks of 256 in 36 words: d and dmin, 12 scale bytes, 128 nibble bytes (q4_k.ts).
  Q4_K: /* wgsl */ `
fn scaleByte(base: u32, i: u32) -> u32 { return byteOf(W[base + 1u + (i >> 2u)], i & 3u); }
fn load8(row: u32, g: u32) -> W8 {
  let base = (row * (p.k >> 8u) + (g >> 5u)) * 36u;
  let dm = unpack2x16float(W[base]);
  let e = 8u * (g & 31u);              // first element within the super-block
  let j = e >> 5u;                     // sub-block of 32
  var sc: u32; var mn: u32;
  if (j < 4u) {
    sc = scaleByte(base, j) & 63u; mn = scaleByte(base, j + 4u) & 63u;
  } else {
    sc = (scaleByte(base, j + 4u) & 15u) | ((scaleByte(base, j - 4u) >> 6u) << 4u);
    mn = (scaleByte(base, j + 4u) >> 4u) | ((scaleByte(base, j) >> 6u) << 4u);
  }
  let d = dm.x * f32(sc); let mdm = dm.y * f32(mn);
  let c = j >> 1u;                     // 64-element chunk
  let i = base + 4u + 8u * c + ((e & 31u) >> 2u);
  let shift = (j & 1u) * 4u;
  let m = 0x0f0f0f0fu;
  let q0 = (W[i] >> shift) & m; let q1 = (W[i + 1u] >> shift) & m;
  return W8(d * vec4<f32>(f32(byteOf(q0, 0u)), f32(byteOf(q0, 1u)), f32(byteOf(q0, 2u)), f32(byteOf(q0, 3u))) - mdm,
            d * vec4<f32>(f32(byteOf(q1, 0u)), f32(byteOf(q1, 1u)), f32(byteOf(q1, 2u)), f32(byteOf(q1, 3u))) - mdm);
}`,
  // Super-blocks of 256: a body of 52 words (ql 128 bytes, qh 64, int8 scales 16) and d in the scale plane (q6_k.ts).
  Q6_K: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let blk = row * (p.k >> 8u) + (g >> 5u);
  let base = blk * 52u;
  let e = 8u * (g & 31u);
  let half = e >> 7u; let l = e & 31u; let quarter = (e & 127u) >> 5u;
  let li = base + 16u * half + 8u * (quarter & 1u) + (l >> 2u);   // ql byte 64·half + 32·(quarter&1) + l
  let hi = base + 32u + 8u * half + (l >> 2u);                      // qh byte 32·half + l
  let lshift = (quarter >> 1u) * 4u; let hshift = 2u * quarter;
  let d = scaleAt(blk) * sbyteOf(W[base + 48u + (e >> 6u)], (e >> 4u) & 3u);
  let m4 = 0x0f0f0f0fu; let m2 = 0x03030303u;
  let q0 = ((W[li] >> lshift) & m4) | (((W[hi] >> hshift) & m2) << 4u);
  let q1 = ((W[li + 1u] >> lshift) & m4) | (((W[hi + 1u] >> hshift) & m2) << 4u);
  return W8(d * (vec4<f32>(f32(byteOf(q0, 0u)), f32(byteOf(q0, 1u)), f32(byteOf(q0, 2u)), f32(byteOf(q0, 3u))) - 32.0),
            d * (vec4<f32>(f32(byteOf(q1, 0u)), f32(byteOf(q1, 1u)), f32(byteOf(q1, 2u)), f32(byteOf(q1, 3u))) - 32.0));
}`,
  // Super-blocks of 256 in 34 words, kept as stored (iq4_xs.ts): d and scales_h, 4 bytes of scales_l,
  // 128 bytes of codes; sub-block j's bytes hold element l (low nibble) and l + 16 (high).
  IQ4_XS: /* wgsl */ `
var<private> IQ4: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn load8(row: u32, g: u32) -> W8 {
  let base = (row * (p.k >> 8u) + (g >> 5u)) * 34u;
  let e = 8u * (g & 31u);              // first element within the super-block
  let j = e >> 5u;                     // sub-block of 32
  let ls = ((byteOf(W[base + 1u], j >> 1u) >> (4u * (j & 1u))) & 15u) | (((W[base] >> (16u + 2u * j)) & 3u) << 4u);
  let dl = unpack2x16float(W[base]).x * f32(i32(ls) - 32);
  let i = base + 2u + 4u * j + ((e & 15u) >> 2u);
  let shift = ((e & 31u) >> 4u) * 4u;  // high nibbles for elements 16..31
  let m = 0x0f0f0f0fu;
  let q0 = (W[i] >> shift) & m; let q1 = (W[i + 1u] >> shift) & m;
  return W8(dl * vec4<f32>(IQ4[byteOf(q0, 0u)], IQ4[byteOf(q0, 1u)], IQ4[byteOf(q0, 2u)], IQ4[byteOf(q0, 3u)]),
            dl * vec4<f32>(IQ4[byteOf(q1, 0u)], IQ4[byteOf(q1, 1u)], IQ4[byteOf(q1, 2u)], IQ4[byteOf(q1, 3u)]));
}`,
  // Blocks of 32: 16 bytes of E2M1 codes in the body plane (as Q4_0's nibbles), the exponent bytes
  // in the scale plane; x = FP4[q]·2^(e − 128) (mxfp4.ts).
  MXFP4: /* wgsl */ `
var<private> FP4: array<f32, 16> = array<f32, 16>(0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 0.0, -1.0, -2.0, -3.0, -4.0, -6.0, -8.0, -12.0);
fn load8(row: u32, g: u32) -> W8 {
  let blk = row * (p.k >> 5u) + (g >> 2u);
  let ex = byteOf(W[p.aux + (blk >> 2u)], blk & 3u);
  let d = bitcast<f32>(select((ex - 1u) << 23u, 0x00200000u << ex, ex < 2u));
  let s = g & 3u;
  let i = blk * 4u + (s & 1u) * 2u;
  let shift = (s >> 1u) * 4u;
  let m = 0x0f0f0f0fu;
  let q0 = (W[i] >> shift) & m; let q1 = (W[i + 1u] >> shift) & m;
  return W8(d * vec4<f32>(FP4[byteOf(q0, 0u)], FP4[byteOf(q0, 1u)], FP4[byteOf(q0, 2u)], FP4[byteOf(q0, 3u)]),
            d * vec4<f32>(FP4[byteOf(q1, 0u)], FP4[byteOf(q1, 1u)], FP4[byteOf(q1, 2u)], FP4[byteOf(q1, 3u)]));
}`,
  // Super-blocks of 256 in 44 words: d and dmin, 12 scale bytes (as Q4_K), qh 32 bytes, qs 128 (q5_k.ts).
  Q5_K: /* wgsl */ `
fn scaleByte(base: u32, i: u32) -> u32 { return byteOf(W[base + 1u + (i >> 2u)], i & 3u); }
fn load8(row: u32, g: u32) -> W8 {
  let base = (row * (p.k >> 8u) + (g >> 5u)) * 44u;
  let dm = unpack2x16float(W[base]);
  let e = 8u * (g & 31u);
  let j = e >> 5u;
  var sc: u32; var mn: u32;
  if (j < 4u) {
    sc = scaleByte(base, j) & 63u; mn = scaleByte(base, j + 4u) & 63u;
  } else {
    sc = (scaleByte(base, j + 4u) & 15u) | ((scaleByte(base, j - 4u) >> 6u) << 4u);
    mn = (scaleByte(base, j + 4u) >> 4u) | ((scaleByte(base, j) >> 6u) << 4u);
  }
  let d = dm.x * f32(sc); let mdm = dm.y * f32(mn);
  let l = (e & 31u) >> 2u;             // word of the 32 bytes of qh (and of the chunk's qs)
  let i = base + 12u + 8u * (j >> 1u) + l;
  let h = base + 4u + l;
  let shift = (j & 1u) * 4u;           // low or high nibbles
  let m4 = 0x0f0f0f0fu; let m1 = 0x01010101u;
  let q0 = ((W[i] >> shift) & m4) | (((W[h] >> j) & m1) << 4u);
  let q1 = ((W[i + 1u] >> shift) & m4) | (((W[h + 1u] >> j) & m1) << 4u);
  return W8(d * vec4<f32>(f32(byteOf(q0, 0u)), f32(byteOf(q0, 1u)), f32(byteOf(q0, 2u)), f32(byteOf(q0, 3u))) - mdm,
            d * vec4<f32>(f32(byteOf(q1, 0u)), f32(byteOf(q1, 1u)), f32(byteOf(q1, 2u)), f32(byteOf(q1, 3u))) - mdm);
}`,
  // Super-blocks of 256: a body of 27 words (hmask 32 bytes, qs 64, 12 scale bytes) and d in the scale plane (q3_k.ts).
  Q3_K: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let blk = row * (p.k >> 8u) + (g >> 5u);
  let base = blk * 27u;
  let e = 8u * (g & 31u);
  let half = e >> 7u; let s = (e & 127u) >> 5u; let l = (e & 31u) >> 2u;
  let j = e >> 4u;                     // sub-block of 16
  var sc: u32;
  if (j < 8u) { sc = byteOf(W[base + 24u + (j >> 2u)], j & 3u) & 15u; }
  else { sc = byteOf(W[base + 24u + ((j - 8u) >> 2u)], j & 3u) >> 4u; }
  sc = sc | (((byteOf(W[base + 26u], j & 3u) >> (2u * (j >> 2u))) & 3u) << 4u);
  let d = scaleAt(blk) * (f32(sc) - 32.0);
  let qi = base + 8u + 8u * half + l; let hi = base + l;
  let hb = 4u * half + s;
  let m2 = 0x03030303u; let m1 = 0x01010101u;
  let q0 = ((W[qi] >> (2u * s)) & m2) | (((W[hi] >> hb) & m1) << 2u);
  let q1 = ((W[qi + 1u] >> (2u * s)) & m2) | (((W[hi + 1u] >> hb) & m1) << 2u);
  return W8(d * (vec4<f32>(f32(byteOf(q0, 0u)), f32(byteOf(q0, 1u)), f32(byteOf(q0, 2u)), f32(byteOf(q0, 3u))) - 4.0),
            d * (vec4<f32>(f32(byteOf(q1, 0u)), f32(byteOf(q1, 1u)), f32(byteOf(q1, 2u)), f32(byteOf(q1, 3u))) - 4.0));
}`,
  // Super-blocks of 256 in 21 words: 16 scale bytes (scale | min << 4), qs 64 bytes, d and dmin (q2_k.ts).
  Q2_K: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let base = (row * (p.k >> 8u) + (g >> 5u)) * 21u;
  let dm = unpack2x16float(W[base + 20u]);
  let e = 8u * (g & 31u);
  let half = e >> 7u; let s = (e & 127u) >> 5u; let l = (e & 31u) >> 2u;
  let j = e >> 4u;
  let sc = byteOf(W[base + (j >> 2u)], j & 3u);
  let d = dm.x * f32(sc & 15u); let mdm = dm.y * f32(sc >> 4u);
  let qi = base + 4u + 8u * half + l;
  let m2 = 0x03030303u;
  let q0 = (W[qi] >> (2u * s)) & m2; let q1 = (W[qi + 1u] >> (2u * s)) & m2;
  return W8(d * vec4<f32>(f32(byteOf(q0, 0u)), f32(byteOf(q0, 1u)), f32(byteOf(q0, 2u)), f32(byteOf(q0, 3u))) - mdm,
            d * vec4<f32>(f32(byteOf(q1, 0u)), f32(byteOf(q1, 1u)), f32(byteOf(q1, 2u)), f32(byteOf(q1, 3u))) - mdm);
}`,
};

/** Q4_1, Q5_0, Q5_1 and IQ4_NL: blocks of 32 whose 16 nibble bytes hold element j low and j + 16 high (src/quant/). */
const NIBBLES32 = /* wgsl */ `
// Bit j (j < 4) of h moved to bit 4 of byte j: four elements' fifth bits.
fn spread4(h: u32) -> u32 { return ((h & 1u) << 4u) | ((h & 2u) << 11u) | ((h & 4u) << 18u) | ((h & 8u) << 25u); }
fn bytes4(q: u32) -> vec4<f32> { return vec4<f32>(f32(byteOf(q, 0u)), f32(byteOf(q, 1u)), f32(byteOf(q, 2u)), f32(byteOf(q, 3u))); }
`;
const LEGACY_LOAD8: Record<string, string> = {
  // Blocks of 5 words: d and m, then 4 words of nibbles; x = d·q + m.
  Q4_1: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let base = (row * (p.k >> 5u) + (g >> 2u)) * 5u;
  let dm = unpack2x16float(W[base]);
  let s = g & 3u;
  let i = base + 1u + (s & 1u) * 2u;
  let shift = (s >> 1u) * 4u;
  let m = 0x0f0f0f0fu;
  return W8(dm.x * bytes4((W[i] >> shift) & m) + dm.y, dm.x * bytes4((W[i + 1u] >> shift) & m) + dm.y);
}`,
  // Blocks of 6 words: d and m, qh (bit e: fifth bit of element e), 4 words of nibbles; x = d·q + m.
  Q5_1: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let base = (row * (p.k >> 5u) + (g >> 2u)) * 6u;
  let dm = unpack2x16float(W[base]);
  let s = g & 3u;
  let h = W[base + 1u] >> (8u * s);
  let i = base + 2u + (s & 1u) * 2u;
  let shift = (s >> 1u) * 4u;
  let m = 0x0f0f0f0fu;
  return W8(dm.x * bytes4(((W[i] >> shift) & m) | spread4(h)) + dm.y,
            dm.x * bytes4(((W[i + 1u] >> shift) & m) | spread4(h >> 4u)) + dm.y);
}`,
  // Bodies of 5 words (qh, then the nibbles) and d in the scale plane; x = d·(q − 16).
  Q5_0: /* wgsl */ `
fn load8(row: u32, g: u32) -> W8 {
  let blk = row * (p.k >> 5u) + (g >> 2u);
  let d = scaleAt(blk);
  let s = g & 3u;
  let h = W[blk * 5u] >> (8u * s);
  let i = blk * 5u + 1u + (s & 1u) * 2u;
  let shift = (s >> 1u) * 4u;
  let m = 0x0f0f0f0fu;
  return W8(d * (bytes4(((W[i] >> shift) & m) | spread4(h)) - 16.0),
            d * (bytes4(((W[i + 1u] >> shift) & m) | spread4(h >> 4u)) - 16.0));
}`,
  // Bodies of 4 words of indices into the levels, d in the scale plane; x = d·KVALUES[q].
  IQ4_NL: /* wgsl */ `
var<private> KVALUES: array<f32, 16> = array<f32, 16>(-127.0, -104.0, -83.0, -65.0, -49.0, -35.0, -22.0, -10.0, 1.0, 13.0, 25.0, 38.0, 53.0, 69.0, 89.0, 113.0);
fn levels4(q: u32) -> vec4<f32> {
  return vec4<f32>(KVALUES[byteOf(q, 0u)], KVALUES[byteOf(q, 1u)], KVALUES[byteOf(q, 2u)], KVALUES[byteOf(q, 3u)]);
}
fn load8(row: u32, g: u32) -> W8 {
  let blk = row * (p.k >> 5u) + (g >> 2u);
  let d = scaleAt(blk);
  let s = g & 3u;
  let i = blk * 4u + (s & 1u) * 2u;
  let shift = (s >> 1u) * 4u;
  let m = 0x0f0f0f0fu;
  return W8(d * levels4((W[i] >> shift) & m), d * levels4((W[i + 1u] >> shift) & m));
}`,
};

/** The WGSL that reads weights of `dtype` (needs `W` and uniform `p` with fields k and aux declared first). */
export function weightReader(dtype: DType): string {
  const legacy = LEGACY_LOAD8[dtype];
  if (legacy) return COMMON + NIBBLES32 + legacy;
  const f = LOAD8[dtype];
  if (!f) throw new RangeError(`webgpu backend: no kernel reads ${dtype} weights`);
  return COMMON + f;
}
