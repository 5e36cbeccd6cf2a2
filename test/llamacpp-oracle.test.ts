// llama.cpp as the oracle: random-weight Llama-family models (Llama, Qwen2, Qwen3) written as GGUF (F32 and F16) and as a
// Hugging Face folder with the same weights. llama.cpp (through node-llama-cpp, CPU, prebuilt)
// must agree with Minerva on tokenization and on greedy continuations, token for token; and the
// two load paths of Minerva must give the same logits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { loadModel, type Model } from '../src/index.js';
import {
  randomSpec, randomWeights, writeGGUFModel, writeHFModel,
  type RandomModelShape,
} from './helpers/random-model.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';
import { greedyContinuations, logitsDiff } from './helpers/generation.js';
import { llamaCppGreedy } from './helpers/llamacpp.js';

const MODELS: Record<string, RandomModelShape> = {
  'llama-gqa': { arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false },
  'llama-tied': { arch: 'llama', dim: 96, nLayers: 2, nHeads: 3, nKVHeads: 3, ffnDim: 160, tied: true },
  'qwen2-bias': { arch: 'qwen2', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 1, ffnDim: 128, tied: true },
  'llama3-rope': {
    arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false, ropeTheta: 500000,
    llama3Rope: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 },
  },
  // Qwen3: per-head Q/K norm, a head size that is not dim / heads (as Qwen3-0.6B: 1024, 16 × 128).
  'qwen3': { arch: 'qwen3', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, headDim: 32, ffnDim: 128, tied: true, ropeTheta: 1000000 },
};
const PROMPTS = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 =', 'Über café 東京 🚀'];
const TOKENS = 32;

let dir: string;
let llama: Llama | undefined;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-oracle-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  let seed = 100;
  for (const [name, shape] of Object.entries(MODELS)) {
    const spec = randomSpec(shape);
    const weights = randomWeights(spec, seed++);
    await writeHFModel(path.join(dir, name), spec, weights);
    await writeGGUFModel(path.join(dir, `${name}-f32.gguf`), spec, weights, { dtype: 'F32' });
    await writeGGUFModel(path.join(dir, `${name}-f16.gguf`), spec, weights, { dtype: 'F16' });
    await writeGGUFModel(path.join(dir, `${name}-q8_0.gguf`), spec, weights, { dtype: 'Q8_0' });
    await writeGGUFModel(path.join(dir, `${name}-q4_0.gguf`), spec, weights, { dtype: 'Q4_0' });
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
    const hf = await loadModel(path.join(dir, name), { contextLength: 64 });
    const gguf = await loadModel(path.join(dir, `${name}-f32.gguf`), { contextLength: 64 });
    try {
      for (const p of PROMPTS) {
        const ids = hf.tokenize(p);
        assert.deepEqual(gguf.tokenize(p), ids, 'same tokens from tokenizer.json and GGUF vocab');
        const { maxDiff, maxAbs } = logitsDiff(await hf.logits(ids), await gguf.logits(ids));
        // Only the order of float additions differs (Q/K rows are permuted in GGUF).
        assert.ok(maxDiff <= 1e-5 * maxAbs, `max |Δlogit| ${maxDiff} of ${maxAbs}`);
      }
    } finally {
      hf.dispose();
      gguf.dispose();
    }
  });
}

// llama.cpp multiplies Q8_0/Q4_0 weights with activations quantized to 8 bits, so its greedy path
// may part from an f32 computation; what must hold is that the quantized files run and stay close
// to the f32 model, more so at 8 bits than at 4.
test('Q8_0 and Q4_0 GGUF files run, with logits close to the F32 model', { skip }, async () => {
  const name = 'llama-gqa';
  const load = (dtype: string) => loadModel(path.join(dir, `${name}-${dtype}.gguf`), { contextLength: 64 });
  const [f32, q8, q4] = [await load('f32'), await load('q8_0'), await load('q4_0')];
  try {
    const ids = f32.tokenize(PROMPTS[0]!);
    const ref = await f32.logits(ids);
    const rel = async (m: Model) => {
      const l = await m.logits(ids);
      let num = 0, den = 0;
      for (let i = 0; i < l.length; i++) { num += (l[i]! - ref[i]!) ** 2; den += ref[i]! ** 2; }
      return Math.sqrt(num / den);
    };
    const e8 = await rel(q8), e4 = await rel(q4);
    assert.ok(e8 < 0.02, `Q8_0 relative logit error ${e8}`);
    assert.ok(e4 < 0.2, `Q4_0 relative logit error ${e4}`);
    assert.ok(e8 < e4, 'Q8_0 is closer than Q4_0');
  } finally {
    for (const m of [f32, q8, q4]) m.dispose();
  }
});

test('tokenization equals llama.cpp\'s on unicode, spaces, digits, emoji and special tokens', { skip }, async () => {
  const file = path.join(dir, 'llama-gqa-f32.gguf');
  const model = await llama!.loadModel({ modelPath: file });
  const ours = await loadModel(file, { contextLength: 32 });
  const oursHF = await loadModel(path.join(dir, 'llama-gqa'), { contextLength: 32 });
  try {
    const texts = [
      'Hello world', ' Hello world', 'Hello  world', '  leading and trailing  ', '\n\n\tTabs\tand\nnewlines\n',
      '1234567890 3.14159 1,000,000', 'Ünïcödé façade naïve résumé', '日本語のテキスト 中文 한국어', 'Привет, мир!',
      '🚀🔥👍🏽 👨‍👩‍👧‍👦', 'emoji🙂inside', '<s>a</s> [INST] b [/INST]', 'x </s> y', 'don\'t won\'t y\'all', 'x'.repeat(50),
      '', ' ', 'a\u00a0b', '\u0000',
    ];
    for (const t of texts) {
      const expected = [...model.tokenize(t, true)];
      assert.deepEqual(ours.tokenize(t, { addSpecial: false }), expected, `GGUF vocab, text ${JSON.stringify(t)}`);
      // The fixture's tokenizer.json stores piece 30081 as a plain space where the original
      // vocabulary (and the GGUF) has U+00A0, so texts with a no-break space differ by design.
      if (t.includes('\u00a0')) continue;
      assert.deepEqual(oursHF.tokenize(t, { addSpecial: false }), expected, `tokenizer.json, text ${JSON.stringify(t)}`);
    }
  } finally {
    ours.dispose();
    oursHF.dispose();
    await model.dispose();
  }
});

test('a GGUF converted by llama.cpp itself (llama-2-tiny-random, F16) continues as in llama.cpp', { skip }, async () => {
  const file = path.join(FIXTURES, 'gguf/llama-2-tiny-random.gguf');
  const model = await loadModel(file, { contextLength: 256 });
  try {
    const prompts = PROMPTS.map((p) => model.tokenize(p));
    const expected = await llamaCppGreedy(llama!, file, prompts, TOKENS);
    assert.deepEqual(await greedyContinuations(model, prompts, TOKENS), expected);
  } finally {
    model.dispose();
  }
});
