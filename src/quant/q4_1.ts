// GGML Q4_1, laid out as llama.cpp does (block_q4_1 in ggml-common.h): blocks of 32 elements,
// each 20 bytes = f16 scale d + f16 minimum m (little-endian) + 16 bytes; byte j holds element j
// in its low nibble and element j+16 in its high nibble; x = d · q + m, q in 0..15.
// quantize() follows quantize_row_q4_1_ref step by step in f32, so it produces llama.cpp's bytes:
// m is the block's minimum, d = (max − m) / 15, q = min(15, trunc((x − m) · (1/d) + 0.5)).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 32;
export const BLOCK_BYTES = 20;
const FORMAT = { name: 'Q4_1', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const HALF = BLOCK_SIZE / 2;

/** Quantizes f32 values ([n], n a multiple of 32) to Q4_1 bytes ([n/32 × 20]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q4_1: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const nBlocks = values.length / BLOCK_SIZE;
  const bytes = new Uint8Array(nBlocks * BLOCK_BYTES);
  for (let b = 0; b < nBlocks; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const { min, d, id } = minAndScale(x, 15);
    const at = b * BLOCK_BYTES;
    writeF16(bytes, at, d);
    writeF16(bytes, at + 2, min);
    const level = (v: number): number => Math.min(15, Math.trunc(Math.fround(Math.fround(Math.fround(v - min) * id) + 0.5)));
    for (let j = 0; j < HALF; j++) bytes[at + 4 + j] = level(x[j]!) | (level(x[j + HALF]!) << 4);
  }
  return bytes;
}

/**
 * The block's minimum, d = (max − min) / levels and 1/d (0 when d is 0), in f32 as llama.cpp's
 * Q4_1 and Q5_1 reference quantizers compute them (shared with q5_1.ts).
 */
export function minAndScale(x: Float32Array, levels: number): { min: number; d: number; id: number } {
  let min = Infinity, max = -Infinity; // (FLT_MAX there: the same for finite values)
  for (let j = 0; j < x.length; j++) {
    const v = x[j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const d = Math.fround(Math.fround(max - min) / levels);
  return { min, d, id: d !== 0 ? Math.fround(1 / d) : 0 };
}

/** Decodes `count` Q4_1 elements (a multiple of 32) from `bytes` into `out` (or a new array). */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, d = readF16(bytes, at), m = readF16(bytes, at + 2), o = b * BLOCK_SIZE;
    for (let j = 0; j < HALF; j++) {
      const packed = bytes[at + 4 + j]!;
      // q·d is exact in f32 (5 + 11 bits) and in f64 the sum is exact, so storing rounds once, as f32 does.
      dst[o + j] = (packed & 0x0f) * d + m;
      dst[o + j + HALF] = (packed >>> 4) * d + m;
    }
  }
  return dst;
}
