// GGML Q5_K, laid out as llama.cpp does (block_q5_K in ggml-common.h): super-blocks of 256
// elements in 176 bytes = f16 d, f16 dmin, 12 bytes of eight 6-bit scales and mins (packed as
// Q4_K's: q4_k.ts scaleMin), 32 bytes of high bits (qh), then 128 bytes of low nibbles (qs).
// Sub-block j (32 elements) decodes as x = d·sc_j·q − dmin·m_j with q in 0..31. Chunk c of 64
// elements: qs byte 32c + l holds the low 4 bits of element 64c + l (low nibble) and 64c + 32 + l
// (high nibble); their 5th bits are bits 2c and 2c + 1 of qh[l].
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';
import { makeQkx2Quants, nearestInt } from './k-quant-fit.js';
import { scaleMin } from './q4_k.js';

export const BLOCK_SIZE = 256;
export const BLOCK_BYTES = 176;
const FORMAT = { name: 'Q5_K', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const f = Math.fround;

/** The 5-bit value (0..31) of element e (0..255) of the super-block at `at`. */
export function q5Value(bytes: Uint8Array, at: number, e: number): number {
  const c = e >> 6, half = (e >> 5) & 1, l = e & 31;
  const low = (bytes[at + 48 + 32 * c + l]! >> (4 * half)) & 0x0f;
  const high = (bytes[at + 16 + l]! >> (2 * c + half)) & 1;
  return low | (high << 4);
}

/** Decodes `count` Q5_K elements (a multiple of 256) from `bytes` into `out` (or a new array), in f32 as ggml does. */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, o = b * BLOCK_SIZE;
    const d = readF16(bytes, at), dmin = readF16(bytes, at + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMin(bytes, at + 4, j);
      const dj = f(d * sc), mj = f(dmin * m);
      for (let l = 0; l < 32; l++) dst[o + 32 * j + l] = f(dj * q5Value(bytes, at, 32 * j + l)) - mj;
    }
  }
  return dst;
}

/**
 * Quantizes f32 values ([n], n a multiple of 256) to Q5_K bytes ([n/256 × 176]) as ggml's
 * quantize_row_q5_K_ref does: per sub-block of 32, make_qkx2_quants (levels 0..31, weights
 * mean-|x| + |x|, 16 trial scales from nmax − 0.5 by 0.1); the scales and mins to 6 bits against
 * d = max scale / 63 and dmin = max min / 63; the values against the stored scales.
 */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q5_K: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const bytes = new Uint8Array((values.length / BLOCK_SIZE) * BLOCK_BYTES);
  const L = new Uint8Array(BLOCK_SIZE), laux = new Uint8Array(32), weights = new Float32Array(32);
  const scales = new Float32Array(8), mins = new Float32Array(8);
  for (let b = 0; b < values.length / BLOCK_SIZE; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const at = b * BLOCK_BYTES;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const xs = x.subarray(32 * j, 32 * j + 32);
      let sumX2 = 0;
      for (let l = 0; l < 32; l++) sumX2 = f(sumX2 + f(xs[l]! * xs[l]!));
      const avX = f(Math.sqrt(f(sumX2 / 32)));
      for (let l = 0; l < 32; l++) weights[l] = avX + Math.abs(xs[l]!);
      const fit = makeQkx2Quants(xs, weights, 31, L.subarray(32 * j, 32 * j + 32), laux, -0.5, 0.1, 15, false);
      scales[j] = fit.scale;
      mins[j] = fit.min;
      if (scales[j]! > maxScale) maxScale = scales[j]!;
      if (mins[j]! > maxMin) maxMin = mins[j]!;
    }
    packScalesMins(bytes, at, scales, mins, maxScale, maxMin);
    const d = readF16(bytes, at), dmin = readF16(bytes, at + 2);
    for (let j = 0; j < 8; j++) {
      const [sc, m] = scaleMin(bytes, at + 4, j);
      const dj = f(d * sc);
      if (!dj) continue; // ggml keeps the levels of the scale search here
      const dm = f(dmin * m);
      for (let l = 0; l < 32; l++) {
        const q = nearestInt(f(f(x[32 * j + l]! + dm) / dj));
        L[32 * j + l] = q < 0 ? 0 : q > 31 ? 31 : q;
      }
    }
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) {
        const lo = L[64 * c + l]!, hi = L[64 * c + 32 + l]!;
        bytes[at + 48 + 32 * c + l] = (lo & 15) | ((hi & 15) << 4);
        bytes[at + 16 + l]! |= ((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1));
      }
    }
  }
  return bytes;
}

/**
 * The Q4_K/Q5_K header: d and dmin as f16 (max / 63), and the eight 6-bit scales and mins
 * (nearest, at most 63) packed as get_scale_min_k4 reads them.
 */
export function packScalesMins(bytes: Uint8Array, at: number, scales: Float32Array, mins: Float32Array, maxScale: number, maxMin: number): void {
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0, invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, nearestInt(f(invScale * scales[j]!)) & 0xff);
    const lm = Math.min(63, nearestInt(f(invMin * mins[j]!)) & 0xff);
    if (j < 4) {
      bytes[at + 4 + j] = ls;
      bytes[at + 8 + j] = lm;
    } else {
      bytes[at + 8 + j] = (ls & 0x0f) | ((lm & 0x0f) << 4);
      bytes[at + j]! |= (ls >> 4) << 6;
      bytes[at + 4 + j]! |= (lm >> 4) << 6;
    }
  }
  writeF16(bytes, at, f(maxScale / 63));
  writeF16(bytes, at + 2, f(maxMin / 63));
}
