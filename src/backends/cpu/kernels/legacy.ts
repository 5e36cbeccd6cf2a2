// Kernels for ggml's other blocks of 32 (layouts in src/quant/): Q4_1 (f16 d, f16 m, 16 bytes of
// nibbles; x = d·q + m), Q5_0 (f16 d, u32 fifth bits, 16 bytes; x = d·(q − 16)), Q5_1 (f16 d,
// f16 m, u32, 16 bytes; x = d·q + m) and IQ4_NL (f16 d, 16 bytes of indices into a 16-level
// table; x = d·KVALUES[q]). Every block's 32 values are small integers (0..31, −16..15, or the
// table's −127..113), so they run as Q4_0 does: x quantized to 8-bit blocks (quantizeRowsQ8),
// an exact integer dot per block on i32x4.dot_i16x8_s, scaled once by d·dx in f32. The min types
// add m·Σx per block: m·xt with xt = dx·Σxq from blockSumsQ8, summed block by block in a scalar
// beside the vector accumulator, as llama.cpp's q4_1·q8_1 dot does.
//
// Decode (matmul*: each token through the stored rows) and prefill (gemm*: rows unpacked once per
// tile into int16 values, f32 scales and f32 mins, then gemmTileQ) do the same f32 operations in
// the same order, so a token's result does not depend on the path or the batch.
import { finiteF16At, hsum } from './common';
import { gemmTileQ } from './gemm';
import { scratch, scratchBytes } from './scratch';

// Which block type a kernel body is for: constants, folded away once the helpers are inlined.
const Q4_1 = 0, Q5_0 = 1, Q5_1 = 2, IQ4_NL = 3;

@inline function blockBytes(kind: i32): usize {
  return kind == Q4_1 ? 20 : kind == Q5_0 ? 22 : kind == Q5_1 ? 24 : 18;
}
/** Where the 16 bytes of nibbles start in a block. */
@inline function nibblesAt(kind: i32): usize {
  return kind == Q4_1 ? 4 : kind == Q5_0 ? 6 : kind == Q5_1 ? 8 : 2;
}
@inline function hasMin(kind: i32): bool {
  return kind == Q4_1 || kind == Q5_1;
}

/** 0x10 in byte lane j where bit j of the low 16 bits of qh is set: the fifth bits of 16 elements. */
@inline function fifthBits(qh: u32): v128 {
  const v = i16x8.splat(<i16>qh);
  const spread = i8x16.shuffle(v, v, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const bit = i64x2.splat(0x8040201008040201);
  return v128.and(i8x16.eq(v128.and(spread, bit), bit), i8x16.splat(0x10));
}

/** The block's elements 0..15 (half 0, the low nibbles) or 16..31 (half 1) as signed i8 lanes. */
@inline function blockValues(kind: i32, blk: usize, half: i32): v128 {
  const packed = v128.load(blk + nibblesAt(kind));
  // A 16-bit shift (8-bit shifts are emulated on x86); the mask drops the bits that cross a byte.
  const q = v128.and(half == 0 ? packed : i16x8.shr_u(packed, 4), i8x16.splat(0x0f));
  if (kind == IQ4_NL) {
    return i8x16.swizzle(i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113), q);
  }
  if (kind == Q4_1) return q;
  const qh = load<u32>(blk + (kind == Q5_0 ? 2 : 4));
  const five = v128.or(q, fifthBits(half == 0 ? qh : qh >> 16));
  return kind == Q5_0 ? i8x16.sub(five, i8x16.splat(16)) : five;
}

/** Σ over a block of its values times the x16 block at x, as i32x4 lanes (the lanes of gemm.ts's blockDot). */
@inline function blockDot(kind: i32, blk: usize, x: usize): v128 {
  const lo = blockValues(kind, blk, 0), hi = blockValues(kind, blk, 1);
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), v128.load(x, 48))),
  );
}

/**
 * out[r] for rows [r0, r1) of a matrix [n, k] of `kind` blocks and one token (x16 [k] int16, xd
 * [k/32] f32, xt [k/32] f32 for the min types): Σ_b S_b·(d_b·dx_b) in an f32x4 over S's lanes,
 * summed across lanes at the end, plus Σ_b m_b·xt_b in block order.
 */
@inline function matvecBlocks(kind: i32, w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5, bb = blockBytes(kind);
  const rowBytes = <usize>nb * bb;
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    let mins: f32 = 0;
    for (let b = 0; b < nb; b++) {
      const blk = a + <usize>b * bb, bo = <usize>b << 2;
      const s = blockDot(kind, blk, x16 + (<usize>b << 6));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(finiteF16At(blk) * load<f32>(xd + bo))));
      if (hasMin(kind)) mins += finiteF16At(blk + 2) * load<f32>(xt + bo);
    }
    store<f32>(out + (<usize>r << 2), hasMin(kind) ? hsum(acc) + mins : hsum(acc));
  }
}

/** Several tokens through matvecBlocks, a tile of rows (~64 KiB of weights) at a time so each is read from memory once. */
@inline function matmulBlocks(kind: i32, w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = <usize>(k >> 5);
  const fit = <i32>(<usize>65536 / (nb * blockBytes(kind)));
  const tile = fit < 4 ? 4 : fit & ~3;
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) {
      const xo = <usize>t * nb;
      matvecBlocks(kind, w, x16 + (<usize>t * <usize>k << 1), xd + (xo << 2), xt + (xo << 2), out + (<usize>t * <usize>n << 2), k, rb, re);
    }
  }
}

/**
 * Weights [n, k] of `kind` blocks, tile by tile: each row unpacked at scratch as [k] int16 values,
 * [k/32] f32 scales d (gemmTileQ's layout) and, for the min types, [k/32] f32 mins m; gemmTileQ
 * computes Σ_b S_b·(d_b·dx_b) for every token, and the min term is added as matvecBlocks adds it.
 */
@inline function gemmBlocks(kind: i32, w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5, bb = blockBytes(kind);
  const src = <usize>nb * bb;
  const scalesAt = <usize>k << 1, minsAt = scalesAt + (<usize>nb << 2);
  const ws = minsAt + (hasMin(kind) ? <usize>nb << 2 : 0);
  const fit = <i32>(min<usize>(scratchBytes, 65536) / ws) & ~3;
  const tile = fit < 4 ? 4 : fit;
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) {
      const a = w + <usize>(rb + r) * src, dst = scratch + <usize>r * ws;
      for (let b = 0; b < nb; b++) {
        const blk = a + <usize>b * bb, o = dst + (<usize>b << 6);
        const lo = blockValues(kind, blk, 0), hi = blockValues(kind, blk, 1);
        v128.store(o, i16x8.extend_low_i8x16_s(lo)); v128.store(o, i16x8.extend_high_i8x16_s(lo), 16);
        v128.store(o, i16x8.extend_low_i8x16_s(hi), 32); v128.store(o, i16x8.extend_high_i8x16_s(hi), 48);
        store<f32>(dst + scalesAt + (<usize>b << 2), finiteF16At(blk));
        if (hasMin(kind)) store<f32>(dst + minsAt + (<usize>b << 2), finiteF16At(blk + 2));
      }
    }
    const o = out + (<usize>rb << 2);
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, o, n);
    if (!hasMin(kind)) continue;
    for (let t = 0; t < nTok; t++) {
      const xtt = xt + (<usize>t * <usize>nb << 2), ot = o + (<usize>t * <usize>n << 2);
      for (let r = 0; r < rows; r++) {
        const m = scratch + <usize>r * ws + minsAt;
        let mins: f32 = 0;
        for (let b = 0; b < nb; b++) mins += load<f32>(m + (<usize>b << 2)) * load<f32>(xtt + (<usize>b << 2));
        const p = ot + (<usize>r << 2);
        store<f32>(p, load<f32>(p) + mins);
      }
    }
  }
}

// Several tokens: x16 [nTok, k] int16, xd and xt [nTok, k/32] → out [nTok, n], rows [r0, r1) (k a
// multiple of 32). matmul* read the stored rows per token (decode); gemm* unpack tiles (prefill).

export function matmulQ4_1(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  matmulBlocks(Q4_1, w, x16, xd, xt, out, k, n, nTok, r0, r1);
}
export function gemmQ4_1(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmBlocks(Q4_1, w, x16, xd, xt, out, k, n, nTok, r0, r1);
}
export function matmulQ5_1(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  matmulBlocks(Q5_1, w, x16, xd, xt, out, k, n, nTok, r0, r1);
}
export function gemmQ5_1(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmBlocks(Q5_1, w, x16, xd, xt, out, k, n, nTok, r0, r1);
}
export function matmulQ5_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  matmulBlocks(Q5_0, w, x16, xd, 0, out, k, n, nTok, r0, r1);
}
export function gemmQ5_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmBlocks(Q5_0, w, x16, xd, 0, out, k, n, nTok, r0, r1);
}
export function matmulIQ4_NL(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  matmulBlocks(IQ4_NL, w, x16, xd, 0, out, k, n, nTok, r0, r1);
}
export function gemmIQ4_NL(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmBlocks(IQ4_NL, w, x16, xd, 0, out, k, n, nTok, r0, r1);
}
