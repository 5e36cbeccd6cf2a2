// GGUF reader: the header, metadata and tensor infos are read and checked when the file is
// opened; tensor data is read only when asked for.
//
// Nothing in the header is trusted: every count, length and offset is compared with the bytes
// left in the file before anything is allocated or looped over, so a hostile header can neither
// make the reader allocate more than the file's size nor keep it busy for long.
import type { FileHandle } from 'node:fs/promises';
import { DTYPE_BY_GGML_ID, DTYPE_LAYOUT, GGML_UNSIZED_TYPES, type DType } from '../quant/dtype.js';
import { openForReading, readAt } from './file-io.js';
import {
  GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_MAX_ARRAY_DEPTH, GGUF_MAX_DIMS, GGUF_MIN_SIZE, GGUF_TYPE_BY_ID,
  alignUp, isPowerOfTwo,
  type GGUFFile, type GGUFScalar, type GGUFScalarType, type GGUFTensorInfo, type GGUFTypeInfo, type GGUFValue,
  type GGUFValueType,
} from './gguf-types.js';
import { FormatError } from './tensor.js';

/** Header bytes read at a time: one or two reads hold a typical model's metadata. */
const CHUNK_BYTES = 1 << 20;
/** Smallest metadata entry: key length (8) + a 1-byte key + type (4) + a 1-byte value. */
const MIN_KV_BYTES = 14;
/** Smallest tensor info: name length (8) + empty name + n_dims (4) + one dim (8) + type (4) + offset (8). */
const MIN_TENSOR_INFO_BYTES = 32;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

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

/**
 * Reads the header region sequentially through a buffer refilled from the file in chunks, never
 * past the file's end. Readers of single fields are async (a refill may be due); loops over
 * array items use has/fill/take* so that buffered items cost no await.
 */
class HeaderCursor {
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  /** File offset of buf[0]. */
  private base = 0;
  /** Absolute file position of the next byte to read. */
  pos = 0;
  /** fatal: invalid UTF-8 is an error; ignoreBOM: a leading U+FEFF is content, not a marker. */
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  constructor(private readonly handle: FileHandle, readonly file: string, readonly size: number) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  fail(problem: string): never {
    throw new FormatError(this.file, problem);
  }

  /** Whether bytes [pos, pos + n) are in the buffer. */
  has(n: number): boolean {
    return this.pos + n <= this.base + this.buf.length;
  }

  /** Buffers bytes [pos, pos + n), or fails naming `what` when the file ends before them. */
  async fill(n: number, what: string): Promise<void> {
    if (n > this.remaining) {
      this.fail(`truncated: ${what} needs ${n} bytes at offset ${this.pos}, but the file ends at ${this.size}`);
    }
    const want = Math.min(this.remaining, Math.max(n, CHUNK_BYTES));
    this.buf = await readAt(this.handle, this.file, this.pos, want);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.base = this.pos;
  }

  // take*: read from the buffer; the caller has made sure the bytes are there.

  private at(): number {
    return this.pos - this.base;
  }

  takeU32(): number {
    const v = this.view.getUint32(this.at(), true);
    this.pos += 4;
    return v;
  }

  takeU64(): bigint {
    const v = this.view.getBigUint64(this.at(), true);
    this.pos += 8;
    return v;
  }

  /** A u64 length as a number: exact up to 2^53, and beyond that still larger than any file. */
  takeLength(): number {
    const at = this.at();
    this.pos += 8;
    return this.view.getUint32(at, true) + this.view.getUint32(at + 4, true) * 2 ** 32;
  }

  /** A string of `length` buffered bytes, or undefined if they are not valid UTF-8. */
  takeString(length: number): string | undefined {
    const at = this.at();
    this.pos += length;
    try {
      return this.utf8.decode(this.buf.subarray(at, at + length));
    } catch {
      return undefined;
    }
  }

  /** A fixed-size scalar (not a string). */
  takeScalar(type: Exclude<GGUFScalarType, 'string'>, what: () => string): GGUFScalar {
    const v = this.view, o = this.at();
    this.pos += GGUF_MIN_SIZE[type];
    switch (type) {
      case 'u8': return v.getUint8(o);
      case 'i8': return v.getInt8(o);
      case 'u16': return v.getUint16(o, true);
      case 'i16': return v.getInt16(o, true);
      case 'u32': return v.getUint32(o, true);
      case 'i32': return v.getInt32(o, true);
      case 'f32': return v.getFloat32(o, true);
      case 'f64': return v.getFloat64(o, true);
      case 'u64': return exactNumber(v.getBigUint64(o, true));
      case 'i64': return exactNumber(v.getBigInt64(o, true));
      case 'bool': {
        const b = v.getUint8(o);
        if (b > 1) this.fail(`${what()}: bool value ${b} is neither 0 nor 1`);
        return b === 1;
      }
    }
  }

  async u32(what: string): Promise<number> {
    if (!this.has(4)) await this.fill(4, what);
    return this.takeU32();
  }

  /** A u64 count, length or offset: it must be a safe integer. */
  async count(what: string): Promise<number> {
    if (!this.has(8)) await this.fill(8, what);
    const v = this.takeU64();
    if (v > MAX_SAFE) this.fail(`${what} is ${v}, beyond any file`);
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const length = await this.count(`the length of ${what}`);
    if (length > this.remaining) {
      this.fail(`${what}: string length ${length} runs past the end of the file (${this.remaining} bytes left)`);
    }
    if (!this.has(length)) await this.fill(length, what);
    return this.takeString(length) ?? this.fail(`${what} is not valid UTF-8`);
  }

  async valueType(what: string): Promise<GGUFValueType> {
    const id = await this.u32(`the type of ${what}`);
    return GGUF_TYPE_BY_ID[id] ?? this.fail(`${what}: unknown value type ${id}`);
  }

  async value(type: GGUFValueType, what: string, depth = 0): Promise<{ value: GGUFValue; info: GGUFTypeInfo }> {
    if (type === 'string') return { value: await this.string(what), info: { type } };
    if (type !== 'array') {
      if (!this.has(GGUF_MIN_SIZE[type])) await this.fill(GGUF_MIN_SIZE[type], what);
      return { value: this.takeScalar(type, () => what), info: { type } };
    }
    if (depth >= GGUF_MAX_ARRAY_DEPTH) this.fail(`${what}: arrays nested deeper than ${GGUF_MAX_ARRAY_DEPTH}`);
    const itemType = await this.valueType(`the items of ${what}`);
    const count = await this.count(`the length of ${what}`);
    // Checked before allocating: each item takes at least GGUF_MIN_SIZE bytes.
    if (count * GGUF_MIN_SIZE[itemType] > this.remaining) {
      this.fail(`${what}: array of ${count} ${itemType} items runs past the end of the file (${this.remaining} bytes left)`);
    }
    if (itemType === 'array') {
      const items: GGUFValue[] = new Array(count);
      const inner: GGUFTypeInfo[] = new Array(count);
      for (let i = 0; i < count; i++) {
        const r = await this.value('array', `${what}[${i}]`, depth + 1);
        items[i] = r.value;
        inner[i] = r.info;
      }
      return { value: items, info: { type, itemType, ...(count > 0 ? { items: inner[0] } : {}), inner } };
    }
    const value = itemType === 'string' ? await this.strings(count, what) : await this.scalars(itemType, count, what);
    return { value, info: { type, itemType, ...(count > 0 ? { items: { type: itemType } } : {}) } };
  }

  private async strings(count: number, what: string): Promise<string[]> {
    const items: string[] = new Array(count);
    for (let i = 0; i < count; i++) {
      if (!this.has(8)) await this.fill(8, `the length of ${what}[${i}]`);
      const length = this.takeLength();
      if (length > this.remaining) {
        this.fail(`${what}[${i}]: string length ${length} runs past the end of the file (${this.remaining} bytes left)`);
      }
      if (!this.has(length)) await this.fill(length, `${what}[${i}]`);
      items[i] = this.takeString(length) ?? this.fail(`${what}[${i}] is not valid UTF-8`);
    }
    return items;
  }

  private async scalars(type: Exclude<GGUFScalarType, 'string'>, count: number, what: string): Promise<GGUFScalar[]> {
    // The whole array fits in the rest of the file (checked by the caller): buffer it at once.
    const bytes = count * GGUF_MIN_SIZE[type];
    if (!this.has(bytes)) await this.fill(bytes, what);
    const items: GGUFScalar[] = new Array(count);
    const v = this.view, start = this.at(), size = GGUF_MIN_SIZE[type];
    // One loop per type: vocabularies hold a few hundred thousand scores and token types.
    switch (type) {
      case 'f32': for (let i = 0; i < count; i++) items[i] = v.getFloat32(start + 4 * i, true); break;
      case 'i32': for (let i = 0; i < count; i++) items[i] = v.getInt32(start + 4 * i, true); break;
      case 'u32': for (let i = 0; i < count; i++) items[i] = v.getUint32(start + 4 * i, true); break;
      case 'u8': for (let i = 0; i < count; i++) items[i] = v.getUint8(start + i); break;
      default:
        for (let i = 0; i < count; i++) items[i] = this.takeScalar(type, () => `${what}[${i}]`);
        return items;
    }
    this.pos += count * size;
    return items;
  }
}

/** u64/i64 values as numbers when exact, else bigint. */
function exactNumber(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
}

function byteSwap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

interface ParsedTensor {
  name: string;
  dtype: DType;
  ggmlType: number;
  shape: number[];
  offset: number;
  byteLength: number;
}

async function parse(handle: FileHandle, file: string, size: number): Promise<GGUFFile> {
  const c = new HeaderCursor(handle, file, size);
  if (size < 4 || (await c.u32('the magic')) !== GGUF_MAGIC) c.fail('not a GGUF file (the magic bytes "GGUF" are missing)');
  const version = await c.u32('the version');
  if (version === 1) c.fail('GGUF version 1 is not supported (only 2 and 3): convert the model again with a current llama.cpp');
  if (version !== 2 && version !== 3) {
    const swapped = byteSwap32(version);
    if (swapped === 2 || swapped === 3) c.fail(`big-endian GGUF (version ${swapped}) is not supported`);
    c.fail(`unknown GGUF version ${version} (supported: 2, 3)`);
  }
  const tensorCount = await c.count('the tensor count');
  const kvCount = await c.count('the metadata count');
  if (kvCount * MIN_KV_BYTES + tensorCount * MIN_TENSOR_INFO_BYTES > c.remaining) {
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
  const alignment = readAlignment(c, metadata, metadataTypes);

  const parsed: ParsedTensor[] = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const t = await readTensorInfo(c, i, alignment, names);
    names.add(t.name);
    parsed.push(t);
  }

  const dataOffset = alignUp(c.pos, alignment);
  checkPlacement(c, parsed, dataOffset);

  const tensors = new Map<string, GGUFTensorInfo>();
  for (const t of parsed) tensors.set(t.name, { ...t, fileOffset: dataOffset + t.offset });
  return new GGUFReader(handle, file, version, metadata, metadataTypes, alignment, dataOffset, tensors);
}

function readAlignment(c: HeaderCursor, metadata: Map<string, GGUFValue>, types: Map<string, GGUFTypeInfo>): number {
  const a = metadata.get('general.alignment');
  if (a === undefined) return GGUF_DEFAULT_ALIGNMENT;
  const type = types.get('general.alignment')!.type;
  if (type !== 'u32' || typeof a !== 'number' || !isPowerOfTwo(a)) {
    c.fail(`general.alignment must be a u32 power of two, got ${Array.isArray(a) ? 'an array' : String(a)}${type === 'u32' ? '' : ` stored as ${type}`}`);
  }
  return a;
}

async function readTensorInfo(c: HeaderCursor, i: number, alignment: number, namesBefore: ReadonlySet<string>): Promise<ParsedTensor> {
  const name = await c.string(`the name of tensor #${i}`);
  if (namesBefore.has(name)) c.fail(`tensor "${name}" appears twice`);
  const nDims = await c.u32(`the dimension count of tensor "${name}"`);
  if (nDims < 1 || nDims > GGUF_MAX_DIMS) c.fail(`tensor "${name}": ${nDims} dimensions (1 to ${GGUF_MAX_DIMS} allowed)`);
  // ne: innermost (contiguous) dimension first, as stored.
  const ne: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const n = await c.count(`dimension ${d} of tensor "${name}"`);
    if (n === 0) c.fail(`tensor "${name}": dimension ${d} is 0`);
    ne.push(n);
  }
  const count = ne.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count)) c.fail(`tensor "${name}": ${ne.join(' × ')} elements is too many`);

  const ggmlType = await c.u32(`the type of tensor "${name}"`);
  const dtype = DTYPE_BY_GGML_ID.get(ggmlType);
  if (dtype === undefined) {
    const removed = GGML_UNSIZED_TYPES[ggmlType];
    c.fail(removed !== undefined
      ? `tensor "${name}": type ${removed} (${ggmlType}) is not supported: ggml removed it from GGUF files; quantize the model again with a current llama.cpp`
      : `tensor "${name}": unknown tensor type ${ggmlType}`);
  }
  const { blockSize, blockBytes } = DTYPE_LAYOUT[dtype];
  if (ne[0]! % blockSize !== 0) {
    c.fail(`tensor "${name}": row length ${ne[0]} is not a multiple of the ${dtype} block size ${blockSize}`);
  }
  const offset = await c.count(`the offset of tensor "${name}"`);
  if (offset % alignment !== 0) c.fail(`tensor "${name}": offset ${offset} is not a multiple of the alignment ${alignment}`);
  return { name, dtype, ggmlType, shape: ne.slice().reverse(), offset, byteLength: (count / blockSize) * blockBytes };
}

/** Every tensor's data lies inside the file, and no two tensors share a byte. */
function checkPlacement(c: HeaderCursor, tensors: readonly ParsedTensor[], dataOffset: number): void {
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  // The tensor reaching furthest so far: any later start before its end is an overlap.
  let furthest: ParsedTensor | undefined;
  for (const t of byOffset) {
    if (furthest && t.offset < furthest.offset + furthest.byteLength) c.fail(`tensor "${t.name}" overlaps tensor "${furthest.name}"`);
    const start = dataOffset + t.offset, end = start + t.byteLength;
    if (end > c.size) {
      c.fail(`tensor "${t.name}": data [${start}, ${end}) runs past the end of the file (${c.size} bytes)`);
    }
    if (!furthest || t.offset + t.byteLength > furthest.offset + furthest.byteLength) furthest = t;
  }
}

class GGUFReader implements GGUFFile {
  private closed = false;

  constructor(
    private readonly handle: FileHandle,
    readonly source: string,
    readonly version: number,
    readonly metadata: ReadonlyMap<string, GGUFValue>,
    readonly metadataTypes: ReadonlyMap<string, GGUFTypeInfo>,
    readonly alignment: number,
    readonly dataOffset: number,
    readonly tensors: ReadonlyMap<string, GGUFTensorInfo>,
  ) {}

  async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError(this.source, `no tensor "${name}"`);
    if (this.closed) throw new Error(`${this.source}: read after close (tensor "${name}")`);
    return readAt(this.handle, this.source, t.fileOffset, t.byteLength, name, into);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}
