// Matrix-vector kernels for ggml's K-quants (super-blocks of 256; layouts in src/quant/q4_k.ts
// and q6_k.ts), against x quantized to 8-bit blocks of 32 as int16 (quantizeRowsQ8), as for
// Q8_0/Q4_0: integer dots on i32x4.dot_i16x8_s, each block of 32 scaled once in f32 — the
// arithmetic the gemm kernels (gemm.ts) reproduce from unpacked tiles, so decode and prefill agree
// bit for bit.
import { finiteF16At, hsum, q4kScalesMins } from './common';

/** Σ of the 32 int16 values of an x block, as i32x4 lanes. */
@inline function sum32(x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.extadd_pairwise_i16x8_s(v128.load(x)), i32x4.extadd_pairwise_i16x8_s(v128.load(x, 16))),
    i32x4.add(i32x4.extadd_pairwise_i16x8_s(v128.load(x, 32)), i32x4.extadd_pairwise_i16x8_s(v128.load(x, 48))),
  );
}

/**
 * xt[r, b] = xd[r, b] · Σ x16[r, block b] for rows [r0, r1) of x quantized by quantizeRowsQ8 (k a
 * multiple of 32): what a Q4_K block's min multiplies, computed once per call for every row.
 */
export function blockSumsQ8(x16: usize, xd: usize, xt: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  for (let r = r0; r < r1; r++) {
    for (let b = 0; b < nb; b++) {
      const i = <usize>r * <usize>nb + <usize>b;
      const s = sum32(x16 + (i << 6));
      const total = i32x4.extract_lane(s, 0) + i32x4.extract_lane(s, 1) + i32x4.extract_lane(s, 2) + i32x4.extract_lane(s, 3);
      store<f32>(xt + (i << 2), load<f32>(xd + (i << 2)) * <f32>total);
    }
  }
}

/**
 * out[r] for rows [r0, r1) of a Q4_K matrix [n, k] (k a multiple of 256). Sub-block j of 32 decodes
 * as d·sc_j·q − dmin·m_j, so with S_j = Σ q·xq (exact) and xt_j = dx_j·Σ xq (blockSumsQ8):
 * out = Σ_j S_j·((d·sc_j)·dx_j) − Σ_j (dmin·m_j)·xt_j, the first sum in an f32x4 over S's lanes
 * (sub-blocks in j order), the second in an f32x4 over four sub-blocks at a time, each summed
 * across lanes at the end. gemmQ4_K computes the same operations in the same order.
 */
export function matvecQ4_K(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 144;
  let r = r0;
  // Two rows per pass share the x loads; the single-row loop below is the same arithmetic.
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, e = a + rowBytes;
    let accA = f32x4.splat(0), minA = f32x4.splat(0), accE = f32x4.splat(0), minE = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const ba = a + <usize>sb * 144, be = e + <usize>sb * 144;
      const xb = x16 + (<usize>sb << 9), xdb = xd + (<usize>sb << 5), xtb = xt + (<usize>sb << 5);
      const smA = q4kScalesMins(ba + 4), smE = q4kScalesMins(be + 4);
      const dA = f32x4.splat(finiteF16At(ba)), dminA = f32x4.splat(finiteF16At(ba + 2));
      const dE = f32x4.splat(finiteF16At(be)), dminE = f32x4.splat(finiteF16At(be + 2));
      const xd0 = v128.load(xdb), xd1 = v128.load(xdb, 16), xt0 = v128.load(xtb), xt1 = v128.load(xtb, 16);
      minA = f32x4.add(minA, f32x4.mul(f32x4.mul(dminA, q4kMinsF32s(smA, false)), xt0));
      minA = f32x4.add(minA, f32x4.mul(f32x4.mul(dminA, q4kMinsF32s(smA, true)), xt1));
      minE = f32x4.add(minE, f32x4.mul(f32x4.mul(dminE, q4kMinsF32s(smE, false)), xt0));
      minE = f32x4.add(minE, f32x4.mul(f32x4.mul(dminE, q4kMinsF32s(smE, true)), xt1));
      let pA = f32x4.mul(f32x4.mul(dA, q4kScalesF32(smA, false)), xd0), qA = f32x4.mul(f32x4.mul(dA, q4kScalesF32(smA, true)), xd1);
      let pE = f32x4.mul(f32x4.mul(dE, q4kScalesF32(smE, false)), xd0), qE = f32x4.mul(f32x4.mul(dE, q4kScalesF32(smE, true)), xd1);
      for (let c = 0; c < 4; c++) {
        const o = <usize>c << 5, xc = xb + (<usize>c << 7);
        accA = q4kPair(accA, ba + 16 + o, xc, i32x4.shuffle(pA, pA, 0, 0, 0, 0), i32x4.shuffle(pA, pA, 1, 1, 1, 1));
        accE = q4kPair(accE, be + 16 + o, xc, i32x4.shuffle(pE, pE, 0, 0, 0, 0), i32x4.shuffle(pE, pE, 1, 1, 1, 1));
        pA = i32x4.shuffle(pA, qA, 2, 3, 4, 5); qA = i32x4.shuffle(qA, qA, 2, 3, 0, 1);
        pE = i32x4.shuffle(pE, qE, 2, 3, 4, 5); qE = i32x4.shuffle(qE, qE, 2, 3, 0, 1);
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(accA) - hsum(minA));
    store<f32>(out + (<usize>r << 2), hsum(accE) - hsum(minE), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0), minv = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 144;
      const xb = x16 + (<usize>sb << 9), xdb = xd + (<usize>sb << 5), xtb = xt + (<usize>sb << 5);
      // The scales and mins are decoded once, as vectors: d·sc_j and dmin·m_j are exact in f32 (an
      // f16 times a 6-bit integer), so (d·sc_j)·dx_j per lane has the bits of the scalar product.
      const sm = q4kScalesMins(blk + 4);
      const d = f32x4.splat(finiteF16At(blk)), dmin = f32x4.splat(finiteF16At(blk + 2));
      minv = f32x4.add(minv, f32x4.mul(f32x4.mul(dmin, q4kMinsF32s(sm, false)), v128.load(xtb)));
      minv = f32x4.add(minv, f32x4.mul(f32x4.mul(dmin, q4kMinsF32s(sm, true)), v128.load(xtb, 16)));
      // A loop, not unrolled (V8 schedules an unrolled body's loads first and spills): chunk c
      // uses lanes 0, 1 of p, then p and q rotate by two lanes.
      let p = f32x4.mul(f32x4.mul(d, q4kScalesF32(sm, false)), v128.load(xdb));
      let q = f32x4.mul(f32x4.mul(d, q4kScalesF32(sm, true)), v128.load(xdb, 16));
      for (let c = 0; c < 4; c++) {
        acc = q4kPair(acc, blk + 16 + (<usize>c << 5), xb + (<usize>c << 7), i32x4.shuffle(p, p, 0, 0, 0, 0), i32x4.shuffle(p, p, 1, 1, 1, 1));
        p = i32x4.shuffle(p, q, 2, 3, 4, 5);
        q = i32x4.shuffle(q, q, 2, 3, 0, 1);
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc) - hsum(minv));
  }
}

// The scales and mins of q4kScalesMins' lanes as f32x4. They are 6-bit, so the signed conversion
// (one instruction on x86; the unsigned one is emulated) is exact.
/** sc0..sc3 (lanes 0–3), or sc4..sc7 (lanes 8–11) when `upper`. */
@inline function q4kScalesF32(v: v128, upper: bool): v128 {
  const z = i8x16.splat(0);
  return f32x4.convert_i32x4_s(upper
    ? i8x16.shuffle(v, z, 8, 16, 16, 16, 9, 16, 16, 16, 10, 16, 16, 16, 11, 16, 16, 16)
    : i8x16.shuffle(v, z, 0, 16, 16, 16, 1, 16, 16, 16, 2, 16, 16, 16, 3, 16, 16, 16));
}
/** m0..m3 (lanes 4–7), or m4..m7 (lanes 12–15) when `upper`. */
@inline function q4kMinsF32s(v: v128, upper: bool): v128 {
  const z = i8x16.splat(0);
  return f32x4.convert_i32x4_s(upper
    ? i8x16.shuffle(v, z, 12, 16, 16, 16, 13, 16, 16, 16, 14, 16, 16, 16, 15, 16, 16, 16)
    : i8x16.shuffle(v, z, 4, 16, 16, 16, 5, 16, 16, 16, 6, 16, 16, 16, 7, 16, 16, 16));
}

/**
 * 32 bytes of Q4_K nibbles at q (low nibbles: one sub-block, high: the next) against the two x
 * blocks at xb: acc + S_lo·scaleLo + S_hi·scaleHi (each scale splat over the lanes). Each 8 bytes
 * load zero-extended into 16-bit lanes, where the low nibble is a mask and the high one a shift
 * away; the lanes of S are those of the byte-wise widening (element e in lane (e & 7) >> 1).
 */
@inline function q4kPair(acc: v128, q: usize, xb: usize, scaleLo: v128, scaleHi: v128): v128 {
  const a0 = v128.load8x8_u(q), a1 = v128.load8x8_u(q, 8), a2 = v128.load8x8_u(q, 16), a3 = v128.load8x8_u(q, 24);
  const m = i16x8.splat(0x0f);
  const sLo = i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.and(a0, m), v128.load(xb)), i32x4.dot_i16x8_s(v128.and(a1, m), v128.load(xb, 16))),
    i32x4.add(i32x4.dot_i16x8_s(v128.and(a2, m), v128.load(xb, 32)), i32x4.dot_i16x8_s(v128.and(a3, m), v128.load(xb, 48))),
  );
  const sHi = i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.shr_u(a0, 4), v128.load(xb, 64)), i32x4.dot_i16x8_s(i16x8.shr_u(a1, 4), v128.load(xb, 80))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.shr_u(a2, 4), v128.load(xb, 96)), i32x4.dot_i16x8_s(i16x8.shr_u(a3, 4), v128.load(xb, 112))),
  );
  const t = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sLo), scaleLo));
  return f32x4.add(t, f32x4.mul(f32x4.convert_i32x4_s(sHi), scaleHi));
}

/**
 * out[r] for rows [r0, r1) of a Q6_K matrix [n, k] (k a multiple of 256): sub-blocks of 16 decode
 * as d·sc_j·(q − 32) with int8 sc_j; per block of 32, s = sc_a·Σ_a (q − 32)·xq + sc_b·Σ_b … (exact
 * integers) and acc += s·(d·dx).
 */
export function matvecQ6_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  if (withinQ6Narrow(x16, k)) q6Rows(w, x16, xd, out, k, r0, r1, true);
  else q6Rows(w, x16, xd, out, k, r0, r1, false);
}

/**
 * Whether every int16 of x16 [k] is within ±255, so that a Q6_K sub-block's partial sums per lane
 * (four products, |q − 32| ≤ 32) fit in int16 and q6BlockNarrow is exact. quantizeRowsQ8 gives
 * −127..127 except for blocks of tiny (subnormal-scale) activations, where 1/d overflows.
 */
@inline function withinQ6Narrow(x16: usize, k: i32): bool {
  let lo = i16x8.splat(0), hi = i16x8.splat(0);
  for (let i = 0; i < k; i += 8) {
    const v = v128.load(x16 + (<usize>i << 1));
    lo = i16x8.min_s(lo, v); hi = i16x8.max_s(hi, v);
  }
  return i16x8.all_true(v128.and(i16x8.ge_s(lo, i16x8.splat(-255)), i16x8.le_s(hi, i16x8.splat(255))));
}

/** matvecQ6_K's rows, the blocks through q6BlockNarrow (`narrow`) or q6BlockMul: the same integers either way. */
@inline function q6Rows(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32, narrow: bool): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 210;
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 210;
      const d = f32x4.splat(finiteF16At(blk + 208));
      const scales = v128.load(blk + 192);
      for (let half = 0; half < 2; half++) {
        // Elements 32·quarter + l of this half: ql[l] (quarters 0, 2) or ql[l + 32] (1, 3), low
        // nibble (0, 1) or high (2, 3); high bits at bit pair `quarter` of qh[l].
        const ql = blk + (<usize>half << 6), qh = blk + 128 + (<usize>half << 5);
        const xi = (sb << 3) + (half << 2);
        const xb = x16 + (<usize>xi << 6);
        // d·dx for the half's four blocks (the scalar product's bits), and the int8 scale pairs
        // (sc_a, sc_b) of its four blocks as int16 pairs, one per i32 lane.
        const ds = f32x4.mul(d, v128.load(xd + (<usize>xi << 2)));
        const sc = half == 0 ? i16x8.extend_low_i8x16_s(scales) : i16x8.extend_high_i8x16_s(scales);
        const qlA0 = v128.load(ql), qlA1 = v128.load(ql, 16), qlB0 = v128.load(ql, 32), qlB1 = v128.load(ql, 48);
        const qh0 = v128.load(qh), qh1 = v128.load(qh, 16);
        if (narrow) {
          acc = q6BlockNarrow(acc, q6Quarter0(qlA0, qh0), q6Quarter0(qlA1, qh1), i32x4.shuffle(sc, sc, 0, 0, 0, 0), xb, i32x4.shuffle(ds, ds, 0, 0, 0, 0));
          acc = q6BlockNarrow(acc, q6Quarter1(qlB0, qh0), q6Quarter1(qlB1, qh1), i32x4.shuffle(sc, sc, 1, 1, 1, 1), xb + 64, i32x4.shuffle(ds, ds, 1, 1, 1, 1));
          acc = q6BlockNarrow(acc, q6Quarter2(qlA0, qh0), q6Quarter2(qlA1, qh1), i32x4.shuffle(sc, sc, 2, 2, 2, 2), xb + 128, i32x4.shuffle(ds, ds, 2, 2, 2, 2));
          acc = q6BlockNarrow(acc, q6Quarter3(qlB0, qh0), q6Quarter3(qlB1, qh1), i32x4.shuffle(sc, sc, 3, 3, 3, 3), xb + 192, i32x4.shuffle(ds, ds, 3, 3, 3, 3));
        } else {
          acc = q6BlockMul(acc, q6Quarter0(qlA0, qh0), q6Quarter0(qlA1, qh1), i8x16.shuffle(sc, sc, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1), i8x16.shuffle(sc, sc, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3), xb, i32x4.shuffle(ds, ds, 0, 0, 0, 0));
          acc = q6BlockMul(acc, q6Quarter1(qlB0, qh0), q6Quarter1(qlB1, qh1), i8x16.shuffle(sc, sc, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5), i8x16.shuffle(sc, sc, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7), xb + 64, i32x4.shuffle(ds, ds, 1, 1, 1, 1));
          acc = q6BlockMul(acc, q6Quarter2(qlA0, qh0), q6Quarter2(qlA1, qh1), i8x16.shuffle(sc, sc, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9), i8x16.shuffle(sc, sc, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11), xb + 128, i32x4.shuffle(ds, ds, 2, 2, 2, 2));
          acc = q6BlockMul(acc, q6Quarter3(qlB0, qh0), q6Quarter3(qlB1, qh1), i8x16.shuffle(sc, sc, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13), i8x16.shuffle(sc, sc, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15), xb + 192, i32x4.shuffle(ds, ds, 3, 3, 3, 3));
        }
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

// Sixteen Q6_K values q − 32 (as i8x16) of each quarter of a half, from its ql bytes (A: the
// first 32, for quarters 0 and 2; B: the next 32) and qh bytes. Shifts are 16-bit (8-bit ones are
// emulated on x86); the masks drop the bits that cross a byte.
@inline function q6Quarter0(ql: v128, qh: v128): v128 {
  return i8x16.sub(v128.or(v128.and(ql, i8x16.splat(0x0f)), v128.and(i16x8.shl(qh, 4), i8x16.splat(0x30))), i8x16.splat(32));
}
@inline function q6Quarter1(ql: v128, qh: v128): v128 {
  return i8x16.sub(v128.or(v128.and(ql, i8x16.splat(0x0f)), v128.and(i16x8.shl(qh, 2), i8x16.splat(0x30))), i8x16.splat(32));
}
@inline function q6Quarter2(ql: v128, qh: v128): v128 {
  return i8x16.sub(v128.or(v128.and(i16x8.shr_u(ql, 4), i8x16.splat(0x0f)), v128.and(qh, i8x16.splat(0x30))), i8x16.splat(32));
}
@inline function q6Quarter3(ql: v128, qh: v128): v128 {
  return i8x16.sub(v128.or(v128.and(i16x8.shr_u(ql, 4), i8x16.splat(0x0f)), v128.and(i16x8.shr_u(qh, 2), i8x16.splat(0x30))), i8x16.splat(32));
}

/**
 * One block of 32 Q6_K values (v0: the first 16, sub-block a; v1: the rest, b) against the x16
 * block at x: acc + s·scale, s = sc_a·S_a + sc_b·S_b per lane. The int16 values are multiplied by
 * their scale (scA, scB: splat int16) before the dot (|sc·(q − 32)| ≤ 128·32 fits in int16), which
 * gives the same exact integer sums without i32 multiplies.
 */
@inline function q6BlockMul(acc: v128, v0: v128, v1: v128, scA: v128, scB: v128, x: usize, scale: v128): v128 {
  const s = i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.mul(i16x8.extend_low_i8x16_s(v0), scA), v128.load(x)), i32x4.dot_i16x8_s(i16x8.mul(i16x8.extend_high_i8x16_s(v0), scA), v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.mul(i16x8.extend_low_i8x16_s(v1), scB), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.mul(i16x8.extend_high_i8x16_s(v1), scB), v128.load(x, 48))),
  );
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), scale));
}

/** The same, with S_a and S_b narrowed to int16, interleaved and dotted with (sc_a, sc_b) pairs. */
@inline function q6BlockNarrow(acc: v128, v0: v128, v1: v128, pair: v128, x: usize, scale: v128): v128 {
  const sa = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), v128.load(x, 16)));
  const sb = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), v128.load(x, 48)));
  const p = i16x8.narrow_i32x4_s(sa, sb);
  const s = i32x4.dot_i16x8_s(i8x16.shuffle(p, p, 0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15), pair);
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), scale));
}

// Several tokens through the matvec kernels, a tile of rows (~64 KiB) at a time, as matvec.ts does
// for small batches; prefill uses gemmQ4_K / gemmQ6_K.
@inline function tileRowsK(rowBytes: usize): i32 {
  const rows = <i32>(<usize>65536 / rowBytes);
  return rows < 4 ? 4 : rows & ~3;
}

export function matmulQ4_K(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRowsK(<usize>(k >> 8) * 144);
  const nb = <usize>(k >> 5);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) {
      matvecQ4_K(w, x16 + (<usize>t * k << 1), xd + (<usize>t * nb << 2), xt + (<usize>t * nb << 2), out + (<usize>t * n << 2), k, rb, re);
    }
  }
}

export function matmulQ6_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRowsK(<usize>(k >> 8) * 210);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecQ6_K(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}
