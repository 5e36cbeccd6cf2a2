// GGML Q4_K, laid out as llama.cpp does (block_q4_K in ggml-common.h): super-blocks of 256
// elements in 144 bytes = f16 d, f16 dmin, 12 bytes holding eight 6-bit sub-block scales and
// eight 6-bit mins, then 128 bytes of 4-bit values. Sub-block j (32 elements) decodes as
// x = d·sc_j·q − dmin·m_j. Values come in 4 chunks of 64 elements: byte l of chunk c holds element
// l of sub-block 2c in its low nibble and element l of sub-block 2c+1 in its high nibble.
// Scale packing (get_scale_min_k4): for j < 4, sc_j and m_j are the low 6 bits of bytes j and
// j + 4; for j ≥ 4, their low 4 bits are the two nibbles of byte j + 4 and their top 2 bits the
// top 2 bits of bytes j − 4 (sc) and j (m).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 256;
export const BLOCK_BYTES = 144;
const FORMAT = { name: 'Q4_K', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const f = Math.fround;

/** Sub-block j's 6-bit scale and min from the 12 packed bytes at `at`. */
export function scaleMin(bytes: Uint8Array, at: number, j: number): [number, number] {
  if (j < 4) return [bytes[at + j]! & 63, bytes[at + j + 4]! & 63];
  return [
    (bytes[at + j + 4]! & 0x0f) | ((bytes[at + j - 4]! >> 6) << 4),
    (bytes[at + j + 4]! >> 4) | ((bytes[at + j]! >> 6) << 4),
  ];
}

/** Decodes `count` Q4_K elements (a multiple of 256) from `bytes` into `out` (or a new array), in f32 as ggml does. */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, o = b * BLOCK_SIZE;
    const d = readF16(bytes, at), dmin = readF16(bytes, at + 2);
    for (let c = 0; c < 4; c++) {
      const [sc0, m0] = scaleMin(bytes, at + 4, 2 * c), [sc1, m1] = scaleMin(bytes, at + 4, 2 * c + 1);
      const d0 = f(d * sc0), min0 = f(dmin * m0), d1 = f(d * sc1), min1 = f(dmin * m1);
      for (let l = 0; l < 32; l++) {
        const q = bytes[at + 16 + 32 * c + l]!;
        dst[o + 64 * c + l] = f(d0 * (q & 0x0f)) - min0;
        dst[o + 64 * c + 32 + l] = f(d1 * (q >> 4)) - min1;
      }
    }
  }
  return dst;
}

/**
 * Best (scale, min) for x ≈ scale·q − min with q in 0..nmax, min ≥ 0: from the range's endpoints,
 * a few nearby scales, each refit by weighted least squares on its rounding (weights |x| plus the
 * mean |x|, as ggml's make_qkx2_quants weighs the error); the fit's error comes from the same sums.
 */
function fitScaleMin(x: Float32Array, nmax: number): { scale: number; min: number } {
  const n = x.length;
  let lo = x[0]!, hi = x[0]!, sumAbs = 0;
  for (let i = 0; i < n; i++) { const v = x[i]!; if (v < lo) lo = v; if (v > hi) hi = v; sumAbs += Math.abs(v); }
  if (lo > 0) lo = 0;
  if (hi <= lo) return { scale: 0, min: -lo };
  const meanAbs = sumAbs / n;
  let bestScale = (hi - lo) / nmax, bestOffset = lo, bestErr = Infinity;
  for (let step = -3; step <= 3; step++) {
    const inv = (nmax + step * 0.25) / (hi - lo);
    let sw = 0, swq = 0, swq2 = 0, swx = 0, swqx = 0, swx2 = 0;
    for (let i = 0; i < n; i++) {
      const v = x[i]!, w = meanAbs + Math.abs(v);
      let q = Math.round((v - lo) * inv);
      q = q < 0 ? 0 : q > nmax ? nmax : q;
      sw += w; swq += w * q; swq2 += w * q * q; swx += w * v; swqx += w * q * v; swx2 += w * v * v;
    }
    const det = sw * swq2 - swq * swq;
    if (det <= 0) continue;
    let scale = (sw * swqx - swq * swx) / det;
    let offset = (swq2 * swx - swq * swqx) / det;
    if (offset > 0) { offset = 0; scale = swqx / swq2; }
    if (!(scale > 0)) continue;
    // Σ w (scale·q + offset − x)², expanded.
    const err = scale * scale * swq2 + 2 * scale * offset * swq + offset * offset * sw - 2 * scale * swqx - 2 * offset * swx + swx2;
    if (err < bestErr) { bestErr = err; bestScale = scale; bestOffset = offset; }
  }
  return { scale: bestScale, min: -bestOffset };
}

/** Quantizes f32 values ([n], n a multiple of 256) to Q4_K bytes ([n/256 × 144]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q4_K: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const bytes = new Uint8Array((values.length / BLOCK_SIZE) * BLOCK_BYTES);
  const scales = new Float64Array(8), mins = new Float64Array(8);
  const sc = new Uint8Array(8), m = new Uint8Array(8), q = new Uint8Array(BLOCK_SIZE);
  for (let b = 0; b < values.length / BLOCK_SIZE; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const at = b * BLOCK_BYTES;
    let maxScale = 0, maxMin = 0;
    for (let j = 0; j < 8; j++) {
      const fit = fitScaleMin(x.subarray(32 * j, 32 * j + 32), 15);
      scales[j] = fit.scale;
      mins[j] = fit.min;
      if (fit.scale > maxScale) maxScale = fit.scale;
      if (fit.min > maxMin) maxMin = fit.min;
    }
    // Sub-block scales and mins to 6 bits against the super-block's d and dmin.
    writeF16(bytes, at, maxScale / 63);
    writeF16(bytes, at + 2, maxMin / 63);
    const d = readF16(bytes, at), dmin = readF16(bytes, at + 2);
    for (let j = 0; j < 8; j++) {
      sc[j] = d > 0 ? Math.min(63, Math.round(scales[j]! / d)) : 0;
      m[j] = dmin > 0 ? Math.min(63, Math.round(mins[j]! / dmin)) : 0;
    }
    for (let j = 0; j < 4; j++) {
      bytes[at + 4 + j] = (sc[j]! & 63) | ((sc[j + 4]! >> 4) << 6);
      bytes[at + 8 + j] = (m[j]! & 63) | ((m[j + 4]! >> 4) << 6);
      bytes[at + 12 + j] = (sc[j + 4]! & 0x0f) | ((m[j + 4]! & 0x0f) << 4);
    }
    // Values against the stored (rounded) scales, so the rounding error is not compounded.
    for (let j = 0; j < 8; j++) {
      const dj = f(d * sc[j]!), mj = f(dmin * m[j]!);
      const inv = dj > 0 ? 1 / dj : 0;
      for (let l = 0; l < 32; l++) {
        const v = Math.round((x[32 * j + l]! + mj) * inv);
        q[32 * j + l] = v < 0 ? 0 : v > 15 ? 15 : v;
      }
    }
    for (let c = 0; c < 4; c++) {
      for (let l = 0; l < 32; l++) bytes[at + 16 + 32 * c + l] = q[64 * c + l]! | (q[64 * c + 32 + l]! << 4);
    }
  }
  return bytes;
}
