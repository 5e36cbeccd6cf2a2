// llama.cpp as the oracle for the Gemma family: random-weight Gemma 2 and Gemma 3 models (a head
// size that is not dim / heads, enough layers for both sliding-window and global layers, a window
// of 8 that prompts and continuations outgrow, Gemma 2's soft-caps small enough to bite) written as
// GGUF F32 and F16 continue greedily as llama.cpp continues them; the same weights as a Hugging Face
// folder (norms stored as w of x̂·(1 + w)) give the same logits; `minerva convert` of the folder
// loads in llama.cpp and continues the same way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { loadModel, type Model } from '../src/index.js';
import { convertModel } from '../src/convert/convert.js';
import {
  randomSpec, randomWeights, writeGGUFModel, writeHFModel, type RandomModelShape,
} from './helpers/random-model.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { greedyContinuations, logitsDiff } from './helpers/generation.js';
import { llamaCppGreedy } from './helpers/llamacpp.js';

const MODELS: Record<string, RandomModelShape> = {
  // Even layers slide over 8 positions, odd ones see everything; scores capped at ±2, logits at ±5.
  gemma2: {
    arch: 'gemma2', dim: 64, nLayers: 4, nHeads: 4, nKVHeads: 2, headDim: 32, ffnDim: 128, tied: true,
    slidingWindow: 8, attnSoftcap: 2, finalSoftcap: 5,
  },
  // Layers 0–4 and 6 slide (RoPE base 10000), layer 5 is global (base 1e6, positions / 8); per-head Q/K norms.
  gemma3: {
    arch: 'gemma3', dim: 64, nLayers: 7, nHeads: 4, nKVHeads: 2, headDim: 32, ffnDim: 128, tied: true,
    slidingWindow: 8, ropeTheta: 1e6, linearRope: 8,
  },
  gemma: { arch: 'gemma', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 1, headDim: 32, ffnDim: 128, tied: true },
};
const PROMPTS = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 =', 'Über café 東京 🚀'];
const TOKENS = 32;

let dir: string;
let llama: Llama | undefined;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-gemma-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  let seed = 300;
  for (const [name, shape] of Object.entries(MODELS)) {
    const spec = randomSpec(shape);
    const weights = randomWeights(spec, seed++);
    await writeHFModel(path.join(dir, name), spec, weights);
    await writeGGUFModel(path.join(dir, `${name}-f32.gguf`), spec, weights, { dtype: 'F32' });
    await writeGGUFModel(path.join(dir, `${name}-f16.gguf`), spec, weights, { dtype: 'F16' });
  }
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});


/** llama.cpp's greedy continuations of a file, computed once per file (the variants test compares against them again). */
const llamaCppRuns = new Map<string, Promise<number[][]>>();
function llamaCppGreedyOnce(file: string, prompts: number[][]): Promise<number[][]> {
  const key = `${file}\0${JSON.stringify(prompts)}`;
  let run = llamaCppRuns.get(key);
  if (!run) llamaCppRuns.set(key, run = llamaCppGreedy(llama!, file, prompts, TOKENS));
  return run;
}

async function assertSameAsLlamaCpp(file: string): Promise<void> {
  const model = await loadModel(file, { contextLength: 256 });
  try {
    const prompts = PROMPTS.map((p) => model.tokenize(p));
    const expected = await llamaCppGreedyOnce(file, prompts);
    const actual = await greedyContinuations(model, prompts, TOKENS);
    for (let i = 0; i < prompts.length; i++) {
      assert.equal(expected[i]!.length, TOKENS, 'the random model does not hit EOS early');
      assert.deepEqual(actual[i], expected[i], `prompt ${JSON.stringify(PROMPTS[i])}`);
    }
  } finally {
    model.dispose();
  }
}

for (const name of Object.keys(MODELS)) {
  for (const dtype of ['f32', 'f16']) {
    test(`${name} ${dtype}: greedy continuations equal llama.cpp's for ${TOKENS} tokens`, { skip }, async () => {
      await assertSameAsLlamaCpp(path.join(dir, `${name}-${dtype}.gguf`));
    });
  }

  test(`${name}: the Hugging Face folder and the GGUF file give the same logits`, { skip }, async () => {
    const hf = await loadModel(path.join(dir, name), { contextLength: 64 });
    const gguf = await loadModel(path.join(dir, `${name}-f32.gguf`), { contextLength: 64 });
    try {
      // (normEps passes through an f32 in the GGUF; modelType names the source.)
      const gemmaFields = (m: Model) => {
        const { normEps: _e, modelType: _t, ...rest } = m.spec;
        return JSON.parse(JSON.stringify(rest)) as unknown;
      };
      assert.deepEqual(gemmaFields(hf), gemmaFields(gguf), 'config.json and GGUF metadata give the same spec');
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

// The oracle has teeth: the same weights run without the sliding window, without Gemma 2's
// attention soft-cap, or (Gemma 3) with the local layers on the global RoPE, continue differently
// from llama.cpp; and the final soft-cap bounds Gemma 2's logits.
test('the window, the attention soft-cap and Gemma 3\'s local RoPE base each change the continuations', { skip }, async () => {
  const variants: [string, RandomModelShape][] = [
    ['gemma2', { ...MODELS.gemma2!, slidingWindow: 256 }],
    ['gemma2', { ...MODELS.gemma2!, attnSoftcap: 1e6 }],
    ['gemma3', { ...MODELS.gemma3!, slidingWindow: 256 }],
  ];
  for (const [i, [name, shape]] of variants.entries()) {
    const file = path.join(dir, `variant-${i}.gguf`);
    await writeGGUFModel(file, randomSpec(shape), randomWeights(randomSpec(MODELS[name]!), Object.keys(MODELS).indexOf(name) + 300));
    const original = path.join(dir, `${name}-f32.gguf`);
    const model = await loadModel(file, { contextLength: 256 });
    try {
      const prompts = PROMPTS.map((p) => model.tokenize(p));
      assert.notDeepEqual(await greedyContinuations(model, prompts, TOKENS), await llamaCppGreedyOnce(original, prompts), `variant ${i}`);
    } finally {
      model.dispose();
    }
  }
  const gemma2 = await loadModel(path.join(dir, 'gemma2-f32.gguf'), { contextLength: 64 });
  try {
    const logits = await gemma2.logits(gemma2.tokenize(PROMPTS[0]!));
    const max = logits.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(max < 5 && max > 4, `max |logit| ${max}: capped at 5, and the cap bites`);
  } finally {
    gemma2.dispose();
  }
  // Gemma 3 with its local layers on the global base (rope_local_base_freq = rope_theta).
  const spec3 = randomSpec(MODELS.gemma3!);
  const global = {
    ...spec3, layers: spec3.layers!.map((l) => (l.rope ? { ...l, rope: { theta: spec3.rope.theta, scaling: { type: 'none' as const } } } : l)),
  };
  const hfDir = path.join(dir, 'gemma3-global-rope');
  await writeHFModel(hfDir, global, randomWeights(spec3, Object.keys(MODELS).indexOf('gemma3') + 300));
  const model = await loadModel(hfDir, { contextLength: 256 });
  try {
    const prompts = PROMPTS.map((p) => model.tokenize(p));
    assert.notDeepEqual(await greedyContinuations(model, prompts, TOKENS), await llamaCppGreedyOnce(path.join(dir, 'gemma3-f32.gguf'), prompts));
  } finally {
    model.dispose();
  }
});

test('minerva convert of the Gemma 2 and Gemma 3 folders gives GGUFs that llama.cpp continues as the originals', { skip }, async () => {
  for (const name of ['gemma2', 'gemma3']) {
    const out = path.join(dir, `${name}-converted.gguf`);
    await convertModel(path.join(dir, name), out, { type: 'f32' });
    await assertSameAsLlamaCpp(out);
  }
});
