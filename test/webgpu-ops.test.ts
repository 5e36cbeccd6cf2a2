// The webgpu backend's kernels against the reference backend, op by op, on random inputs with odd
// sizes and tails: matrix products for every weight type (decode and prefill kernels, biases,
// weights split over several bindings), embedding, rmsNorm (whole rows and per head), rope, attention (mixed sequences and
// positions, grouped-query heads, a sliding window), silu·up, add, gatherRows, copyKV.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionParams, Backend, Weight } from '../src/backends/backend.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { Rng } from '../src/engine/rng.js';
import { encodeBF16, encodeF16 } from '../src/quant/f16.js';
import { quantize } from '../src/quant/dequantize.js';
import type { DType } from '../src/quant/dtype.js';
import { createWebGpu, webgpuSkip } from './helpers/webgpu.js';
import { activations, assertClose, attentionSteps } from './helpers/backend-ops.js';
import { assertGemmaOpsMatchReference } from './helpers/gemma-ops.js';

const skip = await webgpuSkip();
const rng = new Rng(2024);
const random = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);

/** `values` ([n, k]) stored as `dtype`. */
function encode(dtype: DType, values: Float32Array): Uint8Array {
  switch (dtype) {
    case 'F32': return new Uint8Array(values.buffer.slice(0));
    case 'F16': return encodeF16(values);
    case 'BF16': return encodeBF16(values);
    default: return quantize(dtype, values);
  }
}

const SHAPES: Record<string, [number, number][]> = {
  float: [[1, 8], [5, 37], [70, 64], [33, 130]],
  block32: [[3, 32], [67, 96]],
  block256: [[5, 256], [37, 512]],
};

test('matmul equals the reference for every weight type, decode and prefill kernels, with and without bias', { skip }, async () => {
  const gpu = await createWebGpu(), ref = new ReferenceBackend();
  try {
    for (const dtype of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'Q5_K', 'Q3_K', 'Q2_K'] as DType[]) {
      const shapes = ['F32', 'F16', 'BF16'].includes(dtype) ? SHAPES.float! : dtype.endsWith('_K') ? SHAPES.block256! : SHAPES.block32!;
      for (const [n, k] of shapes) {
        const bytes = encode(dtype, random(n * k));
        const info = { name: 'w', dtype, shape: [n, k], byteLength: bytes.length };
        const wg = gpu.loadWeight(info, bytes), wr = ref.loadWeight(info, bytes);
        const biasValues = random(n);
        const biasInfo = { name: 'b', dtype: 'F32' as const, shape: [n], byteLength: 4 * n };
        const bg = gpu.loadWeight(biasInfo, new Uint8Array(biasValues.buffer)), br = ref.loadWeight(biasInfo, new Uint8Array(biasValues.buffer));
        for (const tokens of [1, 3, 8, 9, 70]) {
          const x = random(tokens * k);
          const run = async (be: Backend, w: Weight, b?: Weight) => {
            const o = be.createActivations(tokens, n);
            be.matmul(o, activations(be, tokens, k, x), w, b);
            return be.read(o);
          };
          const tol = 1e-5 * Math.sqrt(k);
          assertClose(await run(gpu, wg), await run(ref, wr), tol, `${dtype} [${n}, ${k}] × ${tokens} tokens`);
          if (tokens === 9 || tokens === 70) assertClose(await run(gpu, wg, bg), await run(ref, wr, br), tol, `${dtype} [${n}, ${k}] × ${tokens} tokens + bias`);
        }
      }
    }
  } finally {
    gpu.dispose();
  }
});

test('a token gets the same result from the decode and the prefill kernel (batch does not change it)', { skip }, async () => {
  const gpu = await createWebGpu();
  try {
    for (const dtype of ['F16', 'Q8_0', 'Q4_K', 'Q5_K', 'Q3_K', 'Q2_K'] as DType[]) {
      const [n, k] = [45, 512];
      const bytes = encode(dtype, random(n * k));
      const w = gpu.loadWeight({ name: 'w', dtype, shape: [n, k], byteLength: bytes.length }, bytes);
      const tokens = 20, x = random(tokens * k);
      const o = gpu.createActivations(tokens, n);
      gpu.matmul(o, activations(gpu, tokens, k, x), w); // the prefill (gemm) kernel
      const batch = await gpu.read(o);
      for (const t of [0, 7, 19]) {
        const one = gpu.createActivations(1, n);
        gpu.matmul(one, activations(gpu, 1, k, x.slice(t * k, (t + 1) * k)), w); // the decode (matvec) kernel
        assert.deepEqual(await gpu.read(one), batch.subarray(t * n, (t + 1) * n), `${dtype} token ${t}`);
      }
    }
  } finally {
    gpu.dispose();
  }
});

test('a weight split over several bindings gives the same products and embeddings', { skip }, async () => {
  const whole = await createWebGpu(), split = await createWebGpu({ maxWeightPartBytes: 1024 });
  try {
    for (const dtype of ['F32', 'Q8_0', 'Q6_K', 'Q3_K'] as DType[]) {
      const [n, k] = dtype.endsWith('_K') ? [50, 256] : [75, 64];
      const bytes = encode(dtype, random(n * k));
      const info = { name: 'w', dtype, shape: [n, k], byteLength: bytes.length };
      const ws = split.loadWeight(info, bytes), ww = whole.loadWeight(info, bytes);
      assert.ok((ws as unknown as { parts: unknown[] }).parts.length > 2, `${dtype}: the weight is split`);
      for (const tokens of [1, 12]) {
        const x = random(tokens * k);
        const run = async (be: Backend, w: Weight) => {
          const o = be.createActivations(tokens, n);
          be.matmul(o, activations(be, tokens, k, x), w);
          return be.read(o);
        };
        assert.deepEqual(await run(split, ws), await run(whole, ww), `${dtype} × ${tokens}`);
      }
      const ids = Int32Array.of(0, n - 1, 31, 7, 60 % n);
      const embed = async (be: Backend, w: Weight) => { const o = be.createActivations(ids.length, k); be.embed(o, w, ids); return be.read(o); };
      assert.deepEqual(await embed(split, ws), await embed(whole, ww), `${dtype} embed`);
    }
  } finally {
    whole.dispose();
    split.dispose();
  }
});

test('embed equals the reference for every weight type', { skip }, async () => {
  const gpu = await createWebGpu(), ref = new ReferenceBackend();
  try {
    for (const dtype of ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'Q5_K', 'Q3_K', 'Q2_K'] as DType[]) {
      const [n, k] = dtype.endsWith('_K') ? [9, 256] : dtype.startsWith('Q') ? [9, 64] : [9, 37];
      const bytes = encode(dtype, random(n * k));
      const info = { name: 't', dtype, shape: [n, k], byteLength: bytes.length };
      const ids = Int32Array.of(8, 0, 3, 3);
      const run = async (be: Backend) => { const o = be.createActivations(ids.length, k); be.embed(o, be.loadWeight(info, bytes), ids); return be.read(o); };
      assertClose(await run(gpu), await run(ref), 0, `${dtype} embed`);
    }
  } finally {
    gpu.dispose();
  }
});

test('attention equals the reference: mixed sequences and positions, GQA, odd head size, sliding window, long context', { skip }, async () => {
  const gpu = await createWebGpu();
  try {
    const cases: [AttentionParams, number[], number[], number[], number[], number][] = [];
    // Two prompts in one batch (slot 0: 7 tokens, slot 2: 4), then one decode token each.
    const prefill: [number[], number[]] = [[0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2], [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3]];
    const decode: [number[], number[]] = [[2, 0], [4, 7]];
    for (const p of [
      { nHeads: 4, nKVHeads: 2, headDim: 8, scale: 1 / Math.sqrt(8) },
      { nHeads: 6, nKVHeads: 3, headDim: 6, scale: 0.4 },
      { nHeads: 2, nKVHeads: 1, headDim: 16, scale: 0.25, slidingWindow: 3 },
      { nHeads: 2, nKVHeads: 2, headDim: 130, scale: 0.1 },
    ] as AttentionParams[]) cases.push([p, ...prefill, ...decode, 24]);
    // A context past one 256-position chunk: 300 prompt tokens, then a decode at 300.
    const long = Array.from({ length: 300 }, (_, i) => i);
    cases.push([{ nHeads: 2, nKVHeads: 1, headDim: 8, scale: 0.35 }, long.map(() => 1), long, [1], [300], 320]);
    cases.push([{ nHeads: 2, nKVHeads: 1, headDim: 8, scale: 0.35, slidingWindow: 260 }, long.map(() => 1), long, [1], [300], 320]);
    for (const [p, seqs1, pos1, seqs2, pos2, ctx] of cases) {
      const steps = [[seqs1, pos1], [seqs2, pos2]].map(([seqs, positions]) => {
        const n = seqs!.length;
        return {
          batch: { seqs: Int32Array.from(seqs!), positions: Int32Array.from(positions!) },
          q: random(n * p.nHeads * p.headDim), k: random(n * p.nKVHeads * p.headDim), v: random(n * p.nKVHeads * p.headDim),
        };
      });
      const expected = await attentionSteps(new ReferenceBackend(), p, steps, ctx);
      const actual = await attentionSteps(gpu, p, steps, ctx);
      for (let i = 0; i < steps.length; i++) {
        assertClose(actual[i]!, expected[i]!, 1e-5, `heads ${p.nHeads}/${p.nKVHeads}×${p.headDim}${p.slidingWindow ? ` window ${p.slidingWindow}` : ''} step ${i + 1}`);
      }
    }
  } finally {
    gpu.dispose();
  }
});

test('rmsNorm, add, silu·up, rope, gatherRows and copyKV equal the reference', { skip }, async () => {
  const gpu = await createWebGpu(), ref = new ReferenceBackend();
  try {
    for (const [rows, cols] of [[1, 7], [3, 64], [9, 300]] as const) {
      const x = random(rows * cols), y = random(rows * cols).map((v, i) => (i % 5 === 0 ? v * 60 : v)), w = random(cols);
      const norm = async (be: Backend) => {
        const o = be.createActivations(rows, cols);
        const weight = be.loadWeight({ name: 'norm', dtype: 'F32', shape: [cols], byteLength: 4 * cols }, new Uint8Array(w.buffer.slice(0)));
        be.rmsNorm(o, activations(be, rows, cols, x), weight, 1e-5);
        return be.read(o);
      };
      assertClose(await norm(gpu), await norm(ref), 1e-5, `rmsNorm [${rows}, ${cols}]`);
      const sum = async (be: Backend) => {
        const a = activations(be, rows, cols, x);
        be.add(a, a, activations(be, rows, cols, y)); // in place, as the graph does
        const b = be.createActivations(rows, cols);
        be.add(b, a, activations(be, rows, cols, x));
        return be.read(b);
      };
      assertClose(await sum(gpu), await sum(ref), 0, `add [${rows}, ${cols}]`);
      const silu = async (be: Backend) => {
        const g = activations(be, rows, cols, y);
        be.siluMul(g, g, activations(be, rows, cols, x)); // in place, as the graph does
        const o = be.createActivations(rows, cols);
        be.siluMul(o, activations(be, rows, cols, x), g);
        return be.read(o);
      };
      assertClose(await silu(gpu), await silu(ref), 1e-5, `silu·up [${rows}, ${cols}]`);
      const gather = async (be: Backend) => {
        const o = be.createActivations(2, cols);
        be.gatherRows(o, activations(be, rows, cols, x), Int32Array.of(rows - 1, 0));
        return be.read(o);
      };
      assertClose(await gather(gpu), await gather(ref), 0, `gatherRows [${rows}, ${cols}]`);
    }
    // A weight of one head's length: each head of each row normalised on its own (Qwen3's Q/K norm).
    for (const [rows, heads, headDim] of [[1, 4, 32], [7, 16, 128], [3, 2, 6]] as const) {
      const cols = heads * headDim;
      const x = random(rows * cols).map((v, i) => (i % headDim === 0 ? v * 40 : v)), w = random(headDim);
      const norm = async (be: Backend) => {
        const o = be.createActivations(rows, cols);
        const weight = be.loadWeight({ name: 'k_norm', dtype: 'F32', shape: [headDim], byteLength: 4 * headDim }, new Uint8Array(w.buffer.slice(0)));
        be.rmsNorm(o, activations(be, rows, cols, x), weight, 1e-6);
        return be.read(o);
      };
      assertClose(await norm(gpu), await norm(ref), 1e-5, `rmsNorm [${rows}, ${heads}·${headDim}] by heads`);
    }
    const nHeads = 3, headDim = 8, n = 5;
    const invFreq = Float32Array.from({ length: headDim / 2 }, (_, i) => 10000 ** (-2 * i / headDim));
    const batch = { positions: Int32Array.of(0, 1, 2, 7, 4000), seqs: Int32Array.of(0, 0, 0, 1, 2) };
    const other = { positions: Int32Array.of(3, 3, 9, 1, 2), seqs: batch.seqs };
    const q = random(n * nHeads * headDim);
    for (const style of ['interleaved', 'halves'] as const) {
      const rotate = async (be: Backend) => {
        const a = activations(be, n, nHeads * headDim, q);
        be.rope(a, batch, nHeads, headDim, { style, invFreq });
        const b = activations(be, n, nHeads * headDim, q); // a second batch must not reuse the first one's angles
        be.rope(b, other, nHeads, headDim, { style, invFreq });
        return [await be.read(a), await be.read(b)];
      };
      const [ga, gb] = await rotate(gpu), [ra, rb] = await rotate(ref);
      assertClose(ga!, ra!, 1e-5, `rope ${style}`);
      assertClose(gb!, rb!, 1e-5, `rope ${style}, next batch`);
      // Partial rotary (the first 6 of 8 dims) with cos/sin scaled: the rest passes through.
      const dims = 6;
      const partial = async (be: Backend) => {
        const a = activations(be, n, nHeads * headDim, q);
        be.rope(a, batch, nHeads, headDim, { style, invFreq: invFreq.subarray(0, dims / 2), dims, scale: 1.25 });
        return be.read(a);
      };
      const got = await partial(gpu);
      assertClose(got, await partial(ref), 1e-5, `rope ${style}, ${dims} of ${headDim} dims, scaled`);
      for (let i = 0; i < got.length; i++) if (i % headDim >= dims) assert.equal(got[i], q[i], `dim ${i % headDim} passes through`);
    }
    // copyKV: slot 0's first 3 positions copied to slot 2, then attention from slot 2 reads them.
    const p = { nHeads: 2, nKVHeads: 1, headDim: 4, scale: 0.5 };
    const kv = random(4 * 4), qq = random(4 * 8);
    const shared = async (be: Backend) => {
      const cache = be.createKVCache({ nLayers: 1, nKVHeads: 1, headDim: 4, maxSeqs: 3, ctxLen: 8 });
      const b1 = { positions: Int32Array.of(0, 1, 2), seqs: Int32Array.of(0, 0, 0) };
      const o1 = be.createActivations(3, 8);
      be.attention(o1, activations(be, 3, 8, qq.slice(0, 24)), activations(be, 3, 4, kv.slice(0, 12)), activations(be, 3, 4, kv.slice(0, 12).reverse()), cache, 0, b1, p);
      be.copyKV(cache, 0, 2, 3);
      const b2 = { positions: Int32Array.of(3), seqs: Int32Array.of(2) };
      const o2 = be.createActivations(1, 8);
      be.attention(o2, activations(be, 1, 8, qq.slice(24)), activations(be, 1, 4, kv.slice(12)), activations(be, 1, 4, kv.slice(12)), cache, 0, b2, p);
      return be.read(o2);
    };
    assertClose(await shared(gpu), await shared(ref), 1e-5, 'attention after copyKV');
  } finally {
    gpu.dispose();
  }
});

test('reads started together each get their own activations; aliasing an op\'s output and input is refused at once', { skip }, async () => {
  const gpu = await createWebGpu();
  try {
    const x = random(3 * 16), y = random(5 * 40);
    const a = activations(gpu, 3, 16, x), b = activations(gpu, 5, 40, y);
    const [ra, rb] = await Promise.all([gpu.read(a), gpu.read(b)]);
    assert.deepEqual(ra, x);
    assert.deepEqual(rb, y);
    const w = gpu.loadWeight({ name: 'norm', dtype: 'F32', shape: [16], byteLength: 64 }, new Uint8Array(random(16).buffer));
    assert.throws(() => gpu.rmsNorm(a, a, w, 1e-5), /rmsNorm: out must not alias x/);
    assert.throws(() => gpu.gatherRows(a, a, Int32Array.of(0)), /gatherRows: out must not alias x/);
    assert.deepEqual(await gpu.read(a), x, 'the backend still works after a refused op');
  } finally {
    gpu.dispose();
  }
});

test('Gemma\'s ops equal the reference: gelu(gate)·up, softcap, embed × √dim, attention with soft-capped scores', { skip }, async () => {
  const gpu = await createWebGpu();
  try {
    await assertGemmaOpsMatchReference(gpu, random);
  } finally {
    gpu.dispose();
  }
});
