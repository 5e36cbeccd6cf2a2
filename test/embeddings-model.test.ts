// Embeddings in the library (Model.embed) and on the command line (minerva embed): the pooling a
// model's files declare, vectors checked against llama.cpp's (node-llama-cpp, CPU) on the same
// random-weight GGUF files, the reference backend against the cpu backend, and the scheduler's
// promise that a vector does not depend on what else is in the batch or on how its input was
// chunked, and that embeddings leave the prefix cache correct.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { EmbedInputError, loadModel, openModel, type LoadModelOptions, type Pooling } from '../src/index.js';
import { ConfigError } from '../src/model/config-reader.js';
import { specFromGGUF } from '../src/model/gguf-spec.js';
import { ggufModelMetadata } from '../src/model/gguf-metadata.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel, type RandomModelShape } from './helpers/random-model.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { collect } from './helpers/generation.js';
import { webgpuSkip } from './helpers/webgpu.js';

// Untied, so hidden states depend on the whole context (see scheduler.test.ts).
const SHAPE: RandomModelShape = { arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false };
const QWEN: RandomModelShape = { arch: 'qwen2', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 1, ffnDim: 128, tied: true };
const POOLINGS: Record<string, Pooling | undefined> = {
  mean: { type: 'mean', normalize: true }, last: { type: 'last', normalize: true }, cls: { type: 'cls', normalize: true }, none: undefined,
};
const TEXTS = [
  'The quick brown fox jumps over the lazy dog',
  'Hi',
  'Über café 東京 🚀 — a line with some unusual characters in it',
  'A longer passage, so that the input is read in several chunks: it keeps going with more words, '
    + 'then more words again, until it is well past the batch size the tests load models with.',
];

let dir: string;
let llama: Llama | undefined;
const file = (name: string) => path.join(dir, name);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-embed-model-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  for (const [name, pooling] of Object.entries(POOLINGS)) {
    for (const [arch, shape] of [['llama', SHAPE], ['qwen2', QWEN]] as const) {
      const spec = randomSpec({ ...shape, ...(pooling ? { pooling } : {}) });
      await writeGGUFModel(file(`${arch}-${name}.gguf`), spec, randomWeights(spec, 21), { dtype: 'F32' });
    }
  }
  const st = randomSpec({ ...SHAPE, pooling: { type: 'last', normalize: true } });
  await writeHFModel(file('st-last'), st, randomWeights(st, 22));
  const raw = randomSpec({ ...SHAPE, pooling: { type: 'mean', normalize: false } });
  await writeHFModel(file('st-mean-raw'), raw, randomWeights(raw, 23));
  await writeHFModel(file('chat'), randomSpec(SHAPE), randomWeights(randomSpec(SHAPE), 24));
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const load = (f: string, o: LoadModelOptions = {}) => loadModel(file(f), { backend: 'cpu', threads: 2, contextLength: 128, ...o });

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i]! * b[i]!; aa += a[i]! ** 2; bb += b[i]! ** 2; }
  return ab / Math.sqrt(aa * bb);
}
const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (x, i) => Math.abs(x - b[i]!)));

test('the pooling comes from GGUF <arch>.pooling_type and sentence-transformers modules.json', { skip }, async () => {
  for (const [name, pooling] of Object.entries(POOLINGS)) {
    const m = await openModel(file(`llama-${name}.gguf`));
    assert.deepEqual(m.spec.pooling, pooling, name);
    await m.close();
  }
  const st = await openModel(file('st-last'));
  assert.deepEqual(st.spec.pooling, { type: 'last', normalize: true });
  await st.close();
  const raw = await openModel(file('st-mean-raw'));
  assert.deepEqual(raw.spec.pooling, { type: 'mean', normalize: false }, 'no Normalize module: vectors as pooled');
  await raw.close();
  const chat = await openModel(file('chat'));
  assert.equal(chat.spec.pooling, undefined);
  await chat.close();

  // Values llama.cpp does not know, and sentence-transformers pipelines Minerva does not run, are refused by name.
  const meta = new Map(ggufModelMetadata(randomSpec(SHAPE), { name: 't', fileType: 0, vocab: [] }).map((e) => [e.key, e.value]));
  meta.set('llama.pooling_type', 7);
  assert.throws(() => specFromGGUF(meta, new Set(['output.weight']), 'x.gguf'), /x\.gguf: "llama\.pooling_type" is 7/);
  meta.set('llama.pooling_type', 4); // rank: a reranker's head, not an embedding
  assert.equal(specFromGGUF(meta, new Set(['output.weight']), 'x.gguf').pooling, undefined);

  const bad = file('st-bad');
  const spec = randomSpec({ ...SHAPE, pooling: { type: 'mean', normalize: true } });
  await writeHFModel(bad, spec, randomWeights(spec, 25));
  await writeFile(path.join(bad, '1_Pooling', 'config.json'), JSON.stringify({ word_embedding_dimension: 64, pooling_mode_max_tokens: true }));
  await assert.rejects(openModel(bad), (e: Error) => e instanceof ConfigError && /1_Pooling.config\.json: "pooling_mode_max_tokens" is not supported/.test(e.message));
  await writeFile(path.join(bad, '1_Pooling', 'config.json'), JSON.stringify({ word_embedding_dimension: 32, pooling_mode_mean_tokens: true }));
  await assert.rejects(openModel(bad), /"word_embedding_dimension" is 32, but the model's hidden size is 64/);
  await mkdir(path.join(bad, '2_Dense'));
  await writeFile(path.join(bad, 'modules.json'), JSON.stringify([
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    { idx: 2, name: '2', path: '2_Dense', type: 'sentence_transformers.models.Dense' },
  ]));
  await assert.rejects(openModel(bad), /modules\.json \[2\]: module "sentence_transformers\.models\.Dense" is not supported/);
});

test('llama.cpp agrees: mean, CLS, last-token and undeclared pooling, Llama and Qwen2', { skip }, async () => {
  for (const arch of ['llama', 'qwen2']) {
    for (const name of Object.keys(POOLINGS)) {
      const f = file(`${arch}-${name}.gguf`);
      // A batch of 16 tokens: the longer inputs are read in chunks (mean pooling sums across them).
      const model = await load(`${arch}-${name}.gguf`, { batchSize: 16 });
      const lm = await llama!.loadModel({ modelPath: f });
      const context = await lm.createEmbeddingContext({ contextSize: 128, threads: 2 });
      try {
        const ours = await model.embed(TEXTS);
        assert.deepEqual(ours.pooling, POOLINGS[name] ?? { type: 'last', normalize: true });
        for (let i = 0; i < TEXTS.length; i++) {
          const ids = model.tokenize(TEXTS[i]!);
          assert.equal(ours.tokenCounts[i], ids.length);
          // llama.cpp returns the pooled vector as it is; the declared pooling (and the default) normalise.
          const theirs = (await context.getEmbeddingFor(ids as never)).vector;
          const unit = theirs.map((x) => x / norm(theirs));
          const v = ours.embeddings[i]!;
          assert.ok(Math.abs(norm(v) - 1) < 1e-5, 'unit length');
          assert.ok(cosine(v, unit) > 0.99999, `${arch} ${name} input ${i}: cosine ${cosine(v, unit)}`);
          assert.ok(maxDiff(v, unit) < 1e-3, `${arch} ${name} input ${i}: max diff ${maxDiff(v, unit)}`);
        }
      } finally {
        await context.dispose();
        await lm.dispose();
        model.dispose();
      }
    }
  }
});

test('the reference backend and the cpu backend give the same embeddings', { skip }, async () => {
  for (const f of ['st-last', 'st-mean-raw', 'qwen2-cls.gguf']) {
    const ref = await load(f, { backend: 'reference' });
    const cpu = await load(f);
    try {
      const a = await ref.embed(TEXTS), b = await cpu.embed(TEXTS);
      for (let i = 0; i < TEXTS.length; i++) {
        assert.ok(maxDiff(a.embeddings[i]!, b.embeddings[i]!) < 1e-4 * Math.max(1, norm(a.embeddings[i]!)), `${f} input ${i}`);
      }
      if (f === 'st-mean-raw') assert.ok(Math.abs(norm(b.embeddings[0]!) - 1) > 1e-3, 'no Normalize module: not unit length');
    } finally {
      ref.dispose();
      cpu.dispose();
    }
  }
});

test('an embedding is the same alone and beside generating sequences, whatever its chunking', { skip }, async () => {
  for (const f of ['llama-mean.gguf', 'llama-last.gguf', 'llama-cls.gguf']) {
    const alone = await load(f, { parallel: 1 });
    const busy = await load(f, { parallel: 3, batchSize: 24, prefillChunk: 5 });
    try {
      const expected = [];
      for (const t of TEXTS) expected.push((await alone.embed(t)).embeddings[0]!);
      const story = (await collect(alone.generate('Once upon a time', { temperature: 0, maxTokens: 24 }))).tokens;
      // Two greedy generations run while the four inputs (three slots: they queue) are embedded.
      const generations = [collect(busy.generate('Once upon a time', { temperature: 0, maxTokens: 24 })),
        collect(busy.generate('Once upon a time', { temperature: 0, maxTokens: 24 }))];
      await new Promise((r) => setTimeout(r, 20));
      const together = await busy.embed(TEXTS);
      for (let i = 0; i < TEXTS.length; i++) assert.deepEqual(together.embeddings[i], expected[i], `${f} input ${i}`);
      for (const g of await Promise.all(generations)) assert.deepEqual(g.tokens, story, 'the generations are undisturbed');
    } finally {
      alone.dispose();
      busy.dispose();
    }
  }
});

test('embeddings leave the prefix cache correct, and last-token pooling reuses a shared prefix', { skip }, async () => {
  const fresh = await load('llama-last.gguf');
  const expectedStory = (await collect(fresh.generate(TEXTS[3]!, { temperature: 0, maxTokens: 16 }))).tokens;
  const freshMean = await load('llama-mean.gguf');
  const expectedMean = (await freshMean.embed(TEXTS[3]!)).embeddings[0]!;
  freshMean.dispose();
  const expectedLast = (await fresh.embed(TEXTS[3]! + ' And a tail.')).embeddings[0]!;
  fresh.dispose();

  for (const f of ['llama-last.gguf', 'llama-mean.gguf']) {
    const model = await load(f);
    try {
      // A conversation, then an embedding sharing its start, then the conversation again.
      assert.deepEqual((await collect(model.generate(TEXTS[3]!, { temperature: 0, maxTokens: 16 }))).tokens, expectedStory);
      const e = (await model.embed(f.includes('last') ? TEXTS[3]! + ' And a tail.' : TEXTS[3]!)).embeddings[0]!;
      assert.deepEqual(e, f.includes('last') ? expectedLast : expectedMean, `${f}: the same vector as on a fresh model`);
      const again = await collect(model.generate(TEXTS[3]!, { temperature: 0, maxTokens: 16 }));
      assert.deepEqual(again.tokens, expectedStory, `${f}: the generation after the embedding`);
      if (f.includes('last')) assert.ok(again.last.timings!.promptTokens < 5, 'the conversation\'s prefix was still cached');
    } finally {
      model.dispose();
    }
  }
});

test('the webgpu backend gives the cpu backend\'s embeddings, alone and beside a generation', { skip: skip || await webgpuSkip() }, async () => {
  for (const f of ['llama-mean.gguf', 'st-last']) {
    const gpu = await load(f, { backend: 'webgpu', parallel: 2, batchSize: 16, prefillChunk: 5 });
    const cpu = await load(f);
    try {
      const want = await cpu.embed(TEXTS);
      const alone = await gpu.embed(TEXTS);
      const story = collect(gpu.generate('Once upon a time', { temperature: 0, maxTokens: 16 }));
      const beside = await gpu.embed(TEXTS);
      await story;
      for (let i = 0; i < TEXTS.length; i++) {
        assert.ok(maxDiff(alone.embeddings[i]!, want.embeddings[i]!) < 1e-4, `${f} input ${i}: ${maxDiff(alone.embeddings[i]!, want.embeddings[i]!)}`);
        assert.deepEqual(beside.embeddings[i], alone.embeddings[i], `${f} input ${i}: beside a generation`);
      }
    } finally {
      gpu.dispose();
      cpu.dispose();
    }
  }
});

test('Model.embed: token ids, dimensions, truncation, normalisation, bad input, abort', { skip }, async () => {
  const model = await load('llama-mean.gguf', { contextLength: 32 });
  const chat = await load('chat', { contextLength: 32 });
  try {
    // Token ids and text give the same vector; several token-id inputs at once.
    const ids = model.tokenize(TEXTS[0]!);
    const byText = (await model.embed(TEXTS[0]!)).embeddings[0]!;
    assert.deepEqual((await model.embed(ids)).embeddings[0], byText);
    const two = await model.embed([ids, ids.slice(0, 4)]);
    assert.deepEqual(two.embeddings[0], byText);
    assert.deepEqual(two.tokenCounts, [ids.length, 4]);
    assert.equal(two.promptTokens, ids.length + 4);
    assert.deepEqual((await model.embed([])).embeddings, []);

    // Matryoshka: the first n values of the pooled vector, at unit length.
    const raw = (await model.embed(TEXTS[0]!, { normalize: false })).embeddings[0]!;
    assert.ok(Math.abs(norm(raw) - 1) > 1e-3);
    const cut = (await model.embed(TEXTS[0]!, { dimensions: 8 })).embeddings[0]!;
    assert.equal(cut.length, 8);
    const head = raw.slice(0, 8).map((x) => x / norm(raw.slice(0, 8)));
    assert.ok(maxDiff(cut, head) < 1e-6);
    await assert.rejects(model.embed('x', { dimensions: 65 }), (e: EmbedInputError) => e.field === 'dimensions' && /1\.\.64/.test(e.message));
    await assert.rejects(chat.embed('x', { dimensions: 8 }), (e: EmbedInputError) => e.field === 'dimensions' && /declares no embedding pooling/.test(e.message));

    // Longer than the context: refused, or cut keeping BOS.
    const long = TEXTS[3]!.repeat(2);
    await assert.rejects(model.embed(['ok', long]), (e: EmbedInputError) => e.field === 'input[1]' && /the context holds 32/.test(e.message));
    const cutLong = await model.embed(long, { truncate: true });
    assert.equal(cutLong.tokenCounts[0], 32);
    assert.deepEqual(cutLong.embeddings[0], (await model.embed(model.tokenize(long).slice(0, 32))).embeddings[0]);

    await assert.rejects(model.embed([[1, 2, 99999]]), (e: EmbedInputError) => e.field === 'input[0]' && /outside the vocabulary/.test(e.message));
    await assert.rejects(model.embed([[]]), /input\[0\] is empty/);
    await assert.rejects(model.embed([1, 'a'] as never), EmbedInputError);

    const controller = new AbortController();
    controller.abort();
    await assert.rejects(model.embed(TEXTS.slice(0, 3), { signal: controller.signal }), { name: 'AbortError' });
    // The model still works after the aborted call.
    assert.deepEqual((await model.embed(TEXTS[0]!)).embeddings[0], byText);

    // A chat model (no pooling declared): its last token's state, unit length.
    const c = await chat.embed(TEXTS[0]!);
    assert.deepEqual(c.pooling, { type: 'last', normalize: true });
    assert.ok(Math.abs(norm(c.embeddings[0]!) - 1) < 1e-5);
  } finally {
    model.dispose();
    chat.dispose();
  }
});

test('a prompt longer than the batch, alone, is read in chunks and generates as in one batch', { skip }, async () => {
  const one = await load('chat', { batchSize: 512 });
  const chunked = await load('chat', { batchSize: 8 });
  try {
    const expected = await collect(one.generate(TEXTS[3]!, { temperature: 0, maxTokens: 10 }));
    const actual = await collect(chunked.generate(TEXTS[3]!, { temperature: 0, maxTokens: 10 }));
    assert.equal(actual.tokens.length, 10);
    assert.deepEqual(actual.tokens, expected.tokens);
  } finally {
    one.dispose();
    chunked.dispose();
  }
});

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;

test('minerva embed prints the vectors of its arguments, or of stdin, as JSON', { skip }, async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'embed', file('st-last'), TEXTS[0]!, TEXTS[1]!, '--dimensions', '16', '--backend', 'cpu']);
  const out = JSON.parse(stdout) as { pooling: Pooling; prompt_tokens: number; embeddings: number[][] };
  const model = await load('st-last');
  try {
    const expected = await model.embed([TEXTS[0]!, TEXTS[1]!], { dimensions: 16 });
    assert.deepEqual(out.pooling, { type: 'last', normalize: true });
    assert.equal(out.prompt_tokens, expected.promptTokens);
    assert.deepEqual(out.embeddings, expected.embeddings.map((e) => Array.from(e)));

    const child = spawn(process.execPath, [CLI, 'embed', file('st-last'), '--lines', '--backend', 'cpu']);
    let piped = '';
    child.stdout.on('data', (d: Buffer) => { piped += d.toString(); });
    child.stdin.end(`${TEXTS[0]}\n\n${TEXTS[2]}\n`);
    assert.equal(await new Promise((r) => child.on('close', r)), 0);
    const lines = JSON.parse(piped) as { embeddings: number[][] };
    const both = await model.embed([TEXTS[0]!, TEXTS[2]!]);
    assert.deepEqual(lines.embeddings, both.embeddings.map((e) => Array.from(e)));
  } finally {
    model.dispose();
  }
  await assert.rejects(promisify(execFile)(process.execPath, [CLI, 'embed', file('chat'), 'x', '--dimensions', '4']),
    (e: { stderr: string }) => /minerva: dimensions: this model declares no embedding pooling/.test(e.stderr));
});
