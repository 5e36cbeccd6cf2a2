// GGUF writer. The header (metadata and tensor infos) is built in memory; tensor data is streamed
// from the caller's buffers. Tensors are laid out as llama.cpp's own writer does: in the order
// given, back to back, each starting at an aligned offset and padded with zeros to the alignment
// (llama.cpp's reader insists on exactly that order and padding).
import { open, rename, unlink } from 'node:fs/promises';
import { DTYPE_LAYOUT, GGML_TYPE_IDS, type DType } from '../quant/dtype.js';
import { writeAll } from './file-io.js';
import { materialize, type TensorBytes } from './tensor.js';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ARRAY_DEPTH, GGUF_MAX_DIMS, GGUF_MIN_SIZE, GGUF_TYPE_IDS,
  alignUp, isPowerOfTwo,
  type GGUFArray, type GGUFFile, type GGUFMetadataEntry, type GGUFScalar, type GGUFScalarType, type GGUFTypeInfo,
  type GGUFValue,
} from './gguf-types.js';

export interface GGUFTensorToWrite {
  name: string;
  dtype: DType;
  /** Outermost first (reversed into GGUF's ne order on write). */
  shape: readonly number[];
  /** Exactly the tensor's bytes in the dtype's layout (or produced when written). */
  data: TensorBytes;
}

export interface WriteGGUFOptions {
  /** Default 3. */
  version?: 2 | 3;
  /**
   * Data alignment, a power of two. Default: a general.alignment entry in `metadata`, else 32.
   * general.alignment is written only when the metadata has it or the alignment is not 32.
   */
  alignment?: number;
  metadata: readonly GGUFMetadataEntry[];
  tensors: readonly GGUFTensorToWrite[];
  /** Called after each tensor's bytes are written: tensors and data bytes written so far. */
  onProgress?: (p: { tensors: number; bytes: number; totalTensors: number; totalBytes: number }) => void;
}

/** llama.cpp keeps tensor names in 64-byte buffers with a terminating NUL. */
const MAX_TENSOR_NAME_BYTES = 63;
/** The spec limits keys to 65535 bytes. */
const MAX_KEY_BYTES = 65535;
const MAX_F32 = 3.4028234663852886e38;

const INTEGER_RANGE: Readonly<Partial<Record<GGUFScalarType, readonly [bigint, bigint]>>> = {
  u8: [0n, 0xffn], i8: [-0x80n, 0x7fn], u16: [0n, 0xffffn], i16: [-0x8000n, 0x7fffn],
  u32: [0n, 0xffffffffn], i32: [-0x80000000n, 0x7fffffffn],
  u64: [0n, 2n ** 64n - 1n], i64: [-(2n ** 63n), 2n ** 63n - 1n],
};

/** A UTF-16 surrogate without its partner: TextEncoder would silently write U+FFFD for it. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const utf8 = new TextEncoder();

/** Growable little-endian byte buffer for the header. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      let capacity = this.buf.length * 2;
      while (capacity < this.length + n) capacity *= 2;
      const next = new Uint8Array(capacity);
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }

  // reserve() may replace buf and view: call it before touching either.
  u32(v: number): void { const o = this.reserve(4); this.view.setUint32(o, v, true); }
  u64(v: number | bigint): void { const o = this.reserve(8); this.view.setBigUint64(o, BigInt(v), true); }
  bytes(b: Uint8Array): void { const o = this.reserve(b.length); this.buf.set(b, o); }
  /** A GGUF string: u64 byte length, then the UTF-8 bytes (no terminator). */
  string(s: string): void { const b = utf8.encode(s); this.u64(b.length); this.bytes(b); }

  /** A value already checked by checkScalar. */
  scalar(type: GGUFScalarType, v: GGUFScalar): void {
    if (type === 'string') return this.string(v as string);
    const o = this.reserve(GGUF_MIN_SIZE[type]), d = this.view;
    switch (type) {
      case 'bool': d.setUint8(o, v ? 1 : 0); break;
      case 'u8': d.setUint8(o, Number(v)); break;
      case 'i8': d.setInt8(o, Number(v)); break;
      case 'u16': d.setUint16(o, Number(v), true); break;
      case 'i16': d.setInt16(o, Number(v), true); break;
      case 'u32': d.setUint32(o, Number(v), true); break;
      case 'i32': d.setInt32(o, Number(v), true); break;
      case 'f32': d.setFloat32(o, v as number, true); break;
      case 'f64': d.setFloat64(o, v as number, true); break;
      case 'u64': d.setBigUint64(o, BigInt(v as number | bigint), true); break;
      case 'i64': d.setBigInt64(o, BigInt(v as number | bigint), true); break;
    }
  }

  pad(alignment: number): void {
    const o = this.reserve(alignUp(this.length, alignment) - this.length);
    this.buf.fill(0, o, this.length);
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/** Why `v` cannot be stored as `type`, or undefined when it can. */
function checkScalar(type: GGUFScalarType, v: unknown): string | undefined {
  switch (type) {
    case 'string':
      if (typeof v !== 'string') return 'is not a string';
      return LONE_SURROGATE.test(v) ? 'has a lone UTF-16 surrogate (not encodable as UTF-8)' : undefined;
    case 'bool':
      return typeof v === 'boolean' ? undefined : 'is not a boolean';
    case 'f32':
      if (typeof v !== 'number') return 'is not a number';
      return Number.isFinite(v) && Math.abs(v) > MAX_F32 ? 'is outside the f32 range' : undefined;
    case 'f64':
      return typeof v === 'number' ? undefined : 'is not a number';
    default: {
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isInteger(v))) return 'is not an integer';
      const [min, max] = INTEGER_RANGE[type]!;
      const n = BigInt(v);
      return n < min || n > max ? `is outside the ${type} range [${min}, ${max}]` : undefined;
    }
  }
}

/**
 * Writes a GGUF file. Every input is checked before the file is created; the file is written
 * under a temporary name and renamed, so a failed write leaves nothing half-written at `file`.
 */
export async function writeGGUF(file: string, o: WriteGGUFOptions): Promise<void> {
  const fail = (problem: string): never => { throw new Error(`writeGGUF ${file}: ${problem}`); };
  const version = o.version ?? 3;
  if (version !== 2 && version !== 3) fail(`version must be 2 or 3, got ${String(version)}`);

  const given = o.metadata.find((e) => e.key === 'general.alignment');
  if (given && (given.type !== 'u32' || typeof given.value !== 'number' || !isPowerOfTwo(given.value))) {
    fail(`metadata general.alignment must be a u32 power of two`);
  }
  const alignment = o.alignment ?? (given?.value as number | undefined) ?? GGUF_DEFAULT_ALIGNMENT;
  if (!isPowerOfTwo(alignment)) fail(`alignment must be a power of two, got ${alignment}`);
  if (given && given.value !== alignment) fail(`alignment ${alignment} differs from metadata general.alignment ${String(given.value)}`);
  const metadata: readonly GGUFMetadataEntry[] = given || alignment === GGUF_DEFAULT_ALIGNMENT
    ? o.metadata
    : [...o.metadata, { key: 'general.alignment', type: 'u32', value: alignment }];

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(version);
  w.u64(o.tensors.length);
  w.u64(metadata.length);
  writeMetadata(w, metadata, fail);
  writeTensorInfos(w, o.tensors, alignment, fail);
  w.pad(alignment);

  const tmp = `${file}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
  const handle = await open(tmp, 'w');
  try {
    await writeAll(handle, w.result());
    const zeros = new Uint8Array(alignment);
    const totalBytes = o.tensors.reduce((s, t) => s + t.data.byteLength, 0);
    let written = 0;
    for (const [i, t] of o.tensors.entries()) {
      const bytes = await materialize(t.data, `writeGGUF ${file}: tensor "${t.name}"`);
      await writeAll(handle, bytes);
      await writeAll(handle, zeros.subarray(0, alignUp(bytes.length, alignment) - bytes.length));
      written += bytes.length;
      o.onProgress?.({ tensors: i + 1, bytes: written, totalTensors: o.tensors.length, totalBytes });
    }
    await handle.close();
    await rename(tmp, file);
  } catch (e) {
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

function writeMetadata(w: ByteWriter, metadata: readonly GGUFMetadataEntry[], fail: (problem: string) => never): void {
  const keys = new Set<string>();
  for (const e of metadata) {
    if (typeof e.key !== 'string' || e.key.length === 0) fail('a metadata key is empty');
    const keyProblem = checkScalar('string', e.key);
    if (keyProblem) fail(`metadata key ${JSON.stringify(e.key)} ${keyProblem}`);
    if (utf8.encode(e.key).length > MAX_KEY_BYTES) fail(`metadata key "${e.key.slice(0, 40)}…" is longer than ${MAX_KEY_BYTES} bytes`);
    if (keys.has(e.key)) fail(`metadata key "${e.key}" is given twice`);
    keys.add(e.key);
    if (!(e.type in GGUF_TYPE_IDS)) fail(`metadata "${e.key}": unknown type ${String(e.type)}`);
    w.string(e.key);
    w.u32(GGUF_TYPE_IDS[e.type]);
    if (e.type === 'array') {
      writeArray(w, e, `metadata "${e.key}"`, 0, fail);
    } else {
      const problem = checkScalar(e.type, e.value);
      if (problem) fail(`metadata "${e.key}": ${describeValue(e.value)} ${problem}`);
      w.scalar(e.type, e.value);
    }
  }
}

/** An array's item type, length and items (its own type id is written by the caller). */
function writeArray(w: ByteWriter, a: GGUFArray, what: string, depth: number, fail: (problem: string) => never): void {
  if (depth >= GGUF_MAX_ARRAY_DEPTH) fail(`${what}: arrays nested deeper than ${GGUF_MAX_ARRAY_DEPTH}`);
  if (!(a.itemType in GGUF_TYPE_IDS)) fail(`${what}: unknown item type ${String(a.itemType)}`);
  w.u32(GGUF_TYPE_IDS[a.itemType]);
  w.u64(a.value.length);
  if (a.itemType === 'array') {
    for (let i = 0; i < a.value.length; i++) {
      const inner = a.value[i]!;
      writeArray(w, inner, `${what}[${i}]`, depth + 1, fail);
    }
    return;
  }
  for (let i = 0; i < a.value.length; i++) {
    const v = a.value[i]!;
    const problem = checkScalar(a.itemType, v);
    if (problem) fail(`${what}[${i}]: ${describeValue(v)} ${problem}`);
    w.scalar(a.itemType, v);
  }
}

function describeValue(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : `${typeof v} ${String(v)}`;
}

function writeTensorInfos(
  w: ByteWriter, tensors: readonly GGUFTensorToWrite[], alignment: number, fail: (problem: string) => never,
): void {
  const names = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    const what = `tensor "${t.name}"`;
    if (typeof t.name !== 'string' || t.name.length === 0) fail('a tensor name is empty');
    if (checkScalar('string', t.name) || utf8.encode(t.name).length > MAX_TENSOR_NAME_BYTES) {
      fail(`${what}: a name must be valid text of at most ${MAX_TENSOR_NAME_BYTES} UTF-8 bytes (llama.cpp's limit)`);
    }
    if (names.has(t.name)) fail(`${what} is given twice`);
    names.add(t.name);
    const typeId = GGML_TYPE_IDS[t.dtype];
    if (typeId === undefined) fail(`${what}: dtype ${t.dtype} has no GGML type`);
    const shape = `[${t.shape.join(', ')}]`;
    if (t.shape.length < 1 || t.shape.length > GGUF_MAX_DIMS) fail(`${what}: shape ${shape} must have 1 to ${GGUF_MAX_DIMS} dimensions`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d > 0)) fail(`${what}: shape ${shape} must be positive integers`);
    const { blockSize, blockBytes } = DTYPE_LAYOUT[t.dtype];
    const rowLength = t.shape[t.shape.length - 1]!;
    if (rowLength % blockSize !== 0) fail(`${what}: row length ${rowLength} is not a multiple of the ${t.dtype} block size ${blockSize}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    const byteLength = (count / blockSize) * blockBytes;
    if (!Number.isSafeInteger(count) || t.data.byteLength !== byteLength) {
      fail(`${what}: ${t.data.byteLength} bytes given, shape ${shape} of ${t.dtype} takes ${byteLength}`);
    }
    w.string(t.name);
    w.u32(t.shape.length);
    for (let d = t.shape.length - 1; d >= 0; d--) w.u64(t.shape[d]!); // ne: innermost first
    w.u32(typeId);
    w.u64(offset);
    offset = alignUp(offset + byteLength, alignment);
  }
}

/**
 * The metadata of an opened file as entries to write: same keys in the same order, same values
 * and same stored types (so a file's tokenizer can be copied into another). `keep` selects keys.
 */
export function metadataEntries(
  file: Pick<GGUFFile, 'metadata' | 'metadataTypes'>, keep: (key: string) => boolean = () => true,
): GGUFMetadataEntry[] {
  const out: GGUFMetadataEntry[] = [];
  for (const [key, value] of file.metadata) {
    if (!keep(key)) continue;
    const info = file.metadataTypes.get(key);
    if (!info) throw new Error(`metadataEntries: no stored type for "${key}"`);
    out.push(info.type === 'array'
      ? { key, type: 'array', ...asArray(value, info, key) }
      : { key, type: info.type, value: value as GGUFScalar });
  }
  return out;
}

function asArray(value: GGUFValue, info: GGUFTypeInfo, key: string): GGUFArray {
  if (!Array.isArray(value) || info.itemType === undefined) throw new Error(`metadataEntries: "${key}" is not an array`);
  if (info.itemType !== 'array') return { itemType: info.itemType, value: value as GGUFScalar[] };
  const inner = info.inner ?? [];
  return { itemType: 'array', value: value.map((v, i) => asArray(v, inner[i] ?? { type: 'array' }, key)) };
}
