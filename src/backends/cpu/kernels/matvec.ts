// Matrix-vector kernels (AssemblyScript → WebAssembly SIMD). Weights stay in their stored format;
// x is f32. All pointers are byte offsets into the (imported, shareable) linear memory.
// Nothing here may use a Node API: the same module loads in a browser.
import { dotI8x16, f16ToF32, f16x4ToF32, hsum } from './common';

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
      sa = f32x4.add(sa, f32x4.mul(v128.load(a + o), xv));
      sb = f32x4.add(sb, f32x4.mul(v128.load(b + o), xv));
      sc = f32x4.add(sc, f32x4.mul(v128.load(c + o), xv));
      sd = f32x4.add(sd, f32x4.mul(v128.load(d + o), xv));
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
      s = f32x4.add(s, f32x4.mul(v128.load(a + o), v128.load(x + o)));
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
 * widening. `xp` is x permuted to match: per 8 elements, [x0 x2 x4 x6 x1 x3 x5 x7].
 * Each row's sum is the canonical f32 dot (see matvecF32) over the permuted order, so the gemm
 * kernels, which unpack bf16 to f32 in that order, give bit-identical results.
 */
export function matvecBF16(w: usize, xp: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>k << 1;
  const mask = i32x4.splat(0xffff0000);
  let r = r0;
  // Four rows per pass: each load of x serves four rows (DESIGN.md: 1 row/pass reached 13.4 GB/s
  // on 2 workers, 4–8 rows 19.6 GB/s).
  for (; r + 4 <= r1; r += 4) {
    const a = w + <usize>r * rowBytes, b = a + rowBytes, c = b + rowBytes, d = c + rowBytes;
    let sa = f32x4.splat(0), sb = f32x4.splat(0), sc = f32x4.splat(0), sd = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const o = <usize>i << 1;
      const xo = xp + (<usize>i << 2);
      const xe = v128.load(xo), xodd = v128.load(xo, 16);
      let raw = v128.load(a + o);
      sa = f32x4.add(f32x4.add(sa, f32x4.mul(i32x4.shl(raw, 16), xe)), f32x4.mul(v128.and(raw, mask), xodd));
      raw = v128.load(b + o);
      sb = f32x4.add(f32x4.add(sb, f32x4.mul(i32x4.shl(raw, 16), xe)), f32x4.mul(v128.and(raw, mask), xodd));
      raw = v128.load(c + o);
      sc = f32x4.add(f32x4.add(sc, f32x4.mul(i32x4.shl(raw, 16), xe)), f32x4.mul(v128.and(raw, mask), xodd));
      raw = v128.load(d + o);
      sd = f32x4.add(f32x4.add(sd, f32x4.mul(i32x4.shl(raw, 16), xe)), f32x4.mul(v128.and(raw, mask), xodd));
    }
    const po = out + (<usize>r << 2);
    store<f32>(po, hsum(sa)); store<f32>(po, hsum(sb), 4); store<f32>(po, hsum(sc), 8); store<f32>(po, hsum(sd), 12);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const raw = v128.load(a + (<usize>i << 1));
      const xo = xp + (<usize>i << 2);
      s = f32x4.add(f32x4.add(s, f32x4.mul(i32x4.shl(raw, 16), v128.load(xo))), f32x4.mul(v128.and(raw, mask), v128.load(xo, 16)));
    }
    store<f32>(out + (<usize>r << 2), hsum(s));
  }
}

/**
 * out[r] = Σ_i w[r, i] · x[i] for rows [r0, r1) of an f16 matrix [n, k] (k a multiple of 8); the
 * canonical f32 dot (see matvecF32), so it equals the gemm kernels bit for bit. Two rows per pass.
 */
export function matvecF16(w: usize, x: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>k << 1;
  let r = r0;
  for (; r + 2 <= r1; r += 2) {
    const a = w + <usize>r * rowBytes, b = a + rowBytes;
    let sa = f32x4.splat(0), sb = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const o = <usize>i << 1;
      const xo = x + (<usize>i << 2);
      const x0 = v128.load(xo), x1 = v128.load(xo, 16);
      const ra = v128.load(a + o), rb = v128.load(b + o);
      sa = f32x4.add(sa, f32x4.mul(f16x4ToF32(i32x4.extend_low_i16x8_u(ra)), x0));
      sb = f32x4.add(sb, f32x4.mul(f16x4ToF32(i32x4.extend_low_i16x8_u(rb)), x0));
      sa = f32x4.add(sa, f32x4.mul(f16x4ToF32(i32x4.extend_high_i16x8_u(ra)), x1));
      sb = f32x4.add(sb, f32x4.mul(f16x4ToF32(i32x4.extend_high_i16x8_u(rb)), x1));
    }
    const po = out + (<usize>r << 2);
    store<f32>(po, hsum(sa)); store<f32>(po, hsum(sb), 4);
  }
  for (; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let s = f32x4.splat(0);
    for (let i = 0; i < k; i += 8) {
      const raw = v128.load(a + (<usize>i << 1));
      const xo = x + (<usize>i << 2);
      s = f32x4.add(s, f32x4.mul(f16x4ToF32(i32x4.extend_low_i16x8_u(raw)), v128.load(xo)));
      s = f32x4.add(s, f32x4.mul(f16x4ToF32(i32x4.extend_high_i16x8_u(raw)), v128.load(xo, 16)));
    }
    store<f32>(out + (<usize>r << 2), hsum(s));
  }
}

/**
 * Quantizes x [k] (k a multiple of 32) to int8 blocks of 32 for the Q8_0 dot product, as
 * llama.cpp does with the activations: per block, d = max|x| / 127 (f32 here), q = round(x / d).
 * xq: [k] int8; xd: [k / 32] f32.
 */
export function quantizeRowQ8(x: usize, xq: usize, xd: usize, k: i32): void {
  for (let b = 0; b < k; b += 32) {
    let amax: f32 = 0;
    for (let i = 0; i < 32; i++) amax = max(amax, abs(load<f32>(x + (<usize>(b + i) << 2))));
    const d: f32 = amax / 127;
    const id: f32 = d != 0 ? 1 / d : 0;
    store<f32>(xd + (<usize>(b >> 5) << 2), d);
    for (let i = 0; i < 32; i++) store<i8>(xq + <usize>(b + i), <i8>nearest(load<f32>(x + (<usize>(b + i) << 2)) * id));
  }
}

/**
 * out[r] = Σ_blocks dw · dx · Σ wq · xq for rows [r0, r1) of a Q8_0 matrix [n, k] (blocks of 34
 * bytes: f16 scale + 32 int8), with x quantized by quantizeRowQ8. The integer products run on
 * i32x4.dot_i16x8_s; each block's sum is scaled once, in f32.
 */
export function matvecQ8_0(w: usize, xq: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const rowBytes = <usize>nb * 34;
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const blk = a + <usize>b * 34;
      const xb = xq + (<usize>b << 5);
      const s = i32x4.add(dotI8x16(v128.load(blk, 2), v128.load(xb)), dotI8x16(v128.load(blk, 18), v128.load(xb, 16)));
      const d = f16ToF32(<u32>load<u16>(blk)) * load<f32>(xd + (<usize>b << 2));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(d)));
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

/**
 * Same as matvecQ8_0 for a Q4_0 matrix (blocks of 18 bytes: f16 scale + 16 bytes; element j in
 * the low nibble of byte j, element j + 16 in the high nibble; value = nibble - 8).
 */
export function matvecQ4_0(w: usize, xq: usize, xd: usize, out: usize, k: i32, r0: i32, r1: i32): void {
  const nb = k >> 5;
  const rowBytes = <usize>nb * 18;
  const low = i8x16.splat(0x0f), eight = i8x16.splat(8);
  for (let r = r0; r < r1; r++) {
    const a = w + <usize>r * rowBytes;
    let acc = f32x4.splat(0);
    for (let b = 0; b < nb; b++) {
      const blk = a + <usize>b * 18;
      const xb = xq + (<usize>b << 5);
      const packed = v128.load(blk, 2);
      const lo = i8x16.sub(v128.and(packed, low), eight);
      const hi = i8x16.sub(i8x16.shr_u(packed, 4), eight);
      const s = i32x4.add(dotI8x16(lo, v128.load(xb)), dotI8x16(hi, v128.load(xb, 16)));
      const d = f16ToF32(<u32>load<u16>(blk)) * load<f32>(xd + (<usize>b << 2));
      acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(d)));
    }
    store<f32>(out + (<usize>r << 2), hsum(acc));
  }
}

// ---------------------------------------------------------------------------------------------
// Several tokens at once (prefill, batched decode): rows are taken in tiles small enough to stay
// in cache (~64 KiB of weights), and every token runs over a tile before the next tile is read, so
// a weight row is fetched from memory once per call instead of once per token.
// x and out are [nTok, k] and [nTok, n] (for quantized x: xq [nTok, k] int8, xd [nTok, k/32]).

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

export function matmulF16(w: usize, x: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>k << 1);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecF16(w, x + (<usize>t * k << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulBF16(w: usize, xp: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>k << 1);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) matvecBF16(w, xp + (<usize>t * k << 2), out + (<usize>t * n << 2), k, rb, re);
  }
}

export function matmulQ8_0(w: usize, xq: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>(k >> 5) * 34);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) {
      matvecQ8_0(w, xq + <usize>t * k, xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
    }
  }
}

export function matmulQ4_0(w: usize, xq: usize, xd: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const tile = tileRows(<usize>(k >> 5) * 18);
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let t = 0; t < nTok; t++) {
      matvecQ4_0(w, xq + <usize>t * k, xd + (<usize>t * (k >> 5) << 2), out + (<usize>t * n << 2), k, rb, re);
    }
  }
}
