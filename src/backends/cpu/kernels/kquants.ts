// Matrix-vector kernels for ggml's K-quants (super-blocks of 256; layouts in src/quant/q4_k.ts
// and q6_k.ts), against x quantized to 8-bit blocks of 32 as int16 (quantizeRowsQ8), as for
// Q8_0/Q4_0: integer dots on i32x4.dot_i16x8_s, each block of 32 scaled once in f32 — the
// arithmetic the gemm kernels (gemm.ts) reproduce from unpacked tiles, so decode and prefill agree
// bit for bit.
import { finiteF16At, hsum, q4kMinsF32, q4kScalesMins, q6Values } from './common';

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

/** Σ of 32 unsigned 4-bit values (two u8x16) times the four x16 vectors of a block, as i32x4 lanes. */
@inline function nibbleDot(lo: v128, hi: v128, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), v128.load(x, 48))),
  );
}

/**
 * out[r] for rows [r0, r1) of a Q4_K matrix [n, k] (k a multiple of 256). Sub-block j of 32 decodes
 * as d·sc_j·q − dmin·m_j, so with S_j = Σ q·xq (exact) and xt_j = dx_j·Σ xq (blockSumsQ8):
 * out = Σ_j S_j·((d·sc_j)·dx_j) − Σ_j (dmin·m_j)·xt_j, the first sum in an f32x4 over S's lanes,
 * the second in an f32x4 over four sub-blocks at a time, each summed across lanes at the end.
 */
export function matvecQ4_K(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 144;
  let r = r0;
  // Two rows per pass share the x loads (nibbleDot's loads of one x block are common subexpressions).
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, e = a + rowBytes;
    let accA = f32x4.splat(0), minA = f32x4.splat(0), accE = f32x4.splat(0), minE = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const ba = a + <usize>sb * 144, be = e + <usize>sb * 144;
      const xb = x16 + (<usize>sb << 9), xdb = xd + (<usize>sb << 5), xtb = xt + (<usize>sb << 5);
      accA = q4kSuperBlock(accA, ba, xb, xdb);
      accE = q4kSuperBlock(accE, be, xb, xdb);
      minA = q4kMinTerm(minA, ba, xtb);
      minE = q4kMinTerm(minE, be, xtb);
    }
    store<f32>(out + (<usize>r << 2), hsum(accA) - hsum(minA));
    store<f32>(out + (<usize>r << 2), hsum(accE) - hsum(minE), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0), minv = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 144;
      acc = q4kSuperBlock(acc, blk, x16 + (<usize>sb << 9), xd + (<usize>sb << 5));
      minv = q4kMinTerm(minv, blk, xt + (<usize>sb << 5));
    }
    store<f32>(out + (<usize>r << 2), hsum(acc) - hsum(minv));
  }
}

/**
 * The super-block at blk against its 8 x blocks (x16 at xb, scales at xdb): acc + Σ_j S_j·((d·sc_j)·dx_j),
 * in j order. A loop, not unrolled: two rows of unrolled chunks spill registers.
 */
@inline function q4kSuperBlock(acc: v128, blk: usize, xb: usize, xdb: usize): v128 {
  const d = finiteF16At(blk);
  const sm = q4kScalesMins(blk + 4);
  // Scales of sub-blocks 0–3 are bytes 0–3 of the low half, of 4–7 bytes 0–3 of the high half.
  const low = <u64>i64x2.extract_lane(sm, 0), high = <u64>i64x2.extract_lane(sm, 1);
  for (let c = 0; c < 4; c++) {
    const pair = <u32>((c < 2 ? low : high) >> (<u64>(c & 1) << 4));
    const o = <usize>c;
    acc = q4kChunk(acc, blk + 16 + (o << 5), xb + (o << 7),
      d * <f32>(pair & 0xff) * load<f32>(xdb + (o << 3)), d * <f32>((pair >> 8) & 0xff) * load<f32>(xdb + (o << 3), 4));
  }
  return acc;
}

/** 32 bytes of Q4_K nibbles at q (low: one sub-block, high: the next) against two x blocks at xb: acc + S·scale per sub-block. */
@inline function q4kChunk(acc: v128, q: usize, xb: usize, scale0: f32, scale1: f32): v128 {
  const q0 = v128.load(q), q1 = v128.load(q, 16);
  const s0 = nibbleDot(v128.and(q0, i8x16.splat(0x0f)), v128.and(q1, i8x16.splat(0x0f)), xb);
  const s1 = nibbleDot(v128.and(i16x8.shr_u(q0, 4), i8x16.splat(0x0f)), v128.and(i16x8.shr_u(q1, 4), i8x16.splat(0x0f)), xb + 64);
  const a = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s0), f32x4.splat(scale0)));
  return f32x4.add(a, f32x4.mul(f32x4.convert_i32x4_s(s1), f32x4.splat(scale1)));
}

/** minv + (dmin·m_0..3)·xt_0..3 + (dmin·m_4..7)·xt_4..7 for the super-block at blk, xt at xtb. */
@inline function q4kMinTerm(minv: v128, blk: usize, xtb: usize): v128 {
  const dmin = f32x4.splat(finiteF16At(blk + 2));
  const sm = q4kScalesMins(blk + 4);
  minv = f32x4.add(minv, f32x4.mul(f32x4.mul(dmin, q4kMinsF32(sm, false)), v128.load(xtb)));
  return f32x4.add(minv, f32x4.mul(f32x4.mul(dmin, q4kMinsF32(sm, true)), v128.load(xtb, 16)));
}

/**
 * out[r] for rows [r0, r1) of a Q6_K matrix [n, k] (k a multiple of 256): sub-blocks of 16 decode
 * as d·sc_j·(q − 32) with int8 sc_j; per block of 32, s = sc_a·Σ_a (q − 32)·xq + sc_b·Σ_b … (exact
 * integers) and acc += s·(d·dx).
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
        // Elements 32·quarter + l of this half: ql[l] (quarters 0, 2) or ql[l + 32] (1, 3), low
        // nibble (0, 1) or high (2, 3); high bits at bit pair `quarter` of qh[l]. Quarters are
        // unrolled so that every shift is by a constant.
        const ql = blk + (<usize>half << 6), qh = blk + 128 + (<usize>half << 5), sc = blk + 192 + (<usize>half << 3);
        const xi = (sb << 3) + (half << 2);
        const qlA0 = v128.load(ql), qlA1 = v128.load(ql, 16), qlB0 = v128.load(ql, 32), qlB1 = v128.load(ql, 48);
        const qh0 = v128.load(qh), qh1 = v128.load(qh, 16);
        acc = q6Block(acc, q6Values(qlA0, qh0, 0), q6Values(qlA1, qh1, 0), sc, x16 + (<usize>xi << 6), d * load<f32>(xd + (<usize>xi << 2)));
        acc = q6Block(acc, q6Values(qlB0, qh0, 1), q6Values(qlB1, qh1, 1), sc + 2, x16 + (<usize>(xi + 1) << 6), d * load<f32>(xd + (<usize>xi << 2), 4));
        acc = q6Block(acc, q6Values(qlA0, qh0, 2), q6Values(qlA1, qh1, 2), sc + 4, x16 + (<usize>(xi + 2) << 6), d * load<f32>(xd + (<usize>xi << 2), 8));
        acc = q6Block(acc, q6Values(qlB0, qh0, 3), q6Values(qlB1, qh1, 3), sc + 6, x16 + (<usize>(xi + 3) << 6), d * load<f32>(xd + (<usize>xi << 2), 12));
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

/** One block of 32 Q6_K values (v0: the first 16, v1: the rest; int8 scales at sc, sc + 1) against x: acc + s·scale. */
@inline function q6Block(acc: v128, v0: v128, v1: v128, sc: usize, x: usize, scale: f32): v128 {
  const sa = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v0), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v0), v128.load(x, 16)));
  const sb = i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v1), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v1), v128.load(x, 48)));
  const s = i32x4.add(i32x4.mul(sa, i32x4.splat(<i32>load<i8>(sc))), i32x4.mul(sb, i32x4.splat(<i32>load<i8>(sc, 1))));
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(scale)));
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
