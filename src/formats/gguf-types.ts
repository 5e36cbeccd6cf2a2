// GGUF v2/v3 (ggml's single-file model format): types and constants shared by the reader
// (gguf-read.ts) and the writer (gguf-write.ts). Import them from gguf.ts.
//
// Layout: "GGUF" | u32 version | u64 tensor count | u64 metadata count | metadata KVs |
// tensor infos | zero padding to `general.alignment` | tensor data (each tensor at an aligned
// offset relative to the start of the data section, padded to the alignment). All integers
// little-endian. Versions 2 and 3 have the same layout (version 3 also allows big-endian files;
// the reader recognises them by their byte-swapped version and refuses them).
import type { TensorInfo, WeightProvider } from './tensor.js';

/** Stored types of single values. */
export type GGUFScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';
/** Stored types of metadata values: a scalar or an array (of scalars or of arrays). */
export type GGUFValueType = GGUFScalarType | 'array';

/** A single metadata value as the reader gives it and the writer takes it. */
export type GGUFScalar = number | bigint | boolean | string;

/**
 * A metadata value as read:
 * - u8, i8, u16, i16, u32, i32, f32, f64: number;
 * - u64, i64: number when within ±(2^53 − 1), else bigint;
 * - bool: boolean; string: string (UTF-8 checked, a leading U+FEFF kept);
 * - array: a plain JS array of its items — string[] for strings, number[] for numeric types
 *   (number | bigint items for u64/i64), boolean[], and arrays of arrays nested the same way.
 */
export type GGUFValue = GGUFScalar | GGUFValue[];

/** The stored type of a metadata value. */
export interface GGUFTypeInfo {
  readonly type: GGUFValueType;
  /** Arrays only: the stored type of every item (known even for an empty array). */
  readonly itemType?: GGUFValueType;
  /**
   * Arrays only, absent when empty: the type of the first item ({ type: itemType } for arrays of
   * scalars; the first inner array's type for arrays of arrays).
   */
  readonly items?: GGUFTypeInfo;
  /** Arrays of arrays only: the type of each inner array, in order (they may differ). */
  readonly inner?: readonly GGUFTypeInfo[];
}

/**
 * An array value to write, with its item type. Numeric items may be number or bigint (u64/i64
 * beyond 2^53 must be bigint to be exact).
 */
export type GGUFArray =
  | { readonly itemType: GGUFScalarType; readonly value: readonly GGUFScalar[] }
  | { readonly itemType: 'array'; readonly value: readonly GGUFArray[] };

/**
 * One metadata key to write, with its exact stored type, e.g.
 * `{ key: 'llama.block_count', type: 'u32', value: 2 }`,
 * `{ key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: ['<s>', …] }`,
 * `{ key: 'x', type: 'array', itemType: 'array', value: [{ itemType: 'u8', value: [1, 2] }] }`.
 */
export type GGUFMetadataEntry =
  | { readonly key: string; readonly type: GGUFScalarType; readonly value: GGUFScalar }
  | ({ readonly key: string; readonly type: 'array' } & GGUFArray);

export interface GGUFTensorInfo extends TensorInfo {
  /** GGML type id as stored (ggml.h `enum ggml_type`). */
  readonly ggmlType: number;
  /** Offset of the tensor's data relative to the data section, as stored. */
  readonly offset: number;
  /** Absolute offset of the tensor's data in the file (dataOffset + offset). */
  readonly fileOffset: number;
}

export interface GGUFFile extends WeightProvider {
  /** 2 or 3. */
  readonly version: number;
  /** Every metadata key in file order (general.alignment included when present). */
  readonly metadata: ReadonlyMap<string, GGUFValue>;
  /** Stored type of each metadata value, to write it back unchanged (see metadataEntries). */
  readonly metadataTypes: ReadonlyMap<string, GGUFTypeInfo>;
  /** general.alignment, or 32 when absent. */
  readonly alignment: number;
  /** Absolute offset of the data section: the end of the tensor infos rounded up to the alignment. */
  readonly dataOffset: number;
  /** Tensors in file order; shapes outermost first (GGUF's ne order reversed). */
  readonly tensors: ReadonlyMap<string, GGUFTensorInfo>;
}

/** gguf_type ids (ggml's gguf.h). */
export const GGUF_TYPE_IDS: Readonly<Record<GGUFValueType, number>> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};
export const GGUF_TYPE_BY_ID: readonly GGUFValueType[] = Object.entries(GGUF_TYPE_IDS)
  .sort((a, b) => a[1] - b[1]).map(([t]) => t as GGUFValueType);

/**
 * Bytes a value of each type takes at least: the exact size of fixed-size scalars; a string's
 * 8-byte length; an array's 4-byte item type and 8-byte count.
 */
export const GGUF_MIN_SIZE: Readonly<Record<GGUFValueType, number>> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, array: 12, u64: 8, i64: 8, f64: 8,
};

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** How deep arrays of arrays may nest (the format sets no limit; this reader does). */
export const GGUF_MAX_ARRAY_DEPTH = 8;
/** GGML tensors have at most 4 dimensions. */
export const GGUF_MAX_DIMS = 4;

export function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 2 ** 31 && (n & (n - 1)) === 0;
}
