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
@inline export function f16x4ToF32(h: v128): v128 {
  const em = i32x4.shl(v128.and(h, i32x4.splat(0x7fff)), 13);
  let f = f32x4.mul(em, f32x4.splat(5.192296858534828e33)); // 2^112
  const special = i32x4.eq(v128.and(h, i32x4.splat(0x7c00)), i32x4.splat(0x7c00));
  f = v128.bitselect(v128.or(em, i32x4.splat(0x7f800000)), f, special);
  return v128.or(f, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

/** One f16 value (low 16 bits of h) as f32, exactly (see f16x4ToF32). */
@inline export function f16ToF32(h: u32): f32 {
  const em = (h & 0x7fff) << 13;
  let f = reinterpret<f32>(em) * <f32>5.192296858534828e33; // 2^112
  if ((h & 0x7c00) == 0x7c00) f = reinterpret<f32>(em | 0x7f800000);
  return reinterpret<f32>(reinterpret<u32>(f) | ((h & 0x8000) << 16));
}

/**
 * The f16 at p as f32, exactly for every finite value (the sign-extended bits shifted into the f32
 * field and rebiased by 2^112; see matvecF16Scaled). Block scales only: the backend refuses
 * quantized weights whose scales are inf or NaN, which this would not reproduce.
 */
@inline export function finiteF16At(p: usize): f32 {
  return reinterpret<f32>((<i32>load<i16>(p) << 13) & 0x8fffe000) * <f32>5.192296858534828e33;
}
