// SafeTensors: write -> read round trips (single file, folder, shards) and one test per kind of
// bad input, each expecting a FormatError that names the file and the problem.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  INDEX_FILE, MAX_HEADER_BYTES, openSafeTensors, writeSafeTensors, writeSafeTensorsSharded, type TensorToWrite,
} from '../src/formats/safetensors.js';
import { FormatError } from '../src/formats/tensor.js';
import { DTYPE_LAYOUT, type DType } from '../src/quant/dtype.js';

const tmpRoot = await mkdtemp(path.join(os.tmpdir(), 'minerva-safetensors-'));
after(() => rm(tmpRoot, { recursive: true, force: true }));
let counter = 0;
/** A fresh empty folder under the test's temporary root. */
async function freshDir(): Promise<string> {
  const dir = path.join(tmpRoot, `case-${counter++}`);
  await mkdir(dir);
  return dir;
}

/** A tensor whose bytes are a recognisable pattern. */
function tensor(name: string, dtype: DType, shape: number[], seed = 1): TensorToWrite {
  const n = shape.reduce((a, b) => a * b, 1) * DTYPE_LAYOUT[dtype].blockBytes;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 31 + seed * 7) & 0xff;
  return { name, dtype, shape, data };
}

/** Writes a file from a raw header string (or object) and data, with an optional fake length. */
async function rawFile(file: string, header: string | object, data: Uint8Array = new Uint8Array(0), length?: bigint): Promise<string> {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(length ?? BigInt(json.length));
  await writeFile(file, Buffer.concat([prefix, json, data]));
  return file;
}

/** Expects opening `target` to fail with a FormatError naming `file` and matching `problem`. */
async function rejectsWith(target: string, file: string, problem: RegExp): Promise<void> {
  await assert.rejects(openSafeTensors(target), (e: unknown) => {
    assert.ok(e instanceof FormatError, `expected a FormatError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `"${e.message}" does not name ${file}`);
    assert.match(e.message, problem);
    return true;
  });
}

const ALL_DTYPES: DType[] = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'I8', 'U8', 'BOOL'];

test('write then read a single file with every dtype, a scalar and an empty tensor', async () => {
  const dir = await freshDir();
  const file = path.join(dir, 'model.safetensors');
  const tensors = [
    ...ALL_DTYPES.map((dt, i) => tensor(`t.${dt.toLowerCase()}`, dt, [3, i + 1], i)),
    tensor('scalar', 'F32', []),
    tensor('empty', 'F16', [0, 4]),
  ];
  await writeSafeTensors(file, tensors, { format: 'pt', note: 'é' });

  const raw = await readFile(file);
  const headerLength = Number(raw.readBigUInt64LE(0));
  assert.equal(headerLength % 8, 0, 'header padded to a multiple of 8');
  assert.equal(raw.length, 8 + headerLength + tensors.reduce((s, t) => s + t.data.byteLength, 0));

  for (const target of [file, dir]) {
    const st = await openSafeTensors(target);
    try {
      assert.equal(st.source, target);
      assert.deepEqual(st.files, [file]);
      assert.deepEqual({ ...st.metadata }, { format: 'pt', note: 'é' });
      assert.equal(st.tensors.size, tensors.length);
      for (const t of tensors) {
        const info = st.tensors.get(t.name)!;
        assert.deepEqual({ ...info, shape: [...info.shape] }, { name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.data.byteLength });
        const bytes = await st.read(t.name);
        assert.deepEqual(bytes, t.data);
        assert.equal(bytes.byteOffset % 8, 0);
        assert.equal(bytes.buffer.byteLength, t.data.byteLength, 'a fresh buffer of exactly the tensor');
      }
      await assert.rejects(st.read('nope'), (e: unknown) => e instanceof FormatError && /no tensor named "nope"/.test(e.message));
    } finally {
      await st.close();
    }
    await assert.rejects(st.read('scalar'), /after close/);
  }
});

test('header key order does not matter: tensors are placed by their offsets', async () => {
  const dir = await freshDir();
  const data = new Uint8Array([1, 2, 3, 4, 5, 6]);
  const file = await rawFile(path.join(dir, 'x.safetensors'), '{"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]},'
    + '"a":{"dtype":"I16","shape":[2],"data_offsets":[0,4]}}   ', data);
  const st = await openSafeTensors(file);
  try {
    assert.deepEqual([...await st.read('a')], [1, 2, 3, 4]);
    assert.deepEqual([...await st.read('b')], [5, 6]);
    assert.deepEqual({ ...st.metadata }, {});
  } finally {
    await st.close();
  }
});

test('write then read sharded checkpoints, as transformers lays them out', async () => {
  const dir = await freshDir();
  const tensors = ALL_DTYPES.map((dt, i) => tensor(`layer.${i}.${dt}`, dt, [4, 4], i)); // 16..128 bytes each
  const written = await writeSafeTensorsSharded(dir, tensors, 200, { format: 'pt' });
  const shards = written.filter((f) => f.endsWith('.safetensors'));
  assert.ok(shards.length > 2);
  assert.deepEqual(shards.map((f) => path.basename(f)),
    shards.map((_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`));
  assert.equal(written.at(-1), path.join(dir, INDEX_FILE));
  const index = JSON.parse(await readFile(path.join(dir, INDEX_FILE), 'utf8'));
  assert.equal(index.metadata.total_size, tensors.reduce((s, t) => s + t.data.byteLength, 0));
  assert.deepEqual(Object.keys(index.weight_map), tensors.map((t) => t.name).sort());

  const st = await openSafeTensors(dir);
  try {
    assert.deepEqual(st.files, shards);
    assert.deepEqual({ ...st.metadata }, { format: 'pt' });
    assert.equal(st.tensors.size, tensors.length);
    for (const t of tensors) assert.deepEqual(await st.read(t.name), t.data);
  } finally {
    await st.close();
  }

  // Everything in one shard: a plain model.safetensors and no index.
  const small = await freshDir();
  assert.deepEqual(await writeSafeTensorsSharded(small, tensors.slice(0, 2), 1 << 20), [path.join(small, 'model.safetensors')]);
  assert.deepEqual(await readdir(small), ['model.safetensors']);
});

test('writeSafeTensors refuses data that does not match its shape', async () => {
  const dir = await freshDir();
  const bad = { name: 'x', dtype: 'F32' as DType, shape: [3], data: new Uint8Array(8) };
  await assert.rejects(writeSafeTensors(path.join(dir, 'x.safetensors'), [bad]), /needs 12 bytes, data has 8/);
  await assert.rejects(writeSafeTensors(path.join(dir, 'y.safetensors'), [{ ...bad, dtype: 'Q8_0' }]), /not a SafeTensors dtype/);
  assert.deepEqual(await readdir(dir), []);
});

test('bad: file shorter than 8 bytes', async () => {
  const file = path.join(await freshDir(), 'short.safetensors');
  await writeFile(file, new Uint8Array(5));
  await rejectsWith(file, file, /5 bytes, too short/);
});

test('bad: data section shorter than the offsets need (truncated file)', async () => {
  const file = path.join(await freshDir(), 'cut.safetensors');
  await writeSafeTensors(file, [tensor('a', 'F32', [4]), tensor('b', 'F32', [8])]);
  const { size } = await stat(file);
  await truncate(file, size - 10);
  await rejectsWith(file, file, /tensor "b".*run past the data section.*truncated/);
});

test('bad: header length beyond the end of the file', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'), '{}', undefined, 1000n);
  await rejectsWith(file, file, /header length 1000 runs past the end of the file \(10 bytes\)/);
});

test('bad: header length over the cap', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'), '{}', undefined, BigInt(MAX_HEADER_BYTES) + 1n);
  await rejectsWith(file, file, /over the 100000000 byte limit/);
  const huge = await rawFile(path.join(path.dirname(file), 'y.safetensors'), '{}', undefined, 0xffffffffffffffffn);
  await rejectsWith(huge, huge, /over the 100000000 byte limit/);
});

test('bad: header is not JSON, or not UTF-8', async () => {
  const dir = await freshDir();
  const file = await rawFile(path.join(dir, 'x.safetensors'), '{"a": [1, 2');
  await rejectsWith(file, file, /header is not valid JSON/);
  const latin = path.join(dir, 'y.safetensors');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(4n);
  await writeFile(latin, Buffer.concat([prefix, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]));
  await rejectsWith(latin, latin, /not valid UTF-8/);
});

test('bad: header is not an object', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'), '[1, 2, 3]');
  await rejectsWith(file, file, /header is not a JSON object/);
  // Deep nesting must not overflow the stack while the error is being written.
  const deep = await rawFile(path.join(path.dirname(file), 'deep.safetensors'), `{"w":${'['.repeat(200000)}${']'.repeat(200000)}}`);
  await rejectsWith(deep, deep, /tensor "w": entry is not a JSON object \(got an array\)/);
});

test('bad: unknown dtype', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'),
    { w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2));
  await rejectsWith(file, file, /tensor "w": unsupported dtype "F8_E4M3"/);
});

test('bad: non-integer or negative shape', async () => {
  const dir = await freshDir();
  const file = await rawFile(path.join(dir, 'x.safetensors'), { w: { dtype: 'U8', shape: [1.5, 2], data_offsets: [0, 3] } }, new Uint8Array(3));
  await rejectsWith(file, file, /tensor "w": shape \[1\.5, 2\] has a dimension that is not a non-negative integer/);
  const neg = await rawFile(path.join(dir, 'y.safetensors'), { w: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } });
  await rejectsWith(neg, neg, /tensor "w": shape \[-1\]/);
});

test('bad: overlapping offsets', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'), {
    a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
    b: { dtype: 'U8', shape: [4], data_offsets: [2, 6] },
  }, new Uint8Array(6));
  await rejectsWith(file, file, /tensor "b" \(bytes 2\.\.6\) overlaps tensor "a"/);
});

test('bad: offsets outside the file', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'),
    { a: { dtype: 'U8', shape: [1000], data_offsets: [0, 1000] } }, new Uint8Array(16));
  await rejectsWith(file, file, /tensor "a": data_offsets \[0, 1000\] run past the data section \(16 bytes\)/);
  const reversed = await rawFile(path.join(path.dirname(file), 'y.safetensors'),
    { a: { dtype: 'U8', shape: [0], data_offsets: [4, 2] } }, new Uint8Array(4));
  await rejectsWith(reversed, reversed, /ends before it begins/);
});

test('bad: data section not fully covered (gap, trailing bytes)', async () => {
  const dir = await freshDir();
  const gap = await rawFile(path.join(dir, 'gap.safetensors'), {
    a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
    b: { dtype: 'U8', shape: [2], data_offsets: [4, 6] },
  }, new Uint8Array(6));
  await rejectsWith(gap, gap, /bytes 2\.\.4 of the data section belong to no tensor/);
  const trailing = await rawFile(path.join(dir, 'trail.safetensors'),
    { a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(5));
  await rejectsWith(trailing, trailing, /3 trailing bytes/);
});

test('bad: byte count does not match the shape', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'),
    { w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, new Uint8Array(20));
  await rejectsWith(file, file, /tensor "w": shape \[2, 3\] of F32 needs 24 bytes but data_offsets \[0, 20\] hold 20/);
});

test('bad: __metadata__ that is not a map of strings', async () => {
  const dir = await freshDir();
  const a = await rawFile(path.join(dir, 'a.safetensors'), { __metadata__: { format: 'pt', layers: 32 } });
  await rejectsWith(a, a, /__metadata__\["layers"\] is not a string/);
  const b = await rawFile(path.join(dir, 'b.safetensors'), { __metadata__: ['pt'] });
  await rejectsWith(b, b, /__metadata__ is not a JSON object/);
});

test('bad: unknown key in a tensor entry', async () => {
  const file = await rawFile(path.join(await freshDir(), 'x.safetensors'),
    { w: { dtype: 'U8', shape: [1], data_offsets: [0, 1], offsets: [0, 1] } }, new Uint8Array(1));
  await rejectsWith(file, file, /tensor "w": unknown key "offsets"/);
});

test('bad: index naming a missing shard', async () => {
  const dir = await freshDir();
  await writeSafeTensors(path.join(dir, 'model-00001-of-00002.safetensors'), [tensor('a', 'U8', [2])]);
  const index = path.join(dir, INDEX_FILE);
  await writeFile(index, JSON.stringify({ weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
  await rejectsWith(dir, index, /shard "model-00002-of-00002\.safetensors", which does not exist/);
});

test('bad: index with path traversal', async () => {
  const dir = await freshDir();
  await writeSafeTensors(path.join(tmpRoot, 'outside.safetensors'), [tensor('a', 'U8', [2])]);
  const index = path.join(dir, INDEX_FILE);
  await writeFile(index, JSON.stringify({ weight_map: { a: '../outside.safetensors' } }));
  await rejectsWith(dir, index, /"\.\.\/outside\.safetensors", which is not a plain file name/);
});

test('bad: index disagreeing with its shards (tensor in two shards, tensor not where the map says)', async () => {
  const dir = await freshDir();
  await writeSafeTensors(path.join(dir, 's1.safetensors'), [tensor('a', 'U8', [2]), tensor('b', 'U8', [2])]);
  await writeSafeTensors(path.join(dir, 's2.safetensors'), [tensor('b', 'U8', [2])]);
  const index = path.join(dir, INDEX_FILE);
  await writeFile(index, JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's2.safetensors' } }));
  await rejectsWith(dir, dir, /tensor "b" is in two shards: s1\.safetensors and s2\.safetensors/);

  const dir2 = await freshDir();
  await writeSafeTensors(path.join(dir2, 's1.safetensors'), [tensor('a', 'U8', [2]), tensor('c', 'U8', [2])]);
  await writeSafeTensors(path.join(dir2, 's2.safetensors'), [tensor('b', 'U8', [2])]);
  const index2 = path.join(dir2, INDEX_FILE);
  await writeFile(index2, JSON.stringify({ weight_map: { a: 's2.safetensors', b: 's2.safetensors', c: 's1.safetensors' } }));
  await rejectsWith(dir2, index2, /puts tensor "a" in s2\.safetensors, but s2\.safetensors does not hold it \(it is in s1\.safetensors\)/);

  await writeFile(index2, '{"weight_map": ');
  await rejectsWith(dir2, index2, /not valid JSON/);
});

test('bad: a folder with several files and no index, or none', async () => {
  const dir = await freshDir();
  await rejectsWith(dir, dir, /no \.safetensors file/);
  await writeSafeTensors(path.join(dir, 'a.safetensors'), [tensor('a', 'U8', [2])]);
  await writeSafeTensors(path.join(dir, 'b.safetensors'), [tensor('b', 'U8', [2])]);
  await rejectsWith(dir, dir, /2 \.safetensors files but no model\.safetensors\.index\.json.*a\.safetensors, b\.safetensors/);
  await rejectsWith(path.join(dir, 'missing.safetensors'), 'missing.safetensors', /no such file/);
});
