// Fuzzing the SafeTensors reader: mutated single files (the header length, the JSON header and the
// data section), and mutated model.safetensors.index.json files over a folder of real shards. Bad
// input must fail with a FormatError naming the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { INDEX_FILE, openSafeTensors, writeSafeTensorsSharded, type SafeTensorsFile } from '../src/formats/safetensors.js';
import { FormatError } from '../src/formats/tensor.js';
import { corpus, fuzz, mutatedBytes, mutatedText } from './helpers/fuzz.js';

const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-fuzz-safetensors-'));
after(() => rm(dir, { recursive: true, force: true }));

/** Reads every tensor back and checks it is as long as the table says. */
async function readAll(st: SafeTensorsFile): Promise<void> {
  try {
    for (const [name, t] of st.tensors) {
      assert.ok(Number.isSafeInteger(t.byteLength) && t.byteLength >= 0);
      assert.equal((await st.read(name)).length, t.byteLength);
    }
    for (const [k, v] of Object.entries(st.metadata)) assert.equal(typeof v, 'string', `metadata ${k}`);
  } finally {
    await st.close();
  }
}

test('fuzz: SafeTensors header and data section', async () => {
  const { all: seeds, valid, replay } = corpus('safetensors');
  assert.ok(seeds.length > 0, 'the safetensors seed corpus is missing');
  const file = path.join(dir, 'input.safetensors');
  const { runs } = await fuzz({
    name: 'safetensors',
    inputs: mutatedBytes(seeds),
    valid,
    replay,
    expected: [FormatError],
    async run(bytes) {
      await writeFile(file, bytes);
      const st = await openSafeTensors(file);
      let total = 0;
      for (const t of st.tensors.values()) total += t.byteLength;
      assert.ok(total <= bytes.length);
      await readAll(st);
    },
  });
  console.log(`safetensors: ${runs} inputs`);
});

test('fuzz: model.safetensors.index.json over a sharded folder', async () => {
  const folder = path.join(dir, 'sharded');
  await mkdir(folder);
  // The same tensors as the seed index names, so an unmutated seed opens.
  const counting = (n: number) => Uint8Array.from({ length: n }, (_, i) => i & 0xff);
  await writeSafeTensorsSharded(folder, [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [4, 2], data: counting(32) },
    { name: 'model.norm.weight', dtype: 'BF16', shape: [2], data: counting(4) },
    { name: 'scalar', dtype: 'I64', shape: [], data: counting(8) },
    { name: 'empty', dtype: 'U8', shape: [0, 3], data: new Uint8Array(0) },
    { name: 'flags', dtype: 'BOOL', shape: [3], data: new Uint8Array([0, 1, 1]) },
  ], 16);
  const { all: seeds, valid: validIndexes, replay: replayIndexes } = corpus('safetensors-index', (b) => new TextDecoder().decode(b));
  assert.ok(seeds.length > 0, 'the safetensors-index seed corpus is missing');
  const { runs } = await fuzz({
    name: 'safetensors-index',
    inputs: mutatedText(seeds),
    valid: validIndexes,
    replay: replayIndexes,
    expected: [FormatError],
    async run(text) {
      await writeFile(path.join(folder, INDEX_FILE), text);
      await readAll(await openSafeTensors(folder));
    },
  });
  console.log(`safetensors-index: ${runs} inputs`);
});
