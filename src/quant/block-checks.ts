// Argument checks shared by the block quantizers (Q8_0, Q4_0, ...), and the scale check every
// backend and `minerva verify` run on quantized weights.
import { DTYPE_LAYOUT, type DType } from './dtype.js';

export interface BlockFormat {
  name: string;
  blockSize: number;
  blockBytes: number;
}

/** Quantization is undefined for NaN and ±inf: refuse them, naming the index. */
export function checkFinite(format: BlockFormat, values: Float32Array): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new Error(`${format.name}: cannot quantize the non-finite value ${values[i]} at index ${i}`);
    }
  }
}

/** Checks a dequantize call's sizes; returns the output array (the given one or a new one). */
export function checkDequantizeArgs(
  format: BlockFormat, bytes: Uint8Array, count: number, out: Float32Array | undefined,
): Float32Array {
  const { name, blockSize, blockBytes } = format;
  if (!Number.isSafeInteger(count) || count < 0 || count % blockSize !== 0) {
    throw new Error(`${name}: ${count} elements is not a whole number of blocks of ${blockSize}`);
  }
  const need = (count / blockSize) * blockBytes;
  if (bytes.length < need) throw new Error(`${name}: ${count} elements need ${need} bytes, got ${bytes.length}`);
  if (out && out.length < count) throw new Error(`${name}: output holds ${out.length} elements, ${count} needed`);
  return out ?? new Float32Array(count);
}

/**
 * Index of the first block whose f16 scale at `scaleAt` (bytes into the block; ggml's Q8_0 and
 * Q4_0 put it first) is inf or NaN, or -1. Such a block's values are all non-finite: a broken
 * file, which the cpu kernels (exact only for finite scales) refuse to run.
 */
export function firstNonFiniteScale(bytes: Uint8Array, blockBytes: number, scaleAt = 0): number {
  for (let b = 0, at = scaleAt; at + 1 < bytes.length; b++, at += blockBytes) {
    if ((bytes[at + 1]! & 0x7c) === 0x7c) return b;
  }
  return -1;
}

/** Byte offsets of a block's f16 scales, per quantized weight type the backends compute with. */
const SCALE_OFFSETS: Partial<Record<DType, readonly number[]>> = {
  Q8_0: [0], Q4_0: [0], Q4_K: [0, 2], Q6_K: [208],
  IQ4_XS: [0],
  Q5_K: [0, 2],
  Q3_K: [108],
  Q2_K: [80, 82],
  Q4_1: [0, 2], Q5_0: [0], Q5_1: [0, 2], IQ4_NL: [0],
};

/** Index of the first block of a `dtype` tensor whose f16 scale (any of them; MXFP4: its E8M0 exponent) is inf or NaN, or -1 (also for types without scales). */
export function firstNonFiniteBlock(dtype: DType, bytes: Uint8Array): number {
  if (dtype === 'MXFP4') return firstNaNExponent(bytes, DTYPE_LAYOUT.MXFP4.blockBytes);
  for (const at of SCALE_OFFSETS[dtype] ?? []) {
    const b = firstNonFiniteScale(bytes, DTYPE_LAYOUT[dtype].blockBytes, at);
    if (b >= 0) return b;
  }
  return -1;
}

/**
 * Index of the first block whose E8M0 exponent (the block's first byte: MXFP4) is 255, the OCP
 * format's NaN, which llama.cpp refuses when it validates a file; or -1.
 */
function firstNaNExponent(bytes: Uint8Array, blockBytes: number): number {
  for (let b = 0, at = 0; at < bytes.length; b++, at += blockBytes) if (bytes[at] === 0xff) return b;
  return -1;
}
