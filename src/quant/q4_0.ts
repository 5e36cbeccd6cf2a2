// GGML Q4_0, laid out as llama.cpp does (block_q4_0 in ggml-common.h): blocks of 32 elements,
// each 18 bytes = f16 scale d (little-endian) + 16 bytes; byte j holds element j in its low
// nibble and element j+16 in its high nibble; x = d · (q - 8).
// quantize() follows quantize_row_q4_0_ref step by step in f32, so it produces the same bytes as
// llama.cpp: max is the signed value of largest magnitude (the first one on ties), d = max / -8,
// q = min(15, trunc(x · (1/d) + 8.5)).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 32;
export const BLOCK_BYTES = 18;
const FORMAT = { name: 'Q4_0', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };

const HALF = BLOCK_SIZE / 2;

/** Quantizes f32 values ([n], n a multiple of 32) to Q4_0 bytes ([n/32 × 18]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q4_0: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const nBlocks = values.length / BLOCK_SIZE;
  const bytes = new Uint8Array(nBlocks * BLOCK_BYTES);
  const nibble = (v: number, id: number): number => {
    const shifted = Math.fround(Math.fround(v * id) + 8.5);
    return Math.max(0, Math.min(15, Math.trunc(shifted)));
  };
  for (let b = 0; b < nBlocks; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    let amax = 0;
    let max = 0;
    for (let j = 0; j < BLOCK_SIZE; j++) {
      const v = x[j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const at = b * BLOCK_BYTES;
    writeF16(bytes, at, d);
    for (let j = 0; j < HALF; j++) bytes[at + 2 + j] = nibble(x[j]!, id) | (nibble(x[j + HALF]!, id) << 4);
  }
  return bytes;
}

/** Decodes `count` Q4_0 elements (a multiple of 32) from `bytes` into `out` (or a new array). */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  const nBlocks = count / BLOCK_SIZE;
  for (let b = 0; b < nBlocks; b++) {
    const at = b * BLOCK_BYTES;
    const d = readF16(bytes, at);
    const o = b * BLOCK_SIZE;
    for (let j = 0; j < HALF; j++) {
      const packed = bytes[at + 2 + j]!;
      dst[o + j] = ((packed & 0x0f) - 8) * d;
      dst[o + j + HALF] = ((packed >>> 4) - 8) * d;
    }
  }
  return dst;
}
