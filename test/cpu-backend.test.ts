// The cpu backend end to end against the reference backend: same logits (to float tolerance) and
// the same greedy tokens on random-weight models in F32, F16 and BF16, and on the trained fixture.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadModel, openModel, type GenerateOptions, type Model } from '../src/index.js';
import { CpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { loadWeights } from '../src/model/load.js';
import { LlamaGraph } from '../src/model/arch/llama.js';
import { quantize } from '../src/quant/dequantize.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';
import { assertQuantOnLoadEqualsGGUF, collect, logitsDiff } from './helpers/generation.js';
import { assertBatchEqualsTokenByToken } from './helpers/backend-ops.js';

let dir: string;
const spec = randomSpec({ arch: 'qwen2', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false });

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-cpu-'));
  if (skip) return;
  const weights = randomWeights(spec, 21);
  for (const dtype of ['F32', 'F16', 'BF16'] as const) await writeHFModel(path.join(dir, dtype), spec, weights, { dtype });
  await writeGGUFModel(path.join(dir, 'f32.gguf'), spec, weights, { dtype: 'F32' });
  await writeGGUFModel(path.join(dir, 'q8.gguf'), spec, weights, { dtype: 'Q8_0' });
  await writeGGUFModel(path.join(dir, 'q4.gguf'), spec, weights, { dtype: 'Q4_0' });
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function greedy(m: Model, prompt: string, opts: GenerateOptions = {}): Promise<number[]> {
  return (await collect(m.generate(prompt, { temperature: 0, maxTokens: 16, ...opts }))).tokens;
}

for (const dtype of ['F32', 'F16', 'BF16']) {
  test(`${dtype} weights: cpu logits match the reference, greedy tokens equal`, { skip }, async () => {
    const ref = await loadModel(path.join(dir, dtype), { contextLength: 64 });
    const cpu = await loadModel(path.join(dir, dtype), { contextLength: 64, backend: 'cpu', threads: 2 });
    try {
      const ids = ref.tokenize('The quick brown fox jumps over the lazy dog');
      const { maxDiff, maxAbs } = logitsDiff(await ref.logits(ids), await cpu.logits(ids));
      assert.ok(maxDiff <= 1e-4 * maxAbs, `max |Δlogit| ${maxDiff} of ${maxAbs}`);
      for (const p of ['Once upon a time', 'Hello']) assert.deepEqual(await greedy(cpu, p), await greedy(ref, p), p);
    } finally {
      ref.dispose();
      cpu.dispose();
    }
  });
}

test('the cpu backend writes stories260K\'s golden text too', { skip }, async () => {
  const m = await loadModel(path.join(FIXTURES, 'llama2c/stories260K.bin'),
    { tokenizer: path.join(FIXTURES, 'llama2c/tok512.bin'), backend: 'cpu', threads: 2 });
  try {
    const { text } = await collect(m.generate('Zoo', { temperature: 0, maxTokens: 57 }));
    assert.equal(text, ' was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, '
      + 'red ball. She wanted to play with it, but she didn\'t want to play with');
  } finally {
    m.dispose();
  }
});

for (const [dtype, file, bound] of [['Q8_0', 'q8.gguf', 0.03], ['Q4_0', 'q4.gguf', 0.25]] as const) {
test(`${dtype} weights: the cpu backend stays as close to F32 as llama.cpp's 8-bit dot products do`, { skip }, async () => {
  const f32 = await loadModel(path.join(dir, 'f32.gguf'), { contextLength: 64 });
  const ref = await loadModel(path.join(dir, file), { contextLength: 64 });
  const cpu = await loadModel(path.join(dir, file), { contextLength: 64, backend: 'cpu', threads: 2 });
  try {
    const ids = f32.tokenize('The quick brown fox jumps over the lazy dog');
    const exact = await f32.logits(ids);
    const rel = (l: Float32Array) => {
      let num = 0, den = 0;
      for (let i = 0; i < l.length; i++) { num += (l[i]! - exact[i]!) ** 2; den += exact[i]! ** 2; }
      return Math.sqrt(num / den);
    };
    const eRef = rel(await ref.logits(ids)), eCpu = rel(await cpu.logits(ids));
    // x at 8 bits too: a little further from f32 than the weights' own rounding alone.
    assert.ok(eCpu < bound, `cpu ${dtype} relative logit error ${eCpu}`);
    assert.ok(eCpu < 3 * eRef + 0.005, `cpu ${eCpu} vs reference ${eRef}`);
  } finally {
    for (const m of [f32, ref, cpu]) m.dispose();
  }
});
}

// Decode runs the matvec kernels, prefill and batches the gemm kernels; both do the same arithmetic,
// so a sequence's logits are bit-identical however it was batched (what continuous batching needs
// for a greedy request to give the same tokens alone or beside others).
for (const [dtype, model] of [['F32', 'F32'], ['F16', 'F16'], ['BF16', 'BF16'], ['Q8_0', 'q8.gguf'], ['Q4_0', 'q4.gguf']] as const) {
test(`${dtype} weights: token-by-token decode and a mixed batch give bit-identical logits`, { skip }, async () => {
  const opened = await openModel(path.join(dir, model));
  const be = await CpuBackend.create(2);
  try {
    await assertBatchEqualsTokenByToken(be, opened);
  } finally {
    await opened.close();
    be.dispose();
  }
});
}

for (const [quant, file] of [['q8_0', 'q8.gguf'], ['q4_0', 'q4.gguf']] as const) {
  test(`quant: "${quant}" on an F32 SafeTensors folder equals the ${quant} GGUF of the same weights`, { skip }, async () => {
    await assertQuantOnLoadEqualsGGUF(path.join(dir, 'F32'), quant, path.join(dir, file));
  });
}

test('a quantized block with a non-finite scale is refused by name', async () => {
  const be = await CpuBackend.create(1);
  try {
    const bytes = quantize('Q8_0', Float32Array.from({ length: 64 }, (_, i) => i / 64));
    bytes[34 + 1] = 0x7e; // block 1's scale: NaN
    assert.throws(() => be.loadWeight({ name: 'blk.0.ffn_up.weight', dtype: 'Q8_0', shape: [1, 64], byteLength: bytes.length }, bytes),
      /cpu backend: blk\.0\.ffn_up\.weight: block 1 has a non-finite scale/);
  } finally {
    be.dispose();
  }
});

test('matrices whose rows do not fit the kernels are refused by name', { skip }, async () => {
  const odd = randomSpec({ arch: 'llama', dim: 12, nLayers: 1, nHeads: 2, nKVHeads: 2, ffnDim: 24, tied: true });
  await writeHFModel(path.join(dir, 'odd'), odd, randomWeights(odd, 1), { dtype: 'F16' });
  await assert.rejects(loadModel(path.join(dir, 'odd'), { backend: 'cpu', threads: 1 }),
    /cpu backend: token_embd\.weight has rows of 12, not a multiple of 8 \(F16 kernels\)/);
});

// wasm32 memories address 4 GiB: larger models spread their weights over several memories. With
// the per-memory limit lowered, a small model takes several shards and must give the same results.
// (F16: with subnormal values, moved to sparse rows at home from whichever memory holds the matrix.)
for (const model of ['q8.gguf', 'F16']) {
test(`weights spread over several wasm memories give bit-identical logits (${model})`, { skip }, async () => {
  const opened = await openModel(path.join(dir, model));
  const one = await CpuBackend.create(2), many = await CpuBackend.create(2, { weightBytesPerMemory: 20_000 });
  try {
    const run = async (be: CpuBackend) => {
      const graph = new LlamaGraph(be, opened.spec, await loadWeights(opened, be), { maxBatchTokens: 8, maxOutputs: 8 });
      const cache = be.createKVCache({ nLayers: spec.nLayers, nKVHeads: spec.nKVHeads, headDim: spec.headDim, maxSeqs: 1, ctxLen: 16 });
      const ids = [1, 450, 4996, 17354, 1701, 432];
      const prefill = await graph.forward(Int32Array.from(ids), { positions: Int32Array.from(ids.keys()), seqs: new Int32Array(ids.length) },
        Int32Array.from(ids.keys()), cache);
      const decode = await graph.forward(Int32Array.of(13), { positions: Int32Array.of(ids.length), seqs: Int32Array.of(0) }, Int32Array.of(0), cache);
      return [prefill.slice(), decode.slice()];
    };
    const [a, b] = [await run(one), await run(many)];
    assert.equal(one.shardCount, 1);
    assert.ok(many.shardCount >= 4, `${many.shardCount} memories`);
    assert.deepEqual(b, a);
  } finally {
    await opened.close();
    one.dispose();
    many.dispose();
  }
});
}
