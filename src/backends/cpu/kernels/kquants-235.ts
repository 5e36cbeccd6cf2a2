// Matrix-vector and matrix-matrix kernels for ggml's Q5_K, Q3_K and Q2_K (layouts in
// src/quant/q5_k.ts, q3_k.ts, q2_k.ts), against x quantized to 8-bit blocks of 32 as int16
// (quantizeRowsQ8), as the Q4_K / Q6_K kernels (kquants.ts) do. Per block of 32: an exact integer
// dot in i32x4 lanes (lane i: elements 2i, 2i + 1 of each 8), converted and scaled once in f32.
// The gemm kernels unpack a tile of rows to int16 values whose lane sums are the same integers and
// run gemmTileQ, whose f32 operations are the matvec kernels' in the same order: decode and prefill
// agree bit for bit.
//   Q5_K: as Q4_K (values 0..31; mins against xt = dx·Σ xq per block, blockSumsQ8).
//   Q3_K: as Q6_K (signed sub-block scales of 16 folded into the integer sum; one d per block).
//   Q2_K: the scales as Q3_K's; its mins (per 16) as a second lane sum M = m_a·Σ_a xq + m_b·Σ_b xq
//         scaled by dmin·dx: out = Σ S·(d·dx) − Σ M·(dmin·dx), each sum in its own f32x4.
import { finiteF16At, hsum, q4kMinsF32, q4kScalesMins } from './common';
import { gemmTileQ, subtractTileMins } from './gemm';
import { scratch, scratchBytes } from './scratch';

// ---------------------------------------------------------------------------------------------
// Shared pieces.

/** Σ of 32 u8 values (two u8x16) times the four x16 vectors of a block, as i32x4 lanes. */
@inline function u8Dot(lo: v128, hi: v128, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(lo), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(lo), v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_u(hi), v128.load(x, 32)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_u(hi), v128.load(x, 48))),
  );
}

/** Σ of 16 i8 values times the two x16 vectors at x, as i32x4 lanes. */
@inline function i8Dot16(v: v128, x: usize): v128 {
  return i32x4.add(i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), v128.load(x)), i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), v128.load(x, 16)));
}

/** Σ of the 16 x16 values at x, as i32x4 lanes (lane i: elements 2i, 2i + 1 of each 8). */
@inline function xSum16(x: usize): v128 {
  return i32x4.extadd_pairwise_i16x8_s(i16x8.add(v128.load(x), v128.load(x, 16)));
}

/** acc + convert(s)·scale. */
@inline function scaled(acc: v128, s: v128, scale: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(scale)));
}

/** Rows per tile of the multi-token matvec loops: ~64 KiB of stored rows, a multiple of 4. */
@inline function tileRowsK(rowBytes: usize): i32 {
  const rows = <i32>(<usize>65536 / rowBytes);
  return rows < 4 ? 4 : rows & ~3;
}

/** Rows per gemm tile of unpacked rows (ws bytes each) in this thread's scratch, as gemm.ts's tileRows. */
@inline function gemmTileRows(ws: usize): i32 {
  const fit = <i32>(min<usize>(scratchBytes, 65536) / ws) & ~3;
  return fit < 4 ? 4 : fit;
}

/** 32 u8 values (two u8x16) as int16 at o. */
@inline function storeU8(o: usize, lo: v128, hi: v128): void {
  v128.store(o, i16x8.extend_low_i8x16_u(lo)); v128.store(o, i16x8.extend_high_i8x16_u(lo), 16);
  v128.store(o, i16x8.extend_low_i8x16_u(hi), 32); v128.store(o, i16x8.extend_high_i8x16_u(hi), 48);
}

/** 16 values (i8x16, signed when `signed`) times the integer scale s, as int16 at o. */
@inline function storeScaled16(o: usize, v: v128, s: i32, signed: bool): void {
  const m = i16x8.splat(<i16>s);
  v128.store(o, i16x8.mul(signed ? i16x8.extend_low_i8x16_s(v) : i16x8.extend_low_i8x16_u(v), m));
  v128.store(o, i16x8.mul(signed ? i16x8.extend_high_i8x16_s(v) : i16x8.extend_high_i8x16_u(v), m), 16);
}

// ---------------------------------------------------------------------------------------------
// Q5_K: 176-byte super-blocks [d, dmin, 12 scale bytes, qh 32, qs 128].

/** 32 Q5_K values of sub-block 2c (low nibbles of q0, q1) or 2c + 1 (high), with their 5th bits from qh. */
@inline function q5Low(q: v128, qh: v128, bit: i32): v128 {
  return v128.or(v128.and(q, i8x16.splat(0x0f)), i16x8.shl(v128.and(i16x8.shr_u(qh, bit), i8x16.splat(1)), 4));
}
@inline function q5High(q: v128, qh: v128, bit: i32): v128 {
  return v128.or(v128.and(i16x8.shr_u(q, 4), i8x16.splat(0x0f)), i16x8.shl(v128.and(i16x8.shr_u(qh, bit), i8x16.splat(1)), 4));
}

/** The super-block at blk against its 8 x blocks: acc + Σ_j S_j·((d·sc_j)·dx_j), in j order. */
@inline function q5kSuperBlock(acc: v128, blk: usize, xb: usize, xdb: usize): v128 {
  const d = finiteF16At(blk);
  const sm = q4kScalesMins(blk + 4);
  const low = <u64>i64x2.extract_lane(sm, 0), high = <u64>i64x2.extract_lane(sm, 1);
  const qh0 = v128.load(blk + 16), qh1 = v128.load(blk + 32);
  for (let c = 0; c < 4; c++) {
    const pair = <u32>((c < 2 ? low : high) >> (<u64>(c & 1) << 4));
    const o = <usize>c;
    const q0 = v128.load(blk + 48 + (o << 5)), q1 = v128.load(blk + 48 + (o << 5), 16);
    const s0 = u8Dot(q5Low(q0, qh0, 2 * c), q5Low(q1, qh1, 2 * c), xb + (o << 7));
    const s1 = u8Dot(q5High(q0, qh0, 2 * c + 1), q5High(q1, qh1, 2 * c + 1), xb + (o << 7) + 64);
    acc = scaled(acc, s0, d * <f32>(pair & 0xff) * load<f32>(xdb + (o << 3)));
    acc = scaled(acc, s1, d * <f32>((pair >> 8) & 0xff) * load<f32>(xdb + (o << 3), 4));
  }
  return acc;
}

/** minv + (dmin·m_0..3)·xt_0..3 + (dmin·m_4..7)·xt_4..7 (Q4_K's header layout). */
@inline function kMinTerm(minv: v128, blk: usize, xtb: usize): v128 {
  const dmin = f32x4.splat(finiteF16At(blk + 2));
  const sm = q4kScalesMins(blk + 4);
  minv = f32x4.add(minv, f32x4.mul(f32x4.mul(dmin, q4kMinsF32(sm, false)), v128.load(xtb)));
  return f32x4.add(minv, f32x4.mul(f32x4.mul(dmin, q4kMinsF32(sm, true)), v128.load(xtb, 16)));
}

/** out[r] for rows [r0, r1) of a Q5_K matrix [n, k] (k a multiple of 256); xt from blockSumsQ8. */
export function matvecQ5_K(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 176;
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0), minv = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 176;
      acc = q5kSuperBlock(acc, blk, x16 + (<usize>sb << 9), xd + (<usize>sb << 5));
      minv = kMinTerm(minv, blk, xt + (<usize>sb << 5));
    }
    store<f32>(out + (<usize>r << 2), hsum(acc) - hsum(minv));
  }
}

export function matmulQ5_K(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRowsK(<usize>(k >> 8) * 176);
  const nb = <usize>(k >> 5);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) {
      matvecQ5_K(w, x16 + (<usize>t * k << 1), xd + (<usize>t * nb << 2), xt + (<usize>t * nb << 2), out + (<usize>t * n << 2), k, rb, re);
    }
  }
}

/** Row `a` of a Q5_K matrix unpacked at dst: [k] int16 values, [k/32] f32 d·sc, [k/32] f32 dmin·m. */
function unpackQ5_K(a: usize, dst: usize, k: i32): void {
  const nb = k >> 5;
  const scales = dst + (<usize>k << 1), mins = scales + (<usize>nb << 2);
  for (let sb = 0; sb < (k >> 8); sb++) {
    const blk = a + <usize>sb * 176;
    const d = finiteF16At(blk), dmin = f32x4.splat(finiteF16At(blk + 2));
    const sm = q4kScalesMins(blk + 4);
    const qh0 = v128.load(blk + 16), qh1 = v128.load(blk + 32);
    for (let c = 0; c < 4; c++) {
      const q0 = v128.load(blk + 48 + (<usize>c << 5)), q1 = v128.load(blk + 48 + (<usize>c << 5), 16);
      const o = dst + (<usize>sb << 9) + (<usize>c << 7);
      storeU8(o, q5Low(q0, qh0, 2 * c), q5Low(q1, qh1, 2 * c));
      storeU8(o + 64, q5High(q0, qh0, 2 * c + 1), q5High(q1, qh1, 2 * c + 1));
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

/** Q5_K weights [n, k] (k a multiple of 256); xt as blockSumsQ8 leaves it ([nTok, k/32]). */
export function gemmQ5_K(w: usize, x16: usize, xd: usize, xt: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const src = <usize>(k >> 8) * 176, ws = (<usize>k << 1) + (<usize>nb << 3);
  const mins = (<usize>k << 1) + (<usize>nb << 2);
  const tile = gemmTileRows(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) unpackQ5_K(w + <usize>(rb + r) * src, scratch + <usize>r * ws, k);
    const o = out + (<usize>rb << 2);
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, o, n);
    subtractTileMins(scratch, ws, mins, rows, xt, nTok, k, o, n); // as matvecQ5_K subtracts it
  }
}

// ---------------------------------------------------------------------------------------------
// Q3_K: 110-byte super-blocks [hmask 32, qs 64, 12 scale bytes, d]. Block s (0..3) of half h holds
// elements 128h + 32s + l: low bits (qs[32h + l] >> 2s) & 3, high bit (hmask[l] >> (4h + s)) & 1.

/** Sub-block j's scale − 32 (−32..31) of the super-block at blk. */
@inline function q3kScale(blk: usize, j: i32): i32 {
  const sc = blk + 96;
  const low = j < 8 ? <i32>load<u8>(sc + <usize>j) & 15 : <i32>load<u8>(sc + <usize>(j - 8)) >> 4;
  return (low | (((<i32>load<u8>(sc + 8 + <usize>(j & 3)) >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

/** 16 Q3_K values q − 4 (−4..3) from 16 qs bytes and 16 hmask bytes: bit pair `s` and hmask bit `hb`. */
@inline function q3Values(q: v128, hm: v128, s: i32, hb: i32): v128 {
  const low = v128.and(i16x8.shr_u(q, 2 * s), i8x16.splat(3));
  const high = i16x8.shl(v128.and(i16x8.shr_u(hm, hb), i8x16.splat(1)), 2);
  return i8x16.sub(v128.or(low, high), i8x16.splat(4));
}

/** out[r] for rows [r0, r1) of a Q3_K matrix [n, k] (k a multiple of 256). */
export function matvecQ3_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 110;
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 110;
      const d = finiteF16At(blk + 108);
      const hmA = v128.load(blk), hmB = v128.load(blk, 16);
      for (let h = 0; h < 2; h++) {
        const qA = v128.load(blk + 32 + (<usize>h << 5)), qB = v128.load(blk + 32 + (<usize>h << 5), 16);
        for (let s = 0; s < 4; s++) {
          const xi = (sb << 3) + (h << 2) + s, j = (h << 3) + (s << 1);
          const x = x16 + (<usize>xi << 6);
          const sum = i32x4.add(
            i32x4.mul(i8Dot16(q3Values(qA, hmA, s, (h << 2) + s), x), i32x4.splat(q3kScale(blk, j))),
            i32x4.mul(i8Dot16(q3Values(qB, hmB, s, (h << 2) + s), x + 32), i32x4.splat(q3kScale(blk, j + 1))));
          acc = scaled(acc, sum, d * load<f32>(xd + (<usize>xi << 2)));
        }
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

export function matmulQ3_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRowsK(<usize>(k >> 8) * 110);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecQ3_K(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

/** Row `a` of a Q3_K matrix unpacked at dst: [k] int16 values (sc − 32)·(q − 4), then [k/32] f32 d. */
function unpackQ3_K(a: usize, dst: usize, k: i32): void {
  const scales = dst + (<usize>k << 1);
  for (let sb = 0; sb < (k >> 8); sb++) {
    const blk = a + <usize>sb * 110;
    const d = finiteF16At(blk + 108);
    const hmA = v128.load(blk), hmB = v128.load(blk, 16);
    for (let h = 0; h < 2; h++) {
      const qA = v128.load(blk + 32 + (<usize>h << 5)), qB = v128.load(blk + 32 + (<usize>h << 5), 16);
      for (let s = 0; s < 4; s++) {
        const b = (sb << 3) + (h << 2) + s, j = (h << 3) + (s << 1);
        const o = dst + (<usize>b << 6);
        storeScaled16(o, q3Values(qA, hmA, s, (h << 2) + s), q3kScale(blk, j), true);
        storeScaled16(o + 32, q3Values(qB, hmB, s, (h << 2) + s), q3kScale(blk, j + 1), true);
        store<f32>(scales + (<usize>b << 2), d);
      }
    }
  }
}

/** Q3_K weights [n, k] (k a multiple of 256). */
export function gemmQ3_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const src = <usize>(k >> 8) * 110, ws = (<usize>k << 1) + (<usize>nb << 2);
  const tile = gemmTileRows(ws);
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    for (let r = 0; r < rows; r++) unpackQ3_K(w + <usize>(rb + r) * src, scratch + <usize>r * ws, k);
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, out + (<usize>rb << 2), n);
  }
}

// ---------------------------------------------------------------------------------------------
// Q2_K: 84-byte super-blocks [16 scale bytes (scale | min << 4), qs 64, d, dmin]. Block s of half
// h holds elements 128h + 32s + l: (qs[32h + l] >> 2s) & 3.

/** 16 Q2_K values (0..3): bit pair `s` of 16 qs bytes. */
@inline function q2Values(q: v128, s: i32): v128 {
  return v128.and(i16x8.shr_u(q, 2 * s), i8x16.splat(3));
}

/** out[r] for rows [r0, r1) of a Q2_K matrix [n, k] (k a multiple of 256). */
export function matvecQ2_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nsb = k >> 8;
  const rowBytes = <usize>nsb * 84;
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0), minv = f32x4.splat(0);
    for (let sb = 0; sb < nsb; sb++) {
      const blk = a + <usize>sb * 84;
      const d = finiteF16At(blk + 80), dmin = finiteF16At(blk + 82);
      for (let h = 0; h < 2; h++) {
        const qA = v128.load(blk + 16 + (<usize>h << 5)), qB = v128.load(blk + 16 + (<usize>h << 5), 16);
        for (let s = 0; s < 4; s++) {
          const xi = (sb << 3) + (h << 2) + s, j = (h << 3) + (s << 1);
          const x = x16 + (<usize>xi << 6);
          const scA = <i32>load<u8>(blk + <usize>j), scB = <i32>load<u8>(blk + <usize>j, 1);
          const sum = i32x4.add(
            i32x4.mul(i8Dot16(q2Values(qA, s), x), i32x4.splat(scA & 15)),
            i32x4.mul(i8Dot16(q2Values(qB, s), x + 32), i32x4.splat(scB & 15)));
          const msum = i32x4.add(i32x4.mul(xSum16(x), i32x4.splat(scA >> 4)), i32x4.mul(xSum16(x + 32), i32x4.splat(scB >> 4)));
          const dx = load<f32>(xd + (<usize>xi << 2));
          acc = scaled(acc, sum, d * dx);
          minv = scaled(minv, msum, dmin * dx);
        }
      }
    }
    store<f32>(out + (<usize>r << 2), hsum(acc) - hsum(minv));
  }
}

export function matmulQ2_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRowsK(<usize>(k >> 8) * 84);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecQ2_K(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

/**
 * Row `a` of a Q2_K matrix unpacked at dst: [k] int16 values sc·q and [k/32] f32 d when `mins` is
 * false; [k] int16 mins m (each repeated over its 16 elements) and [k/32] f32 dmin when true.
 */
function unpackQ2_K(a: usize, dst: usize, k: i32, mins: bool): void {
  const scales = dst + (<usize>k << 1);
  for (let sb = 0; sb < (k >> 8); sb++) {
    const blk = a + <usize>sb * 84;
    const scale = finiteF16At(blk + <usize>(mins ? 82 : 80));
    for (let h = 0; h < 2; h++) {
      const qA = v128.load(blk + 16 + (<usize>h << 5)), qB = v128.load(blk + 16 + (<usize>h << 5), 16);
      for (let s = 0; s < 4; s++) {
        const b = (sb << 3) + (h << 2) + s, j = (h << 3) + (s << 1);
        const o = dst + (<usize>b << 6);
        const scA = <i32>load<u8>(blk + <usize>j), scB = <i32>load<u8>(blk + <usize>j, 1);
        if (mins) {
          const ma = i16x8.splat(<i16>(scA >> 4)), mb = i16x8.splat(<i16>(scB >> 4));
          v128.store(o, ma); v128.store(o, ma, 16); v128.store(o, mb, 32); v128.store(o, mb, 48);
        } else {
          storeScaled16(o, q2Values(qA, s), scA & 15, false);
          storeScaled16(o + 32, q2Values(qB, s), scB & 15, false);
        }
        store<f32>(scales + (<usize>b << 2), scale);
      }
    }
  }
}

/**
 * Q2_K weights [n, k] (k a multiple of 256): the value term through gemmTileQ into out, then the
 * min term through gemmTileQ over a tile of unpacked mins, a chunk of tokens at a time into the
 * scratch after the tile, subtracted from out (matvecQ2_K's hsum(acc) − hsum(minv)).
 */
export function gemmQ2_K(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const src = <usize>(k >> 8) * 84, ws = (<usize>k << 1) + (<usize>nb << 2);
  const tile = gemmTileRows(ws);
  const xs = <usize>k << 1, ds = <usize>nb << 2;
  for (let rb = r0; rb < r1; rb += tile) {
    const rows = min(tile, r1 - rb);
    const o = out + (<usize>rb << 2);
    for (let r = 0; r < rows; r++) unpackQ2_K(w + <usize>(rb + r) * src, scratch + <usize>r * ws, k, false);
    gemmTileQ(scratch, ws, rows, x16, xd, nTok, k, o, n);
    for (let r = 0; r < rows; r++) unpackQ2_K(w + <usize>(rb + r) * src, scratch + <usize>r * ws, k, true);
    // Room after the tile for [chunk, rows] f32 min terms (the scratch holds ≥ 256 KiB, a tile ≤ 64 KiB + 4 rows).
    const tmp = scratch + ((<usize>rows * ws + 63) & ~<usize>63);
    const room = scratchBytes - (tmp - scratch);
    let chunk = <i32>(room / (<usize>rows << 2));
    if (chunk < 1) chunk = 1;
    for (let t0 = 0; t0 < nTok; t0 += chunk) {
      const nt = min(chunk, nTok - t0);
      gemmTileQ(scratch, ws, rows, x16 + <usize>t0 * xs, xd + <usize>t0 * ds, nt, k, tmp, rows);
      for (let t = 0; t < nt; t++) {
        const ot = o + (<usize>(t0 + t) * <usize>n << 2), mt = tmp + (<usize>t * <usize>rows << 2);
        for (let r = 0; r < rows; r++) {
          const p = ot + (<usize>r << 2);
          store<f32>(p, load<f32>(p) - load<f32>(mt + (<usize>r << 2)));
        }
      }
    }
  }
}
