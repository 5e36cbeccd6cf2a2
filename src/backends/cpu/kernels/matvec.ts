// Matrix-vector kernels (AssemblyScript → WebAssembly SIMD). Weights stay in their stored format;
// x is f32. All pointers are byte offsets into the (imported, shareable) linear memory.
// Nothing here may use a Node API: the same module loads in a browser.
import {
  bf16Even, bf16Odd, f16Even, f16Odd, f16ScaledEven, f16ScaledOdd, finiteF16At, hsum, madd, pairStep,
} from './common';

/**
 * out[r] = Σ_i w[r, i] · x[i] for rows [r0, r1) of an f32 matrix [n, k].
 * Four rows per pass, so each load of x serves four rows.
 *
 * The canonical f32 dot, which every float kernel (matvec and gemm, any dtype) follows so that a
 * row's result never depends on which kernel ran it, how rows were split between threads, or how
 * many tokens shared the batch: one f32x4 accumulator over i in steps of 4 (s += w[i..i+3]·x[i..i+3]),
 * its four lanes summed in order, then the k mod 4 tail added one product at a time.
 */
export function matvecF32(w: usize, x: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>k << 2;
  const k4 = k & ~3;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const a = w + <usize>r * rowBytes, b = a + rowBytes, c = b + rowBytes, d = c + rowBytes;
    let sa = f32x4.splat(0), sb = f32x4.splat(0), sc = f32x4.splat(0), sd = f32x4.splat(0);
    for (let i = 0; i < k4; i += 4) {
      const o = <usize>i << 2;
      const xv = v128.load(x + o);
      sa = madd(sa, v128.load(a + o), xv);
      sb = madd(sb, v128.load(b + o), xv);
      sc = madd(sc, v128.load(c + o), xv);
      sd = madd(sd, v128.load(d + o), xv);
    }
    let ta = hsum(sa), tb = hsum(sb), tc = hsum(sc), td = hsum(sd);
    for (let i = k4; i < k; i++) {
      const o = <usize>i << 2;
      const xi = load<f32>(x + o);
      ta += load<f32>(a + o) * xi; tb += load<f32>(b + o) * xi;
      tc += load<f32>(c + o) * xi; td += load<f32>(d + o) * xi;
    }
    const po = out + (<usize>r << 2);
    store<f32>(po, ta); store<f32>(po, tb, 4); store<f32>(po, tc, 8); store<f32>(po, td, 12);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < k4; i += 4) {
      const o = <usize>i << 2;
      s = madd(s, v128.load(a + o), v128.load(x + o));
    }
    let t = hsum(s);
    for (let i = k4; i < k; i++) t += load<f32>(a + (<usize>i << 2)) * load<f32>(x + (<usize>i << 2));
    store<f32>(out + (<usize>r << 2), t);
  }
}

/**
 * out[r] = Σ_i w[r, i] · x[i] for rows [r0, r1) of a bf16 matrix [n, k] (k a multiple of 8).
 * bf16 → f32 is a 16-bit shift: for 8 stored values read as four u32 pairs, the low halves
 * (even elements) shifted left by 16 and the high halves masked give two f32x4 vectors without
 * widening. `xp` is x permuted to match (permuteX). Each row's sum is the canonical f32 dot (see
 * matvecF32) over the permuted order, so the gemm kernels, which unpack to f32 in that order,
 * give bit-identical results. Four rows per pass: each load of x serves four rows (DESIGN.md:
 * 1 row/pass reached 13.4 GB/s on 2 workers, 4–8 rows 19.6 GB/s).
 */
export function matvecBF16(w: usize, xp: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>k << 1;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const a = w + <usize>r * rowBytes, b = a + rowBytes, c = b + rowBytes, d = c + rowBytes;
    let sa = f32x4.splat(0), sb = f32x4.splat(0), sc = f32x4.splat(0), sd = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const o = <usize>i << 1, xo = xp + (<usize>i << 2);
      const xe = v128.load(xo), xodd = v128.load(xo, 16);
      let raw = v128.load(a + o);
      sa = pairStep(sa, bf16Even(raw), bf16Odd(raw), xe, xodd);
      raw = v128.load(b + o);
      sb = pairStep(sb, bf16Even(raw), bf16Odd(raw), xe, xodd);
      raw = v128.load(c + o);
      sc = pairStep(sc, bf16Even(raw), bf16Odd(raw), xe, xodd);
      raw = v128.load(d + o);
      sd = pairStep(sd, bf16Even(raw), bf16Odd(raw), xe, xodd);
    }
    const po = out + (<usize>r << 2);
    store<f32>(po, hsum(sa)); store<f32>(po, hsum(sb), 4); store<f32>(po, hsum(sc), 8); store<f32>(po, hsum(sd), 12);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const raw = v128.load(a + (<usize>i << 1)), xo = xp + (<usize>i << 2);
      s = pairStep(s, bf16Even(raw), bf16Odd(raw), v128.load(xo), v128.load(xo, 16));
    }
    store<f32>(out + (<usize>r << 2), hsum(s));
  }
}

/**
 * out[r] = Σ_i w[r, i] · x[i] for rows [r0, r1) of an f16 matrix [n, k] (k a multiple of 8), with
 * x permuted as for bf16 (permuteX). Exact conversion, any values: the canonical f32 dot over the
 * permuted order. Two rows per pass.
 */
export function matvecF16(w: usize, xp: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>k << 1;
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, b = a + rowBytes;
    let sa = f32x4.splat(0), sb = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const xo = xp + (<usize>i << 2);
      const xe = v128.load(xo), xodd = v128.load(xo, 16);
      const ra = v128.load(a + (<usize>i << 1)), rb = v128.load(b + (<usize>i << 1));
      sa = pairStep(sa, f16Even(ra), f16Odd(ra), xe, xodd);
      sb = pairStep(sb, f16Even(rb), f16Odd(rb), xe, xodd);
    }
    const po = out + (<usize>r << 2);
    store<f32>(po, hsum(sa)); store<f32>(po, hsum(sb), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const raw = v128.load(a + (<usize>i << 1)), xo = xp + (<usize>i << 2);
      s = pairStep(s, f16Even(raw), f16Odd(raw), v128.load(xo), v128.load(xo, 16));
    }
    store<f32>(out + (<usize>r << 2), hsum(s));
  }
}

/**
 * matvecF16 for the common case, at a fraction of the work: an f16's bits moved into an f32's
 * exponent/mantissa field read as w·2^-112 (exactly, subnormals included), so with x pre-scaled by
 * 2^112 (permuteX) every product equals w·x exactly and the sums are bit-identical to matvecF16.
 * Needs |x| < 2^16 (x·2^112 stays finite) and no inf/NaN weights (their exponent is not
 * special once moved): the backend checks both and otherwise uses matvecF16. Four rows per pass.
 */
export function matvecF16Scaled(w: usize, xs: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>k << 1;
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const a = w + <usize>r * rowBytes, b = a + rowBytes, c = b + rowBytes, d = c + rowBytes;
    let sa = f32x4.splat(0), sb = f32x4.splat(0), sc = f32x4.splat(0), sd = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const o = <usize>i << 1, xo = xs + (<usize>i << 2);
      const xe = v128.load(xo), xodd = v128.load(xo, 16);
      let raw = v128.load(a + o);
      sa = pairStep(sa, f16ScaledEven(raw), f16ScaledOdd(raw), xe, xodd);
      raw = v128.load(b + o);
      sb = pairStep(sb, f16ScaledEven(raw), f16ScaledOdd(raw), xe, xodd);
      raw = v128.load(c + o);
      sc = pairStep(sc, f16ScaledEven(raw), f16ScaledOdd(raw), xe, xodd);
      raw = v128.load(d + o);
      sd = pairStep(sd, f16ScaledEven(raw), f16ScaledOdd(raw), xe, xodd);
    }
    const po = out + (<usize>r << 2);
    store<f32>(po, hsum(sa)); store<f32>(po, hsum(sb), 4); store<f32>(po, hsum(sc), 8); store<f32>(po, hsum(sd), 12);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const raw = v128.load(a + (<usize>i << 1)), xo = xs + (<usize>i << 2);
      s = pairStep(s, f16ScaledEven(raw), f16ScaledOdd(raw), v128.load(xo), v128.load(xo, 16));
    }
    store<f32>(out + (<usize>r << 2), hsum(s));
  }
}

/**
 * xp[count] = x permuted per group of 8 ([x0 x2 x4 x6 x1 x3 x5 x7], the order the f16 and bf16
 * kernels read stored pairs in), times `scale` (a power of two, so exact unless it overflows);
 * returns max |x| (NaN if x has one), for the caller to check matvecF16Scaled's range.
 */
export function permuteX(x: usize, xp: usize, count: i32, scale: f32): f32 {
  const sv = f32x4.splat(scale);
  let m = f32x4.splat(0);
  for (let i = 0; i < count; i += 8) {
    const o = <usize>i << 2;
    const a = v128.load(x + o), b = v128.load(x + o, 16);
    m = f32x4.max(m, f32x4.max(f32x4.abs(a), f32x4.abs(b)));
    v128.store(xp + o, f32x4.mul(v128.shuffle<f32>(a, b, 0, 2, 4, 6), sv));
    v128.store(xp + o, f32x4.mul(v128.shuffle<f32>(a, b, 1, 3, 5, 7), sv), 16);
  }
  return max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
}

// f16 subnormals (|w| < 2^-14) are kept out of the f16 matrices the kernels read: as f32 they
// are subnormal too (matvecF16Scaled) or pass through a subnormal product (f16Even), and every
// multiply with a subnormal operand costs a microcode assist on Intel cores (~0.25% of the values
// of a trained layer made matvecF16Scaled 1.7× slower). At load they move, exactly, to a sparse
// list per row (splitF16Subnormals), and addSparseRows adds their products after the dense
// kernel: out = dense dot + Σ sparse products, on every path (matvec, gemm, exact or scaled).

/** Lanes (of 8 f16 values) that hold a subnormal: zero exponent, non-zero mantissa. */
@inline function f16SubnormalLanes(v: v128): v128 {
  const zeroExp = i16x8.eq(v128.and(v, i16x8.splat(0x7c00)), i16x8.splat(0));
  return v128.andnot(zeroExp, i16x8.eq(v128.and(v, i16x8.splat(0x03ff)), i16x8.splat(0)));
}

/**
 * One pass over `count` f16 values at w: how many are inf or NaN (all-ones exponent; the fast f16
 * kernel must not read them) and how many are subnormal, as specials | subnormals << 32.
 */
export function countF16Kinds(w: usize, count: i32): u64 {
  const expMask = i16x8.splat(0x7c00);
  let specials: u64 = 0, subnormals: u64 = 0;
  let i = 0;
  for (; i + 8 <= count; i += 8) {
    const v = v128.load(w + (<usize>i << 1));
    const special = i16x8.eq(v128.and(v, expMask), expMask), sub = f16SubnormalLanes(v);
    if (v128.any_true(v128.or(special, sub))) {
      specials += <u64>popcnt(i16x8.bitmask(special));
      subnormals += <u64>popcnt(i16x8.bitmask(sub));
    }
  }
  for (; i < count; i++) {
    const h = <u32>load<u16>(w + (<usize>i << 1));
    if ((h & 0x7c00) == 0x7c00) specials++;
    else if ((h & 0x7c00) == 0 && (h & 0x03ff) != 0) subnormals++;
  }
  return specials | (subnormals << 32);
}

/**
 * Moves the subnormal values of an f16 matrix [n, k] at w (k a multiple of 8) into a sparse list
 * and zeroes them in place: rowStart [n + 1] i32 (row r's entries are [rowStart[r], rowStart[r+1])),
 * entries [nnz] of (column i32, value f32, exact). The caller sized entries by countF16Kinds.
 */
export function splitF16Subnormals(w: usize, n: i32, k: i32, rowStart: usize, entries: usize): void {
  let nnz = 0;
  for (let r = 0; r < n; r++) {
    store<i32>(rowStart + (<usize>r << 2), nnz);
    const row = w + (<usize>r * <usize>k << 1);
    for (let i = 0; i < k; i += 8) {
      if (!v128.any_true(f16SubnormalLanes(v128.load(row + (<usize>i << 1))))) continue;
      for (let j = i; j < i + 8; j++) {
        const h = <u32>load<u16>(row + (<usize>j << 1));
        if ((h & 0x7c00) != 0 || (h & 0x03ff) == 0) continue;
        const magnitude = <f32>(h & 0x03ff) * <f32>5.9604644775390625e-8; // m·2^-24, exact
        const e = entries + (<usize>nnz << 3);
        store<i32>(e, j);
        store<f32>(e, (h & 0x8000) != 0 ? -magnitude : magnitude, 4);
        store<u16>(row + (<usize>j << 1), 0);
        nnz++;
      }
    }
  }
  store<i32>(rowStart + (<usize>n << 2), nnz);
}

/**
 * out[t, r] += Σ value·x[t, column] over row r's sparse entries, for rows [r0, r1) and tokens
 * [0, nTok). Token by token, so each access to x stays within one cached row.
 */
export function addSparseRows(rowStart: usize, entries: usize, x: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  for (let t = 0; t < nTok; t++) {
    const xt = x + (<usize>t * <usize>k << 2), ot = out + (<usize>t * <usize>n << 2);
    for (let r = r0; r < r1; r++) {
      const first = load<i32>(rowStart + (<usize>r << 2)), last = load<i32>(rowStart + (<usize>r << 2), 4);
      if (first == last) continue;
      let s: f32 = 0;
      for (let e = first; e < last; e++) {
        const p = entries + (<usize>e << 3);
        s += load<f32>(p, 4) * load<f32>(xt + (<usize>load<i32>(p) << 2));
      }
      store<f32>(ot + (<usize>r << 2), load<f32>(ot + (<usize>r << 2)) + s);
    }
  }
}

/**
 * Quantizes rows [r0, r1) of x [rows, k] (k a multiple of 32) to 8-bit blocks of 32 for the
 * quantized dot products, as llama.cpp does with the activations: per block, d = max|x| / 127 and
 * q = round-to-nearest-even(x · (1/d)), in f32. The values (in −127..127) are stored widened to int16,
 * as the kernels multiply them: x16 [rows, k] int16, xd [rows, k/32] f32.
 */
export function quantizeRowsQ8(x: usize, x16: usize, xd: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  for (let r = r0; r < r1; r++) {
    const xr = x + (<usize>r * <usize>k << 2), qr = x16 + (<usize>r * <usize>k << 1), dr = xd + (<usize>r * <usize>nb << 2);
    for (let b = 0; b < nb; b++) {
      const xb = xr + (<usize>b << 7), qb = qr + (<usize>b << 6);
      let m = f32x4.splat(0);
      for (let j: usize = 0; j < 128; j += 16) m = f32x4.max(m, f32x4.abs(v128.load(xb + j)));
      const amax = max(max(f32x4.extract_lane(m, 0), f32x4.extract_lane(m, 1)), max(f32x4.extract_lane(m, 2), f32x4.extract_lane(m, 3)));
      const d: f32 = amax / 127;
      const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
      store<f32>(dr + (<usize>b << 2), d);
      for (let j: usize = 0; j < 128; j += 32) {
        const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb + j), id)));
        const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(xb + j, 16), id)));
        v128.store(qb + (j >> 1), i16x8.narrow_i32x4_s(lo, hi));
      }
    }
  }
}

/** Σ of 8 int16 products per i32 lane pair: one block of 32 weights (as four i16x8) times x16. */
@inline function dot32(w0: v128, w1: v128, w2: v128, w3: v128, x: usize): v128 {
  return i32x4.add(
    i32x4.add(i32x4.dot_i16x8_s(w0, v128.load(x)), i32x4.dot_i16x8_s(w1, v128.load(x, 16))),
    i32x4.add(i32x4.dot_i16x8_s(w2, v128.load(x, 32)), i32x4.dot_i16x8_s(w3, v128.load(x, 48))),
  );
}

/** A Q8_0 block's 32 int8 values at p against the x16 block at x: loads that widen to 16 bits as they read. */
@inline function q8Dot(p: usize, x: usize): v128 {
  return dot32(v128.load8x8_s(p), v128.load8x8_s(p, 8), v128.load8x8_s(p, 16), v128.load8x8_s(p, 24), x);
}

/**
 * out[r] = Σ_blocks dw · dx · Σ wq · xq for rows [r0, r1) of a Q8_0 matrix [n, k] (blocks of 34
 * bytes: f16 scale + 32 int8), with x quantized by quantizeRowsQ8 (int16 values),
 * so only the weights are widened here. The integer products run on i32x4.dot_i16x8_s; each
 * block's sum is scaled once, in f32 (the same lanes and operations as gemmQ8_0). Two rows per
 * pass share the x loads.
 */
export function matvecQ8_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const rowBytes = <usize>nb * 34;
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, c = a + rowBytes;
    let accA = f32x4.splat(0), accC = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const ba = a + <usize>b * 34, bc = c + <usize>b * 34;
      const xb = x16 + (<usize>b << 6);
      const dx = load<f32>(xd + (<usize>b << 2));
      const sa = q8Dot(ba + 2, xb), sc = q8Dot(bc + 2, xb);
      accA = f32x4.add(accA, f32x4.mul(f32x4.convert_i32x4_s(sa), f32x4.splat(finiteF16At(ba) * dx)));
      accC = f32x4.add(accC, f32x4.mul(f32x4.convert_i32x4_s(sc), f32x4.splat(finiteF16At(bc) * dx)));
    }
    store<f32>(out + (<usize>r << 2), hsum(accA));
    store<f32>(out + (<usize>r << 2), hsum(accC), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const blk = a + <usize>b * 34;
      const s = q8Dot(blk + 2, x16 + (<usize>b << 6));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(finiteF16At(blk) * load<f32>(xd + (<usize>b << 2)))));
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

/** A Q4_0 block's 32 values (nibble − 8) as four i16x8, in element order. */
/**
 * A Q4_0 block's 16 bytes of nibbles at p (element j low, j + 16 high; value = nibble − 8) against
 * the x16 block at x. Each 8 bytes load zero-extended into 16-bit lanes, where the low nibble is a
 * mask and the high one a shift away (no 8-bit shifts, which x86 lacks, and no widening step).
 */
@inline function q4Dot(p: usize, x: usize): v128 {
  const a = v128.load8x8_u(p), b = v128.load8x8_u(p, 8);
  const low = i16x8.splat(0x0f), eight = i16x8.splat(8);
  return dot32(i16x8.sub(v128.and(a, low), eight), i16x8.sub(v128.and(b, low), eight),
    i16x8.sub(i16x8.shr_u(a, 4), eight), i16x8.sub(i16x8.shr_u(b, 4), eight), x);
}

/**
 * Same as matvecQ8_0 for a Q4_0 matrix (blocks of 18 bytes: f16 scale + 16 bytes; element j in
 * the low nibble of byte j, element j + 16 in the high nibble; value = nibble - 8).
 */
export function matvecQ4_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const rowBytes = <usize>nb * 18;
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, c = a + rowBytes;
    let accA = f32x4.splat(0), accC = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const ba = a + <usize>b * 18, bc = c + <usize>b * 18;
      const xb = x16 + (<usize>b << 6);
      const dx = load<f32>(xd + (<usize>b << 2));
      const sa = q4Dot(ba + 2, xb), sc = q4Dot(bc + 2, xb);
      accA = f32x4.add(accA, f32x4.mul(f32x4.convert_i32x4_s(sa), f32x4.splat(finiteF16At(ba) * dx)));
      accC = f32x4.add(accC, f32x4.mul(f32x4.convert_i32x4_s(sc), f32x4.splat(finiteF16At(bc) * dx)));
    }
    store<f32>(out + (<usize>r << 2), hsum(accA));
    store<f32>(out + (<usize>r << 2), hsum(accC), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const blk = a + <usize>b * 18;
      const s = q4Dot(blk + 2, x16 + (<usize>b << 6));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(finiteF16At(blk) * load<f32>(xd + (<usize>b << 2)))));
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

// ---------------------------------------------------------------------------------------------
// Several tokens at once (prefill, batched decode): rows are taken in tiles small enough to stay
// in cache (~64 KiB of weights), and every token runs over a tile before the next tile is read, so
// a weight row is fetched from memory once per call instead of once per token.
// x and out are [nTok, k] and [nTok, n] (for quantized x: x16 [nTok, k] int16, xd [nTok, k/32]).

@inline function tileRows(rowBytes: usize): i32 {
  const rows = <i32>(<usize>65536 / rowBytes);
  return rows < 4 ? 4 : rows & ~3;
}

export function matmulF32(w: usize, x: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>k << 2);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecF32(w, x + (<usize>t * k << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulF16(w: usize, xp: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>k << 1);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecF16(w, xp + (<usize>t * k << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulF16Scaled(w: usize, xs: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>k << 1);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecF16Scaled(w, xs + (<usize>t * k << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulBF16(w: usize, xp: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>k << 1);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecBF16(w, xp + (<usize>t * k << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulQ8_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>(k >> 5) * 34);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) {
      matvecQ8_0(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
    }
  }
}

export function matmulQ4_0(w: usize, x16: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>(k >> 5) * 18);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) {
      matvecQ4_0(w, x16 + (<usize>t * k << 1), xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
    }
  }
}
