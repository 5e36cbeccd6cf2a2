// GGUF v2/v3 (ggml's single-file model format): reader, writer, value types, and typed access to
// metadata for the model and tokenizer loaders. See gguf-types.ts for the layout.
import { FormatError } from './tensor.js';

export type {
  GGUFArray, GGUFFile, GGUFMetadataEntry, GGUFScalar, GGUFScalarType, GGUFTensorInfo, GGUFTypeInfo, GGUFValue, GGUFValueType,
} from './gguf-types.js';
export { GGUF_DEFAULT_ALIGNMENT, GGUF_TYPE_IDS } from './gguf-types.js';
export { openGGUF } from './gguf-read.js';
export { writeGGUF, metadataEntries, type GGUFTensorToWrite, type WriteGGUFOptions } from './gguf-write.js';

// ---------------------------------------------------------------------------------------------
// Typed access to metadata. Each returns undefined when the key is absent and throws a
// FormatError naming the file, the key and the expected type when the value has another type.

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  if (typeof v === 'bigint') return `${v} (beyond 2^53, too large for a number)`;
  return `${typeof v} ${String(v)}`;
}

function wrongType(file: string, key: string, expected: string, v: unknown): never {
  throw new FormatError(file, `metadata "${key}" must be ${expected}, got ${describe(v)}`);
}

export function getString(meta: ReadonlyMap<string, unknown>, key: string, file: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : wrongType(file, key, 'a string', v);
}

/** Any numeric type (integer or float) whose value fits a JS number exactly. */
export function getNumber(meta: ReadonlyMap<string, unknown>, key: string, file: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  return typeof v === 'number' ? v : wrongType(file, key, 'a number', v);
}

export function getBoolean(meta: ReadonlyMap<string, unknown>, key: string, file: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  return typeof v === 'boolean' ? v : wrongType(file, key, 'a bool', v);
}

export function getStringArray(meta: ReadonlyMap<string, unknown>, key: string, file: string): string[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) wrongType(file, key, 'an array of strings', v);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'string') wrongType(file, `${key}[${i}]`, 'a string', v[i]);
  }
  return v as string[];
}

/** An array of any numeric type whose items all fit a JS number exactly. */
export function getNumberArray(meta: ReadonlyMap<string, unknown>, key: string, file: string): number[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) wrongType(file, key, 'an array of numbers', v);
  for (let i = 0; i < v.length; i++) {
    if (typeof v[i] !== 'number') wrongType(file, `${key}[${i}]`, 'a number', v[i]);
  }
  return v as number[];
}

