// Element and block types a tensor can hold, as stored in SafeTensors or GGUF files.
// Block types (Q8_0, Q4_0) pack `blockSize` elements into `blockBytes` bytes; plain types
// have blockSize 1.

export type DType =
  | 'F64' | 'F32' | 'F16' | 'BF16'
  | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL'
  | 'Q8_0' | 'Q4_0'
  // More GGML block types, with their sizes (so any common GGUF file can be read and described);
  // WEIGHT_DTYPES says which of them the backends compute with.
  | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_1'
  | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K'
  | 'IQ4_NL' | 'IQ4_XS'
  | 'IQ2_XXS' | 'IQ2_XS' | 'IQ2_S' | 'IQ3_XXS' | 'IQ3_S' | 'IQ1_S' | 'IQ1_M'
  | 'TQ1_0' | 'TQ2_0' | 'MXFP4';

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
  Q4_1: { blockSize: 32, blockBytes: 20 },   // f16 d, f16 m, 16 bytes of nibbles
  Q5_0: { blockSize: 32, blockBytes: 22 },   // f16 d, 4 bytes of high bits, 16 bytes of nibbles
  Q5_1: { blockSize: 32, blockBytes: 24 },   // f16 d, f16 m, 4 + 16 bytes
  Q8_1: { blockSize: 32, blockBytes: 36 },   // f16 d, f16 s, 32 × int8
  // K-quants: super-blocks of 256.
  Q2_K: { blockSize: 256, blockBytes: 84 },  // 16 scales, 64 bytes of 2-bit, f16 d + dmin
  Q3_K: { blockSize: 256, blockBytes: 110 }, // 32 high-bit bytes, 64 bytes of 2-bit, 12 scale bytes, f16 d
  Q4_K: { blockSize: 256, blockBytes: 144 }, // f16 d + dmin, 12 scale bytes, 128 bytes of nibbles
  Q5_K: { blockSize: 256, blockBytes: 176 }, // as Q4_K + 32 high-bit bytes
  Q6_K: { blockSize: 256, blockBytes: 210 }, // 128 low, 64 high, 16 int8 scales, f16 d
  Q8_K: { blockSize: 256, blockBytes: 292 }, // f32 d, 256 × int8, 16 × i16 sums
  IQ4_NL: { blockSize: 32, blockBytes: 18 }, // f16 d, 16 bytes of non-linear nibbles
  IQ4_XS: { blockSize: 256, blockBytes: 136 }, // f16 d, u16 high scale bits, 4 low scale bytes, 128 bytes of nibbles
  // Codebook ("importance") quants, from ggml-common.h's block structs.
  IQ2_XXS: { blockSize: 256, blockBytes: 66 }, // f16 d, 32 × u16 grid indices + signs
  IQ2_XS: { blockSize: 256, blockBytes: 74 },  // f16 d, 32 × u16, 8 scale bytes
  IQ2_S: { blockSize: 256, blockBytes: 82 },   // f16 d, 64 qs, 8 qh, 8 scale bytes
  IQ3_XXS: { blockSize: 256, blockBytes: 98 }, // f16 d, 96 bytes of grid indices, signs and scales
  IQ3_S: { blockSize: 256, blockBytes: 110 },  // f16 d, 64 qs, 8 qh, 32 sign bytes, 4 scale bytes
  IQ1_S: { blockSize: 256, blockBytes: 50 },   // f16 d, 32 qs, 8 × u16 qh
  IQ1_M: { blockSize: 256, blockBytes: 56 },   // 32 qs, 16 qh, 8 scale bytes (the f16 scale is spread over them)
  // Ternary quants.
  TQ1_0: { blockSize: 256, blockBytes: 54 },   // 48 bytes of base-3 fives, 4 bytes of fours, f16 d
  TQ2_0: { blockSize: 256, blockBytes: 66 },   // 64 bytes of 2-bit values, f16 d
  // OCP microscaling FP4: one E8M0 exponent byte + 16 bytes of E2M1 nibbles.
  MXFP4: { blockSize: 32, blockBytes: 17 },
};

/**
 * GGML tensor type ids (ggml.h `enum ggml_type`, as listed in ggml's docs/gguf.md) of the types
 * above. U8 and BOOL have none: GGUF cannot store them.
 */
export const GGML_TYPE_IDS: Readonly<Partial<Record<DType, number>>> = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q8_1: 9,
  Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14, Q8_K: 15,
  IQ2_XXS: 16, IQ2_XS: 17, IQ3_XXS: 18, IQ1_S: 19, IQ4_NL: 20, IQ3_S: 21, IQ2_S: 22, IQ4_XS: 23,
  I8: 24, I16: 25, I32: 26, I64: 27, F64: 28, IQ1_M: 29, BF16: 30,
  TQ1_0: 34, TQ2_0: 35, MXFP4: 39,
};

/**
 * Names of GGML type ids that cannot appear in a GGUF file any more (for error messages): types
 * removed from ggml, whose layout llama.cpp no longer reads either. Any other id missing from
 * GGML_TYPE_IDS is unknown (or newer than this list).
 */
export const GGML_UNSIZED_TYPES: Readonly<Record<number, string>> = {
  4: 'Q4_2', 5: 'Q4_3', 31: 'Q4_0_4_4', 32: 'Q4_0_4_8', 33: 'Q4_0_8_8', 36: 'IQ4_NL_4_4', 37: 'IQ4_NL_4_8', 38: 'IQ4_NL_8_8',
};

export const DTYPE_BY_GGML_ID: ReadonlyMap<number, DType> = new Map(
  Object.entries(GGML_TYPE_IDS).map(([d, id]) => [id, d as DType]),
);

/** Floating or quantized types a weight matrix may have (what the model loader accepts). */
export const WEIGHT_DTYPES: ReadonlySet<DType> = new Set<DType>([
  'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K',
  'IQ4_XS',
  'MXFP4',
  'Q5_K', 'Q3_K', 'Q2_K',
  'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL',
]);

/** Types a weight may be stored in: every backend computes with each as stored (WEIGHT_DTYPES). */
export const STORED_WEIGHT_DTYPES: ReadonlySet<DType> = WEIGHT_DTYPES;

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
