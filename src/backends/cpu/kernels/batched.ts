// Batched decode: the matrix-vector kernels for a few tokens at once (the decode steps of several
// sequences, a speculative draft's verification). A group of stored weights is converted in
// registers once and then dotted with up to four tokens' activations, with no unpacked tile in
// between (the gemm kernels unpack a tile to scratch and pay from more tokens on).
//
// Only F16 has one: measured per token on one thread (2048×5632, AMD EPYC Zen 3), it is where
// the conversion is dear — 4 tokens 1.33 ms against 1.91 through matvec tile by tile and 1.89
// through gemm. For BF16 and Q8_0 the same kernel measured no faster than matvec over cached tiles
// (their conversion is a shift or a widening load; the multiply-adds are the cost), and for the
// K-quants the gemm kernels already win from 2 tokens.
//
// Every token's result follows exactly the arithmetic of its dtype's matvec kernel (the same
// lanes, the same order of adds), so a sequence decoded in a batch gets the bits it would get
// alone. Tokens are taken four at a time; a last group of one goes through the matvec kernel and
// a last group of two or three repeats its last token in the spare lanes (computing the same
// value twice and storing it over itself: cheaper than a second copy of each kernel).
//
// x and out are [nTok, k] and [nTok, n].
import { f16ScaledEven, f16ScaledOdd, hsum, pairStep } from './common';
import { matvecF16Scaled } from './matvec';

/** Rows per tile: ~64 KiB of weights, so a tile read for the first group of four tokens is still in cache for the next. */
@inline function tileRows(rowBytes: usize): i32 {
  const rows = <i32>(<usize>65536 / rowBytes);
  return rows < 4 ? 4 : rows & ~3;
}

/** Token t of a group starting at g, clamped to the last token (spare lanes repeat it). */
@inline function tok(g: i32, t: i32, nTok: i32): usize {
  return <usize>min(g + t, nTok - 1);
}

/**
 * F16 weights [n, k] (k a multiple of 8) against x permuted and scaled by 2^112 (permuteX), as
 * matvecF16Scaled: each group of 8 stored values is converted once and then used by four tokens,
 * in the canonical f32 dot's order (pairStep).
 */
export function batchF16Scaled(w: usize, xs: usize, out: usize, k: i32, n: i32, nTok: i32, r0: i32, r1: i32): void {
  const rowBytes = <usize>k << 1;
  const xstride = <usize>k << 2, os = <usize>n << 2;
  const tile = tileRows(rowBytes);
  const groups = nTok & ~3, rest = nTok - groups;
  for (let rb = r0; rb < r1; rb += tile) {
    const re = min(rb + tile, r1);
    for (let g = 0; g < nTok; g += 4) {
      if (g == groups && rest == 1) {
        matvecF16Scaled(w, xs + <usize>g * xstride, out + <usize>g * os, k, rb, re);
        break;
      }
      const t0 = tok(g, 0, nTok), t1 = tok(g, 1, nTok), t2 = tok(g, 2, nTok), t3 = tok(g, 3, nTok);
      const xa = xs + t0 * xstride, xb = xs + t1 * xstride, xc = xs + t2 * xstride, xe = xs + t3 * xstride;
      for (let r = rb; r < re; r++) {
        const row = w + <usize>r * rowBytes;
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        for (let i = 0; i < k; i += 8) {
          const raw = v128.load(row + (<usize>i << 1)), xo = <usize>i << 2;
          const even = f16ScaledEven(raw), odd = f16ScaledOdd(raw);
          a0 = pairStep(a0, even, odd, v128.load(xa + xo), v128.load(xa + xo, 16));
          a1 = pairStep(a1, even, odd, v128.load(xb + xo), v128.load(xb + xo, 16));
          a2 = pairStep(a2, even, odd, v128.load(xc + xo), v128.load(xc + xo, 16));
          a3 = pairStep(a3, even, odd, v128.load(xe + xo), v128.load(xe + xo, 16));
        }
        const ro = <usize>r << 2;
        store<f32>(out + t0 * os + ro, hsum(a0));
        store<f32>(out + t1 * os + ro, hsum(a1));
        store<f32>(out + t2 * os + ro, hsum(a2));
        store<f32>(out + t3 * os + ro, hsum(a3));
      }
    }
  }
}
