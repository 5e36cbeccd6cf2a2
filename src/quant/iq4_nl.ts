// GGML IQ4_NL, laid out as llama.cpp does (block_iq4_nl in ggml-common.h): blocks of 32 elements,
// each 18 bytes = f16 scale d + 16 bytes of 4-bit indices (byte j: element j in the low nibble,
// element j+16 in the high one) into a fixed non-linear table of int8 levels (kvalues_iq4nl);
// x = d · KVALUES[q].
//
// quantize() follows llama.cpp's quantize_iq4_nl without an importance matrix (what llama-quantize
// writes), step by step in f32: per block, weights x², a first scale max/127 and its weighted
// least-squares refit, then 15 trial scales (−127 + t) / max for t in −7..7, keeping the refit
// with the smallest weighted error; the indices are then taken again for the chosen scale.
// With { search: false } it follows quantize_row_iq4_nl_ref instead (ntry = −1 there): one scale
// max / −127, its refit stored as d, and the indices of the first scale kept. Both give llama.cpp's
// bytes (test/legacy-quants.test.ts calls its library), except that the reference leaves the
// indices of all-zero blocks before any other as its stack buffer held them (here 0); d is 0.
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 32;
export const BLOCK_BYTES = 18;
const FORMAT = { name: 'IQ4_NL', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const HALF = BLOCK_SIZE / 2;

/** The 16 levels, ascending (kvalues_iq4nl in ggml-common.h). */
export const KVALUES: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
/** ggml's GROUP_MAX_EPS (1e-15f): blocks whose largest magnitude is below it get d = 0. */
const GROUP_MAX_EPS = Math.fround(1e-15);
/** The trial scales searched on each side of the first (llama.cpp's ntry). */
const NTRY = 7;

/** Index of the level nearest to x (the upper one on a tie of the f32 distances), as best_index_int8. */
function nearestLevel(x: number): number {
  if (x <= KVALUES[0]!) return 0;
  if (x >= KVALUES[15]!) return 15;
  let lo = 0, hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < KVALUES[mid]!) hi = mid;
    else lo = mid;
  }
  return Math.fround(x - KVALUES[hi - 1]!) < Math.fround(KVALUES[hi]! - x) ? hi - 1 : hi;
}

/** Σ w·q·x and Σ w·q² in f32 over the block, for levels chosen at inverse scale id (L receives them when given). */
function fit(x: Float32Array, w: Float32Array, id: number, L?: Uint8Array): { sumqx: number; sumq2: number } {
  let sumqx = 0, sumq2 = 0;
  for (let j = 0; j < BLOCK_SIZE; j++) {
    const l = nearestLevel(Math.fround(id * x[j]!));
    if (L) L[j] = l;
    const q = KVALUES[l]!, wq = Math.fround(w[j]! * q);
    sumqx = Math.fround(sumqx + Math.fround(wq * x[j]!));
    sumq2 = Math.fround(sumq2 + Math.fround(wq * q));
  }
  return { sumqx, sumq2 };
}

/** Quantizes f32 values ([n], n a multiple of 32) to IQ4_NL bytes ([n/32 × 18]). */
export function quantize(values: Float32Array, opts: { search?: boolean } = {}): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`IQ4_NL: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const ntry = opts.search === false ? -1 : NTRY;
  const nBlocks = values.length / BLOCK_SIZE;
  const bytes = new Uint8Array(nBlocks * BLOCK_BYTES);
  const w = new Float32Array(BLOCK_SIZE);
  // Kept across blocks as llama.cpp's L is: an all-zero block leaves it as it was (its d is 0).
  const L = new Uint8Array(BLOCK_SIZE);
  for (let b = 0; b < nBlocks; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    let amax = 0, max = 0;
    for (let j = 0; j < BLOCK_SIZE; j++) {
      w[j] = Math.fround(x[j]! * x[j]!);
      const ax = Math.abs(x[j]!);
      if (ax > amax) { amax = ax; max = x[j]!; }
    }
    let d = 0;
    if (amax >= GROUP_MAX_EPS) {
      const first = Math.fround((ntry > 0 ? -max : max) / KVALUES[0]!);
      let { sumqx, sumq2 } = fit(x, w, Math.fround(1 / first), L);
      d = Math.fround(sumqx / sumq2);
      let best = Math.fround(d * sumqx);
      for (let t = -ntry; t <= ntry; t++) {
        ({ sumqx, sumq2 } = fit(x, w, Math.fround((t + KVALUES[0]!) / max)));
        if (sumq2 > 0 && Math.fround(sumqx * sumqx) > Math.fround(best * sumq2)) {
          d = Math.fround(sumqx / sumq2);
          best = Math.fround(d * sumqx);
        }
      }
    }
    if (ntry > 0) {
      const id = d !== 0 ? Math.fround(1 / d) : 0;
      for (let j = 0; j < BLOCK_SIZE; j++) L[j] = nearestLevel(Math.fround(id * x[j]!));
    }
    const at = b * BLOCK_BYTES;
    writeF16(bytes, at, d);
    for (let j = 0; j < HALF; j++) bytes[at + 2 + j] = L[j]! | (L[j + HALF]! << 4);
  }
  return bytes;
}

/** Decodes `count` IQ4_NL elements (a multiple of 32) from `bytes` into `out` (or a new array). */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, d = readF16(bytes, at), o = b * BLOCK_SIZE;
    for (let j = 0; j < HALF; j++) {
      const packed = bytes[at + 2 + j]!;
      dst[o + j] = d * KVALUES[packed & 0x0f]!;
      dst[o + j + HALF] = d * KVALUES[packed >>> 4]!;
    }
  }
  return dst;
}
