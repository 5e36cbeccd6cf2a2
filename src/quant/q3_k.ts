// GGML Q3_K, laid out as llama.cpp does (block_q3_K in ggml-common.h): super-blocks of 256
// elements in 110 bytes = 32 bytes of high bits (hmask), 64 bytes of 2-bit values (qs), 12 bytes of
// sixteen 6-bit scales, f16 d. Sub-block j (16 elements) decodes as x = d·(sc_j − 32)·(q − 4), q in
// 0..7. Element e: half h = e >> 7, i = e & 127; its low 2 bits are bits 2·(i >> 5) of qs[32h +
// (i & 31)], its 3rd bit is bit 4h + (i >> 5) of hmask[i & 31]. Scale j: low 4 bits in byte j (j <
// 8, low nibble) or byte j − 8 (high nibble); top 2 bits at bit 2·(j >> 2) of byte 8 + (j & 3).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';
import { makeQ3Quants, nearestInt } from './k-quant-fit.js';

export const BLOCK_SIZE = 256;
export const BLOCK_BYTES = 110;
const FORMAT = { name: 'Q3_K', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const f = Math.fround;

/** Sub-block j's 6-bit scale (0..63, stored biased by 32) from the 12 bytes at `at`. */
export function q3Scale(bytes: Uint8Array, at: number, j: number): number {
  const low = j < 8 ? bytes[at + j]! & 0x0f : bytes[at + j - 8]! >> 4;
  return low | (((bytes[at + 8 + (j & 3)]! >> (2 * (j >> 2))) & 3) << 4);
}

/** The 3-bit value (0..7) of element e (0..255) of the super-block at `at`. */
export function q3Value(bytes: Uint8Array, at: number, e: number): number {
  const h = e >> 7, i = e & 127, l = i & 31, s = i >> 5;
  const low = (bytes[at + 32 + 32 * h + l]! >> (2 * s)) & 3;
  const high = (bytes[at + l]! >> (4 * h + s)) & 1;
  return low | (high << 2);
}

/** Decodes `count` Q3_K elements (a multiple of 256) from `bytes` into `out` (or a new array), in f32 as ggml does. */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, o = b * BLOCK_SIZE;
    const d = readF16(bytes, at + 108);
    for (let j = 0; j < 16; j++) {
      const dl = f(d * (q3Scale(bytes, at + 96, j) - 32));
      for (let l = 0; l < 16; l++) dst[o + 16 * j + l] = f(dl * (q3Value(bytes, at, 16 * j + l) - 4));
    }
  }
  return dst;
}

/**
 * Quantizes f32 values ([n], n a multiple of 256) to Q3_K bytes ([n/256 × 110]) as ggml's
 * quantize_row_q3_K_ref does: per sub-block of 16, make_q3_quants (levels −4..3, refined by
 * x²-weighted moves); the 16 signed scales to 6 bits against d = −(the largest in magnitude)/32;
 * the values against the stored scales.
 */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q3_K: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const bytes = new Uint8Array((values.length / BLOCK_SIZE) * BLOCK_BYTES);
  const L = new Int8Array(BLOCK_SIZE), scales = new Float32Array(16);
  for (let b = 0; b < values.length / BLOCK_SIZE; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const at = b * BLOCK_BYTES, sat = at + 96;
    let maxScale = 0, amax = 0;
    for (let j = 0; j < 16; j++) {
      scales[j] = makeQ3Quants(x.subarray(16 * j, 16 * j + 16), 4, L.subarray(16 * j, 16 * j + 16));
      const a = Math.abs(scales[j]!);
      if (a > amax) { amax = a; maxScale = scales[j]!; }
    }
    if (maxScale) {
      const iscale = f(-32 / maxScale);
      for (let j = 0; j < 16; j++) {
        const l = Math.max(-32, Math.min(31, (nearestInt(f(iscale * scales[j]!)) << 24) >> 24)) + 32; // int8_t in ggml
        if (j < 8) bytes[sat + j] = l & 0x0f;
        else bytes[sat + j - 8]! |= (l & 0x0f) << 4;
        bytes[sat + 8 + (j & 3)]! |= (l >> 4) << (2 * (j >> 2));
      }
      writeF16(bytes, at + 108, f(1 / iscale));
    }
    const d = readF16(bytes, at + 108);
    for (let j = 0; j < 16; j++) {
      const dj = f(d * (q3Scale(bytes, sat, j) - 32));
      if (!dj) continue; // ggml keeps the levels of the scale search here
      for (let l = 0; l < 16; l++) {
        const q = nearestInt(f(x[16 * j + l]! / dj));
        L[16 * j + l] = Math.max(-4, Math.min(3, q)) + 4;
      }
    }
    // hmask: bit k of byte m is the 3rd bit of element 32k + m.
    for (let e = 0; e < BLOCK_SIZE; e++) {
      if (L[e]! > 3) {
        bytes[at + (e & 31)]! |= 1 << (e >> 5);
        L[e] = L[e]! - 4;
      }
    }
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const e = 128 * h + l;
        bytes[at + 32 + 32 * h + l] = L[e]! | (L[e + 32]! << 2) | (L[e + 64]! << 4) | (L[e + 96]! << 6);
      }
    }
  }
  return bytes;
}
