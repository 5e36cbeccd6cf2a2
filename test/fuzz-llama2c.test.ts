// Fuzzing the llama2.c readers: mutated checkpoints (legacy and version 1 headers) opened and
// their weights read, and mutated tokenizer.bin files parsed and used to encode and decode. Bad
// input must fail with a FormatError naming the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { openLlama2c } from '../src/formats/llama2c.js';
import { FormatError } from '../src/formats/tensor.js';
import { parseLlama2cVocab, tokenizerFromLlama2cVocab } from '../src/tokenizer/llama2c-tokenizer.js';
import { corpus, fuzz, mutatedBytes, seedCorpus } from './helpers/fuzz.js';
import { encodeDecodeSome } from './helpers/fuzz-tokenizer.js';

const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-fuzz-llama2c-'));
after(() => rm(dir, { recursive: true, force: true }));

test('fuzz: llama2.c checkpoint header and weights', async () => {
  const { all: seeds, valid, replay } = corpus('llama2c');
  assert.ok(seeds.length >= 2, 'the llama2c seed corpus is missing');
  const file = path.join(dir, 'input.bin');
  const { runs } = await fuzz({
    name: 'llama2c',
    inputs: mutatedBytes(seeds),
    valid,
    replay,
    expected: [FormatError],
    async run(bytes) {
      await writeFile(file, bytes);
      const { config, provider } = await openLlama2c(file);
      try {
        assert.ok(config.dim > 0 && config.vocabSize > 0);
        for (const [name, t] of provider.tensors) assert.equal((await provider.read(name)).length, t.byteLength);
      } finally {
        await provider.close();
      }
    },
  });
  console.log(`llama2c: ${runs} inputs`);
});

test('fuzz: llama2.c tokenizer.bin', async () => {
  const seeds = seedCorpus('llama2c-tokenizer').map((s) => s.bytes);
  assert.ok(seeds.length > 0, 'the llama2c-tokenizer seed corpus is missing');
  const { runs } = await fuzz({
    name: 'llama2c-tokenizer',
    // Half the inputs state the vocabulary size the checkpoint would give.
    inputs: fc.tuple(mutatedBytes(seeds), fc.option(fc.integer({ min: 1, max: 40 }))),
    sizeOf: ([bytes]) => bytes.length,
    valid: seedCorpus('llama2c-tokenizer').filter((s) => s.file === 'seed-tokenizer.bin').flatMap((s) => [[s.bytes, null], [s.bytes, 19]] as [Uint8Array, number | null][]),
    replay: seedCorpus('llama2c-tokenizer').filter((s) => s.file.startsWith('regress-')).map((s) => [s.bytes, null] as [Uint8Array, number | null]),
    expected: [FormatError],
    run([bytes, vocabSize]) {
      const vocab = parseLlama2cVocab(bytes, 'tokenizer.bin', vocabSize ?? undefined);
      encodeDecodeSome(tokenizerFromLlama2cVocab(vocab, 'tokenizer.bin'));
    },
  });
  console.log(`llama2c-tokenizer: ${runs} inputs`);
});
