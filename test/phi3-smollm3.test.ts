// Phi-3 / Phi-4-mini and SmolLM3 against llama.cpp: random-weight models written as GGUF (F32,
// F16) continue greedily token for token as llama.cpp (node-llama-cpp, CPU) continues them; the
// same weights as a Hugging Face folder (Phi-3's Q/K/V and gate/up fused, as transformers stores
// them) give the same logits; a Q8_0 Phi-3 file's fused blocks split into the weights the graph
// uses; `minerva convert` of the folders writes files llama.cpp runs the same way. Also the
// config.json rules: SmolLM2 is Llama, Phi-3-small and MoE variants are refused by name.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { loadModel } from '../src/index.js';
import { convertModel } from '../src/convert/convert.js';
import { specFromHFConfig } from '../src/model/hf-config.js';
import { openModel, splitRows } from '../src/model/load.js';
import { phi3WeightSplits } from '../src/model/arch/phi3.js';
import { quantize } from '../src/quant/dequantize.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel, type RandomModelShape } from './helpers/random-model.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { assertQuantOnLoadEqualsGGUF, greedyContinuations, logitsDiff } from './helpers/generation.js';
import { llamaCppGreedy } from './helpers/llamacpp.js';

/** Divisors far from 1, different per pair, so that the chosen list visibly moves the angles. */
const factors = (n: number, base: number, step: number) => Array.from({ length: n }, (_, i) => base + step * i);

const MODELS: Record<string, RandomModelShape> = {
  // Phi-3-mini-128k-like: LongRoPE whose original context (64) is below the 256 positions the
  // greedy runs use (llama.cpp and Minerva both): the long factors apply, with attention factor
  // √(1 + ln(512/64) / ln 64).
  'phi3-longrope': {
    arch: 'phi3', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false, contextLength: 512,
    longRope: { short: factors(8, 1, 0.25), long: factors(8, 1.5, 2), originalContextLength: 64 },
  },
  // Phi-4-mini-like: RoPE over ¾ of each head, tied embeddings, GQA, LongRoPE with the original
  // context (512) above the runs' 256 positions: the short factors apply.
  'phi4-mini-like': {
    arch: 'phi3', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 1, ffnDim: 96, tied: true, partialRotary: 0.75,
    contextLength: 1024, ropeTheta: 250000,
    longRope: { short: factors(6, 1.2, 1.5), long: factors(6, 2, 3), originalContextLength: 512 },
  },
  // SmolLM3-like: layer 3 of 5 (every 4th) runs without RoPE; tied embeddings.
  'smollm3': { arch: 'smollm3', dim: 64, nLayers: 5, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: true, ropeTheta: 5000000 },
};
/** Weight seeds: ones whose greedy paths have no near-tie that rounding could tip either way. */
const SEEDS: Record<string, number> = { 'phi3-longrope': 310, 'phi4-mini-like': 301, smollm3: 302 };
const PROMPTS = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 =', 'Über café 東京 🚀'];
const TOKENS = 32;

let dir: string;
let llama: Llama | undefined;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-phi-smol-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  for (const [name, shape] of Object.entries(MODELS)) {
    const spec = randomSpec(shape);
    const weights = randomWeights(spec, SEEDS[name]!);
    await writeHFModel(path.join(dir, name), spec, weights);
    for (const dtype of ['F32', 'F16', 'Q8_0'] as const) {
      await writeGGUFModel(path.join(dir, `${name}-${dtype.toLowerCase()}.gguf`), spec, weights, { dtype });
    }
  }
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});


for (const name of Object.keys(MODELS)) {
  for (const dtype of ['f32', 'f16']) {
    test(`${name} ${dtype}: greedy continuations equal llama.cpp's for ${TOKENS} tokens`, { skip }, async () => {
      const file = path.join(dir, `${name}-${dtype}.gguf`);
      const model = await loadModel(file, { contextLength: 256 });
      try {
        const prompts = PROMPTS.map((p) => model.tokenize(p));
        const expected = await llamaCppGreedy(llama!, file, prompts, TOKENS);
        const actual = await greedyContinuations(model, prompts, TOKENS);
        for (let i = 0; i < prompts.length; i++) {
          assert.equal(expected[i]!.length, TOKENS, 'the random model does not hit EOS early');
          assert.deepEqual(actual[i], expected[i], `prompt ${JSON.stringify(PROMPTS[i])}`);
        }
      } finally {
        model.dispose();
      }
    });
  }

  test(`${name}: the Hugging Face folder and the GGUF file give the same logits`, { skip }, async () => {
    // 256 positions, as in the greedy runs, so LongRoPE picks the same factors there.
    const hf = await loadModel(path.join(dir, name), { contextLength: 256 });
    const gguf = await loadModel(path.join(dir, `${name}-f32.gguf`), { contextLength: 256 });
    try {
      assert.deepEqual(hf.spec.ropeLayers, gguf.spec.ropeLayers);
      assert.equal(hf.spec.rope.dims, gguf.spec.rope.dims);
      for (const p of PROMPTS) {
        const ids = hf.tokenize(p);
        const { maxDiff, maxAbs } = logitsDiff(await hf.logits(ids), await gguf.logits(ids));
        assert.ok(maxDiff <= 1e-5 * maxAbs, `max |Δlogit| ${maxDiff} of ${maxAbs}`);
      }
    } finally {
      hf.dispose();
      gguf.dispose();
    }
  });
}

test('the LongRoPE factors and the no-RoPE layers change what the models compute', { skip }, async () => {
  // Against the same weights with the feature removed: the logits must move (else the tests
  // above would pass with the feature ignored).
  for (const [name, strip] of [
    ['phi3-longrope', (s: RandomModelShape): RandomModelShape => ({ ...s, longRope: undefined })],
    ['smollm3', (s: RandomModelShape): RandomModelShape => ({ ...s, arch: 'llama' })],
  ] as const) {
    const shape = MODELS[name]!;
    const seed = SEEDS[name]!;
    const plain = path.join(dir, `${name}-plain.gguf`);
    const spec = randomSpec(strip(shape));
    await writeGGUFModel(plain, spec, randomWeights(randomSpec(shape), seed), { dtype: 'F32' });
    const a = await loadModel(path.join(dir, `${name}-f32.gguf`), { contextLength: 256 });
    const b = await loadModel(plain, { contextLength: 256 });
    try {
      const ids = a.tokenize(PROMPTS[1]!);
      const { maxDiff, maxAbs } = logitsDiff(await a.logits(ids), await b.logits(ids));
      assert.ok(maxDiff > 0.05 * maxAbs, `${name}: max |Δlogit| ${maxDiff} of ${maxAbs}`);
    } finally {
      a.dispose();
      b.dispose();
    }
  }
});

test('a Q8_0 Phi-3 GGUF: its fused tensors split by rows into whole blocks, as the parts quantized alone', { skip }, async () => {
  const name = 'phi3-longrope';
  const spec = randomSpec(MODELS[name]!);
  const weights = randomWeights(spec, SEEDS[name]!);
  const file = await openModel(path.join(dir, `${name}-q8_0.gguf`));
  try {
    for (const [fused, parts] of phi3WeightSplits(spec)) {
      const info = file.tensors.get(fused)!;
      assert.equal(info.dtype, 'Q8_0');
      const values = weights.get(fused)!.data as Float32Array;
      let row = 0;
      for (const part of splitRows(info, await file.read(fused), parts)) {
        const cols = spec.dim;
        assert.deepEqual(part.info.shape, [part.info.shape[0], cols]);
        const own = quantize('Q8_0', values.subarray(row * cols, (row + part.info.shape[0]!) * cols));
        assert.deepEqual(part.data, own, `${part.info.name} from ${fused}`);
        row += part.info.shape[0]!;
      }
    }
  } finally {
    await file.close();
  }
  // End to end: the Q8_0 file runs as the HF folder quantized on load to Q8_0 (same blocks).
  await assertQuantOnLoadEqualsGGUF(path.join(dir, name), 'q8_0', path.join(dir, `${name}-q8_0.gguf`));
});

for (const name of Object.keys(MODELS)) {
  test(`minerva convert ${name} (HF folder) → a GGUF llama.cpp continues as Minerva does`, { skip }, async () => {
    const out = path.join(dir, `${name}-converted.gguf`);
    // general.name must not contain "phi3" / "phi-3": llama.cpp then sets attributes of Phi-3's own
    // special tokens (<|endoftext|>, ...), which the Llama 2 vocabulary of these models lacks.
    const result = await convertModel(path.join(dir, name), out, { type: 'f32', name: 'minerva-random-test' });
    assert.equal(result.architecture, MODELS[name]!.arch);
    const model = await loadModel(path.join(dir, name), { contextLength: 256 });
    try {
      const prompts = PROMPTS.map((p) => model.tokenize(p));
      assert.deepEqual(await llamaCppGreedy(llama!, out, prompts, TOKENS), await greedyContinuations(model, prompts, TOKENS));
    } finally {
      model.dispose();
    }
  });
}

test('minerva convert refuses a SmolLM3 whose no-RoPE layers a GGUF cannot state', { skip }, async () => {
  const odd = path.join(dir, 'smollm3-odd');
  const spec = randomSpec(MODELS.smollm3!);
  await writeHFModel(odd, { ...spec, ropeLayers: [true, false, true, true, true] }, randomWeights(spec, SEEDS.smollm3!));
  const config = JSON.parse(await readFile(path.join(odd, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.deepEqual(config.no_rope_layers, [1, 0, 1, 1, 1]);
  const model = await loadModel(odd, { contextLength: 64 });
  model.dispose(); // Minerva runs it from the folder
  await assert.rejects(convertModel(odd, path.join(dir, 'odd.gguf'), { type: 'f32' }), /layers without RoPE \[1\].*every 4th layer/);
});

const base = {
  vocab_size: 100, hidden_size: 64, intermediate_size: 128, num_attention_heads: 4, num_hidden_layers: 8,
  rms_norm_eps: 1e-5, max_position_embeddings: 512,
};

test('SmolLM2 config.json loads as plain Llama', () => {
  // SmolLM2-135M's shape: model_type llama, 9 heads of 64 over 3 KV heads, tied embeddings.
  const spec = specFromHFConfig({
    architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 576, intermediate_size: 1536,
    num_attention_heads: 9, num_key_value_heads: 3, num_hidden_layers: 30, vocab_size: 49152, rope_theta: 100000,
    max_position_embeddings: 8192, rms_norm_eps: 1e-5, tie_word_embeddings: true, hidden_act: 'silu',
  }, 'config.json');
  assert.equal(spec.arch, 'llama');
  assert.equal(spec.headDim, 64);
  assert.equal(spec.tiedEmbeddings, true);
  assert.equal(spec.ropeLayers, undefined);
});

test('SmolLM3 config.json: no_rope_layers, else every no_rope_layer_interval-th layer, without RoPE', () => {
  const listed = specFromHFConfig({ ...base, model_type: 'smollm3', no_rope_layers: [1, 1, 0, 1, 1, 1, 1, 0] }, 'c');
  assert.deepEqual(listed.ropeLayers, [true, true, false, true, true, true, true, false]);
  const byInterval = specFromHFConfig({ ...base, model_type: 'smollm3', no_rope_layer_interval: 4 }, 'c');
  assert.deepEqual(byInterval.ropeLayers, [true, true, true, false, true, true, true, false]);
  assert.throws(() => specFromHFConfig({ ...base, model_type: 'smollm3', no_rope_layers: [1, 0] }, 'c'), /no_rope_layers.*8 entries/);
});

test('Phi-3 config.json: partial rotary, LongRoPE checked; Phi-3-small and MoE refused by name', () => {
  const phi4 = specFromHFConfig({
    ...base, model_type: 'phi3', partial_rotary_factor: 0.75, original_max_position_embeddings: 128,
    rope_scaling: { type: 'longrope', short_factor: factors(6, 1, 0), long_factor: factors(6, 2, 0) },
  }, 'c');
  assert.equal(phi4.rope.dims, 12);
  const s = phi4.rope.scaling;
  assert.ok(s.type === 'longrope');
  assert.ok(Math.abs(s.attnFactor - Math.sqrt(1 + Math.log(4) / Math.log(128))) < 1e-12);
  assert.throws(() => specFromHFConfig({ ...base, model_type: 'phi3', rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1] } }, 'c'),
    /short_factor" must be a list of 8 positive numbers/);
  assert.throws(() => specFromHFConfig({ ...base, model_type: 'phi3small' }, 'c'), /Phi-3-small.*not supported/);
  assert.throws(() => specFromHFConfig({ ...base, model_type: 'phimoe' }, 'c'), /Phi-3.5-MoE.*mixture-of-experts/);
  assert.throws(() => specFromHFConfig({ ...base, model_type: 'phi3', num_local_experts: 16 }, 'c'), /mixture-of-experts/);
});
