// GGUF reader and writer (src/formats/gguf*.ts): the writer's bytes against the spec's layout,
// round trips of every value type and of tensors, the real fixture files, typed metadata access,
// and malformed files built byte by byte — each must be refused with a FormatError naming the
// file and the problem, at once and without allocating what the header claims.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  getBoolean, getNumber, getNumberArray, getString, getStringArray, metadataEntries, openGGUF, writeGGUF,
  type GGUFMetadataEntry, type GGUFTensorToWrite,
} from '../src/formats/gguf.js';
import { FormatError } from '../src/formats/tensor.js';
import { quantize } from '../src/quant/dequantize.js';
import { DTYPE_BY_GGML_ID, DTYPE_LAYOUT, GGML_TYPE_IDS, type DType } from '../src/quant/dtype.js';
import { FIXTURES, fixturesSkip } from './helpers/fixtures.js';

let dir: string;
before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-gguf-test-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });
let fileNumber = 0;
const tmpFile = (): string => path.join(dir, `f${fileNumber++}.gguf`);

/** Little-endian bytes of a hand-built file, written exactly as the spec lays them out. */
class Bytes {
  private readonly parts: Buffer[] = [];
  length = 0;
  private push(b: Buffer): this { this.parts.push(b); this.length += b.length; return this; }
  u8(v: number): this { return this.push(Buffer.from([v])); }
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v); return this.push(b); }
  u64(v: number | bigint): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return this.push(b); }
  raw(bytes: ArrayLike<number>): this { return this.push(Buffer.from(Array.from(bytes))); }
  /** gguf_string_t: u64 byte length, then the bytes. */
  str(s: string | number[]): this { const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s); return this.u64(b.length).push(b); }
  header(version: number, tensorCount: number | bigint, kvCount: number | bigint): this {
    return this.raw([0x47, 0x47, 0x55, 0x46]).u32(version).u64(tensorCount).u64(kvCount);
  }
  /** A metadata key and its value type id; the caller adds the value. */
  key(name: string | number[], typeId: number): this { return this.str(name).u32(typeId); }
  /** A tensor info; `ne` innermost first, as stored. */
  tensor(name: string, ne: number[], ggmlType: number, offset: number | bigint): this {
    this.str(name).u32(ne.length);
    for (const n of ne) this.u64(n);
    return this.u32(ggmlType).u64(offset);
  }
  /** Zero padding up to a multiple of `alignment`. */
  pad(alignment = 32): this { return this.push(Buffer.alloc((alignment - (this.length % alignment)) % alignment)); }
  done(): Buffer { return Buffer.concat(this.parts); }
}

// gguf_type ids.
const U8 = 0, U32 = 4, I32 = 5, F32_T = 6, BOOL = 7, STRING = 8, ARRAY = 9;
// ggml_type ids.
const F32 = 0, Q8_0 = 8;

/** The file must be refused: a FormatError whose message names the file and matches `problem`. */
async function assertRefused(file: string, problem: RegExp): Promise<void> {
  await assert.rejects(openGGUF(file), (e: unknown) => {
    assert.ok(e instanceof FormatError, `a FormatError, got ${String(e)}`);
    assert.ok(e.message.startsWith(`${file}: `), `names the file: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// The writer against the spec, byte for byte.

test('the writer lays out header, KVs, tensor infos, padding and aligned tensor data exactly as the spec says', async () => {
  const file = tmpFile();
  const t = Uint8Array.from({ length: 24 }, (_, i) => i + 1);
  const q = Uint8Array.from({ length: 34 }, (_, i) => 200 - i);
  await writeGGUF(file, {
    metadata: [
      { key: 'a.n', type: 'u32', value: 7 },
      { key: 'a.s', type: 'array', itemType: 'string', value: ['x', 'yz'] },
      { key: 'a.b', type: 'bool', value: true },
    ],
    tensors: [
      { name: 't', dtype: 'F32', shape: [2, 3], data: t },
      { name: 'q', dtype: 'Q8_0', shape: [32], data: q },
    ],
  });
  const expected = new Bytes().header(3, 2, 3)
    .key('a.n', U32).u32(7)
    .key('a.s', ARRAY).u32(STRING).u64(2).str('x').str('yz')
    .key('a.b', BOOL).u8(1)
    // shape [2, 3] outermost first is stored ne = [3, 2]; the next offset is 24 rounded up to 32.
    .tensor('t', [3, 2], F32, 0)
    .tensor('q', [32], Q8_0, 32)
    .pad(32).raw(t).pad(32).raw(q).pad(32)
    .done();
  assert.deepEqual(await readFile(file), expected);
});

test('general.alignment is written only when not 32, and then every offset and the file end follow it', async () => {
  const file = tmpFile();
  await writeGGUF(file, {
    version: 2, alignment: 128, metadata: [],
    tensors: [{ name: 'w', dtype: 'F16', shape: [3], data: new Uint8Array(6).fill(9) }],
  });
  const expected = new Bytes().header(2, 1, 1).key('general.alignment', U32).u32(128)
    .tensor('w', [3], 1, 0).pad(128).raw(new Uint8Array(6).fill(9)).pad(128).done();
  assert.deepEqual(await readFile(file), expected);

  const plain = tmpFile();
  await writeGGUF(plain, { alignment: 32, metadata: [], tensors: [] });
  assert.deepEqual(await readFile(plain), new Bytes().header(3, 0, 0).pad(32).done());
});

// ---------------------------------------------------------------------------------------------
// Round trips.

const MAX_U64 = 2n ** 64n - 1n;
/** Every value type, edge values, empty strings and arrays, arrays of arrays. */
const METADATA: GGUFMetadataEntry[] = [
  { key: 'v.u8', type: 'u8', value: 255 }, { key: 'v.i8', type: 'i8', value: -128 },
  { key: 'v.u16', type: 'u16', value: 65535 }, { key: 'v.i16', type: 'i16', value: -32768 },
  { key: 'v.u32', type: 'u32', value: 4294967295 }, { key: 'v.i32', type: 'i32', value: -2147483648 },
  { key: 'v.f32', type: 'f32', value: -1.5 }, { key: 'v.f64', type: 'f64', value: Math.PI },
  { key: 'v.true', type: 'bool', value: true }, { key: 'v.false', type: 'bool', value: false },
  { key: 'v.string', type: 'string', value: 'héllo, 世界 🚀\n\0' }, { key: 'v.empty', type: 'string', value: '' },
  { key: 'v.bom', type: 'string', value: '\uFEFFkept' },
  { key: 'v.u64', type: 'u64', value: 42 }, { key: 'v.i64', type: 'i64', value: -42 },
  { key: 'v.u64.max', type: 'u64', value: MAX_U64 }, { key: 'v.i64.min', type: 'i64', value: -(2n ** 63n) },
  { key: 'v.u64.2^53', type: 'u64', value: 2n ** 53n },
  { key: 'a.u8', type: 'array', itemType: 'u8', value: [0, 1, 255] },
  { key: 'a.i8', type: 'array', itemType: 'i8', value: [-128, 127] },
  { key: 'a.u16', type: 'array', itemType: 'u16', value: [0, 65535] },
  { key: 'a.i16', type: 'array', itemType: 'i16', value: [-32768, 32767] },
  { key: 'a.u32', type: 'array', itemType: 'u32', value: [0, 4294967295] },
  { key: 'a.i32', type: 'array', itemType: 'i32', value: [-2147483648, 2147483647] },
  { key: 'a.f32', type: 'array', itemType: 'f32', value: [0.25, -2, Infinity] },
  { key: 'a.f64', type: 'array', itemType: 'f64', value: [Math.E, -0.1, 5e-324] },
  { key: 'a.bool', type: 'array', itemType: 'bool', value: [true, false] },
  { key: 'a.string', type: 'array', itemType: 'string', value: ['<s>', '', '▁日本', '🚀'] },
  { key: 'a.u64', type: 'array', itemType: 'u64', value: [0, 2 ** 53 - 1, MAX_U64] },
  { key: 'a.i64', type: 'array', itemType: 'i64', value: [-1, -(2n ** 63n)] },
  { key: 'a.empty', type: 'array', itemType: 'u32', value: [] },
  { key: 'a.empty.strings', type: 'array', itemType: 'string', value: [] },
  {
    key: 'a.nested', type: 'array', itemType: 'array', value: [
      { itemType: 'u8', value: [1, 2] },
      { itemType: 'string', value: ['in', ''] },
      { itemType: 'array', value: [{ itemType: 'i64', value: [MAX_U64 >> 2n] }, { itemType: 'bool', value: [] }] },
      { itemType: 'f32', value: [] },
    ],
  },
  { key: 'a.nested.empty', type: 'array', itemType: 'array', value: [] },
];
/** What the reader gives for a written value: u64/i64 as number when exact, arrays as JS arrays. */
function expected(e: { type: string; itemType?: string; value: unknown }): unknown {
  if (e.type === 'array' || e.itemType !== undefined) {
    const items = e.value as { itemType?: string; value: unknown }[];
    return e.itemType === 'array' ? items.map((a) => expected({ type: 'array', ...a })) : items.map((v) => expected({ type: e.itemType!, value: v }));
  }
  const v = e.value;
  if (e.type === 'f32') return Math.fround(v as number);
  return typeof v === 'bigint' && v >= -(2n ** 53n - 1n) && v <= 2n ** 53n - 1n ? Number(v) : v;
}

/** Real bytes for the computable dtypes (from the reference quantizer), outermost-first shapes. */
function tensorsToWrite(): GGUFTensorToWrite[] {
  const shapes: [DType, number[]][] = [['F32', [3, 5]], ['F16', [2, 3, 7]], ['BF16', [1, 1, 2, 9]], ['Q8_0', [3, 64]], ['Q4_0', [2, 96]]];
  return shapes.map(([dtype, shape], i) => {
    const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, j) => Math.sin(3 * i + j) * (j % 7));
    return { name: `t.${dtype.toLowerCase()}`, dtype, shape, data: quantize(dtype, values) };
  });
}

for (const version of [2, 3] as const) {
  for (const alignment of [32, 8, 256]) {
    test(`round trip v${version}, alignment ${alignment}: every value type and F32/F16/BF16/Q8_0/Q4_0 tensors`, async () => {
      const file = tmpFile();
      const tensors = tensorsToWrite();
      await writeGGUF(file, { version, alignment, metadata: METADATA, tensors });
      const g = await openGGUF(file);
      try {
        assert.equal(g.source, file);
        assert.equal(g.version, version);
        assert.equal(g.alignment, alignment);
        assert.equal(g.dataOffset % alignment, 0);
        assert.deepEqual([...g.metadata.keys()], [...METADATA.map((e) => e.key), ...(alignment === 32 ? [] : ['general.alignment'])]);
        for (const e of METADATA) {
          assert.deepEqual(g.metadata.get(e.key), expected(e), e.key);
          assert.equal(g.metadataTypes.get(e.key)?.type, e.type, e.key);
          if (e.type === 'array') assert.equal(g.metadataTypes.get(e.key)?.itemType, e.itemType, e.key);
        }
        assert.equal(typeof g.metadata.get('v.u64.2^53'), 'bigint', '2^53 is past the exact numbers');
        assert.deepEqual([...g.tensors.keys()], tensors.map((t) => t.name), 'file order');
        for (const t of tensors) {
          const info = g.tensors.get(t.name)!;
          assert.deepEqual(info.shape, t.shape, `${t.name}: shape outermost first`);
          assert.equal(info.dtype, t.dtype);
          assert.equal(info.ggmlType, GGML_TYPE_IDS[t.dtype]);
          assert.equal(info.byteLength, t.data.byteLength);
          assert.equal(info.offset % alignment, 0, `${t.name}: aligned`);
          assert.equal(info.fileOffset, g.dataOffset + info.offset);
          assert.deepEqual(await g.read(t.name), t.data, `${t.name}: exact bytes`);
        }
      } finally {
        await g.close();
      }
    });
  }
}

test('tensors of every sized GGML type round-trip with the block size and bytes of ggml-common.h', async () => {
  // A few layouts checked by hand against ggml-common.h's static_asserts.
  const known: Partial<Record<DType, [number, number]>> = {
    Q4_K: [256, 144], Q6_K: [256, 210], Q5_K: [256, 176], Q2_K: [256, 84], Q3_K: [256, 110], Q8_K: [256, 292],
    Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24], Q8_1: [32, 36], IQ2_XXS: [256, 66], IQ2_XS: [256, 74],
    IQ2_S: [256, 82], IQ3_XXS: [256, 98], IQ3_S: [256, 110], IQ1_S: [256, 50], IQ1_M: [256, 56], IQ4_NL: [32, 18],
    IQ4_XS: [256, 136], TQ1_0: [256, 54], TQ2_0: [256, 66], MXFP4: [32, 17], F64: [1, 8], I64: [1, 8], I8: [1, 1],
  };
  for (const [dtype, [blockSize, blockBytes]] of Object.entries(known)) {
    assert.deepEqual(DTYPE_LAYOUT[dtype as DType], { blockSize, blockBytes }, dtype);
  }
  assert.equal(DTYPE_BY_GGML_ID.get(30), 'BF16');
  assert.equal(DTYPE_BY_GGML_ID.get(24), 'I8');
  const tensors: GGUFTensorToWrite[] = [...DTYPE_BY_GGML_ID.values()].map((dtype, i) => {
    const { blockSize, blockBytes } = DTYPE_LAYOUT[dtype];
    return { name: `t${i}.${dtype}`, dtype, shape: [3, 2 * blockSize], data: Uint8Array.from({ length: 6 * blockBytes }, (_, j) => (i * 37 + j) & 0xff) };
  });
  const file = tmpFile();
  await writeGGUF(file, { metadata: [], tensors });
  const g = await openGGUF(file);
  try {
    for (const t of tensors) {
      assert.equal(g.tensors.get(t.name)?.dtype, t.dtype);
      assert.deepEqual(await g.read(t.name), t.data, t.name);
    }
  } finally {
    await g.close();
  }
});

test('metadataEntries rebuilds every entry, nested arrays included, and re-writing gives the same file', async () => {
  const first = tmpFile(), second = tmpFile();
  const tensors = tensorsToWrite().slice(0, 2);
  await writeGGUF(first, { alignment: 64, metadata: METADATA, tensors });
  const a = await openGGUF(first);
  try {
    const entries = metadataEntries(a);
    const nested = entries.find((e) => e.key === 'a.nested');
    assert.deepEqual(nested, METADATA.find((e) => e.key === 'a.nested'));
    await writeGGUF(second, { metadata: entries, tensors });
    assert.deepEqual(await readFile(second), await readFile(first), 'byte for byte (general.alignment carried by the metadata)');
    assert.deepEqual(metadataEntries(a, (k) => k.startsWith('v.u')).map((e) => e.key), ['v.u8', 'v.u16', 'v.u32', 'v.u64', 'v.u64.max', 'v.u64.2^53']);
  } finally {
    await a.close();
  }
});

test('a 150k-token vocabulary (several MB of header) round-trips and opens quickly', async () => {
  const file = tmpFile();
  const n = 150_000;
  const tokens = Array.from({ length: n }, (_, i) => (i % 3 === 0 ? `▁tok${i}` : `t${i.toString(36)}é`));
  const scores = Array.from({ length: n }, (_, i) => Math.fround(-i / 7));
  const types = Array.from({ length: n }, (_, i) => 1 + (i % 6));
  await writeGGUF(file, {
    metadata: [
      { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: tokens },
      { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: scores },
      { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: types },
    ],
    tensors: [],
  });
  const start = performance.now();
  const g = await openGGUF(file);
  const ms = performance.now() - start;
  await g.close();
  assert.deepEqual(g.metadata.get('tokenizer.ggml.tokens'), tokens);
  assert.deepEqual(g.metadata.get('tokenizer.ggml.scores'), scores);
  assert.deepEqual(g.metadata.get('tokenizer.ggml.token_type'), types);
  assert.ok(ms < 2000, `opened in ${ms.toFixed(0)} ms`);
});

test('a tensor given as a view into a larger buffer is written from its own bytes', async () => {
  const file = tmpFile();
  const backing = Uint8Array.from({ length: 100 }, (_, i) => i);
  const view = backing.subarray(10, 10 + 16);
  await writeGGUF(file, { metadata: [], tensors: [{ name: 'w', dtype: 'F32', shape: [4], data: view }] });
  const g = await openGGUF(file);
  try {
    assert.deepEqual(await g.read('w'), view);
  } finally {
    await g.close();
  }
});

test('only the header is read: a 4 GiB (sparse) file opens at once, and a tensor past 4 GiB reads', async () => {
  const file = tmpFile();
  const big = 2 ** 30; // F32 elements: 4 GiB
  const b = new Bytes().header(3, 2, 0).tensor('big', [2 ** 15, 2 ** 15], F32, 0).tensor('tail', [8], F32, 4 * big).pad();
  const dataOffset = b.length;
  await writeFile(file, b.done());
  await truncate(file, dataOffset + 4 * big + 32);
  const start = performance.now();
  const heapBefore = process.memoryUsage().arrayBuffers;
  const g = await openGGUF(file);
  try {
    assert.ok(performance.now() - start < 1000, 'opened at once');
    assert.ok(process.memoryUsage().arrayBuffers - heapBefore < 16 * 2 ** 20, 'without reading the data');
    assert.equal(g.tensors.get('big')?.byteLength, 4 * big);
    assert.equal(g.tensors.get('tail')?.fileOffset, dataOffset + 4 * big);
    assert.deepEqual(await g.read('tail'), new Uint8Array(32), 'sparse zeros past 4 GiB');
  } finally {
    await g.close();
  }
});

// ---------------------------------------------------------------------------------------------
// The real files.

test('llama-2-tiny-random.gguf: a v3 llama with F16 matrices, F32 norms and a 32000-token vocab', { skip: fixturesSkip }, async () => {
  const file = path.join(FIXTURES, 'gguf/llama-2-tiny-random.gguf');
  const g = await openGGUF(file);
  try {
    assert.equal(g.version, 3);
    assert.equal(g.alignment, 32);
    assert.equal(getString(g.metadata, 'general.architecture', file), 'llama');
    assert.equal(getNumber(g.metadata, 'llama.embedding_length', file), 8);
    assert.equal(getNumber(g.metadata, 'llama.block_count', file), 1);
    assert.equal(getNumber(g.metadata, 'llama.attention.head_count', file), 2);
    assert.equal(getNumber(g.metadata, 'llama.feed_forward_length', file), 32);
    const tokens = getStringArray(g.metadata, 'tokenizer.ggml.tokens', file)!;
    assert.equal(tokens.length, 32000);
    assert.deepEqual(tokens.slice(0, 3), ['<unk>', '<s>', '</s>']);
    assert.equal(getNumberArray(g.metadata, 'tokenizer.ggml.scores', file)?.length, 32000);
    assert.deepEqual(g.metadataTypes.get('tokenizer.ggml.token_type'), { type: 'array', itemType: 'i32', items: { type: 'i32' } });
    const expectShapes: Record<string, [number[], DType]> = {
      'token_embd.weight': [[32000, 8], 'F16'], 'output.weight': [[32000, 8], 'F16'],
      'blk.0.attn_q.weight': [[8, 8], 'F16'], 'blk.0.ffn_up.weight': [[32, 8], 'F16'], 'blk.0.ffn_down.weight': [[8, 32], 'F16'],
      'blk.0.attn_norm.weight': [[8], 'F32'], 'output_norm.weight': [[8], 'F32'],
    };
    for (const [name, [shape, dtype]] of Object.entries(expectShapes)) {
      const t = g.tensors.get(name);
      assert.deepEqual([t?.shape, t?.dtype], [shape, dtype], name);
    }
    const embd = g.tensors.get('token_embd.weight')!;
    assert.equal(embd.byteLength, 32000 * 8 * 2);
    assert.equal((await g.read('token_embd.weight')).length, embd.byteLength);
    const norm = new Float32Array((await g.read('output_norm.weight')).buffer);
    assert.ok(norm.every(Number.isFinite));
  } finally {
    await g.close();
  }
});

test('ggml-vocab-llama-spm.gguf: a vocabulary-only file (0 tensors); its tokenizer copies into a new file', { skip: fixturesSkip }, async () => {
  const file = path.join(FIXTURES, 'llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf');
  const v = await openGGUF(file);
  const copy = tmpFile();
  try {
    assert.equal(v.tensors.size, 0);
    assert.equal(getString(v.metadata, 'tokenizer.ggml.model', file), 'llama');
    assert.equal(getStringArray(v.metadata, 'tokenizer.ggml.tokens', file)?.length, 32000);
    assert.equal(getBoolean(v.metadata, 'tokenizer.ggml.add_bos_token', file), true);
    await writeGGUF(copy, {
      metadata: [{ key: 'general.architecture', type: 'string', value: 'llama' }, ...metadataEntries(v, (k) => k.startsWith('tokenizer.'))],
      tensors: [{ name: 'w', dtype: 'F32', shape: [2], data: new Uint8Array(8) }],
    });
  } finally {
    await v.close();
  }
  const c = await openGGUF(copy);
  await c.close();
  for (const [key, value] of v.metadata) {
    if (!key.startsWith('tokenizer.')) continue;
    assert.deepEqual(c.metadata.get(key), value, key);
    assert.deepEqual(c.metadataTypes.get(key), v.metadataTypes.get(key), key);
  }
});

// ---------------------------------------------------------------------------------------------
// Typed metadata access.

test('getString/getNumber/getBoolean/getStringArray/getNumberArray: undefined when absent, a FormatError naming key and type when wrong', () => {
  const meta = new Map<string, unknown>([
    ['s', 'text'], ['n', 3], ['b', false], ['ss', ['a', 'b']], ['ns', [1, 2.5]], ['big', 2n ** 60n], ['mixed', ['a', 1]],
  ]);
  assert.equal(getString(meta, 's', 'm.gguf'), 'text');
  assert.equal(getNumber(meta, 'n', 'm.gguf'), 3);
  assert.equal(getBoolean(meta, 'b', 'm.gguf'), false);
  assert.deepEqual(getStringArray(meta, 'ss', 'm.gguf'), ['a', 'b']);
  assert.deepEqual(getNumberArray(meta, 'ns', 'm.gguf'), [1, 2.5]);
  for (const get of [getString, getNumber, getBoolean, getStringArray, getNumberArray]) assert.equal(get(meta, 'absent', 'm.gguf'), undefined);
  const refused = (fn: () => unknown, problem: RegExp) => assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof FormatError);
    assert.match(e.message, /^m\.gguf: metadata "/);
    assert.match(e.message, problem);
    return true;
  });
  refused(() => getString(meta, 'n', 'm.gguf'), /"n" must be a string, got number 3/);
  refused(() => getNumber(meta, 's', 'm.gguf'), /"s" must be a number, got the string "text"/);
  refused(() => getNumber(meta, 'big', 'm.gguf'), /"big" must be a number, got 1152921504606846976 \(beyond 2\^53/);
  refused(() => getBoolean(meta, 'n', 'm.gguf'), /"n" must be a bool, got number 3/);
  refused(() => getStringArray(meta, 's', 'm.gguf'), /"s" must be an array of strings/);
  refused(() => getStringArray(meta, 'mixed', 'm.gguf'), /"mixed\[1\]" must be a string, got number 1/);
  refused(() => getNumberArray(meta, 'ss', 'm.gguf'), /"ss\[0\]" must be a number/);
});

// ---------------------------------------------------------------------------------------------
// Bad files: one test each, refused with a FormatError naming the file and the problem.

test('bad GGUF: a valid file cut at every byte of its header and inside its data', async () => {
  const file = tmpFile();
  await writeGGUF(file, {
    metadata: [
      { key: 'k.str', type: 'string', value: 'ab' }, { key: 'k.u32', type: 'u32', value: 1 },
      { key: 'k.strings', type: 'array', itemType: 'string', value: ['x', 'yz'] },
      { key: 'k.f32s', type: 'array', itemType: 'f32', value: [1, 2, 3] },
      { key: 'k.nested', type: 'array', itemType: 'array', value: [{ itemType: 'u8', value: [1] }] },
      { key: 'k.u64', type: 'u64', value: 2n ** 60n },
    ],
    tensors: [{ name: 'a', dtype: 'F32', shape: [3], data: new Uint8Array(12) }, { name: 'b', dtype: 'Q8_0', shape: [2, 32], data: new Uint8Array(68) }],
  });
  const whole = await readFile(file);
  const g = await openGGUF(file);
  await g.close();
  const b = g.tensors.get('b')!;
  const cut = tmpFile();
  for (let n = 0; n < g.dataOffset; n++) {
    await writeFile(cut, whole.subarray(0, n));
    await assertRefused(cut, n < 4 ? /not a GGUF file/ : /truncated|runs past the end|more than the file/);
  }
  for (const n of [g.dataOffset, g.dataOffset + 5, b.fileOffset, b.fileOffset + b.byteLength - 1]) {
    await writeFile(cut, whole.subarray(0, n));
    await assertRefused(cut, /tensor "[ab]": data \[\d+, \d+\) runs past the end of the file/);
  }
});

/** One F32 tensor "w" of `ne`, at `offset`, followed by `dataBytes` bytes of data. */
const oneTensor = (ne: number[], ggmlType: number, offset: number, dataBytes: number): Buffer =>
  new Bytes().header(3, 1, 0).tensor('w', ne, ggmlType, offset).pad().raw(new Uint8Array(dataBytes)).done();
/** A general.alignment entry of the given type; `write` adds its value. */
const withAlignment = (typeId: number, write: (b: Bytes) => Bytes): Buffer =>
  write(new Bytes().header(3, 1, 1).key('general.alignment', typeId)).tensor('w', [8], F32, 0).pad().raw(new Uint8Array(32)).done();
/** Arrays nested `depth` deep, one item each, the innermost holding one u8. */
function nested(depth: number): Buffer {
  const b = new Bytes().header(3, 0, 1).key('deep', ARRAY);
  for (let i = 1; i < depth; i++) b.u32(ARRAY).u64(1);
  return b.u32(U8).u64(1).u8(5).done();
}

const BAD: { name: string; bytes: () => Buffer; problem: RegExp }[] = [
  { name: 'wrong magic', bytes: () => new Bytes().raw([0x47, 0x47, 0x4d, 0x4c]).u32(3).u64(0).u64(0).done(), problem: /not a GGUF file/ },
  { name: 'version 1', bytes: () => new Bytes().header(1, 0, 0).done(), problem: /GGUF version 1 is not supported/ },
  { name: 'version 4', bytes: () => new Bytes().header(4, 0, 0).done(), problem: /unknown GGUF version 4/ },
  { name: 'a big-endian file', bytes: () => new Bytes().raw([0x47, 0x47, 0x55, 0x46, 0, 0, 0, 3]).u64(0).u64(0).done(), problem: /big-endian GGUF \(version 3\) is not supported/ },
  { name: 'tensor count too large for the file', bytes: () => new Bytes().header(3, 1000, 0).pad().raw(new Uint8Array(64)).done(), problem: /0 metadata entries and 1000 tensors, more than the file's \d+ bytes/ },
  { name: 'metadata count beyond 2^53', bytes: () => new Bytes().header(3, 0, 2n ** 63n).done(), problem: /the metadata count is 9223372036854775808, beyond any file/ },
  { name: 'string length beyond the file', bytes: () => new Bytes().header(3, 0, 1).key('k', STRING).u64(1000).raw([0x61]).done(), problem: /metadata "k": string length 1000 runs past the end of the file/ },
  { name: 'key length beyond the file', bytes: () => new Bytes().header(3, 0, 1).u64(2n ** 50n).raw(new Uint8Array(20)).done(), problem: /metadata key #0: string length 1125899906842624 runs past the end/ },
  { name: 'string array item length beyond the file', bytes: () => new Bytes().header(3, 0, 1).key('t', ARRAY).u32(STRING).u64(2).str('ok').u64(99).done(), problem: /metadata "t"\[1\]: string length 99 runs past the end/ },
  { name: 'array length beyond the file', bytes: () => new Bytes().header(3, 0, 1).key('a', ARRAY).u32(I32).u64(1_000_000).u32(1).done(), problem: /metadata "a": array of 1000000 i32 items runs past the end of the file/ },
  { name: 'array of strings claiming 2^40 items', bytes: () => new Bytes().header(3, 0, 1).key('a', ARRAY).u32(STRING).u64(2n ** 40n).str('x').done(), problem: /array of 1099511627776 string items runs past the end/ },
  { name: 'array length beyond 2^53', bytes: () => new Bytes().header(3, 0, 1).key('a', ARRAY).u32(U8).u64(2n ** 60n).u8(1).done(), problem: /the length of metadata "a" is 1152921504606846976, beyond any file/ },
  { name: 'unknown value type', bytes: () => new Bytes().header(3, 0, 1).key('k', 13).u32(0).done(), problem: /metadata "k": unknown value type 13/ },
  { name: 'unknown array item type', bytes: () => new Bytes().header(3, 0, 1).key('k', ARRAY).u32(200).u64(0).done(), problem: /the items of metadata "k": unknown value type 200/ },
  { name: 'duplicate key', bytes: () => new Bytes().header(3, 0, 2).key('k', U32).u32(1).key('k', F32_T).u32(2).done(), problem: /metadata key "k" appears twice/ },
  { name: 'empty key', bytes: () => new Bytes().header(3, 0, 1).key('', U32).u32(1).done(), problem: /metadata key #0 is empty/ },
  { name: 'invalid UTF-8 in a key', bytes: () => new Bytes().header(3, 0, 1).key([0x6b, 0xff], U32).u32(1).done(), problem: /metadata key #0 is not valid UTF-8/ },
  { name: 'invalid UTF-8 in a string array item', bytes: () => new Bytes().header(3, 0, 1).key('t', ARRAY).u32(STRING).u64(2).str('a').str([0xc3]).done(), problem: /metadata "t"\[1\] is not valid UTF-8/ },
  { name: 'a bool byte of 2', bytes: () => new Bytes().header(3, 0, 1).key('b', BOOL).u8(2).done(), problem: /metadata "b": bool value 2 is neither 0 nor 1/ },
  { name: 'arrays nested deeper than 8', bytes: () => nested(9), problem: /metadata "deep"(\[0\])+: arrays nested deeper than 8/ },
  { name: 'general.alignment 0', bytes: () => withAlignment(U32, (b) => b.u32(0)), problem: /general\.alignment must be a u32 power of two, got 0/ },
  { name: 'general.alignment 48', bytes: () => withAlignment(U32, (b) => b.u32(48)), problem: /general\.alignment must be a u32 power of two, got 48/ },
  { name: 'general.alignment stored as a string', bytes: () => withAlignment(STRING, (b) => b.str('32')), problem: /general\.alignment must be a u32 power of two, got 32 stored as string/ },
  { name: 'unknown tensor type', bytes: () => oneTensor([8], 99, 0, 32), problem: /tensor "w": unknown tensor type 99/ },
  { name: 'a tensor type removed from GGUF', bytes: () => oneTensor([32], 31, 0, 32), problem: /tensor "w": type Q4_0_4_4 \(31\) is not supported/ },
  { name: 'duplicate tensor name', bytes: () => new Bytes().header(3, 2, 0).tensor('w', [8], F32, 0).tensor('w', [8], F32, 32).pad().raw(new Uint8Array(64)).done(), problem: /tensor "w" appears twice/ },
  { name: '0 dimensions', bytes: () => oneTensor([], F32, 0, 32), problem: /tensor "w": 0 dimensions \(1 to 4 allowed\)/ },
  { name: '5 dimensions', bytes: () => oneTensor([8, 1, 1, 1, 1], F32, 0, 32), problem: /tensor "w": 5 dimensions/ },
  { name: 'a zero dimension', bytes: () => oneTensor([8, 0], F32, 0, 32), problem: /tensor "w": dimension 1 is 0/ },
  { name: 'an element count beyond 2^53', bytes: () => oneTensor([2 ** 30, 2 ** 30], F32, 0, 32), problem: /tensor "w": 1073741824 × 1073741824 elements is too many/ },
  { name: 'a row that is not whole Q8_0 blocks', bytes: () => oneTensor([48, 2], Q8_0, 0, 128), problem: /tensor "w": row length 48 is not a multiple of the Q8_0 block size 32/ },
  { name: 'tensor data beyond the file', bytes: () => oneTensor([8, 2], F32, 0, 32), problem: /tensor "w": data \[\d+, \d+\) runs past the end of the file \(\d+ bytes\)/ },
  { name: 'a tensor offset far beyond the file', bytes: () => oneTensor([8], F32, 2 ** 40, 32), problem: /tensor "w": data \[\d+, \d+\) runs past the end/ },
  { name: 'misaligned tensor offset', bytes: () => oneTensor([8], F32, 16, 64), problem: /tensor "w": offset 16 is not a multiple of the alignment 32/ },
  {
    name: 'overlapping tensors',
    bytes: () => new Bytes().header(3, 2, 0).tensor('a', [16], F32, 0).tensor('b', [8], F32, 32).pad().raw(new Uint8Array(96)).done(),
    problem: /tensor "b" overlaps tensor "a"/,
  },
];

for (const bad of BAD) {
  test(`bad GGUF: ${bad.name}`, { timeout: 5000 }, async () => {
    const file = tmpFile();
    await writeFile(file, bad.bytes());
    const start = performance.now();
    await assertRefused(file, bad.problem);
    assert.ok(performance.now() - start < 1000, 'refused at once');
  });
}

test('bad GGUF: an array claiming 2^28 f32 items (1 GiB) in a tiny file allocates nothing before refusing', async () => {
  const file = tmpFile();
  await writeFile(file, new Bytes().header(3, 0, 1).key('scores', ARRAY).u32(F32_T).u64(2 ** 28).raw(new Uint8Array(64)).done());
  const before = process.memoryUsage().arrayBuffers;
  await assertRefused(file, /array of 268435456 f32 items runs past the end/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 2 ** 20);
});

test('arrays nested exactly 8 deep are read', async () => {
  const file = tmpFile();
  await writeFile(file, nested(8));
  const g = await openGGUF(file);
  await g.close();
  assert.deepEqual(g.metadata.get('deep'), [[[[[[[[5]]]]]]]]);
});

test('a missing file, an unknown tensor name and a read after close are refused by name', async () => {
  await assertRefused(path.join(dir, 'absent.gguf'), /no such file/);
  const file = tmpFile();
  await writeGGUF(file, { metadata: [], tensors: [{ name: 'w', dtype: 'F32', shape: [2], data: new Uint8Array(8) }] });
  const g = await openGGUF(file);
  await assert.rejects(g.read('nope'), (e: unknown) => e instanceof FormatError && /no tensor "nope"/.test(e.message));
  await g.close();
  await g.close();
  await assert.rejects(g.read('w'), /read after close/);
});

// ---------------------------------------------------------------------------------------------
// The writer refuses what it cannot write faithfully, before creating any file.

test('writeGGUF refuses bad values, shapes and names, and leaves no file behind', async () => {
  const out = await mkdtemp(path.join(dir, 'refused-'));
  const file = path.join(out, 'x.gguf');
  const w = (tensor: Partial<GGUFTensorToWrite>): GGUFTensorToWrite => ({ name: 'w', dtype: 'F32', shape: [2], data: new Uint8Array(8), ...tensor });
  const cases: [Parameters<typeof writeGGUF>[1], RegExp][] = [
    [{ metadata: [{ key: 'k', type: 'u8', value: 256 }], tensors: [] }, /metadata "k": number 256 is outside the u8 range/],
    [{ metadata: [{ key: 'k', type: 'i32', value: 1.5 }], tensors: [] }, /metadata "k": number 1.5 is not an integer/],
    [{ metadata: [{ key: 'k', type: 'u64', value: -1n }], tensors: [] }, /outside the u64 range/],
    [{ metadata: [{ key: 'k', type: 'f32', value: 1e39 }], tensors: [] }, /outside the f32 range/],
    [{ metadata: [{ key: 'k', type: 'string', value: 'a\uD800b' }], tensors: [] }, /lone UTF-16 surrogate/],
    [{ metadata: [{ key: 'k', type: 'array', itemType: 'bool', value: [true, 1 as unknown as boolean] }], tensors: [] }, /metadata "k"\[1\]: number 1 is not a boolean/],
    [{ metadata: [{ key: 'k', type: 'u8', value: 1 }, { key: 'k', type: 'u8', value: 2 }], tensors: [] }, /metadata key "k" is given twice/],
    [{ metadata: [{ key: '', type: 'u8', value: 1 }], tensors: [] }, /a metadata key is empty/],
    [{ alignment: 48, metadata: [], tensors: [] }, /alignment must be a power of two, got 48/],
    [{ alignment: 64, metadata: [{ key: 'general.alignment', type: 'u32', value: 32 }], tensors: [] }, /alignment 64 differs from metadata general.alignment 32/],
    [{ metadata: [{ key: 'general.alignment', type: 'u64', value: 32 }], tensors: [] }, /metadata general.alignment must be a u32/],
    [{ version: 1 as 2, metadata: [], tensors: [] }, /version must be 2 or 3/],
    [{ metadata: [], tensors: [w({}), w({})] }, /tensor "w" is given twice/],
    [{ metadata: [], tensors: [w({ data: new Uint8Array(7) })] }, /tensor "w": 7 bytes given, shape \[2\] of F32 takes 8/],
    [{ metadata: [], tensors: [w({ dtype: 'Q8_0', shape: [2, 16], data: new Uint8Array(34) })] }, /row length 16 is not a multiple of the Q8_0 block size 32/],
    [{ metadata: [], tensors: [w({ shape: [1, 1, 1, 1, 2] })] }, /must have 1 to 4 dimensions/],
    [{ metadata: [], tensors: [w({ shape: [0, 2], data: new Uint8Array(0) })] }, /must be positive integers/],
    [{ metadata: [], tensors: [w({ dtype: 'U8', data: new Uint8Array(2) })] }, /dtype U8 has no GGML type/],
    [{ metadata: [], tensors: [w({ name: 'n'.repeat(64) })] }, /at most 63 UTF-8 bytes/],
  ];
  for (const [options, problem] of cases) {
    await assert.rejects(writeGGUF(file, options), (e: unknown) => {
      assert.ok(e instanceof Error);
      assert.ok(e.message.startsWith(`writeGGUF ${file}: `), e.message);
      assert.match(e.message, problem);
      return true;
    });
  }
  assert.deepEqual(await readdir(out), [], 'no file, no temporary file');
});
