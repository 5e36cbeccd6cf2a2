// Matrix-vector kernels for ggml's K-quants (super-blocks of 256; layouts in src/quant/q4_k.ts
// and q6_k.ts), against x quantized to 8-bit blocks of 32 as int16 (quantizeRowsQ8), as for
// Q8_0/Q4_0: integer dots on i32x4.dot_i16x8_s, each sub-block's sum scaled once in f32.
// Prefill runs these per token too (no K-quant gemm yet). matvecQ4_K needs the thread's scratch
// (setScratch) for k/32 sums of x.
import { finiteF16At, hsum } from './common';
import { scratch } from './scratch';

/** Σ of the 32 int16 values of an x block, as i32x4 lanes. */
@inline function sum32(x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.extadd_pairwise_i16x8_s(v128.load(x)), i32x4.extadd_pairwise_i16x8_s(v128.load(x, 16))),
    i32x4.add(i32x4.extadd_pairwise_i16x8_s(v128.load(x, 32)), i32x4.extadd_pairwise_i16x8_s(v128.load(x, 48))),
  );
}

/** Q4_K sub-block j's 6-bit scale (low byte) and min (high byte), from the 12 bytes at p. */
@inline function scaleMin(p: usize, j: i32): u32 {
  if (j < 4) return (<u32>load<u8>(p + <usize>j) & 63) | ((<u32>load<u8>(p + <usize>j + 4) & 63) << 8);
  const lowBits = <u32>load<u8>(p + <usize>j + 4);
  const sc = (lowBits & 0x0f) | ((<u32>load<u8>(p + <usize>j - 4) >> 6) << 4);
  const m = (lowBits >> 4) | ((<u32>load<u8>(p + <usize>j) >> 6) << 4);
  return sc | (m << 8);
}

/**
 * out[r] for rows [r0, r1) of a Q4_K matrix [n, k] (k a multiple of 256): per sub-block j of 32,
 * with S = Σ q·xq and T = Σ xq (exact integers), acc += S·(d·sc_j·dx) and minus += T·(dmin·m_j·dx);
 * out = Σ acc lanes − minus. T depends on x only: summed once per call into this thread's scratch.
 * Two rows per pass share the x loads.
 */
export function matvecQ4_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8, nb = k >> 5;
  const rowBytes = <usize>nsb * 144;
  const sums = scratch;
  for (let b = 0; b < nb; b++) {
    const s = sum32(x16 + (<usize>b << 6));
    store<i32>(sums + (<usize>b << 2), i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3));
  }
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, e = a + rowBytes;
    let accA = f32x4.splat(0), accE = f32x4.splat(0);
    let minA: f32 = 0, minE: f32 = 0;
    for (let sb = 0; sb < nsb; sb++) {
      const ba = a + <usize>sb * 144, be = e + <usize>sb * 144;
      const da = finiteF16At(ba), dminA = finiteF16At(ba + 2), de = finiteF16At(be), dminE = finiteF16At(be + 2);
      for (let c = 0; c < 4; c++) {
        const xi = (sb << 3) + (c << 1);
        const xb0 = x16 + (<usize>xi << 6), xb1 = xb0 + 64;
        const dx0 = load<f32>(xd + (<usize>xi << 2)), dx1 = load<f32>(xd + (<usize>xi << 2), 4);
        const t0 = <f32>load<i32>(sums + (<usize>xi << 2)), t1 = <f32>load<i32>(sums + (<usize>xi << 2), 4);
        const x00 = v128.load(xb0), x01 = v128.load(xb0, 16), x02 = v128.load(xb0, 32), x03 = v128.load(xb0, 48);
        const x10 = v128.load(xb1), x11 = v128.load(xb1, 16), x12 = v128.load(xb1, 32), x13 = v128.load(xb1, 48);
        // Row a.
        let q0 = v128.load(ba + 16 + (<usize>c << 5)), q1 = v128.load(ba + 16 + (<usize>c << 5), 16);
        let sm0 = scaleMin(ba + 4, c << 1), sm1 = scaleMin(ba + 4, (c << 1) + 1);
        accA = f32x4.add(accA, f32x4.mul(f32x4.convert_i32x4_s(nibbleDot(v128.and(q0, i8x16.splat(0x0f)), v128.and(q1, i8x16.splat(0x0f)), x00, x01, x02, x03)), f32x4.splat(da * <f32>(sm0 & 0xff) * dx0)));
        accA = f32x4.add(accA, f32x4.mul(f32x4.convert_i32x4_s(nibbleDot(i8x16.shr_u(q0, 4), i8x16.shr_u(q1, 4), x10, x11, x12, x13)), f32x4.splat(da * <f32>(sm1 & 0xff) * dx1)));
        minA += t0 * (dminA * <f32>(sm0 >> 8) * dx0) + t1 * (dminA * <f32>(sm1 >> 8) * dx1);
        // Row e.
        q0 = v128.load(be + 16 + (<usize>c << 5)); q1 = v128.load(be + 16 + (<usize>c << 5), 16);
        sm0 = scaleMin(be + 4, c << 1); sm1 = scaleMin(be + 4, (c << 1) + 1);
        accE = f32x4.add(accE, f32x4.mul(f32x4.convert_i32x4_s(nibbleDot(v128.and(q0, i8x16.splat(0x0f)), v128.and(q1, i8x16.splat(0x0f)), x00, x01, x02, x03)), f32x4.splat(de * <f32>(sm0 & 0xff) * dx0)));
        accE = f32x4.add(accE, f32x4.mul(f32x4.convert_i32x4_s(nibbleDot(i8x16.shr_u(q0, 4), i8x16.shr_u(q1, 4), x10, x11, x12, x13)), f32x4.splat(de * <f32>(sm1 & 0xff) * dx1)));
        minE += t0 * (dminE * <f32>(sm0 >> 8) * dx0) + t1 * (dminE * <f32>(sm1 >> 8) * dx1);
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(accA) - minA);
    store<f32>(out + (<usize>r << 2), hsum(accE) - minE, 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    let minSum: f32 = 0;
    for (let sb = 0; sb < nsb; sb++) {
      const ba = a + <usize>sb * 144;
      const d = finiteF16At(ba), dmin = finiteF16At(ba + 2);
      for (let c = 0; c < 4; c++) {
        const xi = (sb << 3) + (c << 1);
        const xb0 = x16 + (<usize>xi << 6), xb1 = xb0 + 64;
        const dx0 = load<f32>(xd + (<usize>xi << 2)), dx1 = load<f32>(xd + (<usize>xi << 2), 4);
        const q0 = v128.load(ba + 16 + (<usize>c << 5)), q1 = v128.load(ba + 16 + (<usize>c << 5), 16);
        const sm0 = scaleMin(ba + 4, c << 1), sm1 = scaleMin(ba + 4, (c << 1) + 1);
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(nibbleDot(v128.and(q0, i8x16.splat(0x0f)), v128.and(q1, i8x16.splat(0x0f)),
          v128.load(xb0), v128.load(xb0, 16), v128.load(xb0, 32), v128.load(xb0, 48))), f32x4.splat(d * <f32>(sm0 & 0xff) * dx0)));
        acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(nibbleDot(i8x16.shr_u(q0, 4), i8x16.shr_u(q1, 4),
          v128.load(xb1), v128.load(xb1, 16), v128.load(xb1, 32), v128.load(xb1, 48))), f32x4.splat(d * <f32>(sm1 & 0xff) * dx1)));
        minSum += <f32>load<i32>(sums + (<usize>xi << 2)) * (dmin * <f32>(sm0 >> 8) * dx0)
          + <f32>load<i32>(sums + (<usize>xi << 2), 4) * (dmin * <f32>(sm1 >> 8) * dx1);
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc) - minSum);
  }
}

/** Σ of 32 unsigned 4-bit values (two u8x16) times the four x16 vectors of a block, as i32x4 lanes. */
@inline function nibbleDot(lo: v128, hi: v128, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), x0), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), x1)),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), x2), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), x3)),
  );
}

/** One 32-value quarter of a Q6_K half: low nibbles (or high, shifted) with 2 high bits, minus 32. */
@inline function q6Quarter(ql: v128, qh: v128, lowShift: i32, highShift: i32): v128 {
  const lowBits = lowShift ? i8x16.shr_u(ql, 4) : v128.and(ql, i8x16.splat(0x0f));
  const highBits = i8x16.shl(v128.and(i8x16.shr_u(qh, highShift), i8x16.splat(3)), 4);
  return i8x16.sub(v128.or(lowBits, highBits), i8x16.splat(32));
}

/**
 * out[r] for rows [r0, r1) of a Q6_K matrix [n, k] (k a multiple of 256): per sub-block j of 16,
 * acc += S·(d·sc_j·dx), with S = Σ (q − 32)·xq exact.
 */
export function matvecQ6_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 210;
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 210;
      const d = finiteF16At(blk + 208);
      for (let half = 0; half < 2; half++) {
        const ql = blk + (<usize>half << 6), qh = blk + 128 + (<usize>half << 5), sc = blk + 192 + (<usize>half << 3);
        const qlA0 = v128.load(ql), qlA1 = v128.load(ql, 16), qlB0 = v128.load(ql, 32), qlB1 = v128.load(ql, 48);
        const qh0 = v128.load(qh), qh1 = v128.load(qh, 16);
        for (let quarter = 0; quarter < 4; quarter++) {
          // Elements 32·quarter + (0..31) of this half: ql[l] (quarters 0, 2) or ql[l + 32] (1, 3),
          // low nibble (0, 1) or high (2, 3); high bits at bit pair `quarter` of qh[l].
          const src0 = (quarter & 1) ? qlB0 : qlA0, src1 = (quarter & 1) ? qlB1 : qlA1;
          const v0 = q6Quarter(src0, qh0, quarter >> 1, quarter << 1);
          const v1 = q6Quarter(src1, qh1, quarter >> 1, quarter << 1);
          const xi = (sb << 3) + (half << 2) + quarter;
          const xb = x16 + (<usize>xi << 6);
          const sa = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), v128.load(xb)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), v128.load(xb, 16)));
          const sbv = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), v128.load(xb, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), v128.load(xb, 48)));
          const dx = load<f32>(xd + (<usize>xi << 2));
          const scA = <f32>load<i8>(sc + (<usize>quarter << 1)), scB = <f32>load<i8>(sc + (<usize>quarter << 1), 1);
          acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sa), f32x4.splat(d * scA * dx)));
          acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sbv), f32x4.splat(d * scB * dx)));
        }
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

// Several tokens: each token over a tile of rows (~64 KiB) before the next tile, as matvec.ts.
@inline function tileRowsK(rowBytes: usize): i32 {
  const rows = <i32>(<usize>65536 / rowBytes);
  return rows < 4 ? 4 : rows & ~3;
}

export function matmulQ4_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRowsK(<usize>(k >> 8) * 144);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecQ4_K(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulQ6_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRowsK(<usize>(k >> 8) * 210);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecQ6_K(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}
