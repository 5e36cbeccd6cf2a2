// GGML Q5_1, laid out as llama.cpp does (block_q5_1 in ggml-common.h): blocks of 32 elements,
// each 24 bytes = f16 scale d + f16 minimum m + u32 qh (little-endian; bit j is the 5th bit of
// element j) + 16 bytes whose byte j holds the low 4 bits of element j (low nibble) and of
// element j+16 (high nibble); x = d · q + m, q in 0..31.
// quantize() follows quantize_row_q5_1_ref step by step in f32, so it produces llama.cpp's bytes:
// m is the block's minimum, d = (max − m) / 31, q = trunc((x − m) · (1/d) + 0.5).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';
import { minAndScale } from './q4_1.js';

export const BLOCK_SIZE = 32;
export const BLOCK_BYTES = 24;
const FORMAT = { name: 'Q5_1', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const HALF = BLOCK_SIZE / 2;

/** Quantizes f32 values ([n], n a multiple of 32) to Q5_1 bytes ([n/32 × 24]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q5_1: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const nBlocks = values.length / BLOCK_SIZE;
  const bytes = new Uint8Array(nBlocks * BLOCK_BYTES);
  const view = new DataView(bytes.buffer);
  for (let b = 0; b < nBlocks; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const { min, d, id } = minAndScale(x, 31);
    const at = b * BLOCK_BYTES;
    writeF16(bytes, at, d);
    writeF16(bytes, at + 2, min);
    // (uint8_t) of a value in [0, 31.5]: truncation; no clamp, as there.
    const level = (v: number): number => Math.trunc(Math.fround(Math.fround(Math.fround(v - min) * id) + 0.5)) & 0xff;
    let qh = 0;
    for (let j = 0; j < HALF; j++) {
      const q0 = level(x[j]!), q1 = level(x[j + HALF]!);
      bytes[at + 8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= (((q0 & 0x10) >> 4) << j) | (((q1 & 0x10) >> 4) << (j + HALF));
    }
    view.setUint32(at + 4, qh >>> 0, true);
  }
  return bytes;
}

/** Decodes `count` Q5_1 elements (a multiple of 32) from `bytes` into `out` (or a new array). */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, d = readF16(bytes, at), m = readF16(bytes, at + 2), o = b * BLOCK_SIZE;
    for (let j = 0; j < BLOCK_SIZE; j++) {
      const high = (bytes[at + 4 + (j >> 3)]! >> (j & 7)) & 1;
      const packed = bytes[at + 8 + (j & (HALF - 1))]!;
      const q = (j < HALF ? packed & 0x0f : packed >> 4) | (high << 4);
      dst[o + j] = q * d + m; // exact product, one rounding of the sum (see q4_1.ts)
    }
  }
  return dst;
}
