// GGML IQ4_XS, laid out as llama.cpp does (block_iq4_xs in ggml-common.h): super-blocks of 256
// elements in 136 bytes = f16 d, u16 scales_h, 4 bytes scales_l, then 128 bytes of 4-bit indices
// into the non-linear table IQ4_VALUES (llama.cpp's kvalues_iq4nl). Sub-block j (32 elements)
// has a 6-bit scale ls_j: its low 4 bits are nibble j mod 2 of scales_l[j/2], its top 2 bits bits
// 2j, 2j+1 of scales_h; it decodes as x = (d·(ls_j − 32))·IQ4_VALUES[q]. Sub-block j's 16 index
// bytes hold element l in the low nibble of byte l and element l + 16 in the high one.
// quantize() follows llama.cpp's quantize_row_iq4_xs_ref (quantize_iq4_xs without importance
// weights: per sub-block a weighted fit over 15 trial scales, weights x²; then the scales to 6
// bits against d = −max_scale/32) step by step in f32, so it gives the same bytes wherever the C
// compiler does not fuse a multiply and an add (its sums are not pinned by the C standard).
import { readF16, writeF16 } from './f16.js';
import { checkDequantizeArgs, checkFinite } from './block-checks.js';

export const BLOCK_SIZE = 256;
export const BLOCK_BYTES = 136;
const FORMAT = { name: 'IQ4_XS', blockSize: BLOCK_SIZE, blockBytes: BLOCK_BYTES };
const f = Math.fround;

/** The 16 values a 4-bit index selects (ggml-common.h kvalues_iq4nl), ascending. */
export const IQ4_VALUES: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/** Sub-block j's 6-bit scale (0..63; the value multiplies d·(ls − 32)) from the block at `at`. */
export function subScale(bytes: Uint8Array, at: number, j: number): number {
  const high = ((bytes[at + 2]! | (bytes[at + 3]! << 8)) >> (2 * j)) & 3;
  return ((bytes[at + 4 + (j >> 1)]! >> (4 * (j & 1))) & 0x0f) | (high << 4);
}

/** Decodes `count` IQ4_XS elements (a multiple of 256) from `bytes` into `out` (or a new array), in f32 as ggml does. */
export function dequantize(bytes: Uint8Array, count: number, out?: Float32Array): Float32Array {
  const dst = checkDequantizeArgs(FORMAT, bytes, count, out);
  for (let b = 0; b < count / BLOCK_SIZE; b++) {
    const at = b * BLOCK_BYTES, o = b * BLOCK_SIZE;
    const d = readF16(bytes, at);
    for (let j = 0; j < 8; j++) {
      const dl = f(d * (subScale(bytes, at, j) - 32));
      const q = at + 8 + 16 * j, e = o + 32 * j;
      for (let l = 0; l < 16; l++) {
        dst[e + l] = f(dl * IQ4_VALUES[bytes[q + l]! & 0x0f]!);
        dst[e + l + 16] = f(dl * IQ4_VALUES[bytes[q + l]! >> 4]!);
      }
    }
  }
  return dst;
}

/** ggml's best_index_int8 over IQ4_VALUES: the index of the value nearest x (in f32; ties to the upper). */
function bestIndex(x: number): number {
  const v = IQ4_VALUES;
  if (x <= v[0]!) return 0;
  if (x >= v[15]!) return 15;
  let lo = 0, hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < v[mid]!) hi = mid; else lo = mid;
  }
  return f(x - v[hi - 1]!) < f(v[hi]! - x) ? hi - 1 : hi;
}

/** ggml's nearest_int: round half to even, through the f32 magic-number trick. */
function nearestInt(x: number): number {
  return f(x + 12582912) - 12582912;
}

/** Sub-blocks whose largest |x| is below this keep scale 0 (ggml's GROUP_MAX_EPS). */
const GROUP_MAX_EPS = f(1e-15);
/** Trial scales either side of the first guess (ggml's ntry for IQ4_XS). */
const NTRY = 7;

/**
 * One sub-block's scale as quantize_row_iq4_nl_impl finds it with weights x²: from d = max/127,
 * then the 15 inverse scales (itry − 127)/max, keeping the weighted least-squares scale of the
 * rounding with the best Σwqx²/Σwq². All in f32, in ggml's order.
 */
function fitSubBlock(x: Float32Array): number {
  let amax = 0, max = 0;
  for (let j = 0; j < 32; j++) {
    const ax = Math.abs(x[j]!);
    if (ax > amax) { amax = ax; max = x[j]!; }
  }
  if (amax < GROUP_MAX_EPS) return 0;
  const sums = (id: number): [number, number] => {
    let sumqx = 0, sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const q = IQ4_VALUES[bestIndex(f(id * x[j]!))]!;
      const wq = f(f(x[j]! * x[j]!) * q);
      sumqx = f(sumqx + f(wq * x[j]!));
      sumq2 = f(sumq2 + f(wq * q));
    }
    return [sumqx, sumq2];
  };
  let [sumqx, sumq2] = sums(f(1 / f(-max / IQ4_VALUES[0]!)));
  let d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
  let best = f(d * sumqx);
  for (let itry = -NTRY; itry <= NTRY; itry++) {
    [sumqx, sumq2] = sums(f((itry + IQ4_VALUES[0]!) / max));
    if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
      d = f(sumqx / sumq2);
      best = f(d * sumqx);
    }
  }
  return d;
}

/** Quantizes f32 values ([n], n a multiple of 256) to IQ4_XS bytes ([n/256 × 136]). */
export function quantize(values: Float32Array): Uint8Array {
  if (values.length % BLOCK_SIZE !== 0) {
    throw new Error(`IQ4_XS: ${values.length} elements is not a whole number of blocks of ${BLOCK_SIZE}`);
  }
  checkFinite(FORMAT, values);
  const bytes = new Uint8Array((values.length / BLOCK_SIZE) * BLOCK_BYTES);
  const scales = new Float32Array(8), L = new Uint8Array(BLOCK_SIZE);
  for (let b = 0; b < values.length / BLOCK_SIZE; b++) {
    const x = values.subarray(b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
    const at = b * BLOCK_BYTES;
    let maxScale = 0, amaxScale = 0;
    for (let j = 0; j < 8; j++) {
      scales[j] = fitSubBlock(x.subarray(32 * j, 32 * j + 32));
      if (Math.abs(scales[j]!) > amaxScale) { amaxScale = Math.abs(scales[j]!); maxScale = scales[j]!; }
    }
    // 6-bit sub-block scales against d (the f32 d, as ggml uses it before storing it as f16).
    const d = f(-maxScale / 32);
    writeF16(bytes, at, d);
    const id = d !== 0 ? f(1 / d) : 0;
    let scalesH = 0;
    for (let j = 0; j < 8; j++) {
      const l = Math.max(-32, Math.min(31, nearestInt(f(id * scales[j]!))));
      const dl = f(d * l);
      const idl = dl !== 0 ? f(1 / dl) : 0;
      for (let e = 0; e < 32; e++) L[32 * j + e] = bestIndex(f(idl * x[32 * j + e]!));
      const ls = l + 32;
      bytes[at + 4 + (j >> 1)]! |= (ls & 0x0f) << (4 * (j & 1));
      scalesH |= (ls >> 4) << (2 * j);
    }
    bytes[at + 2] = scalesH & 0xff;
    bytes[at + 3] = scalesH >> 8;
    for (let j = 0; j < 8; j++) {
      for (let l = 0; l < 16; l++) bytes[at + 8 + 16 * j + l] = L[32 * j + l]! | (L[32 * j + 16 + l]! << 4);
    }
  }
  return bytes;
}
