// Q4_K and Q6_K (ggml's K-quants): the block layouts against hand-built blocks, the quantizers'
// error, the cpu kernels against exact sums, and llama.cpp reading the files Minerva writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { createKernelMemory, loadMatvecKernels } from '../src/backends/cpu/kernel-module.js';
import { Rng } from '../src/engine/rng.js';
import { encodeF16 } from '../src/quant/f16.js';
import { dequantize, quantize } from '../src/quant/dequantize.js';
import { loadModel } from '../src/index.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { llamaCppGreedy } from './helpers/llamacpp.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';
import { assertQuantOnLoadEqualsGGUF } from './helpers/generation.js';

const rng = new Rng(77);
const normal = (n: number, scale: number) => Float32Array.from({ length: n }, () => {
  const u = Math.max(rng.next(), 1e-12), v = rng.next();
  return scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
});
const f16 = (v: number) => { const b = encodeF16(Float32Array.of(v)); return [b[0]!, b[1]!]; };

test('a hand-built Q4_K block decodes as ggml lays it out', () => {
  // d = 0.5, dmin = 0.25; sub-block j has scale j + 1 and min 2j + 3 (j ≥ 4 exercises the split bits).
  const sc = [1, 2, 3, 4, 45, 50, 60, 63], m = [3, 5, 7, 9, 11, 33, 48, 62];
  const block = new Uint8Array(144);
  block.set([...f16(0.5), ...f16(0.25)], 0);
  for (let j = 0; j < 4; j++) {
    block[4 + j] = sc[j]! | ((sc[j + 4]! >> 4) << 6);
    block[8 + j] = m[j]! | ((m[j + 4]! >> 4) << 6);
    block[12 + j] = (sc[j + 4]! & 15) | ((m[j + 4]! & 15) << 4);
  }
  const q = (e: number) => (e * 5 + 3) % 16;
  // Chunk c of 64 elements: byte l holds element l (low nibble) and element 32 + l (high).
  for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) block[16 + 32 * c + l] = q(64 * c + l) | (q(64 * c + 32 + l) << 4);
  const x = dequantize('Q4_K', block, 256);
  for (let e = 0; e < 256; e++) {
    const j = e >> 5;
    assert.equal(x[e], Math.fround(Math.fround(0.5 * sc[j]!) * q(e)) - Math.fround(0.25 * m[j]!), `element ${e}`);
  }
});

test('a hand-built Q6_K block decodes as ggml lays it out', () => {
  // d = 0.125; sub-block j (16 elements) has int8 scale 9 − 3j (negative ones too).
  const block = new Uint8Array(210);
  const sc = Array.from({ length: 16 }, (_, j) => 9 - 3 * j);
  sc.forEach((s, j) => { block[192 + j] = s & 0xff; });
  block.set(f16(0.125), 208);
  const q = (e: number) => (e * 7 + 11) % 64;
  // Per half of 128: ql[l] = low bits of l (low nibble) and l + 64 (high); ql[l + 32] = l + 32 and
  // l + 96; qh[l] = high bit pairs of l, l + 32, l + 64, l + 96.
  for (let h = 0; h < 2; h++) {
    for (let l = 0; l < 32; l++) {
      const [a, b, c, d] = [0, 32, 64, 96].map((o) => q(128 * h + o + l));
      block[64 * h + l] = (a! & 15) | ((c! & 15) << 4);
      block[64 * h + 32 + l] = (b! & 15) | ((d! & 15) << 4);
      block[128 + 32 * h + l] = (a! >> 4) | ((b! >> 4) << 2) | ((c! >> 4) << 4) | ((d! >> 4) << 6);
    }
  }
  const x = dequantize('Q6_K', block, 256);
  for (let e = 0; e < 256; e++) assert.equal(x[e], Math.fround(Math.fround(0.125 * sc[e >> 4]!) * (q(e) - 32)), `element ${e}`);
});

test('the quantizers: error on Gaussian weights, Q6_K < Q4_K < Q4_0, and bad input refused', () => {
  const x = normal(256 * 32, 0.02);
  const rel = (dtype: 'Q6_K' | 'Q4_K' | 'Q4_0') => {
    const y = dequantize(dtype, quantize(dtype, x), x.length);
    let e = 0, s = 0;
    for (let i = 0; i < x.length; i++) { e += (x[i]! - y[i]!) ** 2; s += x[i]! ** 2; }
    return Math.sqrt(e / s);
  };
  const [e6, e4k, e40] = [rel('Q6_K'), rel('Q4_K'), rel('Q4_0')];
  assert.ok(e6 < 0.025, `Q6_K relative RMS error ${e6}`);
  assert.ok(e4k < 0.085, `Q4_K relative RMS error ${e4k}`);
  assert.ok(e6 < e4k && e4k < e40, `${e6} < ${e4k} < ${e40}`);
  assert.throws(() => quantize('Q4_K', new Float32Array(100)), /Q4_K: 100 elements is not a whole number of blocks of 256/);
  assert.throws(() => dequantize('Q6_K', new Uint8Array(209), 256), /Q6_K: 256 elements need 210 bytes, got 209/);
  assert.throws(() => quantize('Q6_K', Float32Array.from({ length: 256 }, (_, i) => (i === 7 ? NaN : 0))), /non-finite value NaN at index 7/);
});

for (const dtype of ['Q4_K', 'Q6_K'] as const) {
  test(`matvec${dtype} computes the exact block-scaled dot of ${dtype} weights and 8-bit x`, async () => {
    const memory = createKernelMemory(64);
    const kernels = await loadMatvecKernels(memory);
    for (const [n, k] of [[1, 256], [7, 512], [13, 768], [4, 2048]] as const) {
      const wBytes = quantize(dtype, normal(n * k, 0.05));
      const x = normal(k, 1);
      const base = 65536, wOff = base, xOff = wOff + Math.ceil(wBytes.length / 64) * 64, x16 = xOff + 4 * k, xd = x16 + 2 * k, xt = xd + k / 8, outOff = xt + k / 8;
      new Uint8Array(memory.buffer).set(wBytes, wOff);
      new Float32Array(memory.buffer, xOff, k).set(x);
      kernels.quantizeRowsQ8(xOff, x16, xd, k, 0, 1);
      if (dtype === 'Q4_K') {
        kernels.blockSumsQ8(x16, xd, xt, k, 0, 1);
        kernels.matmulQ4_K(wOff, x16, xd, xt, outOff, k, n, 1, 1, n);
      } else {
        kernels.matmulQ6_K(wOff, x16, xd, outOff, k, n, 1, 1, n);
      }
      const w = dequantize(dtype, wBytes, n * k);
      const xq = new Int16Array(memory.buffer, x16, k), dx = new Float32Array(memory.buffer, xd, k / 32);
      const out = new Float32Array(memory.buffer, outOff, n);
      for (let r = 1; r < n; r++) {
        let sum = 0, mag = 0;
        for (let i = 0; i < k; i++) { sum += w[r * k + i]! * dx[i >> 5]! * xq[i]!; mag += Math.abs(w[r * k + i]! * dx[i >> 5]! * xq[i]!); }
        assert.ok(Math.abs(out[r]! - sum) <= 1e-5 * mag, `[${n}, ${k}] row ${r}: ${out[r]} vs ${sum}`);
      }
    }
  });
}

// llama.cpp reads the K-quant files Minerva writes and predicts as Minerva does: a wrong block
// layout on either side makes a different model, whose choice would rank anywhere among 32000.
// llama.cpp quantizes activations in blocks of 256 for K-quants and Minerva in blocks of 32, so
// where two candidates are within a few hundredths the pick may differ (seen: 16.16 vs 16.09 on
// one prompt): the check is that llama.cpp's next token is one of Minerva's near-best.
let dir: string;
let llama: Llama | undefined;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-kquants-'));
  if (!skip) llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }).catch(() => undefined);
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

for (const dtype of ['Q4_K', 'Q6_K'] as const) {
  test(`${dtype} GGUF: llama.cpp and Minerva continue alike`, { skip }, async (t) => {
    if (!llama) return t.skip('node-llama-cpp could not load llama.cpp here');
    const spec = randomSpec({ arch: 'llama', dim: 256, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: false });
    const file = path.join(dir, `${dtype}.gguf`);
    await writeGGUFModel(file, spec, randomWeights(spec, 5), { dtype });
    const model = await loadModel(file, { contextLength: 256 });
    try {
      const prompts = ['Once upon a time', 'The quick brown fox', '1 + 1 =', 'Hello', 'Über café', 'x y z'].map((p) => model.tokenize(p));
      const expected = await llamaCppGreedy(llama, file, prompts, 1);
      let same = 0;
      for (let i = 0; i < prompts.length; i++) {
        const logits = await model.logits(prompts[i]!);
        const best = logits.reduce((m, v) => Math.max(m, v), -Infinity);
        const theirs = expected[i]![0]!;
        assert.ok(best - logits[theirs]! < 0.25, `prompt ${i}: llama.cpp's ${theirs} is ${best - logits[theirs]!} below our best`);
        if (logits[theirs] === best) same++;
      }
      assert.ok(same >= prompts.length / 2, `the same first token for ${same} of ${prompts.length} prompts`);
    } finally {
      model.dispose();
    }
  });
}

test('quant: "q4_k" on an F32 SafeTensors folder equals the Q4_K GGUF of the same weights', { skip }, async () => {
  const spec = randomSpec({ arch: 'llama', dim: 256, nLayers: 1, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: true });
  const weights = randomWeights(spec, 6);
  await writeHFModel(path.join(dir, 'hf'), spec, weights);
  await writeGGUFModel(path.join(dir, 'q4k.gguf'), spec, weights, { dtype: 'Q4_K' });
  await assertQuantOnLoadEqualsGGUF(path.join(dir, 'hf'), 'q4_k', path.join(dir, 'q4k.gguf'));
});
