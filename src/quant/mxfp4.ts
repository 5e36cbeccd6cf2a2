// GGML MXFP4 (OCP microscaling FP4, as gpt-oss ships it), laid out as llama.cpp does
// (block_mxfp4 in ggml-common.h): blocks of 32 elements in 17 bytes = one E8M0 exponent byte e,
// then 16 bytes of E2M1 codes, element l in the low nibble of byte l and l + 16 in the high one.
// llama.cpp stores the E2M1 values doubled, as integers (kvalues_mxfp4: MXFP4_VALUES below), and
// halves the scale to match: x = MXFP4_VALUES[q] · 2^(e − 128) (ggml_e8m0_to_fp32_half; for e < 2
// the f32 subnormals 2^-128, 2^-127). e = 255 is NaN in the OCP format; llama.cpp refuses such a
// block when it validates a file, and so do the backends here (block-checks.ts).
// quantize() follows quantize_row_mxfp4_ref: e = floor(log2(max|x|)) − 2 + 127 (log2 rounded to
// f32 first, as log2f is), and each value the code of least |value − x| in f32, the first on ties.
// (ggml's cast of an exponent outside 0..255 is undefined; here it is clamped to 0..254: only
// blocks below 2^-125 reach the clamp, at 0, and no finite f32 goes above 252.)
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 32;
export const BLOCK_BYTES = 17;
const FORMAT = { name: 'MXFP4', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const f = Math.fround;

/** E2M1 values doubled, by 4-bit code (ggml-common.h kvalues_mxfp4): sign in bit 3. */
export const MXFP4_VALUES: readonly number[] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/**
 * Half the E8M0 scale `e`: 2^(e − 128), the f32 ggml_e8m0_to_fp32_half builds from bits (for e < 2
 * the subnormals 2^-128 and 2^-127, exact f32s too).
 */
export function halfScale(e: number): number {
  return 2 ** (e - 128);
}

/** Decodes `count` MXFP4 elements (a multiple of 32) from `bytes` into `out` (or a new array). */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, o = b * BLOCK_SIZE;
    const d = halfScale(bytes[at]!);
    for (let l = 0; l < 16; l++) {
      const packed = bytes[at + 1 + l]!;
      dst[o + l] = MXFP4_VALUES[packed & 0x0f]! * d;
      dst[o + l + 16] = MXFP4_VALUES[packed >> 4]! * d;
    }
  }
  return dst;
}

/** ggml's best_index_mxfp4: the code whose value times d is nearest x (f32 differences, first on ties). */
function bestCode(x: number, d: number): number {
  let best = 0, bestErr = Math.abs(f(MXFP4_VALUES[0]! * d - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(f(MXFP4_VALUES[i]! * d - x));
    if (err < bestErr) { best = i; bestErr = err; }
  }
  return best;
}

/** Quantizes f32 values ([n], n a multiple of 32) to MXFP4 bytes ([n/32 × 17]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`MXFP4: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const bytes = new Uint8Array((values.length / BLOCK_SIZE) * BLOCK_BYTES);
  for (let b = 0; b < values.length / BLOCK_SIZE; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const at = b * BLOCK_BYTES;
    let amax = 0;
    for (let j = 0; j < BLOCK_SIZE; j++) amax = Math.max(amax, Math.abs(x[j]!));
    const e = amax > 0 ? Math.max(0, Math.min(254, Math.floor(f(Math.log2(amax))) - 2 + 127)) : 0;
    const d = halfScale(e);
    bytes[at] = e;
    for (let l = 0; l < 16; l++) bytes[at + 1 + l] = bestCode(x[l]!, d) | (bestCode(x[l + 16]!, d) << 4);
  }
  return bytes;
}
