// GGML Q6_K, laid out as llama.cpp does (block_q6_K in ggml-common.h): super-blocks of 256
// elements in 210 bytes = 128 bytes of low 4 bits (ql), 64 bytes of high 2 bits (qh), 16 int8
// sub-block scales, f16 d. Sub-block j (16 elements) decodes as x = d·sc_j·(q − 32), q in 0..63.
// Each half of 128 elements: for l < 32, ql[l] holds the low bits of elements l (low nibble) and
// l + 64 (high nibble), ql[l + 32] those of l + 32 and l + 96, and qh[l] the high bits of l, l + 32,
// l + 64 and l + 96 in its bit pairs 0–1, 2–3, 4–5, 6–7.
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 256;
export const BLOCK_BYTES = 210;
const FORMAT = { name: 'Q6_K', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const f = Math.fround;

/** The 6-bit value (0..63) of element e (0..255) of the super-block at `at`. */
export function q6Value(bytes: Uint8Array, at: number, e: number): number {
  const half = e >> 7, i = e & 127, l = i & 31, quarter = i >> 5;
  const low = bytes[at + 64 * half + l + (quarter & 1) * 32]! >> ((quarter >> 1) * 4) & 0x0f;
  const high = (bytes[at + 128 + 32 * half + l]! >> (2 * quarter)) & 3;
  return low | (high << 4);
}

/** Decodes `count` Q6_K elements (a multiple of 256) from `bytes` into `out` (or a new array), in f32 as ggml does. */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, o = b * BLOCK_SIZE;
    const d = readF16(bytes, at + 208);
    for (let e = 0; e < BLOCK_SIZE; e++) {
      const sc = (bytes[at + 192 + (e >> 4)]! << 24) >> 24; // int8
      dst[o + e] = f(f(d * sc) * (q6Value(bytes, at, e) - 32));
    }
  }
  return dst;
}

/**
 * Quantizes f32 values ([n], n a multiple of 256) to Q6_K bytes ([n/256 × 210]): per sub-block of
 * 16 the scale that maps its largest-magnitude value to −32 (the asymmetric range's long end,
 * as ggml's make_qx_quants), refined over nearby scales by squared error; the 16 scales to int8
 * against the super-block's d.
 */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`Q6_K: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const bytes = new Uint8Array((values.length / BLOCK_SIZE) * BLOCK_BYTES);
  const err = (x: Float32Array, scale: number) => {
    const inv = 1 / scale;
    let e = 0;
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      let q = Math.round(v * inv);
      q = q < -32 ? -32 : q > 31 ? 31 : q;
      const diff = scale * q - v;
      e += diff * diff;
    }
    return e;
  };
  for (let b = 0; b < values.length / BLOCK_SIZE; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const at = b * BLOCK_BYTES;
    const scales = new Float64Array(16);
    for (let j = 0; j < 16; j++) {
      const sub = x.subarray(16 * j, 16 * j + 16);
      let max = 0;
      for (const v of sub) if (Math.abs(v) > Math.abs(max)) max = v;
      if (max === 0) continue;
      let best = -max / 32, bestErr = err(sub, best);
      for (let step = -3; step <= 3; step++) {
        if (step === 0) continue;
        const s = -max / (32 + 0.3 * step);
        const e = err(sub, s);
        if (e < bestErr) { bestErr = e; best = s; }
      }
      scales[j] = best;
    }
    let maxScale = 0;
    for (const s of scales) if (Math.abs(s) > Math.abs(maxScale)) maxScale = s;
    writeF16(bytes, at + 208, maxScale === 0 ? 0 : -maxScale / 128);
    const d = readF16(bytes, at + 208);
    const q = new Uint8Array(BLOCK_SIZE);
    for (let j = 0; j < 16; j++) {
      const sc = d !== 0 ? Math.max(-128, Math.min(127, Math.round(scales[j]! / d))) : 0;
      bytes[at + 192 + j] = sc & 0xff;
      const dj = f(d * sc);
      for (let l = 0; l < 16; l++) {
        const e = 16 * j + l;
        q[e] = dj !== 0 ? Math.max(0, Math.min(63, Math.round(x[e]! / dj) + 32)) : 32;
      }
    }
    for (let half = 0; half < 2; half++) {
      for (let l = 0; l < 32; l++) {
        const e = 128 * half + l;
        const [q1, q2, q3, q4] = [q[e]!, q[e + 32]!, q[e + 64]!, q[e + 96]!];
        bytes[at + 64 * half + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
        bytes[at + 64 * half + 32 + l] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
        bytes[at + 128 + 32 * half + l] = (q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6);
      }
    }
  }
  return bytes;
}
