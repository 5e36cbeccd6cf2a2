// Matrix-matrix kernels for prefill and batched decode: out[t, r] = Σ_i w[r, i] · x[t, i] for many
// tokens t at once. A tile of weight rows is unpacked once into this thread's scratch (f32, or
// int16 values plus block scales for the quantized types) and then every token runs over it, in
// register blocks of 4 rows × 2 tokens, so the per-element cost of decoding the stored format is
// paid once per tile instead of once per token.
//
// Every output follows the same arithmetic as the matvec kernel of its dtype (the canonical f32
// dot, or the per-block integer dot), so a token's result is bit-identical whether it ran alone
// through matvec or in a batch through gemm: a sequence's greedy tokens never depend on its company.
import { bf16Even, bf16Odd, f16Even, f16Odd, finiteF16At, hsum, madd, q4kMinsF32, q4kScalesMins, q6Values } from './common';
import { scratch, scratchBytes } from './scratch';

/** Rows per tile: as many as fit 64 KiB (measured best on 2048×5632, 128 tokens: the tile and a token pair stay close to the core), a multiple of 4, at least 4. */
@inline function tileRows(rowBytes: usize): i32 {
  const fit = <i32>(min<usize>(scratchBytes, 65536) / rowBytes) & ~3;
  return fit < 4 ? 4 : fit;
}

// ---------------------------------------------------------------------------------------------
// f32 tiles (F32 weights in place; F16 and BF16 unpacked): the canonical f32 dot (matvec.ts).

/** The canonical f32 dot of one row and one token. */
@inline function dot1(a: usize, x: usize, k: i32): f32 {
  const k4 = k & ~3;
  let s = f32x4.splat(0);
  for (let i = 0; i < k4; i += 4) s = madd(s, v128.load(a + (<usize>i << 2)), v128.load(x + (<usize>i << 2)));
  let t = hsum(s);
  for (let i = k4; i < k; i++) t += load<f32>(a + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
  return t;
}

/**
 * out[t·n + r] for rows [0, rows) of an f32 tile (row stride ws bytes) and tokens [0, nTok) of x
 * (row stride xs bytes); `out` points at the tile's first output column.
 */
function gemmTileF32(w: usize, ws: usize, rows: i32, x: usize, xs: usize, nTok: i32, k: i32, out: usize, n: i32): void {
  const k4 = k & ~3;
  const os = <usize>n << 2;
  let t = 0;
  for (; t + 2 <= nTok; t += 2) {
    const x0 = x + <usize>t * xs, x1 = x0 + xs;
    const o0 = out + <usize>t * os, o1 = o0 + os;
    let r = 0;
    for (; r + 4 <= rows; r += 4) {
      const a = w + <usize>r * ws, b = a + ws, c = b + ws, d = c + ws;
      let a0 = f32x4.splat(0), b0 = f32x4.splat(0), c0 = f32x4.splat(0), d0 = f32x4.splat(0);
      let a1 = f32x4.splat(0), b1 = f32x4.splat(0), c1 = f32x4.splat(0), d1 = f32x4.splat(0);
      for (let i = 0; i < k4; i += 4) {
        const o = <usize>i << 2;
        const xa = v128.load(x0 + o), xb = v128.load(x1 + o);
        const wa = v128.load(a + o), wb = v128.load(b + o), wc = v128.load(c + o), wd = v128.load(d + o);
        a0 = madd(a0, wa, xa); a1 = madd(a1, wa, xb);
        b0 = madd(b0, wb, xa); b1 = madd(b1, wb, xb);
        c0 = madd(c0, wc, xa); c1 = madd(c1, wc, xb);
        d0 = madd(d0, wd, xa); d1 = madd(d1, wd, xb);
      }
      let ta0 = hsum(a0), tb0 = hsum(b0), tc0 = hsum(c0), td0 = hsum(d0);
      let ta1 = hsum(a1), tb1 = hsum(b1), tc1 = hsum(c1), td1 = hsum(d1);
      for (let i = k4; i < k; i++) {
        const o = <usize>i << 2;
        const xa = load<f32>(x0 + o), xb = load<f32>(x1 + o);
        const wa = load<f32>(a + o), wb = load<f32>(b + o), wc = load<f32>(c + o), wd = load<f32>(d + o);
        ta0 += wa * xa; tb0 += wb * xa; tc0 += wc * xa; td0 += wd * xa;
        ta1 += wa * xb; tb1 += wb * xb; tc1 += wc * xb; td1 += wd * xb;
      }
      const p0 = o0 + (<usize>r << 2), p1 = o1 + (<usize>r << 2);
      store<f32>(p0, ta0); store<f32>(p0, tb0, 4); store<f32>(p0, tc0, 8); store<f32>(p0, td0, 12);
      store<f32>(p1, ta1); store<f32>(p1, tb1, 4); store<f32>(p1, tc1, 8); store<f32>(p1, td1, 12);
    }
    for (; r < rows; r++) {
      const a = w + <usize>r * ws;
      store<f32>(o0 + (<usize>r << 2), dot1(a, x0, k));
      store<f32>(o1 + (<usize>r << 2), dot1(a, x1, k));
    }
  }
  for (; t < nTok; t++) {
    const xt = x + <usize>t * xs, ot = out + <usize>t * os;
    for (let r = 0; r < rows; r++) store<f32>(ot + (<usize>r << 2), dot1(w + <usize>r * ws, xt, k));
  }
}

/** F32 weights need no unpacking: tiles are read in place. x [nTok, k] f32 → out [nTok, n]. */
export function gemmF32(w: usize, x: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const ws = <usize>k << 2;
  const tile = tileRows(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    gemmTileF32(w + <usize>rb * ws, ws, rows, x, ws, nTok, k, out + (<usize>rb << 2), n);
  }
}

/**
 * F16 (or BF16) weights [n, k] (k a multiple of 8), unpacked to f32 tile by tile in the permuted
 * order the matvec kernels read them in (per 8: even elements, then odd); xp is x permuted the
 * same way (permuteX). The dtype test is per tile row, outside the unpacking loop.
 */
function gemmPairs(w: usize, xp: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32, bf16: bool): void {
  const src = <usize>k << 1, ws = <usize>k << 2;
  const tile = tileRows(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) {
      const a = w + <usize>(rb + r) * src, dst = scratch + <usize>r * ws;
      if (bf16) {
        for (let i = 0; i < k; i += 8) {
          const raw = v128.load(a + (<usize>i << 1)), o = dst + (<usize>i << 2);
          v128.store(o, bf16Even(raw)); v128.store(o, bf16Odd(raw), 16);
        }
      } else {
        for (let i = 0; i < k; i += 8) {
          const raw = v128.load(a + (<usize>i << 1)), o = dst + (<usize>i << 2);
          v128.store(o, f16Even(raw)); v128.store(o, f16Odd(raw), 16);
        }
      }
    }
    gemmTileF32(scratch, ws, rows, xp, ws, nTok, k, out + (<usize>rb << 2), n);
  }
}

export function gemmF16(w: usize, xp: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmPairs(w, xp, out, k, n, nTok, r0, r1, false);
}

export function gemmBF16(w: usize, xp: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmPairs(w, xp, out, k, n, nTok, r0, r1, true);
}

// ---------------------------------------------------------------------------------------------
// Block-quantized tiles (Q8_0, Q4_0): each row unpacked to [k] int16 values followed by [k/32]
// f32 block scales; x is the 8-bit quantized activation as int16 (quantizeRowsQ8). Per block: an exact integer dot on i32x4.dot_i16x8_s, then acc += s · (dw · dx) —
// the same lanes and the same f32 operations as matvecQ8_0 / matvecQ4_0.

/** Σ over one block of 32 int16 pairs, as i32x4 lanes (lane j: elements 2j, 2j+1 of each 8). */
@inline function blockDot(w: usize, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(v128.load(w), v128.load(x)), i32x4.dot_i16x8_s(v128.load(w, 16), v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(v128.load(w, 32), v128.load(x, 32)), i32x4.dot_i16x8_s(v128.load(w, 48), v128.load(x, 48))),
  );
}

/** One row · one token: Σ_blocks convert(s) · (dw · dx), lanes summed at the end. */
@inline function qdot1(a: usize, as: usize, x: usize, xd: usize, nb: i32): f32 {
  let acc = f32x4.splat(0);
  for (let b = 0; b < nb; b++) {
    const s = blockDot(a + (<usize>b << 6), x + (<usize>b << 6));
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(load<f32>(as + (<usize>b << 2)) * load<f32>(xd + (<usize>b << 2)))));
  }
  return hsum(acc);
}

/**
 * Quantized tile: rows at w with stride ws bytes ([k] int16 then [k/32] f32 scales); tokens at x16
 * ([nTok, k] int16) with scales xd ([nTok, k/32] f32). Register blocks of 4 rows × 2 tokens; each block's
 * eight integer sums stay in registers over its four 8-lane steps (twice the speed of 2 × 2 blocks
 * that summed each pair's block separately). Exported for the other quantized kernel files
 * (legacy.ts), which unpack their blocks into the same layout. Written as loops (blocks, and the
 * four 8-lane steps of a block) with pointers advanced per block: V8 keeps the eight integer sums,
 * both x vectors and the row vector in registers through the step loop; unrolled steps had their
 * loads hoisted ahead of the dots by TurboFan and spilled (13.7 against 16.4 G multiply-adds/s).
 */
export function gemmTileQ(w: usize, ws: usize, rows: i32, x16: usize, xd: usize, nTok: i32, k: i32, out: usize, n: i32): void {
  const nb = k >> 5;
  const xs = <usize>k << 1, ds = <usize>nb << 2, os = <usize>n << 2, scales = <usize>k << 1;
  let t = 0;
  for (; t + 2 <= nTok; t += 2) {
    const x0 = x16 + <usize>t * xs, x1 = x0 + xs, d0 = xd + <usize>t * ds, d1 = d0 + ds;
    const o0 = out + <usize>t * os, o1 = o0 + os;
    let r = 0;
    for (; r + 4 <= rows; r += 4) {
      const a = w + <usize>r * ws;
      let pa = a, pb = a + ws, pc = pb + ws, pd = pc + ws, qa = x0, qb = x1;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), b0 = f32x4.splat(0), b1 = f32x4.splat(0);
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0), e0 = f32x4.splat(0), e1 = f32x4.splat(0);
      for (let blk = 0; blk < nb; blk++) {
        let sa0 = i32x4.splat(0), sa1 = i32x4.splat(0), sb0 = i32x4.splat(0), sb1 = i32x4.splat(0);
        let sc0 = i32x4.splat(0), sc1 = i32x4.splat(0), sd0 = i32x4.splat(0), sd1 = i32x4.splat(0);
        for (let j: usize = 0; j < 64; j += 16) {
          const xa = v128.load(qa + j), xb = v128.load(qb + j);
          let wv = v128.load(pa + j);
          sa0 = i32x4.add(sa0, i32x4.dot_i16x8_s(wv, xa)); sa1 = i32x4.add(sa1, i32x4.dot_i16x8_s(wv, xb));
          wv = v128.load(pb + j);
          sb0 = i32x4.add(sb0, i32x4.dot_i16x8_s(wv, xa)); sb1 = i32x4.add(sb1, i32x4.dot_i16x8_s(wv, xb));
          wv = v128.load(pc + j);
          sc0 = i32x4.add(sc0, i32x4.dot_i16x8_s(wv, xa)); sc1 = i32x4.add(sc1, i32x4.dot_i16x8_s(wv, xb));
          wv = v128.load(pd + j);
          sd0 = i32x4.add(sd0, i32x4.dot_i16x8_s(wv, xa)); sd1 = i32x4.add(sd1, i32x4.dot_i16x8_s(wv, xb));
        }
        const so = <usize>blk << 2, xda = load<f32>(d0 + so), xdb = load<f32>(d1 + so);
        let sw = load<f32>(a + scales + so);
        a0 = f32x4.add(a0, f32x4.mul(f32x4.convert_i32x4_s(sa0), f32x4.splat(sw * xda)));
        a1 = f32x4.add(a1, f32x4.mul(f32x4.convert_i32x4_s(sa1), f32x4.splat(sw * xdb)));
        sw = load<f32>(a + ws + scales + so);
        b0 = f32x4.add(b0, f32x4.mul(f32x4.convert_i32x4_s(sb0), f32x4.splat(sw * xda)));
        b1 = f32x4.add(b1, f32x4.mul(f32x4.convert_i32x4_s(sb1), f32x4.splat(sw * xdb)));
        sw = load<f32>(a + 2 * ws + scales + so);
        c0 = f32x4.add(c0, f32x4.mul(f32x4.convert_i32x4_s(sc0), f32x4.splat(sw * xda)));
        c1 = f32x4.add(c1, f32x4.mul(f32x4.convert_i32x4_s(sc1), f32x4.splat(sw * xdb)));
        sw = load<f32>(a + 3 * ws + scales + so);
        e0 = f32x4.add(e0, f32x4.mul(f32x4.convert_i32x4_s(sd0), f32x4.splat(sw * xda)));
        e1 = f32x4.add(e1, f32x4.mul(f32x4.convert_i32x4_s(sd1), f32x4.splat(sw * xdb)));
        pa += 64; pb += 64; pc += 64; pd += 64; qa += 64; qb += 64;
      }
      const p0 = o0 + (<usize>r << 2), p1 = o1 + (<usize>r << 2);
      store<f32>(p0, hsum(a0)); store<f32>(p0, hsum(b0), 4); store<f32>(p0, hsum(c0), 8); store<f32>(p0, hsum(e0), 12);
      store<f32>(p1, hsum(a1)); store<f32>(p1, hsum(b1), 4); store<f32>(p1, hsum(c1), 8); store<f32>(p1, hsum(e1), 12);
    }
    for (; r < rows; r++) {
      const a = w + <usize>r * ws;
      store<f32>(o0 + (<usize>r << 2), qdot1(a, a + scales, x0, d0, nb));
      store<f32>(o1 + (<usize>r << 2), qdot1(a, a + scales, x1, d1, nb));
    }
  }
  for (; t < nTok; t++) {
    const xt = x16 + <usize>t * xs, dt = xd + <usize>t * ds, ot = out + <usize>t * os;
    for (let r = 0; r < rows; r++) {
      const a = w + <usize>r * ws;
      store<f32>(ot + (<usize>r << 2), qdot1(a, a + scales, xt, dt, nb));
    }
  }
}

/** A block's 32 int8 values (as two i8x16, in element order) as four int16x8 at o. */
@inline function storeWidened(o: usize, lo: v128, hi: v128): void {
  v128.store(o, i16x8.extend_low_i8x16_s(lo)); v128.store(o, i16x8.extend_high_i8x16_s(lo), 16);
  v128.store(o, i16x8.extend_low_i8x16_s(hi), 32); v128.store(o, i16x8.extend_high_i8x16_s(hi), 48);
}

/**
 * Q8_0 (34-byte blocks: f16 scale, 32 int8) or Q4_0 (18-byte blocks: f16 scale, 16 bytes of
 * nibbles, element j low and j + 16 high; value = nibble − 8) weights [n, k], unpacked tile by
 * tile to int16 values and f32 scales; x as quantizeRowsQ8 leaves it.
 */
function gemmBlocks(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32, q4: bool): void {
  const nb = k >> 5, blockBytes: usize = q4 ? 18 : 34;
  const src = <usize>nb * blockBytes, ws = (<usize>k << 1) + (<usize>nb << 2);
  const low = i8x16.splat(0x0f), eight = i8x16.splat(8);
  const tile = tileRows(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) {
      const a = w + <usize>(rb + r) * src, dst = scratch + <usize>r * ws, scales = dst + (<usize>k << 1);
      for (let b = 0; b < nb; b++) {
        const blk = a + <usize>b * blockBytes, o = dst + (<usize>b << 6);
        if (q4) {
          const packed = v128.load(blk, 2);
          storeWidened(o, i8x16.sub(v128.and(packed, low), eight), i8x16.sub(i8x16.shr_u(packed, 4), eight));
        } else {
          storeWidened(o, v128.load(blk, 2), v128.load(blk, 18));
        }
        store<f32>(scales + (<usize>b << 2), finiteF16At(blk));
      }
    }
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, out + (<usize>rb << 2), n);
  }
}

export function gemmQ8_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmBlocks(w, x16, xd, out, k, n, nTok, r0, r1, false);
}

export function gemmQ4_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  gemmBlocks(w, x16, xd, out, k, n, nTok, r0, r1, true);
}

// ---------------------------------------------------------------------------------------------
// K-quant tiles, for gemmTileQ: Q4_K rows as [k] int16 values q with [k/32] f32 scales d·sc_j (its
// sub-blocks are the x blocks of 32), then [k/32] f32 mins dmin·m_j for the min term; Q6_K rows,
// whose sub-blocks of 16 have scales of their own, as sc·(q − 32) (at most 128·32 in magnitude)
// with the super-block's d as every block's scale. Each is matvecQ4_K's / matvecQ6_K's arithmetic.

/** i16x8 lanes of the u8 (or i8, signed) half of v, times the integer scale s. */
@inline function scaledLow(v: v128, s: i32, signed: bool): v128 {
  return i16x8.mul(signed ? i16x8.extend_low_i8x16_s(v) : i16x8.extend_low_i8x16_u(v), i16x8.splat(<i16>s));
}
@inline function scaledHigh(v: v128, s: i32, signed: bool): v128 {
  return i16x8.mul(signed ? i16x8.extend_high_i8x16_s(v) : i16x8.extend_high_i8x16_u(v), i16x8.splat(<i16>s));
}

/** Row `a` of a Q4_K matrix (k/256 super-blocks of 144 bytes) unpacked at dst: values q, d·sc per block, dmin·m per block. */
function unpackQ4_K(a: usize, dst: usize, k: i32): void {
  const nb = k >> 5;
  const scales = dst + (<usize>k << 1), mins = scales + (<usize>nb << 2);
  for (let sb = 0; sb < (k >> 8); sb++) {
    const blk = a + <usize>sb * 144;
    const d = finiteF16At(blk), dmin = f32x4.splat(finiteF16At(blk + 2));
    const sm = q4kScalesMins(blk + 4);
    for (let c = 0; c < 4; c++) {
      const q0 = v128.load(blk + 16 + (<usize>c << 5)), q1 = v128.load(blk + 16 + (<usize>c << 5), 16);
      const o = dst + (<usize>sb << 9) + (<usize>c << 7); // sub-block 2c at element 64c, 2c + 1 right after
      storeNibbles(o, v128.and(q0, i8x16.splat(0x0f)), v128.and(q1, i8x16.splat(0x0f)));
      storeNibbles(o + 64, v128.and(i16x8.shr_u(q0, 4), i8x16.splat(0x0f)), v128.and(i16x8.shr_u(q1, 4), i8x16.splat(0x0f)));
    }
    const sc = scales + (<usize>sb << 5);
    store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 0)); store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 1), 4);
    store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 2), 8); store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 3), 12);
    store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 8), 16); store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 9), 20);
    store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 10), 24); store<f32>(sc, d * <f32>i8x16.extract_lane_u(sm, 11), 28);
    v128.store(mins + (<usize>sb << 5), f32x4.mul(dmin, q4kMinsF32(sm, false)));
    v128.store(mins + (<usize>sb << 5), f32x4.mul(dmin, q4kMinsF32(sm, true)), 16);
  }
}

/** 32 unsigned nibble values (two u8x16) as int16 at o. */
@inline function storeNibbles(o: usize, lo: v128, hi: v128): void {
  v128.store(o, i16x8.extend_low_i8x16_u(lo)); v128.store(o, i16x8.extend_high_i8x16_u(lo), 16);
  v128.store(o, i16x8.extend_low_i8x16_u(hi), 32); v128.store(o, i16x8.extend_high_i8x16_u(hi), 48);
}

/** Row `a` of a Q6_K matrix (k/256 super-blocks of 210 bytes) unpacked at dst: values, then d per block. */
function unpackQ6_K(a: usize, dst: usize, k: i32): void {
  const scales = dst + (<usize>k << 1);
  for (let sb = 0; sb < (k >> 8); sb++) {
    const blk = a + <usize>sb * 210;
    const d = finiteF16At(blk + 208);
    for (let j = 0; j < 8; j++) { // as matvecQ6_K
      const half = j >> 2, quarter = j & 3;
      const ql = blk + (<usize>half << 6) + (<usize>(quarter & 1) << 5), qh = blk + 128 + (<usize>half << 5);
      const b = (sb << 3) + j;
      unpackQ6Block(dst + (<usize>b << 6), q6Values(v128.load(ql), v128.load(qh), quarter), q6Values(v128.load(ql, 16), v128.load(qh, 16), quarter), blk + 192 + (<usize>j << 1));
      store<f32>(scales + (<usize>b << 2), d);
    }
  }
}

/** 32 Q6_K values (two i8x16) times their sub-block scales (int8 at sc, sc + 1), as int16 at o. */
@inline function unpackQ6Block(o: usize, v0: v128, v1: v128, sc: usize): void {
  const sa = <i32>load<i8>(sc), sb = <i32>load<i8>(sc, 1);
  v128.store(o, scaledLow(v0, sa, true)); v128.store(o, scaledHigh(v0, sa, true), 16);
  v128.store(o, scaledLow(v1, sb, true), 32); v128.store(o, scaledHigh(v1, sb, true), 48);
}

/** Q4_K weights [n, k] (k a multiple of 256); xt as blockSumsQ8 leaves it ([nTok, k/32]). */
export function gemmQ4_K(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const src = <usize>(k >> 8) * 144, ws = (<usize>k << 1) + (<usize>nb << 3);
  const mins = (<usize>k << 1) + (<usize>nb << 2);
  const tile = tileRows(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) unpackQ4_K(w + <usize>(rb + r) * src, scratch + <usize>r * ws, k);
    const o = out + (<usize>rb << 2);
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, o, n);
    subtractTileMins(scratch, ws, mins, rows, xt, nTok, k, o, n);
  }
}

/**
 * The K-quant min term of a tile (Q4_K here, Q5_K in kquants-235.ts), as their matvec kernels
 * subtract it: out[t, r] −= Σ over four blocks at a time of (dmin·m)·xt, lanes summed last. The
 * tile's rows (stride ws) hold [k/32] f32 mins at byte `mins`; xt is [nTok, k/32] (blockSumsQ8).
 */
export function subtractTileMins(tile: usize, ws: usize, mins: usize, rows: i32, xt: usize, nTok: i32, k: i32, out: usize, n: i32): void {
  const nb = k >> 5;
  for (let t = 0; t < nTok; t++) {
    const xtt = xt + (<usize>t * <usize>nb << 2), ot = out + (<usize>t * <usize>n << 2);
    for (let r = 0; r < rows; r++) {
      const m = tile + <usize>r * ws + mins;
      let minv = f32x4.splat(0);
      for (let b = 0; b < nb; b += 4) minv = f32x4.add(minv, f32x4.mul(v128.load(m + (<usize>b << 2)), v128.load(xtt + (<usize>b << 2))));
      const p = ot + (<usize>r << 2);
      store<f32>(p, load<f32>(p) - hsum(minv));
    }
  }
}

/** Q6_K weights [n, k] (k a multiple of 256). */
export function gemmQ6_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const src = <usize>(k >> 8) * 210, ws = (<usize>k << 1) + (<usize>nb << 2);
  const tile = tileRows(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) unpackQ6_K(w + <usize>(rb + r) * src, scratch + <usize>r * ws, k);
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, out + (<usize>rb << 2), n);
  }
}
