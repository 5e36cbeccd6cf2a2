// The webgpu backend end to end: random-weight Llama-family models (GQA, Qwen2 biases, Llama-3
// RoPE scaling, Qwen3's per-head Q/K norm, a sliding window) in every weight type against the cpu
// and reference backends and against llama.cpp's greedy continuations; stories260K's golden text;
// a sequence's logits equal alone and batched; several choices of one prompt; weights split over
// many bindings; a forced gc() while generating.
// Runs wherever Dawn finds an adapter (lavapipe in CI), else skips saying why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import { loadModel, openModel, type LoadModelOptions, type Model } from '../src/index.js';
import { loadWeights } from '../src/model/load.js';
import { LlamaGraph } from '../src/model/arch/llama.js';
import { FIXTURES, fixturesSkip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel, type RandomModelShape } from './helpers/random-model.js';
import { collect, logitsDiff } from './helpers/generation.js';
import { choiceSeed } from '../src/engine/rng.js';
import { llamaCppGreedy } from './helpers/llamacpp.js';
import { createWebGpu, webgpuSkip } from './helpers/webgpu.js';
import { assertBatchEqualsTokenByToken } from './helpers/backend-ops.js';
import type { WebGpuBackend } from '../src/backends/webgpu/webgpu-backend.js';

const skip = fixturesSkip || await webgpuSkip();

const MODELS: Record<string, RandomModelShape> = {
  'llama-gqa': { arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false },
  'qwen2-bias': { arch: 'qwen2', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 1, ffnDim: 128, tied: true },
  'llama3-rope': {
    arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false, ropeTheta: 500000,
    llama3Rope: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 },
  },
  'qwen3': { arch: 'qwen3', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, headDim: 32, ffnDim: 128, tied: true, ropeTheta: 1000000 },
};
// The seeds llamacpp-oracle.test.ts uses: the same weights, on which the cpu backend equals llama.cpp.
const SEEDS: Record<string, number> = { 'llama-gqa': 100, 'qwen2-bias': 102, 'llama3-rope': 103, 'qwen3': 104 };
const PROMPT = 'The quick brown fox jumps over the lazy dog';
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-webgpu-'));
  if (skip) return;
  for (const [name, shape] of Object.entries(MODELS)) {
    const spec = randomSpec(shape);
    const weights = randomWeights(spec, SEEDS[name]!);
    for (const dtype of ['F32', 'F16', 'Q8_0', 'Q4_0'] as const) {
      await writeGGUFModel(path.join(dir, `${name}-${dtype.toLowerCase()}.gguf`), spec, weights, { dtype });
    }
    await writeHFModel(path.join(dir, `${name}-bf16`), spec, weights, { dtype: 'BF16' });
    await writeHFModel(path.join(dir, `${name}-f32`), spec, weights, { dtype: 'F32' });
  }
  // Mistral's sliding window, shorter than the prompt.
  const mistral = { ...randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false }), slidingWindow: 5 };
  await writeHFModel(path.join(dir, 'mistral-window-f32'), mistral, randomWeights(mistral, 99), { dtype: 'F32' });
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function pair(file: string, other: LoadModelOptions['backend'], o: LoadModelOptions = {}): Promise<[Model, Model]> {
  const gpu = await loadModel(file, { contextLength: 64, backend: 'webgpu', ...o });
  const cmp = await loadModel(file, { contextLength: 64, backend: other, threads: 2, ...o });
  return [gpu, cmp];
}

const greedy = async (m: Model, prompt: string, maxTokens = 16) =>
  (await collect(m.generate(prompt, { temperature: 0, maxTokens }))).tokens;

// F32 and F16: the cpu backend computes these in f32 too, so logits agree to float tolerance and
// greedy tokens are equal. The quantized types: the cpu backend multiplies 8-bit activations (as
// llama.cpp does) where webgpu keeps them in f32, as the reference backend does; so those are held
// to the reference.
const CASES: [string, string, LoadModelOptions['backend'], LoadModelOptions][] = [];
for (const name of Object.keys(MODELS)) {
  CASES.push([name, `${name}-f32.gguf`, 'cpu', {}], [name, `${name}-f16.gguf`, 'cpu', {}], [name, `${name}-bf16`, 'cpu', {}]);
}
CASES.push(['llama-gqa', 'llama-gqa-q8_0.gguf', 'reference', {}], ['llama-gqa', 'llama-gqa-q4_0.gguf', 'reference', {}]);
CASES.push(['qwen3', 'qwen3-q8_0.gguf', 'reference', {}]);
CASES.push(['qwen2-bias', 'qwen2-bias-f32', 'reference', { quant: 'q4_k' }], ['mistral-window', 'mistral-window-f32', 'cpu', {}]);

for (const [name, file, other, o] of CASES) {
  test(`${file}${o.quant ? ` --quant ${o.quant}` : ''}: webgpu logits match the ${other} backend, greedy tokens equal`, { skip }, async () => {
    const [gpu, cmp] = await pair(path.join(dir, file), other, o);
    try {
      assert.equal(gpu.info().backend, 'webgpu');
      const ids = gpu.tokenize(PROMPT);
      const { maxDiff, maxAbs } = logitsDiff(await cmp.logits(ids), await gpu.logits(ids));
      assert.ok(maxDiff <= 2e-4 * maxAbs, `${name}: max |Δlogit| ${maxDiff} of ${maxAbs}`);
      for (const p of ['Once upon a time', 'Hello', PROMPT]) assert.deepEqual(await greedy(gpu, p), await greedy(cmp, p), p);
    } finally {
      gpu.dispose();
      cmp.dispose();
    }
  });
}

test('F32 and F16 GGUF: webgpu greedy continuations equal llama.cpp\'s for 32 tokens', { skip }, async () => {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  try {
    for (const file of ['llama-gqa-f32.gguf', 'llama-gqa-f16.gguf', 'qwen2-bias-f16.gguf', 'qwen3-f16.gguf']) {
      const model = await loadModel(path.join(dir, file), { contextLength: 256, backend: 'webgpu' });
      try {
        const prompts = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 =', 'Über café 東京 🚀'].map((p) => model.tokenize(p));
        const expected = await llamaCppGreedy(llama, path.join(dir, file), prompts, 32);
        for (let i = 0; i < prompts.length; i++) {
          assert.deepEqual((await collect(model.generate(prompts[i]!, { temperature: 0, maxTokens: 32 }))).tokens, expected[i], `${file} prompt ${i}`);
        }
      } finally {
        model.dispose();
      }
    }
  } finally {
    await llama.dispose();
  }
});

test('stories260K on webgpu writes llama2.c\'s golden text', { skip }, async () => {
  const m = await loadModel(path.join(FIXTURES, 'llama2c/stories260K.bin'),
    { tokenizer: path.join(FIXTURES, 'llama2c/tok512.bin'), backend: 'webgpu' });
  try {
    const { text } = await collect(m.generate('Zoo', { temperature: 0, maxTokens: 57 }));
    assert.equal(text, ' was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, '
      + 'red ball. She wanted to play with it, but she didn\'t want to play with');
  } finally {
    m.dispose();
  }
});

/** Prefill of `ids` and one decode step, through a graph on `be`: [prefill logits of every row, decode logits]. */
async function prefillAndDecode(be: WebGpuBackend, file: string, ids: number[]): Promise<Float32Array[]> {
  const opened = await openModel(file);
  try {
    const s = opened.spec;
    const graph = new LlamaGraph(be, s, await loadWeights(opened, be), { maxBatchTokens: 16, maxOutputs: 16 });
    const cache = be.createKVCache({ nLayers: s.nLayers, nKVHeads: s.nKVHeads, headDim: s.headDim, maxSeqs: 1, ctxLen: 32 });
    const prefill = await graph.forward(Int32Array.from(ids), { positions: Int32Array.from(ids.keys()), seqs: new Int32Array(ids.length) },
      Int32Array.from(ids.keys()), cache);
    const decode = await graph.forward(Int32Array.of(13), { positions: Int32Array.of(ids.length), seqs: Int32Array.of(0) }, Int32Array.of(0), cache);
    return [prefill.slice(), decode.slice()];
  } finally {
    await opened.close();
  }
}

// Decode runs the matvec kernels, prefill and batches the gemm kernels; both add up in the same
// order, so a sequence's logits are the same however it was batched.
for (const file of ['llama-gqa-f16.gguf', 'llama-gqa-q4_0.gguf', 'qwen3-f16.gguf']) {
  test(`${file}: token-by-token decode and a mixed batch give the same logits`, { skip }, async () => {
    const opened = await openModel(path.join(dir, file));
    const be = await createWebGpu();
    try {
      await assertBatchEqualsTokenByToken(be, opened);
    } finally {
      await opened.close();
      be.dispose();
    }
  });
}

test('concurrent requests on parallel slots give the tokens each gives alone', { skip }, async () => {
  const m = await loadModel(path.join(dir, 'llama-gqa-q8_0.gguf'), { contextLength: 64, backend: 'webgpu', parallel: 3 });
  try {
    const prompts = ['Once upon a time', 'Hello', PROMPT, '1 + 1 =', 'x'];
    const alone: number[][] = [];
    for (const p of prompts) alone.push(await greedy(m, p, 12));
    const together = await Promise.all(prompts.map((p) => greedy(m, p, 12)));
    assert.deepEqual(together, alone);
  } finally {
    m.dispose();
  }
});

test('several choices of one prompt (copyKV between slots) give the tokens each gives alone', { skip }, async () => {
  const m = await loadModel(path.join(dir, 'llama-gqa-q8_0.gguf'), { contextLength: 64, backend: 'webgpu', parallel: 3 });
  try {
    const opts = { temperature: 0.9, seed: 11, maxTokens: 10 };
    const got = await Promise.all(m.generateChoices(PROMPT, 3, opts).map((s) => collect(s)));
    assert.deepEqual(got.map((g) => g.last.timings!.promptTokens), [m.tokenize(PROMPT).length, 1, 1], 'the others copied the prompt');
    const alone: number[][] = [];
    for (let i = 0; i < 3; i++) alone.push((await collect(m.generate(PROMPT, { ...opts, seed: choiceSeed(opts.seed, i) }))).tokens);
    assert.deepEqual(got.map((g) => g.tokens), alone);
  } finally {
    m.dispose();
  }
});

test('weights split over many storage bindings give the same logits', { skip }, async () => {
  const whole = await createWebGpu(), split = await createWebGpu({ maxWeightPartBytes: 8192 });
  try {
    const file = path.join(dir, 'llama-gqa-q8_0.gguf'), ids = [1, 450, 4996, 17354, 1701, 432];
    assert.deepEqual(await prefillAndDecode(split, file, ids), await prefillAndDecode(whole, file, ids));
    const f16 = path.join(dir, 'qwen2-bias-f16.gguf'); // tied: the embedding table is the (split) output matrix
    assert.deepEqual(await prefillAndDecode(split, f16, ids), await prefillAndDecode(whole, f16, ids));
  } finally {
    whole.dispose();
    split.dispose();
  }
});

test('a forced garbage collection while generating does not crash or change the output', { skip }, async () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const m = await loadModel(path.join(dir, 'llama-gqa-f16.gguf'), { contextLength: 64, backend: 'webgpu' });
  try {
    const expected = await greedy(m, PROMPT, 20);
    const tokens: number[] = [];
    for await (const c of m.generate(PROMPT, { temperature: 0, maxTokens: 20 })) {
      tokens.push(...c.tokens);
      gc();
    }
    assert.deepEqual(tokens, expected);
  } finally {
    m.dispose();
  }
  gc();
});

test('--backend webgpu with maxGpuMemory below what the model needs: refused with both sizes before any weight is uploaded', { skip }, async () => {
  await assert.rejects(loadModel(path.join(dir, 'llama-gqa-f16.gguf'), { contextLength: 64, backend: 'webgpu', maxGpuMemory: 50_000 }),
    /llama-gqa-f16\.gguf needs [\d.]+ MiB of GPU memory \(weights and KV cache\); the budget is 0\.0 MiB \(--max-gpu-memory\) on /);
});
