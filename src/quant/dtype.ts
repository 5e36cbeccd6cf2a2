// Element and block types a tensor can hold, as stored in SafeTensors or GGUF files.
// Block types (Q8_0, Q4_0) pack `blockSize` elements into `blockBytes` bytes; plain types
// have blockSize 1.

export type DType =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'
  | 'Q8_0' | 'Q4_0';

export interface DTypeLayout {
  /** Elements per block (1 for plain element types). */
  blockSize: number;
  /** Bytes per block. */
  blockBytes: number;
}

export const DTYPE_LAYOUT: Readonly<Record<DType, DTypeLayout>> = {
  F64: { blockSize: 1, blockBytes: 8 },
  F32: { blockSize: 1, blockBytes: 4 },
  F16: { blockSize: 1, blockBytes: 2 },
  BF16: { blockSize: 1, blockBytes: 2 },
  I64: { blockSize: 1, blockBytes: 8 },
  I32: { blockSize: 1, blockBytes: 4 },
  I16: { blockSize: 1, blockBytes: 2 },
  I8: { blockSize: 1, blockBytes: 1 },
  U8: { blockSize: 1, blockBytes: 1 },
  BOOL: { blockSize: 1, blockBytes: 1 },
  // GGML Q8_0: f16 scale + 32 × int8.
  Q8_0: { blockSize: 32, blockBytes: 34 },
  // GGML Q4_0: f16 scale + 16 bytes of 32 packed 4-bit values.
  Q4_0: { blockSize: 32, blockBytes: 18 },
};

/** Floating or quantized types a weight matrix may have (what the model loader accepts). */
export const WEIGHT_DTYPES: ReadonlySet<DType> = new Set<DType>(['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0']);

/**
 * Bytes taken by `count` elements of `dtype`, or an error message if `count` is not a whole
 * number of blocks. Uses plain numbers: tensors above 2^53 bytes are not a concern.
 */
export function byteSize(dtype: DType, count: number): number {
  const { blockSize, blockBytes } = DTYPE_LAYOUT[dtype];
  if (count % blockSize !== 0) {
    throw new Error(`${count} elements is not a whole number of ${dtype} blocks of ${blockSize}`);
  }
  return (count / blockSize) * blockBytes;
}
