// Memory read bandwidth (minerva bench ops): a SIMD sum over a large buffer, split over the pool
// by chunks. Nothing else reads as little per byte, so its bytes/s is the most a kernel that
// streams weights (a matrix-vector product) can reach on this machine.
import { hsum } from './common';

/**
 * partials[c] = Σ of the f32s of chunk c, for chunks [r0, r1) of `chunkBytes` each (a multiple of
 * 64) starting at `src`. Each chunk is read as four streams (its quarters) at once, each into its
 * own accumulator, as the matrix-vector kernels read four rows: one sequential stream per thread
 * measured ~14 GB/s here while a four-row BF16 kernel read ~19 (the prefetchers keep more lines in
 * flight for several streams). Each chunk's sum goes to its own slot, so threads never write the
 * same bytes.
 */
export function sumChunksF32(src: usize, partials: usize, chunkBytes: i32, r0: i32, r1: i32): void {
  const bytes = <usize>chunkBytes, quarter = bytes >> 2;
  for (let c = r0; c < r1; c++) {
    const start = src + <usize>c * bytes;
    let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
    const q1 = start + quarter, q2 = q1 + quarter, q3 = q2 + quarter;
    for (let o: usize = 0; o < quarter; o += 16) {
      a0 = f32x4.add(a0, v128.load(start + o));
      a1 = f32x4.add(a1, v128.load(q1 + o));
      a2 = f32x4.add(a2, v128.load(q2 + o));
      a3 = f32x4.add(a3, v128.load(q3 + o));
    }
    store<f32>(partials + (<usize>c << 2), hsum(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3))));
  }
}
