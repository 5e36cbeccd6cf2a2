// GGML Q5_0, laid out as llama.cpp does (block_q5_0 in ggml-common.h): blocks of 32 elements,
// each 22 bytes = f16 scale d + u32 qh (little-endian; bit j is the 5th bit of element j) + 16
// bytes whose byte j holds the low 4 bits of element j (low nibble) and of element j+16 (high
// nibble); x = d · (q − 16), q in 0..31.
//
// llama-quantize writes Q5_0 where a Q4_K matrix has rows that are not whole 256-element
// super-blocks (Qwen2-0.5B's 896), so `minerva convert` writes it there too; the backends compute
// with it as stored (cpu: kernels/legacy.ts; webgpu: weight-layout.ts).
// quantize() follows quantize_row_q5_0_ref step by step in f32, so it produces llama.cpp's bytes:
// max is the signed value of largest magnitude (the first on ties), d = max / −16,
// q = min(31, trunc(x · (1/d) + 16.5)).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 32;
export const BLOCK_BYTES = 22;
const FORMAT = { name: 'Q5_0', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const HALF = BLOCK_SIZE / 2;

/** Quantizes f32 values ([n], n a multiple of 32) to Q5_0 bytes ([n/32 × 22]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q5_0: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const nBlocks = values.length / BLOCK_SIZE;
  const bytes = new Uint8Array(nBlocks * BLOCK_BYTES);
  const level = (v: number, id: number): number => {
    const shifted = Math.fround(Math.fround(v * id) + 16.5);
    return Math.max(0, Math.min(31, Math.trunc(shifted)));
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
    const d = Math.fround(max / -16);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const at = b * BLOCK_BYTES;
    writeF16(bytes, at, d);
    let qh = 0;
    for (let j = 0; j < HALF; j++) {
      const q0 = level(x[j]!, id), q1 = level(x[j + HALF]!, id);
      bytes[at + 6 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 >> 4) << j) | ((q1 >> 4) << (j + HALF));
    }
    new DataView(bytes.buffer, bytes.byteOffset).setUint32(at + 2, qh >>> 0, true);
  }
  return bytes;
}

/** The 5-bit value (0..31) of element j of the block at `at`. */
function level(bytes: Uint8Array, at: number, j: number): number {
  const qh = bytes[at + 2 + (j >> 3)]! >> (j & 7) & 1;
  const packed = bytes[at + 6 + (j & (HALF - 1))]!;
  return (j < HALF ? packed & 0x0f : packed >> 4) | (qh << 4);
}

/** Decodes `count` Q5_0 elements (a multiple of 32) from `bytes` into `out` (or a new array). */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, d = readF16(bytes, at);
    for (let j = 0; j < BLOCK_SIZE; j++) dst[b * BLOCK_SIZE + j] = (level(bytes, at, j) - 16) * d;
  }
  return dst;
}
