// GGML Q2_K, laid out as llama.cpp does (block_q2_K in ggml-common.h): super-blocks of 256
// elements in 84 bytes = 16 scale bytes (per sub-block of 16: a 4-bit scale in the low nibble, a
// 4-bit min in the high one), 64 bytes of 2-bit values (qs), f16 d, f16 dmin. Sub-block j decodes
// as x = d·sc_j·q − dmin·m_j, q in 0..3. Element e: half h = e >> 7, i = e & 127; its bits are
// bits 2·(i >> 5) of qs[32h + (i & 31)].
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';
import { makeQkx2Quants, nearestInt } from './k-quant-fit.js';

export const BLOCK_SIZE = 256;
export const BLOCK_BYTES = 84;
const FORMAT = { name: 'Q2_K', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const f = Math.fround;

/** The 2-bit value (0..3) of element e (0..255) of the super-block at `at`. */
export function q2Value(bytes: Uint8Array, at: number, e: number): number {
  const h = e >> 7, i = e & 127;
  return (bytes[at + 16 + 32 * h + (i & 31)]! >> (2 * (i >> 5))) & 3;
}

/** Decodes `count` Q2_K elements (a multiple of 256) from `bytes` into `out` (or a new array), in f32 as ggml does. */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, o = b * BLOCK_SIZE;
    const d = readF16(bytes, at + 80), dmin = readF16(bytes, at + 82);
    for (let j = 0; j < 16; j++) {
      const sc = bytes[at + j]!;
      const dl = f(d * (sc & 0x0f)), ml = f(dmin * (sc >> 4));
      for (let l = 0; l < 16; l++) dst[o + 16 * j + l] = f(dl * q2Value(bytes, at, 16 * j + l)) - ml;
    }
  }
  return dst;
}

/**
 * Quantizes f32 values ([n], n a multiple of 256) to Q2_K bytes ([n/256 × 84]) as ggml's
 * quantize_row_q2_K_ref does: per sub-block of 16, make_qkx2_quants (levels 0..3, |x|-weighted
 * absolute error, 16 trial scales from nmax − 0.5 by 0.1); scales and mins to 4 bits against
 * d = max scale / 15 and dmin = max min / 15; the values against the stored scales.
 */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q2_K: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const bytes = new Uint8Array((values.length / BLOCK_SIZE) * BLOCK_BYTES);
  const L = new Uint8Array(BLOCK_SIZE), laux = new Uint8Array(16), weights = new Float32Array(16);
  const scales = new Float32Array(16), mins = new Float32Array(16);
  for (let b = 0; b < values.length / BLOCK_SIZE; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const at = b * BLOCK_BYTES;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 16; j++) {
      const xs = x.subarray(16 * j, 16 * j + 16);
      for (let l = 0; l < 16; l++) weights[l] = Math.abs(xs[l]!);
      const fit = makeQkx2Quants(xs, weights, 3, L.subarray(16 * j, 16 * j + 16), laux, -0.5, 0.1, 15, true);
      scales[j] = fit.scale;
      mins[j] = fit.min;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    if (maxScale > 0) {
      const iscale = f(15 / maxScale);
      for (let j = 0; j < 16; j++) bytes[at + j] = nearestInt(f(iscale * scales[j]!));
      writeF16(bytes, at + 80, f(maxScale / 15));
    }
    if (maxMin > 0) {
      const iscale = f(15 / maxMin);
      for (let j = 0; j < 16; j++) bytes[at + j]! |= nearestInt(f(iscale * mins[j]!)) << 4;
      writeF16(bytes, at + 82, f(maxMin / 15));
    }
    const d = readF16(bytes, at + 80), dmin = readF16(bytes, at + 82);
    for (let j = 0; j < 16; j++) {
      const dj = f(d * (bytes[at + j]! & 0x0f));
      if (!dj) continue; // ggml keeps the levels of the scale search here
      const dm = f(dmin * (bytes[at + j]! >> 4));
      for (let l = 0; l < 16; l++) {
        const q = nearestInt(f(f(x[16 * j + l]! + dm) / dj));
        L[16 * j + l] = q < 0 ? 0 : q > 3 ? 3 : q;
      }
    }
    for (let h = 0; h < 2; h++) {
      for (let l = 0; l < 32; l++) {
        const e = 128 * h + l;
        bytes[at + 16 + 32 * h + l] = L[e]! | (L[e + 32]! << 2) | (L[e + 64]! << 4) | (L[e + 96]! << 6);
      }
    }
  }
  return bytes;
}
