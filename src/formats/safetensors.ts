// SafeTensors reader (one file, or a folder: one file or shards listed by an index) and writer.
//
// File layout: u64 little-endian N, then N bytes of UTF-8 JSON (the header), then the data
// section. The header maps tensor names to {dtype, shape, data_offsets: [begin, end]} (offsets
// relative to the data section) plus an optional "__metadata__" map of strings.
//
// Validation is as strict as the reference Rust implementation (huggingface/safetensors,
// tensor.rs: read_metadata / validate): the header length is capped at 100,000,000 bytes, and
// the tensors, sorted by offset, must tile the data section exactly — no overlap, no gap, no
// trailing bytes — because files written by the reference library always do, and anything else
// means a corrupt or hand-made file. Stricter than the reference in one point: an entry with a
// key other than dtype/shape/data_offsets is refused (the reference ignores it).
//
// Reading is lazy: opening reads the 8-byte prefix and the header only; read(name) reads that
// tensor's bytes at their absolute offset. File handles stay open until close().
import { open, readdir, rename, stat, unlink, mkdir, readFile, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { DTYPE_LAYOUT, type DType } from '../quant/dtype.js';
import { FormatError, materialize, type TensorBytes, type TensorInfo, type WeightProvider } from './tensor.js';
import { openForReading, readAt, writeAll } from './file-io.js';

/** Largest header accepted, as in the reference implementation (MAX_HEADER_SIZE). */
export const MAX_HEADER_BYTES = 100_000_000;
/** Largest index file accepted (real ones are well under 1 MB). */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;
/** The index file name transformers writes for sharded checkpoints. */
export const INDEX_FILE = 'model.safetensors.index.json';

/** SafeTensors dtype names this reader accepts; each is also a DType of the same name. */
const SAFETENSORS_DTYPES: ReadonlySet<string> = new Set(['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL']);
const ENTRY_KEYS: ReadonlySet<string> = new Set(['dtype', 'shape', 'data_offsets']);

/** An opened SafeTensors checkpoint (one file or a sharded set). */
export interface SafeTensorsFile extends WeightProvider {
  /** The files' `__metadata__` maps merged (on a clash, the first shard in index order wins). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Absolute paths of the files read, in index order. */
  readonly files: readonly string[];
}

/** One tensor to write. */
export interface TensorToWrite {
  name: string;
  dtype: DType;
  /** Outermost first. */
  shape: readonly number[];
  /** Little-endian element bytes: exactly elementCount(shape) × element size (or produced when written). */
  data: TensorBytes;
}

/** Where one tensor's bytes are. */
interface TensorLocation {
  info: TensorInfo;
  file: string;
  handle: FileHandle;
  /** Absolute offset in the file. */
  offset: number;
}

/** What one file's header says. */
interface ParsedFile {
  file: string;
  handle: FileHandle;
  metadata: Record<string, string>;
  /** In data-section order. */
  tensors: TensorLocation[];
}

/**
 * Opens a .safetensors file, or a folder holding either an index (model.safetensors.index.json,
 * or a single other *.safetensors.index.json) and its shards, or exactly one .safetensors file.
 * Reads and checks every header; reads no tensor data.
 */
export async function openSafeTensors(source: string): Promise<SafeTensorsFile> {
  let st;
  try {
    st = await stat(source);
  } catch {
    throw new FormatError(source, 'no such file or folder');
  }
  if (!st.isDirectory()) {
    const parsed = await openFile(path.resolve(source));
    return new SafeTensorsReader(source, [parsed], new Map());
  }
  const dir = path.resolve(source);
  const names = (await readdir(dir)).sort();
  const indexes = names.filter((n) => n.endsWith('.safetensors.index.json'));
  const indexName = indexes.includes(INDEX_FILE) ? INDEX_FILE : indexes.length === 1 ? indexes[0] : undefined;
  if (indexName !== undefined) return openSharded(source, dir, indexName);
  if (indexes.length > 1) {
    throw new FormatError(source, `several SafeTensors index files and none named ${INDEX_FILE}: ${indexes.join(', ')}`);
  }
  const files = names.filter((n) => n.endsWith('.safetensors'));
  if (files.length === 0) throw new FormatError(source, 'no .safetensors file in this folder');
  if (files.length > 1) {
    throw new FormatError(source,
      `${files.length} .safetensors files but no ${INDEX_FILE} saying how they fit together: ${files.join(', ')}`);
  }
  const parsed = await openFile(path.join(dir, files[0]!));
  return new SafeTensorsReader(source, [parsed], new Map());
}

async function openSharded(source: string, dir: string, indexName: string): Promise<SafeTensorsFile> {
  const indexPath = path.join(dir, indexName);
  const weightMap = await readIndex(indexPath);
  // Shards in order of first mention.
  const shardNames = [...new Set(weightMap.values())];
  for (const shard of shardNames) {
    if (!isPlainFileName(shard)) {
      throw new FormatError(indexPath, `weight_map names the shard "${shard}", which is not a plain file name in this folder`);
    }
  }
  const parsed: ParsedFile[] = [];
  try {
    for (const shard of shardNames) {
      const shardPath = path.join(dir, shard);
      let shardStat;
      try {
        shardStat = await stat(shardPath);
      } catch {
        throw new FormatError(indexPath, `weight_map names the shard "${shard}", which does not exist`);
      }
      if (!shardStat.isFile()) throw new FormatError(indexPath, `the shard "${shard}" is not a file`);
      parsed.push(await openFile(shardPath));
    }
    return new SafeTensorsReader(source, parsed, weightMap, indexPath);
  } catch (e) {
    await Promise.all(parsed.map((p) => p.handle.close()));
    throw e;
  }
}

/** Reads an index file's weight_map (tensor name → shard file name). */
async function readIndex(indexPath: string): Promise<Map<string, string>> {
  const st = await stat(indexPath);
  if (st.size > MAX_INDEX_BYTES) throw new FormatError(indexPath, `index file is ${st.size} bytes, over the ${MAX_INDEX_BYTES} byte limit`);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (e) {
    throw new FormatError(indexPath, `not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(json)) throw new FormatError(indexPath, 'the index is not a JSON object');
  const weightMap = json['weight_map'];
  if (!isPlainObject(weightMap)) throw new FormatError(indexPath, 'the index has no "weight_map" object');
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') throw new FormatError(indexPath, `weight_map["${tensor}"] is not a file name string`);
    map.set(tensor, shard);
  }
  if (map.size === 0) throw new FormatError(indexPath, 'weight_map is empty');
  return map;
}

/** A name that stays inside the folder: no separators, not "." or "..", no NUL. */
function isPlainFileName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\\0]/.test(name) && path.basename(name) === name;
}

/** Opens one file and checks its header. The handle stays open on success, is closed on error. */
async function openFile(file: string): Promise<ParsedFile> {
  const { handle, size: fileSize } = await openForReading(file);
  try {
    if (fileSize < 8) throw new FormatError(file, `file is ${fileSize} bytes, too short for the 8-byte header length`);
    const prefix = await readAt(handle, file, 0, 8);
    const headerLength = new DataView(prefix.buffer).getBigUint64(0, true);
    if (headerLength > BigInt(MAX_HEADER_BYTES)) {
      throw new FormatError(file, `header length ${headerLength} is over the ${MAX_HEADER_BYTES} byte limit (not a SafeTensors file?)`);
    }
    const n = Number(headerLength);
    if (n > fileSize - 8) {
      throw new FormatError(file, `header length ${n} runs past the end of the file (${fileSize} bytes): truncated or not a SafeTensors file`);
    }
    const headerBytes = await readAt(handle, file, 8, n);
    const { metadata, tensors } = parseHeader(file, headerBytes, fileSize - 8 - n);
    const dataStart = 8 + n;
    return {
      file, handle, metadata,
      tensors: tensors.map((t) => ({ info: t.info, file, handle, offset: dataStart + t.begin })),
    };
  } catch (e) {
    await handle.close();
    throw e;
  }
}

interface HeaderEntry {
  info: TensorInfo;
  /** Offsets relative to the data section. */
  begin: number;
  end: number;
}

/**
 * Checks a header against the data section's length and returns its tensors in data order.
 * @param dataLength bytes after the header
 */
function parseHeader(file: string, headerBytes: Uint8Array, dataLength: number)
  : { metadata: Record<string, string>; tensors: HeaderEntry[] } {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    throw new FormatError(file, 'header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(json)) throw new FormatError(file, 'header is not a JSON object');

  let metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(file, value);
      continue;
    }
    entries.push(parseEntry(file, name, value, dataLength));
  }

  // The reference implementation sorts by offsets too: key order in JSON carries no meaning.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: string | undefined;
  for (const e of entries) {
    if (e.begin < cursor) {
      throw new FormatError(file,
        `tensor "${e.info.name}" (bytes ${e.begin}..${e.end}) overlaps tensor "${previous}" (which ends at ${cursor})`);
    }
    if (e.begin > cursor) {
      throw new FormatError(file,
        `bytes ${cursor}..${e.begin} of the data section belong to no tensor (before tensor "${e.info.name}")`);
    }
    cursor = e.end;
    previous = e.info.name;
  }
  if (cursor !== dataLength) {
    throw new FormatError(file,
      `the tensors cover ${cursor} bytes but the data section has ${dataLength}: ${dataLength - cursor} trailing bytes belong to no tensor`);
  }
  return { metadata, tensors: entries };
}

function parseMetadata(file: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) throw new FormatError(file, '__metadata__ is not a JSON object');
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new FormatError(file, `__metadata__["${key}"] is not a string (got ${describe(v)})`);
  }
  // fromEntries defines own properties, so a key named "__proto__" stays plain data.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

function parseEntry(file: string, name: string, value: unknown, dataLength: number): HeaderEntry {
  const bad = (problem: string) => new FormatError(file, `tensor "${name}": ${problem}`);
  if (!isPlainObject(value)) throw bad(`entry is not a JSON object (got ${describe(value)})`);
  for (const key of Object.keys(value)) {
    if (!ENTRY_KEYS.has(key)) throw bad(`unknown key "${key}" (expected dtype, shape, data_offsets)`);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw bad(`dtype is missing or not a string`);
  if (!SAFETENSORS_DTYPES.has(dtype)) {
    throw bad(`unsupported dtype "${dtype}" (supported: ${[...SAFETENSORS_DTYPES].join(', ')})`);
  }
  if (!Array.isArray(shape)) throw bad('shape is missing or not an array');
  let elements = 1;
  for (const d of shape as unknown[]) {
    if (!isIndex(d)) throw bad(`shape ${describeShape(shape)} has a dimension that is not a non-negative integer`);
    elements *= d;
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isIndex(offsets[0]) || !isIndex(offsets[1])) {
    throw bad('data_offsets is not a pair [begin, end] of non-negative integers');
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`data_offsets [${begin}, ${end}] ends before it begins`);
  if (end > dataLength) {
    throw bad(`data_offsets [${begin}, ${end}] run past the data section (${dataLength} bytes): file truncated?`);
  }
  const elementBytes = DTYPE_LAYOUT[dtype as DType].blockBytes;
  const byteLength = elements * elementBytes;
  if (end - begin !== byteLength) {
    throw bad(`shape ${describeShape(shape)} of ${dtype} needs ${byteLength} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { info: { name, dtype: dtype as DType, shape: shape as number[], byteLength }, begin, end };
}

/** The provider over one or more parsed files. */
class SafeTensorsReader implements SafeTensorsFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly files: readonly string[];
  private readonly locations = new Map<string, TensorLocation>();
  private readonly handles: FileHandle[];
  private closed = false;

  /**
   * @param weightMap the index's tensor → shard name (empty for a single file)
   * @param indexPath the index file, for errors
   */
  constructor(readonly source: string, parsed: ParsedFile[], weightMap: ReadonlyMap<string, string>, indexPath?: string) {
    this.handles = parsed.map((p) => p.handle);
    this.files = parsed.map((p) => p.file);
    const merged: Record<string, string> = {};
    for (const p of parsed) {
      for (const [k, v] of Object.entries(p.metadata)) {
        if (!Object.hasOwn(merged, k)) Object.defineProperty(merged, k, { value: v, enumerable: true, writable: true });
      }
      for (const t of p.tensors) {
        const seen = this.locations.get(t.info.name);
        if (seen) {
          throw new FormatError(source,
            `tensor "${t.info.name}" is in two shards: ${path.basename(seen.file)} and ${path.basename(t.file)}`);
        }
        this.locations.set(t.info.name, t);
      }
    }
    for (const [name, shard] of weightMap) {
      const at = this.locations.get(name);
      if (!at || path.basename(at.file) !== shard) {
        throw new FormatError(indexPath ?? source,
          `weight_map puts tensor "${name}" in ${shard}, but ${shard} does not hold it${at ? ` (it is in ${path.basename(at.file)})` : ''}`);
      }
    }
    this.metadata = merged;
    this.tensors = new Map([...this.locations].map(([name, loc]) => [name, loc.info]));
  }

  async read(name: string, into?: Uint8Array): Promise<Uint8Array> {
    if (this.closed) throw new Error(`${this.source}: read("${name}") after close()`);
    const at = this.locations.get(name);
    if (!at) throw new FormatError(this.source, `no tensor named "${name}"`);
    return readAt(at.handle, at.file, at.offset, at.info.byteLength, name, into);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.handles.map((h) => h.close()));
  }
}



/**
 * Writes a SafeTensors file: tensors in the given order, the header padded with spaces to a
 * multiple of 8 bytes (so the data section starts 8-byte aligned). Written to a temporary name
 * and renamed, so a failed write never leaves a half file under `file`.
 */
export async function writeSafeTensors(
  file: string, tensors: readonly TensorToWrite[], metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const header = encodeHeader(file, tensors, metadata);
  const tmp = `${file}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w');
  try {
    await writeAll(handle, header);
    for (const t of tensors) await writeAll(handle, await materialize(t.data, `${file}: tensor "${t.name}"`));
    await handle.close();
  } catch (e) {
    await handle.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await rename(tmp, file);
}

/** The 8-byte length prefix and the padded JSON header for `tensors`, checked. */
function encodeHeader(file: string, tensors: readonly TensorToWrite[], metadata?: Readonly<Record<string, string>>): Uint8Array {
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`${file}: metadata["${k}"] is not a string`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const names = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    const what = `${file}: tensor "${t.name}"`;
    if (t.name === '__metadata__' || names.has(t.name)) throw new Error(`${what}: name is reserved or used twice`);
    names.add(t.name);
    if (!SAFETENSORS_DTYPES.has(t.dtype)) throw new Error(`${what}: ${t.dtype} is not a SafeTensors dtype`);
    if (t.shape.some((d) => !isIndex(d))) throw new Error(`${what}: shape [${t.shape.join(', ')}] is not non-negative integers`);
    let elements = 1;
    for (const d of t.shape) elements *= d;
    const byteLength = elements * DTYPE_LAYOUT[t.dtype].blockBytes;
    if (t.data.byteLength !== byteLength) {
      throw new Error(`${what}: shape [${t.shape.join(', ')}] of ${t.dtype} needs ${byteLength} bytes, data has ${t.data.byteLength}`);
    }
    const entry = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + byteLength] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(entry)}`);
    offset += byteLength;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new Error(`${file}: header would be ${padded} bytes, over the ${MAX_HEADER_BYTES} byte limit`);
  const out = new Uint8Array(8 + padded).fill(0x20); // spaces
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  return out;
}

/**
 * Writes `tensors` into `dir` as transformers' save_pretrained does: shards of at most
 * `maxShardBytes` of tensor data (a bigger tensor gets a shard of its own), named
 * model-0000N-of-0000M.safetensors, plus model.safetensors.index.json ({metadata: {total_size},
 * weight_map} with sorted keys). If everything fits in one shard, writes model.safetensors and no
 * index, as transformers does. Returns the paths written (shards first).
 */
export async function writeSafeTensorsSharded(
  dir: string, tensors: readonly TensorToWrite[], maxShardBytes: number, metadata?: Readonly<Record<string, string>>,
): Promise<string[]> {
  if (!(maxShardBytes > 0)) throw new Error(`maxShardBytes must be positive, got ${maxShardBytes}`);
  const shards: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentBytes = 0;
  for (const t of tensors) {
    if (current.length > 0 && currentBytes + t.data.byteLength > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += t.data.byteLength;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);

  await mkdir(dir, { recursive: true });
  if (shards.length === 1) {
    const single = path.join(dir, 'model.safetensors');
    await writeSafeTensors(single, shards[0]!, metadata);
    return [single];
  }
  const pad = (i: number) => String(i).padStart(5, '0');
  const written: string[] = [];
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let i = 0; i < shards.length; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    const shardPath = path.join(dir, name);
    await writeSafeTensors(shardPath, shards[i]!, metadata);
    written.push(shardPath);
    for (const t of shards[i]!) {
      Object.defineProperty(weightMap, t.name, { value: name, enumerable: true, writable: true });
      totalSize += t.data.byteLength;
    }
  }
  const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const indexPath = path.join(dir, INDEX_FILE);
  await writeFile(indexPath, `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sortedMap }, null, 2)}\n`);
  written.push(indexPath);
  return written;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** A short description of a JSON value for an error message (never recursive: input may nest deeply). */
function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object' && v !== null) return 'an object';
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

/** A shape for an error message, cut short if long. */
function describeShape(shape: readonly unknown[]): string {
  const shown = shape.slice(0, 8).map(describe).join(', ');
  return `[${shown}${shape.length > 8 ? `, ... (${shape.length} dims)` : ''}]`;
}
