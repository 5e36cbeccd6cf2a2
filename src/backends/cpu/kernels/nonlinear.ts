// Kernels for the types whose 4-bit codes index a table of int8 values: IQ4_XS (super-blocks of
// 256 in 136 bytes, sub-block scales d·(ls − 32); src/quant/iq4_xs.ts) and MXFP4 (blocks of 32 in
// 17 bytes, scale 2^(e − 128); src/quant/mxfp4.ts). A code becomes its value with one swizzle of
// the table, so every block of 32 is 32 int8 values times one f32 scale, against x quantized to
// 8-bit blocks of 32 (quantizeRowsQ8): an exact integer dot on i32x4.dot_i16x8_s per block, then
// acc += S·(scale·dx) in f32 — what gemmTileQ (gemm.ts) computes from the unpacked tiles, lane for
// lane, so decode (matvec) and prefill (gemm) agree bit for bit.
import { finiteF16At, hsum } from './common';
import { gemmTileQ } from './gemm';
import { scratch, scratchBytes } from './scratch';

/** kvalues_iq4nl, by code. */
@inline function iq4Table(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

/** kvalues_mxfp4 (E2M1 doubled), by code. */
@inline function fp4Table(): v128 {
  return i8x16(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
}

/** The table values of the 16 low nibbles of q (a block's elements 0..15), and of its high nibbles (16..31). */
@inline function lowValues(table: v128, q: v128): v128 {
  return i8x16.swizzle(table, v128.and(q, i8x16.splat(0x0f)));
}
@inline function highValues(table: v128, q: v128): v128 {
  return i8x16.swizzle(table, v128.and(i16x8.shr_u(q, 4), i8x16.splat(0x0f)));
}

/** Σ of a block's 32 int8 values (lo: elements 0..15, hi: 16..31) times the x16 block at x, as i32x4 lanes. */
@inline function valueDot(lo: v128, hi: v128, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(lo), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(lo), v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(hi), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(hi), v128.load(x, 48))),
  );
}

/** acc + S·(scale·dx) for one block. */
@inline function addBlock(acc: v128, s: v128, scale: f32, dx: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(scale * dx)));
}

/** IQ4_XS sub-block j's scale d·(ls − 32) for the super-block at blk (d as f32 already). */
@inline function iq4xsScale(blk: usize, d: f32, j: i32): f32 {
  const ls = ((<i32>load<u8>(blk + 4 + (<usize>j >> 1)) >> ((j & 1) << 2)) & 0x0f) | (((<i32>load<u16>(blk, 2) >> (j << 1)) & 3) << 4);
  return d * <f32>(ls - 32);
}

/** MXFP4 block scale 2^(e − 128) from its exponent byte, as ggml_e8m0_to_fp32_half builds it. */
@inline function fp4Scale(e: u32): f32 {
  return reinterpret<f32>(e < 2 ? <u32>0x00200000 << e : (e - 1) << 23);
}

/**
 * out[r] for rows [r0, r1) of an IQ4_XS matrix [n, k] (k a multiple of 256), x as quantizeRowsQ8
 * leaves it: per sub-block of 32, acc += S·((d·(ls − 32))·dx). Two rows per pass share the x loads.
 */
export function matvecIQ4_XS(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 136;
  const table = iq4Table();
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, c = a + rowBytes;
    let accA = f32x4.splat(0), accC = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const ba = a + <usize>sb * 136, bc = c + <usize>sb * 136;
      const da = finiteF16At(ba), dc = finiteF16At(bc);
      for (let j = 0; j < 8; j++) {
        const xb = x16 + (<usize>((sb << 3) + j) << 6), dx = load<f32>(xd + (<usize>((sb << 3) + j) << 2));
        const qa = v128.load(ba + 8 + (<usize>j << 4)), qc = v128.load(bc + 8 + (<usize>j << 4));
        accA = addBlock(accA, valueDot(lowValues(table, qa), highValues(table, qa), xb), iq4xsScale(ba, da, j), dx);
        accC = addBlock(accC, valueDot(lowValues(table, qc), highValues(table, qc), xb), iq4xsScale(bc, dc, j), dx);
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(accA));
    store<f32>(out + (<usize>r << 2), hsum(accC), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 136;
      const d = finiteF16At(blk);
      for (let j = 0; j < 8; j++) {
        const b = (sb << 3) + j;
        const q = v128.load(blk + 8 + (<usize>j << 4));
        acc = addBlock(acc, valueDot(lowValues(table, q), highValues(table, q), x16 + (<usize>b << 6)), iq4xsScale(blk, d, j), load<f32>(xd + (<usize>b << 2)));
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

/**
 * out[r] for rows [r0, r1) of an MXFP4 matrix [n, k] (k a multiple of 32): per block,
 * acc += S·(2^(e − 128)·dx). Two rows per pass share the x loads.
 */
export function matvecMXFP4(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const rowBytes = <usize>nb * 17;
  const table = fp4Table();
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, c = a + rowBytes;
    let accA = f32x4.splat(0), accC = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const ba = a + <usize>b * 17, bc = c + <usize>b * 17;
      const xb = x16 + (<usize>b << 6), dx = load<f32>(xd + (<usize>b << 2));
      const qa = v128.load(ba, 1), qc = v128.load(bc, 1);
      accA = addBlock(accA, valueDot(lowValues(table, qa), highValues(table, qa), xb), fp4Scale(load<u8>(ba)), dx);
      accC = addBlock(accC, valueDot(lowValues(table, qc), highValues(table, qc), xb), fp4Scale(load<u8>(bc)), dx);
    }
    store<f32>(out + (<usize>r << 2), hsum(accA));
    store<f32>(out + (<usize>r << 2), hsum(accC), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const blk = a + <usize>b * 17;
      const q = v128.load(blk, 1);
      acc = addBlock(acc, valueDot(lowValues(table, q), highValues(table, q), x16 + (<usize>b << 6)), fp4Scale(load<u8>(blk)), load<f32>(xd + (<usize>b << 2)));
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

// Several tokens through the matvec kernels, a tile of rows (~64 KiB) at a time (as matvec.ts
// does for small batches); prefill uses the gemm kernels below.
@inline function matvecTile(rowBytes: usize): i32 {
  const rows = <i32>(<usize>65536 / rowBytes);
  return rows < 4 ? 4 : rows & ~3;
}

export function matmulIQ4_XS(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = matvecTile(<usize>(k >> 8) * 136);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecIQ4_XS(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulMXFP4(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = matvecTile(<usize>(k >> 5) * 17);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecMXFP4(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

// ---------------------------------------------------------------------------------------------
// gemm: each row unpacked into this thread's scratch as gemmTileQ reads it — [k] int16 values,
// then [k/32] f32 block scales — a tile of rows at a time.

/** Rows per gemm tile: as many unpacked rows as fit 64 KiB of scratch, a multiple of 4, at least 4 (as gemm.ts). */
@inline function gemmTile(rowBytes: usize): i32 {
  const fit = <i32>(min<usize>(scratchBytes, 65536) / rowBytes) & ~3;
  return fit < 4 ? 4 : fit;
}

/** A block's 32 int8 values (lo: elements 0..15, hi: 16..31) as int16 at o. */
@inline function storeValues(o: usize, lo: v128, hi: v128): void {
  v128.store(o, i16x8.extend_low_i8x16_s(lo)); v128.store(o, i16x8.extend_high_i8x16_s(lo), 16);
  v128.store(o, i16x8.extend_low_i8x16_s(hi), 32); v128.store(o, i16x8.extend_high_i8x16_s(hi), 48);
}

/** IQ4_XS weights [n, k] (k a multiple of 256); x as quantizeRowsQ8 leaves it. */
export function gemmIQ4_XS(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const src = <usize>(k >> 8) * 136, ws = (<usize>k << 1) + (<usize>nb << 2);
  const table = iq4Table();
  const tile = gemmTile(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) {
      const a = w + <usize>(rb + r) * src, dst = scratch + <usize>r * ws, scales = dst + (<usize>k << 1);
      for (let sb = 0; sb < (k >> 8); sb++) {
        const blk = a + <usize>sb * 136;
        const d = finiteF16At(blk);
        for (let j = 0; j < 8; j++) {
          const b = (sb << 3) + j;
          const q = v128.load(blk + 8 + (<usize>j << 4));
          storeValues(dst + (<usize>b << 6), lowValues(table, q), highValues(table, q));
          store<f32>(scales + (<usize>b << 2), iq4xsScale(blk, d, j));
        }
      }
    }
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, out + (<usize>rb << 2), n);
  }
}

/** MXFP4 weights [n, k] (k a multiple of 32); x as quantizeRowsQ8 leaves it. */
export function gemmMXFP4(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const src = <usize>nb * 17, ws = (<usize>k << 1) + (<usize>nb << 2);
  const table = fp4Table();
  const tile = gemmTile(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) {
      const a = w + <usize>(rb + r) * src, dst = scratch + <usize>r * ws, scales = dst + (<usize>k << 1);
      for (let b = 0; b < nb; b++) {
        const blk = a + <usize>b * 17;
        const q = v128.load(blk, 1);
        storeValues(dst + (<usize>b << 6), lowValues(table, q), highValues(table, q));
        store<f32>(scales + (<usize>b << 2), fp4Scale(load<u8>(blk)));
      }
    }
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, out + (<usize>rb << 2), n);
  }
}
