// GGML Q8_0, laid out as llama.cpp does (block_q8_0 in ggml-common.h): blocks of 32 elements,
// each 34 bytes = f16 scale d (little-endian) + 32 × int8 q, and x = d · q.
// quantize() follows quantize_row_q8_0_ref step by step in f32 (Math.fround at each step), so
// it produces the same bytes as llama.cpp: d = amax/127, q = roundf(x · (1/d)) (ties away from 0).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 32;
export const BLOCK_BYTES = 34;
const FORMAT = { name: 'Q8_0', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };

/** Quantizes f32 values ([n], n a multiple of 32) to Q8_0 bytes ([n/32 × 34]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q8_0: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const nBlocks = values.length / BLOCK_SIZE;
  const bytes = new Uint8Array(nBlocks * BLOCK_BYTES);
  for (let b = 0; b < nBlocks; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    let amax = 0;
    for (let j = 0; j < BLOCK_SIZE; j++) amax = Math.max(amax, Math.abs(x[j]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const at = b * BLOCK_BYTES;
    writeF16(bytes, at, d);
    for (let j = 0; j < BLOCK_SIZE; j++) {
      const v = Math.fround(x[j]! * id);
      // roundf: halves away from zero (Math.round would send -2.5 to -2). |v| <= 127 up to an ulp.
      const q = v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
      bytes[at + 2 + j] = Math.max(-127, Math.min(127, q)) & 0xff;
    }
  }
  return bytes;
}

/** Decodes `count` Q8_0 elements (a multiple of 32) from `bytes` into `out` (or a new array). */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  const nBlocks = count / BLOCK_SIZE;
  for (let b = 0; b < nBlocks; b++) {
    const at = b * BLOCK_BYTES;
    const d = readF16(bytes, at);
    const o = b * BLOCK_SIZE;
    // int8 × f16 has at most 18 significant bits: the f32 product is exact, as in C.
    for (let j = 0; j < BLOCK_SIZE; j++) dst[o + j] = ((bytes[at + 2 + j]! << 24) >> 24) * d;
  }
  return dst;
}
