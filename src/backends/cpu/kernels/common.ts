// Small inline helpers shared by the kernel files (not exported from the module).

/** Horizontal sum of a f32x4. */
@inline export function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

/**
 * Four f16 values (in the low 16 bits of each i32 lane) as f32x4, exactly: the exponent and
 * mantissa shifted into place and scaled by 2^112 re-bias normals and subnormals alike; the
 * all-ones exponent (inf, NaN) is patched; the sign is put back last.
 */
@inline function f16x4ToF32(h: v128): v128 {
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  let f = f32x4.mul(em, f32x4.splat(5.192296858534828e33)); // 2^112
  const special = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  f = v128.bitselect(v128.or(em, i32x4.splat(0x7f800000)), f, special);
  return v128.or(f, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/**
 * The f16 at p as f32, exactly for every finite value (the sign-extended bits shifted into the f32
 * field and rebiased by 2^112; see matvecF16Scaled). Block scales only: the backend refuses
 * quantized weights whose scales are inf or NaN, which this would not reproduce.
 */
@inline export function finiteF16At(p: usize): f32 {
  return reinterpret<f32>((<i32>load<i16>(p) << 13) & 0x8fffe000) * <f32>5.192296858534828e33;
}

// f16 and bf16 weights are read 8 at a time as four u32 pairs: the low halves are the even
// elements, the high halves the odd ones, so x is laid out to match (permuteX: per 8, evens then
// odds). These give each half as f32x4.

/** bf16: the low halves shifted into place, the high halves masked. */
@inline export function bf16Even(raw: v128): v128 {
  return i32x4.shl(raw, 16);
}
@inline export function bf16Odd(raw: v128): v128 {
  return v128.and(raw, i32x4.splat(0xffff0000));
}

/** f16, exactly (any value). */
@inline export function f16Even(raw: v128): v128 {
  return f16x4ToF32(v128.and(raw, i32x4.splat(0xffff)));
}
@inline export function f16Odd(raw: v128): v128 {
  return f16x4ToF32(i32x4.shr_u(raw, 16));
}

/**
 * f16 as w·2^-112 (see matvecF16Scaled): a shift to the top, an arithmetic shift down by 3
 * (exponent into place, sign copied into bits 30–28), and a mask keeping the sign and 15 value bits.
 */
@inline export function f16ScaledEven(raw: v128): v128 {
  return v128.and(i32x4.shr_s(i32x4.shl(raw, 16), 3), i32x4.splat(0x8fffe000));
}
@inline export function f16ScaledOdd(raw: v128): v128 {
  return v128.and(i32x4.shr_s(raw, 3), i32x4.splat(0x8fffe000));
}

/**
 * acc + a·b per lane: the one multiply-add of the float kernels' dot products. The relaxed-SIMD
 * build (build/kernels-relaxed.wasm, `--enable relaxed-simd`) uses f32x4.relaxed_madd, which the
 * runtime may run fused (one rounding) or not; the plain build multiplies, rounds and adds. Every
 * float kernel (matvec, batched, gemm) goes through this helper, so within one module a row's
 * result stays the same whichever kernel ran it; kernel-module.ts checks at start that the runtime
 * runs it the same way before and after its optimising compiler has taken over (relaxedSelfTest).
 */
@inline export function madd(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** One step of the canonical f32 dot over a permuted group of 8: (s + even·xe) + odd·xo. */
@inline export function pairStep(s: v128, even: v128, odd: v128, xe: v128, xo: v128): v128 {
  return madd(madd(s, even, xe), odd, xo);
}

// ggml K-quant block fields (layouts in src/quant/q4_k.ts and q6_k.ts), for the matvec and gemm
// kernels alike.

/**
 * A Q4_K super-block's eight 6-bit scales and eight 6-bit mins from the 12 packed bytes at p (16
 * are read; the quants follow), as u8 lanes [sc0..sc3, m0..m3, sc4..sc7, m4..m7]: for j < 4 the
 * low 6 bits of bytes j and j + 4; for j ≥ 4 the nibbles of byte j + 4 under the top 2 bits of
 * bytes j − 4 (sc) and j (m).
 */
@inline export function q4kScalesMins(p: usize): v128 {
  const v = v128.load(p);
  const a = i8x16.shuffle(v, v, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7);
  const lo = v128.and(v, i8x16.splat(0x0f)), hi = v128.and(i16x8.shr_u(v, 4), i8x16.splat(0x0f));
  const nibbles = i8x16.shuffle(lo, hi, 0, 0, 0, 0, 0, 0, 0, 0, 8, 9, 10, 11, 24, 25, 26, 27);
  const upper = v128.or(nibbles, v128.and(i16x8.shr_u(a, 2), i8x16.splat(0x30)));
  return i8x16.shuffle(v128.and(a, i8x16.splat(63)), upper, 0, 1, 2, 3, 4, 5, 6, 7, 24, 25, 26, 27, 28, 29, 30, 31);
}

/** The mins of q4kScalesMins' lanes as f32x4: m0..m3 (lanes 4–7), or m4..m7 (lanes 12–15) when `upper`. */
@inline export function q4kMinsF32(v: v128, upper: bool): v128 {
  const z = i8x16.splat(0);
  return f32x4.convert_i32x4_u(upper
    ? i8x16.shuffle(v, z, 12, 16, 16, 16, 13, 16, 16, 16, 14, 16, 16, 16, 15, 16, 16, 16)
    : i8x16.shuffle(v, z, 4, 16, 16, 16, 5, 16, 16, 16, 6, 16, 16, 16, 7, 16, 16, 16));
}

/**
 * Sixteen Q6_K values q − 32 (−32..31) of quarter `quarter` (0..3) of a half: the low nibbles of
 * ql (quarters 0, 1) or its high nibbles (2, 3), with bit pair `quarter` of qh as bits 4–5. The
 * shifts are 16-bit (one instruction each on x86, even by a variable amount; 8-bit shifts are
 * emulated), and the masks drop the bits that cross a byte.
 */
@inline export function q6Values(ql: v128, qh: v128, quarter: i32): v128 {
  const low = v128.and(i16x8.shr_u(ql, (quarter >> 1) << 2), i8x16.splat(0x0f));
  const high = i16x8.shl(v128.and(i16x8.shr_u(qh, quarter << 1), i8x16.splat(0x03)), 4);
  return i8x16.sub(v128.or(low, high), i8x16.splat(32));
}

/**
 * dst[i] = src[i] · (1 / √(ss / cols + eps)) · w[i] for a row of `cols` f32 (ss: the row's sum
 * of squares): the second half of RMSNorm, shared by rmsNorm and addRmsNorm so both give the
 * same bits. dst may alias src.
 */
@inline export function scaleByRms(src: usize, w: usize, dst: usize, cols: i32, ss: f32, eps: f32): void {
  const c4 = cols & ~3;
  const inv = <f32>1 / Mathf.sqrt(ss / <f32>cols + eps);
  const iv = f32x4.splat(inv);
  for (let i = 0; i < c4; i += 4) {
    const o = <usize>i << 2;
    v128.store(dst + o, f32x4.mul(f32x4.mul(v128.load(src + o), iv), v128.load(w + o)));
  }
  for (let i = c4; i < cols; i++) {
    const o = <usize>i << 2;
    store<f32>(dst + o, load<f32>(src + o) * inv * load<f32>(w + o));
  }
}
