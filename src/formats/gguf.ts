// GGUF v2/v3 reader and writer (ggml's single-file model format).
//
// Layout: "GGUF" | u32 version | u64 tensor count | u64 metadata count | metadata KVs |
// tensor infos | padding to `general.alignment` | tensor data (each tensor at an aligned offset
// relative to the start of the data section). All integers little-endian.
//
// The reader trusts nothing: every count, length and offset is checked against the bytes left in
// the file before anything is allocated, so a hostile header cannot make it allocate more than
// the file's size or loop for long.
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { DTYPE_BY_GGML_ID, DTYPE_LAYOUT, GGML_TYPE_IDS, GGML_UNSIZED_TYPES, type DType } from '../quant/dtype.js';
import { openForReading, readAt, writeAll } from './file-io.js';
import { FormatError, elementCount, type TensorInfo, type WeightProvider } from './tensor.js';

export type GGUFScalarType = 'u8' | 'i8' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'bool' | 'string' | 'u64' | 'i64' | 'f64';
export type GGUFValueType = GGUFScalarType | 'array';

/**
 * A metadata value: numbers as number (u64/i64 beyond 2^53 as bigint), strings, booleans, and
 * arrays as JS arrays (string[] for arrays of strings, number[] for numeric arrays).
 */
export type GGUFValue = number | bigint | boolean | string | GGUFValue[];

/** The stored type of a value: its type id, and for arrays the type of the items. */
export interface GGUFTypeInfo {
  type: GGUFValueType;
  /** For arrays: the item type (nested arrays: 'array', with `items` describing the first one). */
  itemType?: GGUFValueType;
  items?: GGUFTypeInfo;
}

/** One metadata key to write, with its exact stored type. */
export type GGUFMetadataEntry =
  | { key: string; type: GGUFScalarType; value: number | bigint | boolean | string }
  | { key: string; type: 'array'; itemType: GGUFScalarType; value: readonly (number | bigint | boolean | string)[] };

/** Type ids of gguf_type. */
const TYPE_IDS: Readonly<Record<GGUFValueType, number>> = {
  u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12,
};
const TYPE_BY_ID: readonly GGUFValueType[] = Object.entries(TYPE_IDS).sort((a, b) => a[1] - b[1]).map(([t]) => t as GGUFValueType);

/** Fixed byte size of scalar types; strings take at least their 8-byte length. */
const MIN_SIZE: Readonly<Record<GGUFValueType, number>> = {
  u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, bool: 1, string: 8, array: 12, u64: 8, i64: 8, f64: 8,
};

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
const DEFAULT_ALIGNMENT = 32;
const MAX_ARRAY_DEPTH = 8;
/** GGML tensors have at most 4 dimensions. */
const MAX_DIMS = 4;

export interface GGUFTensorInfo extends TensorInfo {
  /** Absolute offset of the tensor's data in the file. */
  readonly fileOffset: number;
}

export interface GGUFFile extends WeightProvider {
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GGUFValue>;
  /** Stored type of each metadata value (to write it back unchanged). */
  readonly metadataTypes: ReadonlyMap<string, GGUFTypeInfo>;
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  readonly tensors: ReadonlyMap<string, GGUFTensorInfo>;
}

/**
 * Reads the header region of a file in growing chunks, never past the end of the file. Every
 * read states what it is for, so a truncated file's error says what was cut.
 */
class HeaderCursor {
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  /** File offset of buf[0]. */
  private base = 0;
  /** Current absolute position. */
  pos = 0;

  constructor(private readonly handle: FileHandle, readonly file: string, readonly size: number) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  fail(problem: string): never {
    throw new FormatError(this.file, problem);
  }

  /** Makes bytes [pos, pos + n) available. */
  private async need(n: number, what: string): Promise<void> {
    if (n > this.remaining) {
      this.fail(`truncated: ${what} needs ${n} bytes at offset ${this.pos}, but the file ends at ${this.size}`);
    }
    if (this.pos + n <= this.base + this.buf.length) return;
    const want = Math.min(this.remaining, Math.max(n, 1 << 20));
    this.buf = await readAt(this.handle, this.file, this.pos, want);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.base = this.pos;
  }

  private at(): number {
    return this.pos - this.base;
  }

  async u32(what: string): Promise<number> {
    await this.need(4, what);
    const v = this.view.getUint32(this.at(), true);
    this.pos += 4;
    return v;
  }

  /** A u64 that must be a safe integer (a count, length or offset). */
  async u64(what: string): Promise<number> {
    await this.need(8, what);
    const v = this.view.getBigUint64(this.at(), true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`${what} is ${v}, beyond any file`);
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const len = await this.u64(`the length of ${what}`);
    if (len > this.remaining) {
      this.fail(`${what}: string length ${len} runs past the end of the file (${this.remaining} bytes left)`);
    }
    await this.need(len, what);
    const bytes = this.buf.subarray(this.at(), this.at() + len);
    this.pos += len;
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      this.fail(`${what} is not valid UTF-8`);
    }
  }

  async scalar(type: GGUFScalarType, what: string): Promise<number | bigint | boolean | string> {
    if (type === 'string') return this.string(what);
    await this.need(MIN_SIZE[type], what);
    const v = this.view, o = this.at();
    this.pos += MIN_SIZE[type];
    switch (type) {
      case 'u8': return v.getUint8(o);
      case 'i8': return v.getInt8(o);
      case 'u16': return v.getUint16(o, true);
      case 'i16': return v.getInt16(o, true);
      case 'u32': return v.getUint32(o, true);
      case 'i32': return v.getInt32(o, true);
      case 'f32': return v.getFloat32(o, true);
      case 'f64': return v.getFloat64(o, true);
      case 'bool': {
        const b = v.getUint8(o);
        if (b > 1) this.fail(`${what}: bool value ${b} is neither 0 nor 1`);
        return b === 1;
      }
      case 'u64': return safe(v.getBigUint64(o, true));
      case 'i64': return safe(v.getBigInt64(o, true));
    }
  }

  async valueType(what: string): Promise<GGUFValueType> {
    const id = await this.u32(`the type of ${what}`);
    const t = TYPE_BY_ID[id];
    if (t === undefined) this.fail(`${what}: unknown value type ${id}`);
    return t;
  }

  async value(type: GGUFValueType, what: string, depth = 0): Promise<{ value: GGUFValue; info: GGUFTypeInfo }> {
    if (type !== 'array') return { value: await this.scalar(type, what), info: { type } };
    if (depth >= MAX_ARRAY_DEPTH) this.fail(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH}`);
    const itemType = await this.valueType(`the items of ${what}`);
    const count = await this.u64(`the length of ${what}`);
    // Checked before allocating: each item takes at least MIN_SIZE bytes.
    if (count * MIN_SIZE[itemType] > this.remaining) {
      this.fail(`${what}: array of ${count} ${itemType} items runs past the end of the file (${this.remaining} bytes left)`);
    }
    const items: GGUFValue[] = new Array(count);
    let itemInfo: GGUFTypeInfo | undefined;
    for (let i = 0; i < count; i++) {
      const r = await this.value(itemType, what, depth + 1);
      items[i] = r.value;
      itemInfo ??= r.info;
    }
    return { value: items, info: { type: 'array', itemType, items: itemInfo } };
  }
}

function safe(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** Opens a GGUF file: reads and checks its header, metadata and tensor infos; no tensor data. */
export async function openGGUF(file: string): Promise<GGUFFile> {
  const { handle, size } = await openForReading(file);
  try {
    return await parse(handle, file, size);
  } catch (e) {
    await handle.close();
    throw e;
  }
}

async function parse(handle: FileHandle, file: string, size: number): Promise<GGUFFile> {
  const c = new HeaderCursor(handle, file, size);
  if (size < 4 || (await c.u32('the magic')) !== MAGIC) c.fail('not a GGUF file (the magic bytes "GGUF" are missing)');
  const version = await c.u32('the version');
  if (version === 1) c.fail('GGUF version 1 is not supported (only 2 and 3); convert the file again with a current llama.cpp');
  if (version !== 2 && version !== 3) c.fail(`unknown GGUF version ${version} (supported: 2, 3)`);
  const tensorCount = await c.u64('the tensor count');
  const kvCount = await c.u64('the metadata count');
  // Smallest possible KV: key length 8 + 1-byte key + type 4 + 1-byte value. Smallest tensor
  // info: name length 8 + 1 + n_dims 4 + one dim 8 + type 4 + offset 8.
  if (kvCount * 14 + tensorCount * 33 > c.remaining) {
    c.fail(`the header claims ${kvCount} metadata entries and ${tensorCount} tensors, more than the file's ${size} bytes can hold`);
  }

  const metadata = new Map<string, GGUFValue>();
  const metadataTypes = new Map<string, GGUFTypeInfo>();
  for (let i = 0; i < kvCount; i++) {
    const key = await c.string(`metadata key #${i}`);
    if (key.length === 0) c.fail(`metadata key #${i} is empty`);
    if (metadata.has(key)) c.fail(`metadata key "${key}" appears twice`);
    const type = await c.valueType(`metadata "${key}"`);
    const { value, info } = await c.value(type, `metadata "${key}"`);
    metadata.set(key, value);
    metadataTypes.set(key, info);
  }

  let alignment = DEFAULT_ALIGNMENT;
  if (metadata.has('general.alignment')) {
    const a = metadata.get('general.alignment');
    if (metadataTypes.get('general.alignment')?.type !== 'u32' || typeof a !== 'number' || a === 0 || (a & (a - 1)) !== 0) {
      c.fail(`general.alignment must be a u32 power of two, got ${String(a)}`);
    }
    alignment = a as number;
  }

  const infos: { name: string; dtype: DType; shape: number[]; offset: number; byteLength: number }[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = await c.string(`the name of tensor #${i}`);
    if (names.has(name)) c.fail(`tensor "${name}" appears twice`);
    names.add(name);
    const nDims = await c.u32(`the dimension count of tensor "${name}"`);
    if (nDims < 1 || nDims > MAX_DIMS) c.fail(`tensor "${name}": ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const n = await c.u64(`dimension ${d} of tensor "${name}"`);
      if (n === 0) c.fail(`tensor "${name}": dimension ${d} is 0`);
      ne.push(n);
    }
    const count = ne.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count)) c.fail(`tensor "${name}": ${ne.join(' × ')} elements is too many`);
    const typeId = await c.u32(`the type of tensor "${name}"`);
    const dtype = DTYPE_BY_GGML_ID.get(typeId);
    if (dtype === undefined) {
      const known = GGML_UNSIZED_TYPES[typeId];
      return c.fail(`tensor "${name}": ${known ? `type ${known} (${typeId}) is not supported` : `unknown tensor type ${typeId}`}`);
    }
    const { blockSize, blockBytes } = DTYPE_LAYOUT[dtype];
    if (ne[0]! % blockSize !== 0) {
      c.fail(`tensor "${name}": row length ${ne[0]} is not a multiple of the ${dtype} block size ${blockSize}`);
    }
    const offset = await c.u64(`the offset of tensor "${name}"`);
    if (offset % alignment !== 0) c.fail(`tensor "${name}": offset ${offset} is not a multiple of the alignment ${alignment}`);
    infos.push({ name, dtype, shape: ne.slice().reverse(), offset, byteLength: (count / blockSize) * blockBytes });
  }

  const dataOffset = alignUp(c.pos, alignment);
  // Tensors must lie inside the file and not overlap.
  const byOffset = [...infos].sort((a, b) => a.offset - b.offset);
  let end = 0;
  let prev = '';
  for (const t of byOffset) {
    if (t.offset < end) c.fail(`tensor "${t.name}" overlaps tensor "${prev}"`);
    end = t.offset + t.byteLength;
    prev = t.name;
    if (dataOffset + end > size) {
      c.fail(`tensor "${t.name}": data [${dataOffset + t.offset}, ${dataOffset + end}) runs past the end of the file (${size} bytes)`);
    }
  }

  const tensors = new Map<string, GGUFTensorInfo>();
  for (const t of infos) {
    tensors.set(t.name, {
      name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.byteLength, fileOffset: dataOffset + t.offset,
    });
  }
  let closed = false;
  return {
    source: file, version, metadata, metadataTypes, alignment, dataOffset, tensors,
    read: async (name) => {
      const t = tensors.get(name);
      if (!t) throw new FormatError(file, `no tensor "${name}"`);
      if (closed) throw new Error(`${file}: read after close`);
      return readAt(handle, file, t.fileOffset, t.byteLength, name);
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

// ---------------------------------------------------------------------------------------------
// Typed access to metadata, for the model and tokenizer loaders.

function typeError(file: string, key: string, expected: string, v: unknown): never {
  const got = Array.isArray(v) ? 'an array' : typeof v;
  throw new FormatError(file, `metadata "${key}" must be ${expected}, got ${got}`);
}

export function getString(meta: ReadonlyMap<string, unknown>, key: string, file: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : typeError(file, key, 'a string', v);
}

export function getNumber(meta: ReadonlyMap<string, unknown>, key: string, file: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  return typeof v === 'number' ? v : typeError(file, key, 'a number', v);
}

export function getStringArray(meta: ReadonlyMap<string, unknown>, key: string, file: string): string[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v as string[] : typeError(file, key, 'an array of strings', v);
}

export function getNumberArray(meta: ReadonlyMap<string, unknown>, key: string, file: string): number[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  return Array.isArray(v) && v.every((x) => typeof x === 'number') ? v as number[] : typeError(file, key, 'an array of numbers', v);
}

// ---------------------------------------------------------------------------------------------
// Writer.

export interface GGUFTensorToWrite {
  name: string;
  dtype: DType;
  /** Outermost first (reversed into GGUF's ne order on write). */
  shape: readonly number[];
  data: Uint8Array;
}

export interface WriteGGUFOptions {
  version?: 2 | 3;
  /** Data alignment; written as general.alignment when not the default 32. */
  alignment?: number;
  metadata: readonly GGUFMetadataEntry[];
  tensors: readonly GGUFTensorToWrite[];
}

/** The metadata of an opened file as entries to write (same keys, values and stored types). */
export function metadataEntries(file: GGUFFile, keep: (key: string) => boolean = () => true): GGUFMetadataEntry[] {
  const out: GGUFMetadataEntry[] = [];
  for (const [key, value] of file.metadata) {
    if (!keep(key)) continue;
    const info = file.metadataTypes.get(key)!;
    if (info.type === 'array') {
      if (info.itemType === 'array' || info.itemType === undefined && (value as GGUFValue[]).length > 0) {
        throw new Error(`metadataEntries: nested array "${key}" cannot be re-written`);
      }
      out.push({ key, type: 'array', itemType: (info.itemType ?? 'u8') as GGUFScalarType, value: value as (number | string)[] });
    } else {
      out.push({ key, type: info.type, value: value as number | string });
    }
  }
  return out;
}

/** Serialises one value of a scalar type into `w`. */
class ByteWriter {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private grow(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u32(v: number): void { this.grow(4); this.view.setUint32(this.length, v, true); this.length += 4; }
  u64(v: number | bigint): void { this.grow(8); this.view.setBigUint64(this.length, BigInt(v), true); this.length += 8; }
  bytes(b: Uint8Array): void { this.grow(b.length); this.buf.set(b, this.length); this.length += b.length; }
  string(s: string): void { const b = new TextEncoder().encode(s); this.u64(b.length); this.bytes(b); }

  scalar(type: GGUFScalarType, v: number | bigint | boolean | string, key: string): void {
    const bad = () => { throw new Error(`writeGGUF: "${key}": ${String(v)} is not a valid ${type}`); };
    if (type === 'string') { if (typeof v !== 'string') bad(); this.string(v as string); return; }
    if (type === 'bool') { if (typeof v !== 'boolean') bad(); this.grow(1); this.buf[this.length++] = v ? 1 : 0; return; }
    if (typeof v !== 'number' && typeof v !== 'bigint') bad();
    this.grow(8);
    const d = this.view, o = this.length;
    switch (type) {
      case 'u8': d.setUint8(o, Number(v)); break;
      case 'i8': d.setInt8(o, Number(v)); break;
      case 'u16': d.setUint16(o, Number(v), true); break;
      case 'i16': d.setInt16(o, Number(v), true); break;
      case 'u32': d.setUint32(o, Number(v), true); break;
      case 'i32': d.setInt32(o, Number(v), true); break;
      case 'f32': d.setFloat32(o, Number(v), true); break;
      case 'f64': d.setFloat64(o, Number(v), true); break;
      case 'u64': d.setBigUint64(o, BigInt(v as number | bigint), true); break;
      case 'i64': d.setBigInt64(o, BigInt(v as number | bigint), true); break;
    }
    this.length += MIN_SIZE[type];
  }

  pad(alignment: number): void {
    const n = alignUp(this.length, alignment) - this.length;
    this.grow(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

/**
 * Writes a GGUF file. The header is built in memory (it holds metadata and tensor infos only);
 * tensor data is streamed, each tensor at an aligned offset. Written under a temporary name and
 * renamed, so a failed write leaves nothing half-written at `file`.
 */
export async function writeGGUF(file: string, o: WriteGGUFOptions): Promise<void> {
  const alignment = o.alignment ?? DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new Error(`writeGGUF: alignment must be a power of two, got ${alignment}`);
  }
  const metadata = o.metadata.filter((e) => e.key !== 'general.alignment');
  if (alignment !== DEFAULT_ALIGNMENT) metadata.push({ key: 'general.alignment', type: 'u32', value: alignment });

  const w = new ByteWriter();
  w.u32(MAGIC);
  w.u32(o.version ?? 3);
  w.u64(o.tensors.length);
  w.u64(metadata.length);
  const keys = new Set<string>();
  for (const e of metadata) {
    if (keys.has(e.key)) throw new Error(`writeGGUF: metadata key "${e.key}" given twice`);
    keys.add(e.key);
    w.string(e.key);
    w.u32(TYPE_IDS[e.type]);
    if (e.type === 'array') {
      w.u32(TYPE_IDS[e.itemType]);
      w.u64(e.value.length);
      for (const v of e.value) w.scalar(e.itemType, v, e.key);
    } else {
      w.scalar(e.type, e.value, e.key);
    }
  }
  let offset = 0;
  for (const t of o.tensors) {
    const typeId = GGML_TYPE_IDS[t.dtype];
    if (typeId === undefined) throw new Error(`writeGGUF: tensor "${t.name}": dtype ${t.dtype} has no GGML type`);
    const { blockSize, blockBytes } = DTYPE_LAYOUT[t.dtype];
    const count = elementCount(t.shape);
    if (t.shape.length < 1 || t.shape.length > MAX_DIMS || t.shape[t.shape.length - 1]! % blockSize !== 0) {
      throw new Error(`writeGGUF: tensor "${t.name}": shape [${t.shape.join(', ')}] does not fit ${t.dtype}`);
    }
    if (t.data.length !== (count / blockSize) * blockBytes) {
      throw new Error(`writeGGUF: tensor "${t.name}": ${t.data.length} bytes for [${t.shape.join(', ')}] ${t.dtype}`);
    }
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(d);
    w.u32(typeId);
    w.u64(offset);
    offset = alignUp(offset + t.data.length, alignment);
  }
  w.pad(alignment);

  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w');
  try {
    await writeAll(handle, w.result());
    const zeros = new Uint8Array(alignment);
    for (const t of o.tensors) {
      await writeAll(handle, t.data);
      const pad = alignUp(t.data.length, alignment) - t.data.length;
      if (pad > 0) await writeAll(handle, zeros.subarray(0, pad));
    }
    await handle.close();
    await rename(tmp, file);
  } catch (e) {
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
}
