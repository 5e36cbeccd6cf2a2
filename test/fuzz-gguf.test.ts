// Fuzzing the GGUF reader: mutated GGUF files (seeds written by writeGGUF with every value type,
// nested arrays and tensors of several dtypes) are opened, their metadata and tensor table read,
// and every tensor's data read back. Bad files must fail with a FormatError naming the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openGGUF } from '../src/formats/gguf.js';
import { FormatError } from '../src/formats/tensor.js';
import { tokenizerFromGGUF } from '../src/tokenizer/gguf-vocab.js';
import { FIXTURES, fixturesSkip } from './helpers/fixtures.js';
import { corpus, fuzz, mutatedBytes, seedCorpus } from './helpers/fuzz.js';
import { encodeDecodeSome } from './helpers/fuzz-tokenizer.js';

const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-fuzz-gguf-'));
after(() => rm(dir, { recursive: true, force: true }));

/** Extra seeds from the shared fixtures when present: the small vocabulary-only GGUFs. */
async function fixtureSeeds(): Promise<Uint8Array[]> {
  if (fixturesSkip) return [];
  const vocabDir = path.join(FIXTURES, 'llama.cpp-vocab-tests');
  const names = (await readdir(vocabDir).catch(() => [] as string[])).filter((n) => n.endsWith('.gguf')).sort();
  const seeds: Uint8Array[] = [];
  for (const n of names.slice(0, 2)) {
    const bytes = new Uint8Array(await readFile(path.join(vocabDir, n)));
    if (bytes.length <= 4 << 20) seeds.push(bytes);
  }
  return seeds;
}

test('fuzz: GGUF open, metadata, tensor table and tensor data', async () => {
  const gguf = corpus('gguf');
  const seeds = [...gguf.all, ...(await fixtureSeeds())];
  assert.ok(seeds.length >= 4, 'the gguf seed corpus is missing');
  const file = path.join(dir, 'input.gguf');
  const { runs } = await fuzz({
    name: 'gguf',
    inputs: mutatedBytes(seeds),
    valid: gguf.valid,
    replay: gguf.replay,
    expected: [FormatError],
    async run(bytes) {
      await writeFile(file, bytes);
      const g = await openGGUF(file);
      try {
        assert.ok(g.version === 2 || g.version === 3);
        assert.equal(g.metadata.size, g.metadataTypes.size);
        let furthest = 0;
        for (const [name, t] of g.tensors) {
          assert.ok(t.fileOffset >= g.dataOffset && t.fileOffset + t.byteLength <= bytes.length, `tensor ${name} lies outside the file`);
          assert.equal(t.fileOffset % g.alignment, g.dataOffset % g.alignment);
          const data = await g.read(name);
          assert.equal(data.length, t.byteLength);
          assert.deepEqual(data, bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength));
          furthest = Math.max(furthest, t.byteLength);
        }
        // Reading into a caller's buffer gives the same bytes.
        const scratch = new Uint8Array(furthest);
        for (const [name, t] of g.tensors) {
          assert.deepEqual(await g.read(name, scratch), bytes.subarray(t.fileOffset, t.fileOffset + t.byteLength));
        }
        await assert.rejects(g.read('\u0000no such tensor'), FormatError);
      } finally {
        await g.close();
      }
    },
  });
  console.log(`gguf: ${runs} inputs`);
});

test('fuzz: GGUF vocabulary to a tokenizer, then encode and decode', async () => {
  const seeds = seedCorpus('gguf-vocab');
  assert.ok(seeds.length >= 2, 'the gguf-vocab seed corpus is missing');
  const file = path.join(dir, 'vocab.gguf');
  const { runs } = await fuzz({
    name: 'gguf-vocab',
    inputs: mutatedBytes(seeds.map((s) => s.bytes)),
    valid: seeds.filter((s) => s.file.startsWith('seed-')).map((s) => s.bytes),
    replay: seeds.filter((s) => s.file.startsWith('regress-')).map((s) => s.bytes),
    expected: [FormatError],
    async run(bytes) {
      await writeFile(file, bytes);
      const g = await openGGUF(file);
      await g.close();
      encodeDecodeSome(tokenizerFromGGUF(g.metadata, file));
    },
  });
  console.log(`gguf-vocab: ${runs} inputs`);
});
