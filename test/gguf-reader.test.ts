// GGUF: round trips through the writer and reader, the real fixture files, and malformed files
// built byte by byte — each must give a FormatError naming the file and the problem, at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { metadataEntries, openGGUF, writeGGUF, type GGUFMetadataEntry } from '../src/formats/gguf.js';
import { FormatError } from '../src/formats/tensor.js';
import { quantize } from '../src/quant/dequantize.js';
import type { DType } from '../src/quant/dtype.js';
import { FIXTURES } from './helpers/random-model.js';

let dir: string;
before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-gguf-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });
let n = 0;
const tmp = () => path.join(dir, `f${n++}.gguf`);

const ALL_TYPES: GGUFMetadataEntry[] = [
  { key: 'a.u8', type: 'u8', value: 255 }, { key: 'a.i8', type: 'i8', value: -128 },
  { key: 'a.u16', type: 'u16', value: 65535 }, { key: 'a.i16', type: 'i16', value: -32768 },
  { key: 'a.u32', type: 'u32', value: 4294967295 }, { key: 'a.i32', type: 'i32', value: -2147483648 },
  { key: 'a.f32', type: 'f32', value: 0.5 }, { key: 'a.f64', type: 'f64', value: Math.PI },
  { key: 'a.bool', type: 'bool', value: true }, { key: 'a.string', type: 'string', value: 'héllo 🚀' },
  { key: 'a.empty', type: 'string', value: '' },
  { key: 'a.u64', type: 'u64', value: 2n ** 63n + 5n }, { key: 'a.i64', type: 'i64', value: -(2n ** 60n) },
  { key: 'a.u64small', type: 'u64', value: 42 },
  { key: 'a.strings', type: 'array', itemType: 'string', value: ['x', '', 'ünï', '<s>'] },
  { key: 'a.floats', type: 'array', itemType: 'f32', value: [1.5, -2, 0] },
  { key: 'a.ints', type: 'array', itemType: 'i32', value: [1, -2, 3] },
  { key: 'a.none', type: 'array', itemType: 'u8', value: [] },
];

test('every metadata type and tensor dtype round-trips, v2 and v3, custom alignment', async () => {
  const tensors = (['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0'] as DType[]).map((dtype, i) => {
    const values = Float32Array.from({ length: 3 * 64 }, (_, j) => Math.sin(i + j));
    return { name: `t.${dtype}`, dtype, shape: [3, 64], data: quantize(dtype, values) };
  });
  for (const version of [2, 3] as const) {
    for (const alignment of [32, 64]) {
      const f = tmp();
      await writeGGUF(f, { version, alignment, metadata: ALL_TYPES, tensors });
      const g = await openGGUF(f);
      try {
        assert.equal(g.version, version);
        assert.equal(g.alignment, alignment);
        for (const e of ALL_TYPES) assert.deepEqual(g.metadata.get(e.key), e.value, e.key);
        assert.equal(g.metadata.has('general.alignment'), alignment !== 32);
        for (const t of tensors) {
          const info = g.tensors.get(t.name)!;
          assert.deepEqual(info.shape, [3, 64], 'outermost first, as written');
          assert.equal(info.dtype, t.dtype);
          assert.equal(info.fileOffset % alignment, 0);
          assert.deepEqual(await g.read(t.name), t.data);
        }
        // Re-writing the metadata from the reader keeps values and stored types.
        const copy = tmp();
        await writeGGUF(copy, { metadata: metadataEntries(g), tensors: [] });
        const h = await openGGUF(copy);
        for (const e of ALL_TYPES) {
          assert.deepEqual(h.metadata.get(e.key), e.value);
          assert.deepEqual(h.metadataTypes.get(e.key)?.type, e.type);
        }
        await h.close();
      } finally {
        await g.close();
      }
    }
  }
});

const fixtureSkip = existsSync(FIXTURES) ? false : `fixtures not found at ${FIXTURES}`;
test('the fixture GGUF files read as llama.cpp wrote them', { skip: fixtureSkip }, async () => {
  const g = await openGGUF(path.join(FIXTURES, 'gguf/llama-2-tiny-random.gguf'));
  try {
    assert.equal(g.version, 3);
    assert.equal(g.metadata.get('general.architecture'), 'llama');
    assert.equal(g.metadata.get('llama.embedding_length'), 8);
    assert.equal((g.metadata.get('tokenizer.ggml.tokens') as string[]).length, 32000);
    assert.deepEqual(g.tensors.get('token_embd.weight')?.shape, [32000, 8]);
    assert.equal(g.tensors.get('token_embd.weight')?.dtype, 'F16');
    assert.equal(g.tensors.get('output_norm.weight')?.dtype, 'F32');
  } finally {
    await g.close();
  }
  const v = await openGGUF(path.join(FIXTURES, 'llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf'));
  assert.equal(v.tensors.size, 0);
  await v.close();
});

/** Little-endian byte builder for hand-made files. */
class Bytes {
  private parts: number[] = [];
  u8(v: number) { this.parts.push(v & 0xff); return this; }
  u32(v: number) { for (let i = 0; i < 4; i++) this.u8(v >>> (8 * i)); return this; }
  u64(v: bigint | number) { const b = BigInt(v); for (let i = 0n; i < 8n; i++) this.u8(Number((b >> (8n * i)) & 0xffn)); return this; }
  raw(bytes: ArrayLike<number>) { for (const b of Array.from(bytes)) this.u8(b); return this; }
  str(s: string) { const b = new TextEncoder().encode(s); return this.u64(b.length).raw(b); }
  header(version: number, tensors: number | bigint, kvs: number | bigint) { return this.raw([0x47, 0x47, 0x55, 0x46]).u32(version).u64(tensors).u64(kvs); }
  pad(to: number) { while (this.parts.length % to !== 0) this.u8(0); return this; }
  get length() { return this.parts.length; }
  build() { return Uint8Array.from(this.parts); }
}

/** A tensor info: name, dims (GGUF ne order), type id, offset. */
const tensorInfo = (b: Bytes, name: string, ne: number[], type: number, offset: number) => {
  b.str(name).u32(ne.length);
  for (const d of ne) b.u64(d);
  return b.u32(type).u64(offset);
};

async function rejects(bytes: Uint8Array, problem: RegExp): Promise<void> {
  const f = tmp();
  await writeFile(f, bytes);
  await assert.rejects(openGGUF(f), (e: unknown) => {
    assert.ok(e instanceof FormatError, `a FormatError, got ${String(e)}`);
    assert.ok(e.message.startsWith(f), `names the file: ${e.message}`);
    assert.match(e.message, problem);
    return true;
  });
}

test('bad GGUF headers: magic, version, counts', async () => {
  await rejects(new Bytes().raw([0x47, 0x47, 0x55, 0x4c]).u32(3).u64(0).u64(0).build(), /not a GGUF file/);
  await rejects(new Bytes().header(1, 0, 0).build(), /version 1 is not supported/);
  await rejects(new Bytes().header(4, 0, 0).build(), /unknown GGUF version 4/);
  await rejects(new Bytes().header(3, 1_000_000, 0).build(), /claims .* 1000000 tensors, more than the file/);
  await rejects(new Bytes().header(3, 0, 2n ** 62n).build(), /beyond any file|more than the file/);
});

test('bad GGUF metadata: lengths beyond the file, unknown types, duplicates, bad UTF-8', async () => {
  const kv = (key: string) => new Bytes().header(3, 0, 1).str(key);
  await rejects(kv('k').u32(8).u64(1000).raw([0x61]).build(), /metadata "k": string length 1000 runs past the end/);
  await rejects(kv('k').u32(9).u32(4).u64(2n ** 40n).build(), /array of 1099511627776 u32 items runs past the end/);
  await rejects(kv('k').u32(9).u32(4).u64(2n ** 60n).build(), /length of metadata "k" is 1152921504606846976, beyond any file/);
  await rejects(kv('k').u32(9).u32(8).u64(1000).u64(1).build(), /array of 1000 string items runs past the end/);
  await rejects(kv('k').u32(13).u32(0).build(), /metadata "k": unknown value type 13/);
  await rejects(kv('k').u32(7).u8(2).build(), /bool value 2/);
  await rejects(new Bytes().header(3, 0, 1).u64(2).raw([0xc3, 0x28]).u32(4).u32(0).build(), /not valid UTF-8/);
  await rejects(new Bytes().header(3, 0, 2).str('k').u32(4).u32(1).str('k').u32(4).u32(2).build(), /"k" appears twice/);
  // An array of arrays of arrays ...: the value's type, then per level the item type and count.
  let nested = kv('k').u32(9);
  for (let i = 0; i < 9; i++) nested = nested.u32(9).u64(1);
  await rejects(nested.build(), /nested deeper than 8/);
  for (const [value, type] of [[0, 4], [3, 4], [64, 5]] as const) {
    await rejects(new Bytes().header(3, 0, 1).str('general.alignment').u32(type).u32(value).build(),
      /general\.alignment must be a u32 power of two/);
  }
});

test('bad GGUF tensors: types, dims, offsets, overlap, data beyond the file', async () => {
  const file = (infos: (b: Bytes) => Bytes, count: number, dataBytes: number) => {
    const b = infos(new Bytes().header(3, count, 0)).pad(32);
    return b.raw(new Uint8Array(dataBytes)).build();
  };
  await rejects(file((b) => tensorInfo(b, 't', [4], 99, 0), 1, 64), /tensor "t": unknown tensor type 99/);
  await rejects(file((b) => tensorInfo(b, 't', [256], 16, 0), 1, 512), /tensor "t": type IQ2_XXS \(16\) is not supported/);
  await rejects(file((b) => tensorInfo(b, 't', [], 0, 0), 1, 64), /tensor "t": 0 dimensions/);
  await rejects(file((b) => tensorInfo(b, 't', [1, 1, 1, 1, 1], 0, 0), 1, 64), /tensor "t": 5 dimensions/);
  await rejects(file((b) => tensorInfo(b, 't', [4, 0], 0, 0), 1, 64), /tensor "t": dimension 1 is 0/);
  await rejects(file((b) => tensorInfo(b, 't', [33], 8, 0), 1, 64), /row length 33 is not a multiple of the Q8_0 block size 32/);
  await rejects(file((b) => tensorInfo(b, 't', [64], 0, 0), 1, 100), /tensor "t": data .* runs past the end of the file/);
  await rejects(file((b) => tensorInfo(b, 't', [4], 0, 8), 1, 64), /offset 8 is not a multiple of the alignment 32/);
  await rejects(file((b) => tensorInfo(tensorInfo(b, 'a', [16], 0, 0), 'b', [16], 0, 32), 2, 128), /tensor "b" overlaps tensor "a"/);
  await rejects(file((b) => tensorInfo(tensorInfo(b, 'a', [4], 0, 0), 'a', [4], 0, 32), 2, 64), /tensor "a" appears twice/);
});

test('a valid file cut at any byte is a FormatError, never a crash', async () => {
  const f = tmp();
  await writeGGUF(f, {
    metadata: ALL_TYPES,
    tensors: [{ name: 'w', dtype: 'F32', shape: [2, 8], data: new Uint8Array(64) }],
  });
  const bytes = await readFile(f);
  for (let cut = 0; cut < bytes.length; cut += cut < 400 ? 1 : 7) {
    await rejects(bytes.subarray(0, cut), /.+/);
  }
});

test('reads of unknown tensors and reads after close are refused', async () => {
  const f = tmp();
  await writeGGUF(f, { metadata: [], tensors: [{ name: 'w', dtype: 'F32', shape: [4], data: new Uint8Array(16) }] });
  const g = await openGGUF(f);
  await assert.rejects(g.read('nope'), /no tensor "nope"/);
  await g.close();
  await assert.rejects(g.read('w'), /read after close/);
});
