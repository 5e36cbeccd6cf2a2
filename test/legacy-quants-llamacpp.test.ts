// Q4_1, Q5_0, Q5_1 and IQ4_NL model files against llama.cpp (node-llama-cpp, CPU). node-llama-cpp
// cannot quantize, so the files are written by Minerva's quantizers (the bytes llama.cpp's own
// quantizers write: legacy-quants.test.ts) and llama.cpp dequantizes the same bytes: its logits and greedy
// continuations must agree with Minerva's on each file, and each file's logits must stay close to
// the F32 model's, by as much as the type's bits allow. A file mixing these types with Q4_K, Q6_K
// and Q8_0 (as llama-quantize's mixes do) runs too, on the cpu backend and on webgpu.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { llamaCppLogitsAndGreedy, relativeRMS } from './helpers/llamacpp.js';
import { loadModel, type Model } from '../src/index.js';
import type { DType } from '../src/quant/dtype.js';
import { randomSpec, randomWeights, writeGGUFModel, type RandomModelShape } from './helpers/random-model.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { collect } from './helpers/generation.js';
import { webgpuSkip } from './helpers/webgpu.js';

const TYPES = ['Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL'] as const;
const PROMPTS = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 ='];
const TOKENS = 16;
/** Rows of 64 and 128: whole blocks of 32, not of 256. */
const SMALL: RandomModelShape = { arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false };
/** Rows of 256 and 512, so that K-quant matrices can sit beside the others. */
const MIXED: RandomModelShape = { arch: 'llama', dim: 256, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: false };
/** The mixed file's type per tensor: each block-of-32 type on some matrix, and the K-quants on others. */
const MIX: [RegExp, DType][] = [
  [/blk\.0\.attn_q/, 'Q4_1'], [/blk\.0\.attn_k/, 'Q5_0'], [/blk\.0\.attn_v/, 'Q5_1'], [/blk\.0\.attn_output/, 'IQ4_NL'],
  [/blk\.0\.ffn_gate/, 'Q4_K'], [/blk\.0\.ffn_up/, 'Q5_0'], [/blk\.0\.ffn_down/, 'Q6_K'],
  [/blk\.1\.attn_[qk]\./, 'Q4_K'], [/blk\.1\.attn_v/, 'Q8_0'], [/blk\.1\.attn_output/, 'Q4_1'],
  [/blk\.1\.ffn_(gate|up)/, 'IQ4_NL'], [/blk\.1\.ffn_down/, 'Q5_1'], [/token_embd/, 'Q5_0'], [/output\.weight/, 'Q6_K'],
];
const mixType = (name: string) => MIX.find(([re]) => re.test(name))?.[1];

let dir: string;
let llama: Llama | undefined;
const file = (name: string) => path.join(dir, `${name}.gguf`);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-legacy-quants-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const spec = randomSpec(SMALL), weights = randomWeights(spec, 4100);
  await writeGGUFModel(file('f32'), spec, weights, { dtype: 'F32' });
  for (const t of [...TYPES, 'Q4_0', 'Q8_0'] as const) await writeGGUFModel(file(t), spec, weights, { dtype: t });
  const mixedSpec = randomSpec({ ...MIXED, vocabSize: spec.vocabSize }), mixedWeights = randomWeights(mixedSpec, 4101);
  await writeGGUFModel(file('mixed'), mixedSpec, mixedWeights, { dtype: 'F32', typeOf: mixType });
  await writeGGUFModel(file('mixed-f32'), mixedSpec, mixedWeights, { dtype: 'F32' });
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** llama.cpp on a file: logits at the end of each prompt and greedy continuations (F32 KV cache, no flash attention). */
async function llamaCppRun(path: string, prompts: number[][], vocabSize: number): Promise<{ logits: Float32Array[]; greedy: number[][] }> {
  return llamaCppLogitsAndGreedy(llama!, path, prompts, { vocabSize, maxTokens: TOKENS });
}

/**
 * Minerva's and llama.cpp's runs of one file: logits within `engines` (relative RMS; both round
 * activations to 8-bit blocks, llama.cpp's scales in f16 where Minerva's stay f32), and greedy
 * continuations equal token for token, or parting only where Minerva's top two logits are within
 * `tie` RMS of each other (both continuations are then right).
 */
async function assertAgreesWithLlamaCpp(what: string, model: Model, path: string, engines: number, tie: number): Promise<Float32Array[]> {
  const prompts = PROMPTS.map((p) => model.tokenize(p));
  const cpp = await llamaCppRun(path, prompts, model.info().spec.vocabSize);
  const mine: Float32Array[] = [];
  for (let i = 0; i < prompts.length; i++) {
    mine.push(await model.logits(prompts[i]!));
    const e = relativeRMS(mine[i]!, cpp.logits[i]!);
    assert.ok(e <= engines, `${what}, prompt ${i}: llama.cpp vs Minerva relative logit error ${e.toExponential(2)}`);
    const ours = (await collect(model.generate(prompts[i]!, { temperature: 0, maxTokens: TOKENS }))).tokens;
    const theirs = cpp.greedy[i]!;
    assert.equal(ours.length, TOKENS, `${what}: Minerva stopped early`);
    assert.equal(theirs.length, TOKENS, `${what}: llama.cpp stopped early`);
    const k = ours.findIndex((t, j) => t !== theirs[j]);
    if (k < 0) continue;
    const l = await model.logits([...prompts[i]!, ...ours.slice(0, k)]);
    const rms = Math.sqrt(l.reduce((s, v) => s + v * v, 0) / l.length);
    const gap = (l[ours[k]!]! - l[theirs[k]!]!) / rms;
    assert.ok(gap <= tie, `${what}, prompt ${i}: greedy paths part at token ${k} (${ours[k]} vs llama.cpp's ${theirs[k]}) ${gap.toExponential(2)} RMS apart`);
  }
  return mine;
}

for (const t of TYPES) {
  test(`${t} file: llama.cpp's logits and greedy continuations agree with Minerva's; close to F32`, { skip }, async () => {
    const model = await loadModel(file(t), { contextLength: 256, backend: 'cpu' });
    const f32 = await loadModel(file('f32'), { contextLength: 256, backend: 'cpu' });
    try {
      const mine = await assertAgreesWithLlamaCpp(t, model, file(t), 0.03, 0.12);
      let worst = 0;
      for (let i = 0; i < PROMPTS.length; i++) worst = Math.max(worst, relativeRMS(mine[i]!, await f32.logits(f32.tokenize(PROMPTS[i]!))));
      // The largest over the prompts, measured: Q4_1 0.21, IQ4_NL 0.21, Q5_0 0.14, Q5_1 0.10 (the
      // random model's logits amplify its weights' rounding; Q4_0 on the first prompt: 0.17).
      assert.ok(worst < (t.startsWith('Q5') ? 0.16 : 0.3), `${t}: relative logit error from F32 ${worst}`);
    } finally {
      model.dispose();
      f32.dispose();
    }
  });
}

test('the error from F32 follows the bits: Q8_0 < Q5_0, Q5_1 < Q4_0, Q4_1, IQ4_NL', { skip }, async () => {
  const f32 = await loadModel(file('f32'), { contextLength: 64, backend: 'cpu' });
  try {
    const ids = f32.tokenize(PROMPTS[0]!), ref = await f32.logits(ids);
    const rel = async (t: string) => {
      const m = await loadModel(file(t), { contextLength: 64, backend: 'cpu' });
      try { return relativeRMS(await m.logits(ids), ref); } finally { m.dispose(); }
    };
    const e = Object.fromEntries(await Promise.all(['Q8_0', 'Q5_1', 'Q5_0', 'Q4_1', 'Q4_0', 'IQ4_NL'].map(async (t) => [t, await rel(t)]))) as Record<string, number>;
    assert.ok(e.Q8_0! < e.Q5_1! && e.Q8_0! < e.Q5_0!, JSON.stringify(e));
    assert.ok(Math.max(e.Q5_0!, e.Q5_1!) < Math.min(e.Q4_1!, e.Q4_0!, e.IQ4_NL!), JSON.stringify(e));
  } finally {
    f32.dispose();
  }
});

test('a file mixing Q4_1, Q5_0, Q5_1, IQ4_NL, Q4_K, Q6_K and Q8_0 runs as llama.cpp runs it; cpu and webgpu agree', { skip }, async () => {
  const model = await loadModel(file('mixed'), { contextLength: 256, backend: 'cpu' });
  const f32 = await loadModel(file('mixed-f32'), { contextLength: 64, backend: 'cpu' });
  try {
    const mine = await assertAgreesWithLlamaCpp('mixed', model, file('mixed'), 0.03, 0.12);
    assert.ok(relativeRMS(mine[0]!, await f32.logits(f32.tokenize(PROMPTS[0]!))) < 0.2, 'close to F32');
    if (await webgpuSkip()) return;
    const gpu = await loadModel(file('mixed'), { contextLength: 64, backend: 'webgpu' });
    try {
      const ids = model.tokenize(PROMPTS[1]!);
      const e = relativeRMS(await gpu.logits(ids), await model.logits(ids));
      // webgpu multiplies in f32 where the cpu rounds x to 8-bit blocks.
      assert.ok(e < 0.03, `webgpu vs cpu relative logit error ${e}`);
    } finally {
      gpu.dispose();
    }
  } finally {
    model.dispose();
    f32.dispose();
  }
});
