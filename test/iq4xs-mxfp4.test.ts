// IQ4_XS and MXFP4 (4-bit codes into a table of values): the block layouts against hand-built
// blocks (MXFP4 against the OCP E2M1 values, not llama.cpp's doubled table), the quantizers'
// error, the cpu kernels against exact sums and decode against batch bit for bit, the webgpu
// kernels against the reference, and llama.cpp reading the files Minerva writes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { llamaCppLogitsAndGreedy, relativeRMS } from './helpers/llamacpp.js';
import type { Backend, Weight } from '../src/backends/backend.js';
import { CpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { createKernelMemory, loadMatvecKernels } from '../src/backends/cpu/kernel-module.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { Rng } from '../src/engine/rng.js';
import { loadModel, openModel, type Model } from '../src/index.js';
import { dequantize, quantize } from '../src/quant/dequantize.js';
import { encodeF16 } from '../src/quant/f16.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { collect } from './helpers/generation.js';
import { activations, assertBatchEqualsTokenByToken, assertClose } from './helpers/backend-ops.js';
import { randomSpec, randomWeights, writeGGUFModel } from './helpers/random-model.js';
import { createWebGpu, webgpuSkip } from './helpers/webgpu.js';

const TYPES = ['IQ4_XS', 'MXFP4'] as const;
const rng = new Rng(4242);
const normal = (n: number, scale: number) => Float32Array.from({ length: n }, () => {
  const u = Math.max(rng.next(), 1e-12), v = rng.next();
  return scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
});
const uniform = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);
const f = Math.fround;

test('a hand-built IQ4_XS block decodes as ggml lays it out', () => {
  // d = 0.25; sub-block j has the 6-bit scale ls_j (value d·(ls_j − 32)), chosen so every high-bit
  // pair and both signs occur.
  const table = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
  const ls = [0, 5, 17, 31, 32, 45, 63, 50];
  const block = new Uint8Array(136);
  block.set(encodeF16(Float32Array.of(0.25)), 0);
  let high = 0;
  ls.forEach((s, j) => { high |= (s >> 4) << (2 * j); block[4 + (j >> 1)]! |= (s & 15) << (4 * (j & 1)); });
  block[2] = high & 0xff;
  block[3] = high >> 8;
  const q = (e: number) => (e * 5 + 3) % 16;
  // Sub-block j's 16 bytes: element l in the low nibble of byte l, element l + 16 in the high one.
  for (let j = 0; j < 8; j++) for (let l = 0; l < 16; l++) block[8 + 16 * j + l] = q(32 * j + l) | (q(32 * j + 16 + l) << 4);
  const x = dequantize('IQ4_XS', block, 256);
  for (let e = 0; e < 256; e++) assert.equal(x[e], f(f(0.25 * (ls[e >> 5]! - 32)) * table[q(e)]!), `element ${e}`);
});

test('hand-built MXFP4 blocks decode to the OCP E2M1 values times 2^(e − 127)', () => {
  // E2M1: sign bit 3, then 2 exponent bits and 1 mantissa bit: 0, 0.5, 1, 1.5, 2, 3, 4, 6 (code 8,
  // −0, decodes as +0, as in llama.cpp's integer table).
  const e2m1 = (c: number) => (c & 8 ? -1 : 1) * [0, 0.5, 1, 1.5, 2, 3, 4, 6][c & 7]! + 0;
  const exponents = [0, 1, 2, 100, 127, 130, 254];
  const bytes = new Uint8Array(17 * exponents.length);
  const code = (b: number, i: number) => (b * 7 + i * 3) % 16;
  exponents.forEach((e, b) => {
    bytes[17 * b] = e;
    for (let l = 0; l < 16; l++) bytes[17 * b + 1 + l] = code(b, l) | (code(b, l + 16) << 4);
  });
  const x = dequantize('MXFP4', bytes, 32 * exponents.length);
  exponents.forEach((e, b) => {
    for (let i = 0; i < 32; i++) assert.equal(x[32 * b + i], f(e2m1(code(b, i)) * 2 ** (e - 127)), `block ${b} (e = ${e}) element ${i}`);
  });
});

test('the quantizers: error on Gaussian weights within what 4.25 bits allow, exact where the format is, bad input refused', () => {
  const x = normal(256 * 64, 0.02);
  const rel = (dtype: 'IQ4_XS' | 'MXFP4' | 'Q4_0' | 'Q8_0') => {
    const y = dequantize(dtype, quantize(dtype, x), x.length);
    let e = 0, s = 0;
    for (let i = 0; i < x.length; i++) { e += (x[i]! - y[i]!) ** 2; s += x[i]! ** 2; }
    return Math.sqrt(e / s);
  };
  const [iq4, fp4, q40, q80] = [rel('IQ4_XS'), rel('MXFP4'), rel('Q4_0'), rel('Q8_0')];
  // IQ4_XS's per-32 scales and non-linear values beat Q4_0 at fewer bits; MXFP4's power-of-two
  // scales and 8 magnitudes cost it more (measured ≈ 0.077 and 0.114).
  assert.ok(iq4 < 0.085 && iq4 < q40 && iq4 > q80, `IQ4_XS relative RMS error ${iq4} (Q4_0 ${q40}, Q8_0 ${q80})`);
  assert.ok(fp4 < 0.125 && fp4 > q40, `MXFP4 relative RMS error ${fp4} (Q4_0 ${q40})`);
  // Values the format holds exactly come back exactly: E2M1 values times a power of two.
  const exact = Float32Array.from({ length: 64 }, (_, i) => [0, 0.5, 1, 1.5, 2, 3, 4, 6][i % 8]! * (i % 3 ? 1 : -1) * 2 ** (i < 32 ? -7 : 5) + 0);
  assert.deepEqual(dequantize('MXFP4', quantize('MXFP4', exact), 64), exact);
  // A block of zeros: zero values (IQ4_XS's d is −0 there, as llama.cpp writes it: values −0).
  assert.ok(dequantize('IQ4_XS', quantize('IQ4_XS', new Float32Array(256)), 256).every((v) => v === 0));
  assert.ok(dequantize('MXFP4', quantize('MXFP4', new Float32Array(32)), 32).every((v) => v === 0));
  assert.throws(() => quantize('IQ4_XS', new Float32Array(100)), /IQ4_XS: 100 elements is not a whole number of blocks of 256/);
  assert.throws(() => quantize('MXFP4', new Float32Array(48)), /MXFP4: 48 elements is not a whole number of blocks of 32/);
  assert.throws(() => dequantize('MXFP4', new Uint8Array(16), 32), /MXFP4: 32 elements need 17 bytes, got 16/);
  assert.throws(() => quantize('IQ4_XS', Float32Array.from({ length: 256 }, (_, i) => (i === 9 ? Infinity : 0))), /non-finite value Infinity at index 9/);
});

/** Kernel memory with a bump allocator, above the module's static data. */
async function kernelArena() {
  const memory = createKernelMemory(64);
  const kernels = await loadMatvecKernels(memory);
  let top = 65536;
  const alloc = (bytes: number) => { const o = top; top = Math.ceil((top + bytes) / 64) * 64; return o; };
  const put = (bytes: Uint8Array) => { const o = alloc(bytes.length); new Uint8Array(memory.buffer, o, bytes.length).set(bytes); return o; };
  return { memory, kernels, alloc, put, reset: () => { top = 65536; } };
}

for (const dtype of TYPES) {
  test(`matvec${dtype} computes the exact block-scaled dot of ${dtype} weights and 8-bit x`, async () => {
    const { memory, kernels, alloc, put, reset } = await kernelArena();
    for (const [n, k] of [[1, 256], [7, 512], [13, 768], [4, 2048]] as const) {
      reset();
      const wBytes = quantize(dtype, normal(n * k, 0.05));
      const wOff = put(wBytes), xOff = put(new Uint8Array(normal(k, 1).buffer));
      const x16 = alloc(2 * k), xd = alloc(k / 8), outOff = alloc(4 * n);
      kernels.quantizeRowsQ8(xOff, x16, xd, k, 0, 1);
      kernels[`matvec${dtype}`](wOff, x16, xd, outOff, k, 1, n);
      const w = dequantize(dtype, wBytes, n * k);
      const xq = new Int16Array(memory.buffer, x16, k), dx = new Float32Array(memory.buffer, xd, k / 32);
      const out = new Float32Array(memory.buffer, outOff, n);
      for (let r = 1; r < n; r++) {
        let sum = 0, mag = 0;
        for (let i = 0; i < k; i++) { const p = w[r * k + i]! * dx[i >> 5]! * xq[i]!; sum += p; mag += Math.abs(p); }
        assert.ok(Math.abs(out[r]! - sum) <= 1e-5 * mag, `[${n}, ${k}] row ${r}: ${out[r]} vs ${sum}`);
      }
    }
  });

  // Decode (matvec) and prefill (gemm) add in the same order: any token count, row range and tile.
  test(`gemm${dtype} equals matmul${dtype} (decode) bit for bit, any token count, row range and tile`, async () => {
    const { memory, kernels, alloc, put, reset } = await kernelArena();
    const shapes: [number, number][] = dtype === 'IQ4_XS' ? [[3, 256], [23, 512]] : [[3, 32], [23, 96], [9, 1024]];
    for (const [n, k] of shapes) {
      for (const nTok of [1, 2, 3, 6]) {
        reset();
        const wOff = put(quantize(dtype, uniform(n * k)));
        const xOff = put(new Uint8Array(uniform(nTok * k).buffer));
        const x16 = alloc(nTok * k * 2), xd = alloc(nTok * k / 8 + 4);
        const viaMatvec = alloc(nTok * n * 4), viaGemm = alloc(nTok * n * 4);
        kernels.setScratch(alloc(16 * k + 64), 16 * k + 64, 0); // the 4-row minimum tile: larger shapes span several
        const [r0, r1] = [n > 4 ? 1 : 0, n];
        kernels.quantizeRowsQ8(xOff, x16, xd, k, 0, nTok);
        kernels[`matmul${dtype}`](wOff, x16, xd, viaMatvec, k, n, nTok, r0, r1);
        kernels[`gemm${dtype}`](wOff, x16, xd, viaGemm, k, n, nTok, r0, r1);
        const a = new Float32Array(memory.buffer, viaMatvec, nTok * n), b = new Float32Array(memory.buffer, viaGemm, nTok * n);
        for (let t = 0; t < nTok; t++) {
          for (let r = r0; r < r1; r++) assert.equal(b[t * n + r], a[t * n + r], `${dtype} [${n}, ${k}] token ${t} row ${r}`);
        }
      }
    }
  });
}

/** x · Wᵀ on a backend, for `tokens` rows of x. */
async function matmulOn(be: Backend, w: Weight, x: Float32Array, tokens: number, n: number, k: number): Promise<Float32Array> {
  const o = be.createActivations(tokens, n);
  be.matmul(o, activations(be, tokens, k, x), w);
  return be.read(o);
}

test('the cpu backend: matmul (decode and prefill) and embed against the reference; a NaN exponent refused by name', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    for (const dtype of TYPES) {
      const [n, k] = [37, 512];
      const bytes = quantize(dtype, uniform(n * k));
      const info = { name: 'w', dtype, shape: [n, k], byteLength: bytes.length };
      const wc = cpu.loadWeight(info, bytes), wr = ref.loadWeight(info, bytes);
      for (const tokens of [1, 9]) {
        const x = uniform(tokens * k);
        // x at 8 bits on the cpu: each output within a few 1/127 of the sum of |products|.
        const [a, b] = [await matmulOn(cpu, wc, x, tokens, n, k), await matmulOn(ref, wr, x, tokens, n, k)];
        const w = dequantize(dtype, bytes, n * k);
        for (let t = 0; t < tokens; t++) {
          for (let r = 0; r < n; r++) {
            let mag = 0;
            for (let i = 0; i < k; i++) mag += Math.abs(w[r * k + i]! * x[t * k + i]!);
            assert.ok(Math.abs(a[t * n + r]! - b[t * n + r]!) <= mag / 127, `${dtype} × ${tokens} token ${t} row ${r}: ${a[t * n + r]} vs ${b[t * n + r]}`);
          }
        }
      }
      const ids = Int32Array.of(36, 0, 5, 5);
      const embed = async (be: Backend, t: Weight) => { const o = be.createActivations(ids.length, k); be.embed(o, t, ids); return be.read(o); };
      assert.deepEqual(await embed(cpu, wc), await embed(ref, wr), `${dtype} embed`);
    }
    const bytes = quantize('MXFP4', uniform(64));
    bytes[17] = 0xff; // block 1's exponent: NaN in E8M0
    assert.throws(() => cpu.loadWeight({ name: 'blk.0.ffn_down.weight', dtype: 'MXFP4', shape: [1, 64], byteLength: bytes.length }, bytes),
      /cpu backend: blk\.0\.ffn_down\.weight: block 1 has a non-finite scale/);
  } finally {
    cpu.dispose();
  }
});

const gpuSkip = await webgpuSkip();

test('the webgpu backend: matmul (decode and prefill kernels) and embed against the reference, decode = prefill, split weights', { skip: gpuSkip }, async () => {
  const gpu = await createWebGpu(), split = await createWebGpu({ maxWeightPartBytes: 1024 }), ref = new ReferenceBackend();
  try {
    for (const dtype of TYPES) {
      for (const [n, k] of dtype === 'IQ4_XS' ? [[5, 256], [37, 512]] : [[3, 32], [67, 96], [37, 512]]) {
        const bytes = quantize(dtype, uniform(n * k));
        const info = { name: 'w', dtype, shape: [n, k], byteLength: bytes.length };
        const wg = gpu.loadWeight(info, bytes), wr = ref.loadWeight(info, bytes), ws = split.loadWeight(info, bytes);
        for (const tokens of [1, 3, 9, 70]) {
          const x = uniform(tokens * k);
          const onGpu = await matmulOn(gpu, wg, x, tokens, n, k);
          assertClose(onGpu, await matmulOn(ref, wr, x, tokens, n, k), 1e-5 * Math.sqrt(k), `${dtype} [${n}, ${k}] × ${tokens} tokens`);
          assert.deepEqual(await matmulOn(split, ws, x, tokens, n, k), onGpu, `${dtype} [${n}, ${k}] × ${tokens}, split weight`);
          if (tokens === 70) { // a token alone (the decode kernel) equals its row of the batch (the prefill kernel)
            for (const t of [0, 69]) assert.deepEqual(await matmulOn(gpu, wg, x.slice(t * k, (t + 1) * k), 1, n, k), onGpu.subarray(t * n, (t + 1) * n), `${dtype} token ${t}`);
          }
        }
        const ids = Int32Array.of(n - 1, 0, 2, 2);
        const embed = async (be: Backend, t: Weight) => { const o = be.createActivations(ids.length, k); be.embed(o, t, ids); return be.read(o); };
        assert.deepEqual(await embed(gpu, wg), await embed(ref, wr), `${dtype} [${n}, ${k}] embed`);
        assert.deepEqual(await embed(split, ws), await embed(ref, wr), `${dtype} [${n}, ${k}] embed, split weight`);
      }
    }
  } finally {
    gpu.dispose();
    split.dispose();
  }
});

// Random-weight Llama models whose every matrix (the embedding too) is IQ4_XS or MXFP4. llama.cpp
// dequantizes the same bytes; its dot products take x at 8 bits (MXFP4: blocks of 32 as Minerva's
// cpu backend; IQ4_XS: Q8_K blocks of 256), so logits agree to a few hundredths of their RMS
// (measured 0.010–0.022, against 0.16 and 0.26 from the F32 model: a misread block would be far
// off), and greedy paths may only part where the top two logits are that close (none did in 24
// tokens of 4 prompts).
const PROMPTS = ['Once upon a time', 'The quick brown fox jumps over', '1 + 1 = 2, 2 + 2 =', 'Über café 東京'];
const TOKENS = 24;
let dir: string;
let llama: Llama | undefined;
const spec = randomSpec({ arch: 'llama', dim: 256, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: true });

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-iq4xs-mxfp4-'));
  if (skip) return;
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }).catch(() => undefined);
  const weights = randomWeights(spec, 15);
  for (const dtype of ['F32', ...TYPES] as const) await writeGGUFModel(path.join(dir, `${dtype}.gguf`), spec, weights, { dtype });
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** llama.cpp on a file: logits at the end of each prompt (f32 KV cache), and greedy continuations. */
async function llamaCppRun(file: string, prompts: number[][]): Promise<{ logits: Float32Array[]; greedy: number[][] }> {
  return llamaCppLogitsAndGreedy(llama!, file, prompts, { vocabSize: spec.vocabSize, maxTokens: TOKENS, contextSize: 128 });
}

for (const dtype of TYPES) {
  test(`${dtype} GGUF: llama.cpp and Minerva (reference and cpu backends) give the same logits and continuations`, { skip }, async (t) => {
    if (!llama) return t.skip('node-llama-cpp could not load llama.cpp here');
    const file = path.join(dir, `${dtype}.gguf`);
    const ref = await loadModel(file, { contextLength: 128, backend: 'reference' });
    const cpu = await loadModel(file, { contextLength: 128, backend: 'cpu', threads: 2 });
    try {
      const prompts = PROMPTS.map((p) => ref.tokenize(p));
      const theirs = await llamaCppRun(file, prompts);
      for (const [name, m] of [['reference', ref], ['cpu', cpu]] as const) {
        for (let i = 0; i < prompts.length; i++) {
          const e = relativeRMS(await m.logits(prompts[i]!), theirs.logits[i]!);
          assert.ok(e < 0.04, `${name}, prompt ${i}: logits ${e} (relative RMS) from llama.cpp's`);
        }
        for (let i = 0; i < prompts.length; i++) {
          const ours = (await collect(m.generate(prompts[i]!, { temperature: 0, maxTokens: TOKENS }))).tokens;
          const k = ours.findIndex((tok, j) => tok !== theirs.greedy[i]![j]);
          if (k < 0) continue;
          // Parted: both picks must be near-ties of the logits at that point.
          const l = await ref.logits([...prompts[i]!, ...ours.slice(0, k)]);
          const rms = Math.sqrt(l.reduce((s, v) => s + v * v, 0) / l.length);
          const gap = (Math.max(l[ours[k]!]!, l[theirs.greedy[i]![k]!]!) - Math.min(l[ours[k]!]!, l[theirs.greedy[i]![k]!]!)) / rms;
          assert.ok(gap < 0.1, `${name}, prompt ${i}: greedy paths part at token ${k} (${ours[k]} vs llama.cpp's ${theirs.greedy[i]![k]}), ${gap} RMS apart`);
        }
      }
    } finally {
      ref.dispose();
      cpu.dispose();
    }
  });

  test(`${dtype} GGUF: logits close to the F32 model's, and the cpu backend's decode equals its batches bit for bit`, { skip }, async () => {
    const f32 = await loadModel(path.join(dir, 'F32.gguf'), { contextLength: 64, backend: 'reference' });
    const q = await loadModel(path.join(dir, `${dtype}.gguf`), { contextLength: 64, backend: 'reference' });
    const be = await CpuBackend.create(2);
    const opened = await openModel(path.join(dir, `${dtype}.gguf`));
    try {
      // The weights' own rounding (≈ 0.08 and 0.11 relative RMS per matrix), through two layers.
      const ids = f32.tokenize('The quick brown fox jumps over the lazy dog');
      const e = relativeRMS(await q.logits(ids), await f32.logits(ids));
      assert.ok(e < (dtype === 'IQ4_XS' ? 0.25 : 0.35), `${dtype} relative logit error ${e}`);
      await assertBatchEqualsTokenByToken(be, opened);
    } finally {
      for (const m of [f32, q] as Model[]) m.dispose();
      await opened.close();
      be.dispose();
    }
  });
}
