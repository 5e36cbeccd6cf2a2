// Quantize on load (`--quant`): a float checkpoint (F32, F16, BF16 SafeTensors or GGUF) converted
// in memory as its weights are read, so a user gets GGUF-class speed and size without converting
// files. Like llama.cpp's quantizer, only 2-D matrices change; norms and biases stay f32, and
// matrices whose rows are not whole blocks keep their stored type.
import { elementCount, type TensorInfo } from '../formats/tensor.js';
import { dequantize, quantize } from './dequantize.js';
import { DTYPE_LAYOUT, type DType } from './dtype.js';

/** The `--quant` choices and the weight type each produces. */
export const LOAD_QUANT_TYPES = {
  q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k: 'Q4_K',
  q5_k: 'Q5_K',
  q3_k: 'Q3_K',
} as const satisfies Record<string, DType>;
export type LoadQuant = keyof typeof LOAD_QUANT_TYPES;

const FLOAT_TYPES: ReadonlySet<DType> = new Set(['F32', 'F16', 'BF16']);

export function isLoadQuant(q: string): q is LoadQuant {
  return Object.hasOwn(LOAD_QUANT_TYPES, q);
}

/**
 * The tensor as it should be kept under `quant`: a float matrix with whole blocks per row is
 * re-encoded; anything else (1-D tensors, already-quantized tensors, odd rows) is returned as is.
 */
export function quantizeOnLoad(info: TensorInfo, data: Uint8Array, quant: LoadQuant): { info: TensorInfo; data: Uint8Array } {
  const target = LOAD_QUANT_TYPES[quant];
  if (info.shape.length !== 2 || !FLOAT_TYPES.has(info.dtype)) return { info, data };
  if (info.shape[1]! % DTYPE_LAYOUT[target].blockSize !== 0) return { info, data };
  const encoded = quantize(target, dequantize(info.dtype, data, elementCount(info.shape)));
  return { info: { ...info, dtype: target, byteLength: encoded.length }, data: encoded };
}

/** Bytes `info` takes once loaded under `quant` (what quantizeOnLoad would return), without converting it. */
export function keptBytes(info: TensorInfo, quant: LoadQuant | undefined): number {
  if (!quant) return info.byteLength;
  const target = LOAD_QUANT_TYPES[quant];
  if (info.shape.length !== 2 || !FLOAT_TYPES.has(info.dtype)) return info.byteLength;
  const { blockSize, blockBytes } = DTYPE_LAYOUT[target];
  if (info.shape[1]! % blockSize !== 0) return info.byteLength;
  return (elementCount(info.shape) / blockSize) * blockBytes;
}
