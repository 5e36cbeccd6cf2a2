// Row ops: embedding rows dequantized from a table of any stored weight dtype, gathered rows, the
// KV cache's scatter and slot copies, a matmul's bias, and the residual add fused into the next
// RMS norm. One item per row (token), so results never depend on how the rows are split between
// threads.
//
// Dequantization is exact (layouts in src/quant/<dtype>.ts): every value is a small integer times
// f32 scales, computed in f32 in the reference dequantizer's order (its f64 arithmetic rounds once
// to f32, which equals the f32 operation), so rows equal the reference's bit for bit. Scalar code
// for the block types: one row per token is little work, and clarity wins.
import { f16Even, finiteF16At, hsum, scaleByRms } from './common';

// Which dtype a table holds (EMBED_DTYPES in kernel-module.ts gives the same numbers).
const F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q4_0 = 4, Q4_1 = 5, Q5_0 = 6, Q5_1 = 7, IQ4_NL = 8;
const Q2_K = 9, Q3_K = 10, Q4_K = 11, Q5_K = 12, Q6_K = 13, IQ4_XS = 14, MXFP4 = 15;

/** kvalues_iq4nl (IQ4_NL and IQ4_XS), by code. */
const IQ4_VALUES = memory.data<i8>([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);
/** kvalues_mxfp4 (E2M1 values doubled), by code. */
const FP4_VALUES = memory.data<i8>([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

@inline function table(t: usize, code: u32): f32 {
  return <f32>load<i8>(t + <usize>code);
}

/** Bytes of a row of `dim` elements of `kind`. */
function rowBytes(kind: i32, dim: i32): usize {
  const d = <usize>dim;
  switch (kind) {
    case F32: return d << 2;
    case F16: case BF16: return d << 1;
    case Q8_0: return d / 32 * 34;
    case Q4_0: case IQ4_NL: return d / 32 * 18;
    case Q4_1: return d / 32 * 20;
    case Q5_0: return d / 32 * 22;
    case Q5_1: return d / 32 * 24;
    case MXFP4: return d / 32 * 17;
    case Q2_K: return d / 256 * 84;
    case Q3_K: return d / 256 * 110;
    case Q4_K: return d / 256 * 144;
    case Q5_K: return d / 256 * 176;
    case Q6_K: return d / 256 * 210;
    case IQ4_XS: return d / 256 * 136;
    default: unreachable();
  }
  return 0;
}

@inline function put(o: usize, i: i32, v: f32): void {
  store<f32>(o + (<usize>i << 2), v);
}

/** f16 row (dim a multiple of 8) → f32, exactly (subnormals, inf and NaN included). */
function rowF16(src: usize, o: usize, dim: i32): void {
  for (let i = 0; i < dim; i += 8) {
    const v = v128.load(src + (<usize>i << 1));
    v128.store(o + (<usize>i << 2), f16Even(i32x4.extend_low_i16x8_u(v)));
    v128.store(o + (<usize>i << 2), f16Even(i32x4.extend_high_i16x8_u(v)), 16);
  }
}

/** bf16 row → f32: the bits shifted into the top half. */
function rowBF16(src: usize, o: usize, dim: i32): void {
  for (let i = 0; i < dim; i++) store<u32>(o + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
}

/** Blocks of 32: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4. */
function rowBlocks32(kind: i32, src: usize, o: usize, dim: i32): void {
  const bytes = rowBytes(kind, 32);
  for (let b = 0; b < dim >> 5; b++) {
    const blk = src + <usize>b * bytes, e = b << 5;
    if (kind == Q8_0) {
      const d = finiteF16At(blk);
      for (let j = 0; j < 32; j++) put(o, e + j, <f32>load<i8>(blk + 2 + <usize>j) * d);
    } else if (kind == Q4_0 || kind == IQ4_NL) {
      const d = finiteF16At(blk);
      for (let j = 0; j < 16; j++) {
        const q = <u32>load<u8>(blk + 2 + <usize>j);
        if (kind == Q4_0) {
          put(o, e + j, <f32>(<i32>(q & 15) - 8) * d);
          put(o, e + j + 16, <f32>(<i32>(q >> 4) - 8) * d);
        } else {
          put(o, e + j, d * table(IQ4_VALUES, q & 15));
          put(o, e + j + 16, d * table(IQ4_VALUES, q >> 4));
        }
      }
    } else if (kind == Q4_1) {
      const d = finiteF16At(blk), m = finiteF16At(blk + 2);
      for (let j = 0; j < 16; j++) {
        const q = <u32>load<u8>(blk + 4 + <usize>j);
        put(o, e + j, <f32>(q & 15) * d + m);
        put(o, e + j + 16, <f32>(q >> 4) * d + m);
      }
    } else if (kind == Q5_0 || kind == Q5_1) {
      // Q5_0: d, 32 fifth bits, nibbles; Q5_1: d, m, fifth bits, nibbles.
      const d = finiteF16At(blk), m: f32 = kind == Q5_1 ? finiteF16At(blk + 2) : 0;
      const hAt: usize = kind == Q5_1 ? 4 : 2;
      const qh = load<u32>(blk + hAt);
      for (let j = 0; j < 32; j++) {
        const packed = <u32>load<u8>(blk + hAt + 4 + <usize>(j & 15));
        const q = (j < 16 ? packed & 15 : packed >> 4) | (((qh >> <u32>j) & 1) << 4);
        put(o, e + j, kind == Q5_1 ? <f32>q * d + m : <f32>(<i32>q - 16) * d);
      }
    } else { // MXFP4: exponent byte, nibbles; scale 2^(e − 128) (subnormal f32 for e < 2)
      const x = <u32>load<u8>(blk);
      const d = reinterpret<f32>(x < 2 ? <u32>0x00200000 << x : (x - 1) << 23);
      for (let j = 0; j < 16; j++) {
        const q = <u32>load<u8>(blk + 1 + <usize>j);
        put(o, e + j, table(FP4_VALUES, q & 15) * d);
        put(o, e + j + 16, table(FP4_VALUES, q >> 4) * d);
      }
    }
  }
}

/** Q4_K and Q5_K sub-block j's 6-bit scale and min from the 12 packed bytes at s, as sc | m << 8. */
@inline function scaleMinK(s: usize, j: i32): u32 {
  const u = <usize>j;
  if (j < 4) return (<u32>load<u8>(s + u) & 63) | ((<u32>load<u8>(s + u + 4) & 63) << 8);
  const sc = (<u32>load<u8>(s + u + 4) & 15) | ((<u32>load<u8>(s + u - 4) >> 6) << 4);
  const m = (<u32>load<u8>(s + u + 4) >> 4) | ((<u32>load<u8>(s + u) >> 6) << 4);
  return sc | (m << 8);
}

/** Super-blocks of 256: Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS. */
function rowBlocks256(kind: i32, src: usize, o: usize, dim: i32): void {
  const bytes = rowBytes(kind, 256);
  for (let b = 0; b < dim >> 8; b++) {
    const blk = src + <usize>b * bytes, base = b << 8;
    if (kind == Q2_K) { // 16 scale bytes (sc | m << 4), 64 bytes of 2-bit values, d, dmin
      const d = finiteF16At(blk + 80), dmin = finiteF16At(blk + 82);
      for (let e = 0; e < 256; e++) {
        const sc = <u32>load<u8>(blk + <usize>(e >> 4));
        const dl = d * <f32>(sc & 15), ml = dmin * <f32>(sc >> 4);
        const i = e & 127;
        const q = (<u32>load<u8>(blk + 16 + <usize>(32 * (e >> 7) + (i & 31))) >> <u32>(2 * (i >> 5))) & 3;
        put(o, base + e, dl * <f32>q - ml);
      }
    } else if (kind == Q3_K) { // 32 high-bit bytes, 64 bytes of 2-bit values, 12 scale bytes, d
      const d = finiteF16At(blk + 108), s = blk + 96;
      for (let e = 0; e < 256; e++) {
        const j = e >> 4;
        const low = j < 8 ? <u32>load<u8>(s + <usize>j) & 15 : <u32>load<u8>(s + <usize>(j - 8)) >> 4;
        const sc = low | (((<u32>load<u8>(s + 8 + <usize>(j & 3)) >> <u32>(2 * (j >> 2))) & 3) << 4);
        const dl = d * <f32>(<i32>sc - 32);
        const h = e >> 7, i = e & 127, l = i & 31, sh = i >> 5;
        const q = ((<u32>load<u8>(blk + 32 + <usize>(32 * h + l)) >> <u32>(2 * sh)) & 3)
          | (((<u32>load<u8>(blk + <usize>l) >> <u32>(4 * h + sh)) & 1) << 2);
        put(o, base + e, dl * <f32>(<i32>q - 4));
      }
    } else if (kind == Q4_K || kind == Q5_K) { // d, dmin, 12 scale bytes, [Q5_K: 32 high-bit bytes], 128 bytes of nibbles
      const d = finiteF16At(blk), dmin = finiteF16At(blk + 2);
      const qs: usize = kind == Q4_K ? 16 : 48;
      for (let e = 0; e < 256; e++) {
        const j = e >> 5, c = e >> 6, half = j & 1, l = e & 31;
        const sm = scaleMinK(blk + 4, j);
        const dj = d * <f32>(sm & 0xff), mj = dmin * <f32>(sm >> 8);
        let q = (<u32>load<u8>(blk + qs + <usize>(32 * c + l)) >> <u32>(4 * half)) & 15;
        if (kind == Q5_K) q |= ((<u32>load<u8>(blk + 16 + <usize>l) >> <u32>(2 * c + half)) & 1) << 4;
        put(o, base + e, dj * <f32>q - mj);
      }
    } else if (kind == Q6_K) { // 128 low-nibble bytes, 64 high-bit bytes, 16 int8 scales, d
      const d = finiteF16At(blk + 208);
      for (let e = 0; e < 256; e++) {
        const half = e >> 7, i = e & 127, l = i & 31, quarter = i >> 5;
        const low = (<u32>load<u8>(blk + <usize>(64 * half + l + (quarter & 1) * 32)) >> <u32>((quarter >> 1) * 4)) & 15;
        const high = (<u32>load<u8>(blk + 128 + <usize>(32 * half + l)) >> <u32>(2 * quarter)) & 3;
        const sc = <f32>load<i8>(blk + 192 + <usize>(e >> 4));
        put(o, base + e, (d * sc) * <f32>(<i32>(low | (high << 4)) - 32));
      }
    } else { // IQ4_XS: d, u16 high scale bits, 4 low scale bytes, 128 bytes of nibbles
      const d = finiteF16At(blk);
      const high = <u32>load<u16>(blk + 2);
      for (let j = 0; j < 8; j++) {
        const ls = ((<u32>load<u8>(blk + 4 + <usize>(j >> 1)) >> <u32>(4 * (j & 1))) & 15) | (((high >> <u32>(2 * j)) & 3) << 4);
        const dl = d * <f32>(<i32>ls - 32);
        for (let l = 0; l < 16; l++) {
          const q = <u32>load<u8>(blk + 8 + <usize>(16 * j + l));
          put(o, base + 32 * j + l, dl * table(IQ4_VALUES, q & 15));
          put(o, base + 32 * j + l + 16, dl * table(IQ4_VALUES, q >> 4));
        }
      }
    }
  }
}

/** The f64 whose bits are hi:lo (a job's arguments are i32s). */
@inline function f64From(lo: i32, hi: i32): f64 {
  return reinterpret<f64>((<u64><u32>hi << 32) | <u64><u32>lo);
}

/**
 * out[i, :] = table[tokens[i], :] · scale for rows i in [r0, r1): the table [rows, dim] of dtype
 * `kind` (whole blocks per row), tokens i32, out f32 [·, dim]. scale is an f64 (its bits as lo,
 * hi), multiplied in f64 and rounded to f32, as the reference's `row[j] *= scale` on a
 * Float32Array does; 1 leaves the values as they are.
 */
export function embedRows(kind: i32, table: usize, tokens: usize, out: usize, dim: i32, scaleLo: i32, scaleHi: i32, r0: i32, r1: i32): void {
  const scale = f64From(scaleLo, scaleHi);
  const stride = rowBytes(kind, dim);
  for (let r = r0; r < r1; r++) {
    const src = table + <usize>load<i32>(tokens + (<usize>r << 2)) * stride;
    const o = out + (<usize>r * <usize>dim << 2);
    if (kind == F32) memory.copy(o, src, <usize>dim << 2);
    else if (kind == F16) rowF16(src, o, dim);
    else if (kind == BF16) rowBF16(src, o, dim);
    else if (kind <= Q5_1 || kind == IQ4_NL || kind == MXFP4) rowBlocks32(kind, src, o, dim);
    else rowBlocks256(kind, src, o, dim);
    if (scale != 1) {
      for (let i = 0; i < dim; i++) {
        const p = o + (<usize>i << 2);
        store<f32>(p, <f32>(<f64>load<f32>(p) * scale));
      }
    }
  }
}

/**
 * Puts back the subnormal values an F16 table's rows had at load (splitF16Subnormals: rowStart
 * [rows + 1] i32, entries of (column i32, value f32)) into out rows [r0, r1) that embedRows wrote
 * from rows tokens[i], times the same scale.
 */
export function embedSparse(rowStart: usize, entries: usize, tokens: usize, out: usize, dim: i32, scaleLo: i32, scaleHi: i32, r0: i32, r1: i32): void {
  const scale = f64From(scaleLo, scaleHi);
  for (let r = r0; r < r1; r++) {
    const starts = rowStart + (<usize>load<i32>(tokens + (<usize>r << 2)) << 2);
    const o = out + (<usize>r * <usize>dim << 2);
    for (let e = load<i32>(starts); e < load<i32>(starts, 4); e++) {
      const at = entries + (<usize>e << 3);
      const v = load<f32>(at, 4);
      store<f32>(o + (<usize>load<i32>(at) << 2), scale != 1 ? <f32>(<f64>v * scale) : v);
    }
  }
}

/** out[i, :] = x[rows[i], :] for i in [r0, r1); rows i32, rows of `cols` f32. */
export function gatherRows(x: usize, rows: usize, out: usize, cols: i32, r0: i32, r1: i32): void {
  const bytes = <usize>cols << 2;
  for (let i = r0; i < r1; i++) memory.copy(out + <usize>i * bytes, x + <usize>load<i32>(rows + (<usize>i << 2)) * bytes, bytes);
}

/**
 * Writes tokens [r0, r1) of k and v ([nTok, kvDim] f32) into keys and values ([slots, ctxLen,
 * kvDim]) at (seqs[t], positions[t]) (i32 each, checked by the caller).
 */
export function storeKV(k: usize, v: usize, keys: usize, values: usize, positions: usize, seqs: usize, kvDim: i32, ctxLen: i32, r0: i32, r1: i32): void {
  const bytes = <usize>kvDim << 2;
  for (let t = r0; t < r1; t++) {
    const at = <usize>t << 2;
    const dst = (<usize>load<i32>(seqs + at) * <usize>ctxLen + <usize>load<i32>(positions + at)) * bytes;
    memory.copy(keys + dst, k + <usize>t * bytes, bytes);
    memory.copy(values + dst, v + <usize>t * bytes, bytes);
  }
}

/** Copies rows [r0, r1) of `rowBytes` bytes from src to dst (regions that do not overlap). */
export function copyRows(src: usize, dst: usize, rowBytes: i32, r0: i32, r1: i32): void {
  const bytes = <usize>rowBytes;
  memory.copy(dst + <usize>r0 * bytes, src + <usize>r0 * bytes, <usize>(r1 - r0) * bytes);
}

/** out[r, :] += bias for rows [r0, r1) of out [rows, n] f32. */
export function addBias(out: usize, bias: usize, n: i32, r0: i32, r1: i32): void {
  const n4 = n & ~3;
  for (let r = r0; r < r1; r++) {
    const o = out + (<usize>r * <usize>n << 2);
    for (let j = 0; j < n4; j += 4) {
      const at = <usize>j << 2;
      v128.store(o + at, f32x4.add(v128.load(o + at), v128.load(bias + at)));
    }
    for (let j = n4; j < n; j++) {
      const at = <usize>j << 2;
      store<f32>(o + at, load<f32>(o + at) + load<f32>(bias + at));
    }
  }
}

/**
 * sum = a + b, then normed = sum / sqrt(mean(sum²) + eps) · w, for rows [r0, r1) of [rows, cols]
 * in one pass over each row's inputs: the residual add and the next block's RMS norm. The same f32
 * operations in the same order as add then rmsNorm (ops.ts), so the results are those bits. sum
 * may alias a; normed may alias b (each row's sum is complete before its normed values are written).
 */
export function addRmsNorm(a: usize, b: usize, w: usize, sum: usize, normed: usize, cols: i32, epsBits: i32, r0: i32, r1: i32): void {
  const eps = reinterpret<f32>(epsBits);
  const c4 = cols & ~3;
  for (let r = r0; r < r1; r++) {
    const row = <usize>r * <usize>cols << 2;
    const ar = a + row, br = b + row, sr = sum + row, nr = normed + row;
    let acc = f32x4.splat(0);
    for (let i = 0; i < c4; i += 4) {
      const o = <usize>i << 2;
      const s = f32x4.add(v128.load(ar + o), v128.load(br + o));
      v128.store(sr + o, s);
      acc = f32x4.add(acc, f32x4.mul(s, s));
    }
    let ss = hsum(acc);
    for (let i = c4; i < cols; i++) {
      const o = <usize>i << 2;
      const s = load<f32>(ar + o) + load<f32>(br + o);
      store<f32>(sr + o, s);
      ss += s * s;
    }
    scaleByRms(sr, w, nr, cols, ss, eps);
  }
}
