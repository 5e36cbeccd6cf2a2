// The cpu backend's own op kernels (attention, silu·up, rmsNorm whole rows and per head, add, rope;
// embed for every stored dtype, gatherRows, the KV store, copyKV, bias, addRmsNorm) against the reference backend, op by op:
// random inputs, odd head sizes, grouped-query heads, a sliding window, and batches that mix
// sequences at different positions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionParams, Backend, Weight } from '../src/backends/backend.js';
import type { TensorInfo } from '../src/formats/tensor.js';
import { quantize } from '../src/quant/dequantize.js';
import type { DType } from '../src/quant/dtype.js';
import { CpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { Rng } from '../src/engine/rng.js';
import { encodeF16 } from '../src/quant/f16.js';
import { activations, assertClose, attentionSteps, copyKVContinues } from './helpers/backend-ops.js';
import { assertGemmaOpsMatchReference } from './helpers/gemma-ops.js';
import { LlamaGraph } from '../src/model/arch/llama.js';
import { randomSpec, randomWeights, type RandomModelShape } from '../src/model/random-model.js';

const rng = new Rng(99);

const random = (n: number) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);

test('attention equals the reference: mixed sequences and positions, GQA, odd head size, sliding window', async () => {
  const cpu = await CpuBackend.create(2);
  try {
    for (const p of [
      { nHeads: 4, nKVHeads: 2, headDim: 8, scale: 1 / Math.sqrt(8) },
      { nHeads: 6, nKVHeads: 3, headDim: 6, scale: 0.4 },
      { nHeads: 2, nKVHeads: 1, headDim: 16, scale: 0.25, slidingWindow: 3 },
    ] as AttentionParams[]) {
      // Step 1: sequence 0 gets 7 tokens, sequence 2 gets 4 (prefill of two prompts in one batch).
      const seqs1 = [0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2], pos1 = [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3];
      // Step 2: one decode token each, at their next positions.
      const seqs2 = [2, 0], pos2 = [4, 7];
      const steps = [[seqs1, pos1], [seqs2, pos2]].map(([seqs, positions]) => {
        const n = seqs!.length;
        return {
          batch: { seqs: Int32Array.from(seqs!), positions: Int32Array.from(positions!) },
          q: random(n * p.nHeads * p.headDim), k: random(n * p.nKVHeads * p.headDim), v: random(n * p.nKVHeads * p.headDim),
        };
      });
      const expected = await attentionSteps(new ReferenceBackend(), p, steps);
      const actual = await attentionSteps(cpu, p, steps);
      for (let i = 0; i < steps.length; i++) assertClose(actual[i]!, expected[i]!, 1e-5, `heads ${p.nHeads}/${p.nKVHeads}×${p.headDim} step ${i + 1}`);
    }
  } finally {
    cpu.dispose();
  }
});

test('silu(gate)·up equals the reference, including large and tiny gates', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    const rows = 3, cols = 37;
    const gate = random(rows * cols).map((x, i) => (i % 5 === 0 ? x * 40 : x)), up = random(rows * cols);
    const run = async (be: Backend) => {
      const o = be.createActivations(rows, cols);
      be.siluMul(o, activations(be, rows, cols, gate), activations(be, rows, cols, up));
      return be.read(o);
    };
    assertClose(await run(cpu), await run(ref), 1e-6, 'silu·up');
  } finally {
    cpu.dispose();
  }
});

test('rmsNorm, add and rope equal the reference: odd widths, many rows, both RoPE layouts, mixed positions', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    for (const [rows, cols] of [[1, 7], [3, 64], [9, 130]] as const) {
      const x = random(rows * cols), y = random(rows * cols), w = random(cols);
      const norm = async (be: Backend) => {
        const o = be.createActivations(rows, cols);
        const weight = be.loadWeight({ name: 'norm', dtype: 'F32', shape: [cols], byteLength: 4 * cols }, new Uint8Array(w.buffer.slice(0)));
        be.rmsNorm(o, activations(be, rows, cols, x), weight, 1e-5);
        return be.read(o);
      };
      assertClose(await norm(cpu), await norm(ref), 1e-5, `rmsNorm [${rows}, ${cols}]`);
      const sum = async (be: Backend) => {
        const a = activations(be, rows, cols, x);
        be.add(a, a, activations(be, rows, cols, y)); // in place, as the graph does
        return be.read(a);
      };
      assertClose(await sum(cpu), await sum(ref), 0, `add [${rows}, ${cols}]`);
    }
    const nHeads = 3, headDim = 8, n = 5;
    const invFreq = Float32Array.from({ length: headDim / 2 }, (_, i) => 10000 ** (-2 * i / headDim));
    const batch = { positions: Int32Array.of(0, 1, 2, 7, 4000), seqs: Int32Array.of(0, 0, 0, 1, 2) };
    const q = random(n * nHeads * headDim);
    for (const style of ['interleaved', 'halves'] as const) {
      const rotate = async (be: Backend) => {
        const a = activations(be, n, nHeads * headDim, q);
        be.rope(a, batch, nHeads, headDim, { style, invFreq });
        return be.read(a);
      };
      assertClose(await rotate(cpu), await rotate(ref), 1e-5, `rope ${style}`);
    }
    // A second batch with other positions must not reuse the first one's angles.
    const other = { positions: Int32Array.of(3, 3, 9, 1, 2), seqs: batch.seqs };
    const again = async (be: Backend) => {
      const a = activations(be, n, nHeads * headDim, q);
      be.rope(a, batch, nHeads, headDim, { style: 'halves', invFreq });
      const b = activations(be, n, nHeads * headDim, q);
      be.rope(b, other, nHeads, headDim, { style: 'halves', invFreq });
      return be.read(b);
    };
    assertClose(await again(cpu), await again(ref), 1e-5, 'rope, next batch');
    // Partial rotary (Phi-4-mini: the first dims of each head) with cos/sin scaled (LongRoPE's
    // attention factor): the rest of each head passes through unchanged.
    const dims = 6, partFreq = invFreq.subarray(0, dims / 2);
    for (const style of ['interleaved', 'halves'] as const) {
      const partial = async (be: Backend) => {
        const a = activations(be, n, nHeads * headDim, q);
        be.rope(a, batch, nHeads, headDim, { style, invFreq: partFreq, dims, scale: 1.25 });
        return be.read(a);
      };
      const got = await partial(cpu);
      assertClose(got, await partial(ref), 1e-5, `rope ${style}, ${dims} of ${headDim} dims, scaled`);
      for (let i = 0; i < got.length; i++) if (i % headDim >= dims) assert.equal(got[i], q[i], `dim ${i % headDim} passes through`);
    }
  } finally {
    cpu.dispose();
  }
});

test('rmsNorm with a weight shorter than the row normalises each group (Qwen3 per-head Q/K norm), equal to the reference', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    // [tokens, heads, headDim]: decode (1 token) and a batch many enough for the worker pool.
    for (const [rows, heads, headDim] of [[1, 4, 32], [7, 16, 128], [3, 2, 6]] as const) {
      const cols = heads * headDim;
      const x = random(rows * cols).map((v, i) => (i % headDim === 0 ? v * 40 : v)), w = random(headDim);
      const norm = async (be: Backend, r: number, c: number) => {
        const o = be.createActivations(r, c);
        const weight = be.loadWeight({ name: 'q_norm', dtype: 'F32', shape: [headDim], byteLength: 4 * headDim }, new Uint8Array(w.buffer.slice(0)));
        be.rmsNorm(o, activations(be, r, c, x), weight, 1e-6);
        return be.read(o);
      };
      const perHead = await norm(ref, rows, cols);
      // The definition: each head is a row of its own.
      assertClose(perHead, await norm(ref, rows * heads, headDim), 0, `reference [${rows}, ${heads}·${headDim}] vs heads as rows`);
      assertClose(await norm(cpu, rows, cols), perHead, 1e-5, `rmsNorm [${rows}, ${heads}·${headDim}] by heads`);
    }
    for (const be of [cpu, ref] as Backend[]) {
      const weight = be.loadWeight({ name: 'q_norm', dtype: 'F32', shape: [5], byteLength: 20 }, new Uint8Array(20));
      assert.throws(() => be.rmsNorm(be.createActivations(2, 12), activations(be, 2, 12, random(24)), weight, 1e-6),
        /rmsNorm: a weight of 5 does not divide rows of 12/, be.name);
    }
  } finally {
    cpu.dispose();
  }
});

// f16 subnormals are moved out of the matrix at load (multiplying subnormals is slow on Intel) and
// added back as sparse products: results stay those of the exact values, on every kernel path.
test('F16 weights with subnormal values: matmul (decode and prefill) and embed equal the reference', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    const [n, k] = [37, 64];
    const values = random(n * k);
    // A fifth of the values subnormal (|w| < 2^-14), both signs, some rows without any.
    for (let i = 0; i < values.length; i++) if (i % 5 === 0 && Math.floor(i / k) % 7 !== 3) values[i] = (i % 2 ? -1 : 1) * (i % 1000) * 2 ** -24;
    const bytes = encodeF16(values);
    const info = { name: 'w', dtype: 'F16' as const, shape: [n, k], byteLength: bytes.length };
    const wc = cpu.loadWeight(info, bytes.slice()), wr = ref.loadWeight(info, bytes.slice());
    for (const tokens of [1, 2, 5]) {
      const x = random(tokens * k);
      x[3] = 40000; // |x| ≥ 2^16 for one token: the exact f16 kernel instead of the scaled one
      const out = async (be: Backend, w: typeof wc) => {
        const o = be.createActivations(tokens, n);
        be.matmul(o, activations(be, tokens, k, x), w);
        return be.read(o);
      };
      assertClose(await out(cpu, wc), await out(ref, wr), 1e-5, `${tokens} tokens`);
      if (tokens > 1) {
        // Each token alone (matvec) gives what the batch gave it (gemm), bit for bit.
        const batch = await out(cpu, wc);
        for (let t = 0; t < tokens; t++) {
          const o = cpu.createActivations(1, n);
          cpu.matmul(o, activations(cpu, 1, k, x.slice(t * k, (t + 1) * k)), wc);
          assert.deepEqual(await cpu.read(o), batch.subarray(t * n, (t + 1) * n), `token ${t}`);
        }
      }
    }
    const rows = Int32Array.of(0, 3, 36, 10);
    const embedded = async (be: Backend, w: typeof wc) => { const o = be.createActivations(rows.length, k); be.embed(o, w, rows); return be.read(o); };
    assert.deepEqual(await embedded(cpu, wc), await embedded(ref, wr));
  } finally {
    cpu.dispose();
  }
});

test('copyKV gives another slot a prompt\'s keys and values in every layer, and equals the reference', async () => {
  const cpu = await CpuBackend.create(2);
  try {
    const seeded = (seed: number) => { const r = new Rng(seed); return (n: number) => Float32Array.from({ length: n }, () => r.next() * 2 - 1); };
    const got = await copyKVContinues(cpu, seeded(3));
    assert.deepEqual(got.copied, got.original);
    assert.deepEqual(got.untouched[1], got.untouched[0], 'the other slot is untouched');
    const ref = await copyKVContinues(new ReferenceBackend(), seeded(3));
    for (let l = 0; l < 2; l++) assertClose(got.copied[l]!, ref.copied[l]!, 1e-5, `layer ${l} after copyKV`);
  } finally {
    cpu.dispose();
  }
});

test('Gemma\'s ops equal the reference: gelu(gate)·up, softcap, embed × √dim, attention with soft-capped scores', async () => {
  const cpu = await CpuBackend.create(2);
  try {
    await assertGemmaOpsMatchReference(cpu, random);
  } finally {
    cpu.dispose();
  }
});

// The row ops below run as wasm kernels (rows.ts); the reference backend is their specification.

/** Every dtype the cpu backend stores a matrix in (KERNELS in cpu-backend.ts). */
const TABLE_DTYPES: DType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_XS', 'MXFP4'];

/**
 * A table [rows, dim] of `dtype`, made by the project's quantizer from random rows of different
 * magnitudes (2^-6 to 2^3); for F16 a fifth of the values subnormal (|x| < 2^-14), both signs,
 * and inf, −inf, NaN and −0 in row 1.
 */
function randomTable(dtype: DType, rows: number, dim: number): { info: TensorInfo; bytes: Uint8Array } {
  const values = random(rows * dim).map((v, i) => v * 2 ** ((Math.floor(i / dim) % 10) - 6));
  if (dtype === 'F16') {
    for (let i = 0; i < values.length; i += 5) values[i] = (i % 2 ? -1 : 1) * (1 + (i % 1023)) * 2 ** -24;
    [values[dim + 1], values[dim + 2], values[dim + 3], values[dim + 4]] = [Infinity, -Infinity, NaN, -0]; // row 1
  }
  const bytes = quantize(dtype, values);
  return { info: { name: `table ${dtype}`, dtype, shape: [rows, dim], byteLength: bytes.length }, bytes };
}

async function embedded(be: Backend, table: Weight, dim: number, tokens: Int32Array, scale?: number): Promise<Float32Array> {
  const o = be.createActivations(tokens.length, dim);
  be.embed(o, table, tokens, scale);
  return be.read(o);
}

test('embed equals the reference bit for bit for every stored dtype: one token and many, scale 1 and √dim', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    const rows = 10, dim = 512;
    const many = Int32Array.of(3, 0, 9, 3, 5, 1, 7, 8, 2); // on the pool (row 1: F16's inf and NaN)
    for (const dtype of TABLE_DTYPES) {
      const { info, bytes } = randomTable(dtype, rows, dim);
      const tc = cpu.loadWeight(info, bytes.slice()), tr = ref.loadWeight(info, bytes.slice());
      for (const [tokens, scale] of [[Int32Array.of(6), undefined], [many, undefined], [many, Math.sqrt(dim)], [Int32Array.of(9, 4), 0.3]] as const) {
        const got = await embedded(cpu, tc, dim, tokens, scale);
        assert.deepEqual(got, await embedded(ref, tr, dim, tokens, scale), `${dtype}, ${tokens.length} tokens, scale ${scale ?? 1}`);
      }
    }
    const { info, bytes } = randomTable('Q8_0', rows, dim);
    const table = cpu.loadWeight(info, bytes);
    assert.throws(() => cpu.embed(cpu.createActivations(2, dim), table, Int32Array.of(1, rows)), /embed: token 10 is outside table Q8_0 \(10 rows\)/);
    assert.throws(() => cpu.embed(cpu.createActivations(1, dim), table, Int32Array.of(1, 2)), /embed: 2 tokens into 1 rows/);
  } finally {
    cpu.dispose();
  }
});

test('embed from a table held in another wasm memory equals the reference (F16 with subnormals, Q4_K, F32)', async () => {
  const cpu = await CpuBackend.create(2, { weightBytesPerMemory: 20_000 }), ref = new ReferenceBackend();
  try {
    const rows = 9, dim = 256;
    const filler = new Uint8Array(4 * 8 * 64);
    cpu.loadWeight({ name: 'filler', dtype: 'F32', shape: [8, 64], byteLength: filler.length }, filler);
    assert.equal(cpu.shardCount, 1);
    for (const dtype of ['F16', 'Q4_K', 'F32'] as const) {
      const { info, bytes } = randomTable(dtype, rows, dim);
      const before: number = cpu.shardCount;
      const tc = cpu.loadWeight(info, bytes.slice()), tr = ref.loadWeight(info, bytes.slice());
      assert.equal(cpu.shardCount, before + 1, `${dtype}: the table has a memory of its own`);
      for (const [tokens, scale] of [[Int32Array.of(4), 2.5], [Int32Array.of(8, 0, 3, 3, 1, 6, 2), undefined], [Int32Array.of(8, 0, 3, 3, 1, 6, 2), Math.sqrt(dim)]] as const) {
        assert.deepEqual(await embedded(cpu, tc, dim, tokens, scale), await embedded(ref, tr, dim, tokens, scale), `${dtype}, ${tokens.length} tokens`);
      }
    }
  } finally {
    cpu.dispose();
  }
});

test('gatherRows equals the reference: a few rows and many (repeated, any order), odd width', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    const rows = 80, cols = 37;
    const x = random(rows * cols);
    for (const picked of [Int32Array.of(79, 0, 5), Int32Array.from({ length: 70 }, (_, i) => (i * 31) % rows)]) {
      const gather = async (be: Backend) => {
        const o = be.createActivations(picked.length, cols);
        be.gatherRows(o, activations(be, rows, cols, x), picked);
        return be.read(o);
      };
      const got = await gather(cpu);
      assert.deepEqual(got, await gather(ref), `${picked.length} rows`);
      assert.deepEqual(got.subarray(cols, 2 * cols), x.subarray(picked[1]! * cols, (picked[1]! + 1) * cols));
    }
    assert.throws(() => cpu.gatherRows(cpu.createActivations(1, cols), activations(cpu, rows, cols, x), Int32Array.of(rows)), /gatherRows: row 80 of 80/);
  } finally {
    cpu.dispose();
  }
});

test('the KV store writes each token at its (slot, position): a long mixed prefill, then decode, equal to the reference', async () => {
  const cpu = await CpuBackend.create(2);
  try {
    const p: AttentionParams = { nHeads: 4, nKVHeads: 2, headDim: 8, scale: 0.35 };
    const kvCols = p.nKVHeads * p.headDim, qCols = p.nHeads * p.headDim;
    // 150 tokens (the store runs on the pool) of three sequences, interleaved: 70, 50 and 30 positions.
    const lengths = [70, 50, 30], seqs: number[] = [], positions: number[] = [];
    for (let i = 0; seqs.length < 150; i++) {
      for (let s = 0; s < 3; s++) if (i < lengths[s]!) { seqs.push(s); positions.push(i); }
    }
    const step = (sq: number[], pos: number[]) => ({
      batch: { seqs: Int32Array.from(sq), positions: Int32Array.from(pos) },
      q: random(sq.length * qCols), k: random(sq.length * kvCols), v: random(sq.length * kvCols),
    });
    // Then one token per sequence at its next position (reads back what the first step stored), and a short batch.
    const steps = [step(seqs, positions), step([2, 0, 1], [30, 70, 50]), step([1, 1], [51, 52])];
    const expected = await attentionSteps(new ReferenceBackend(), p, steps, 80);
    const actual = await attentionSteps(cpu, p, steps, 80);
    for (let i = 0; i < steps.length; i++) assertClose(actual[i]!, expected[i]!, 1e-5, `step ${i + 1}`);
    // A token at position 0 sees only itself: its output is its own v row, exactly.
    const first = actual[0]!, v = steps[0]!.v;
    for (let t = 0; t < seqs.length; t++) {
      if (positions[t] !== 0) continue;
      for (let h = 0; h < p.nHeads; h++) {
        const kvHead = Math.floor(h / (p.nHeads / p.nKVHeads));
        assert.deepEqual(first.subarray(t * qCols + h * p.headDim, t * qCols + (h + 1) * p.headDim),
          v.subarray(t * kvCols + kvHead * p.headDim, t * kvCols + (kvHead + 1) * p.headDim), `token ${t} head ${h}`);
      }
    }
    const cache = cpu.createKVCache({ nLayers: 1, nKVHeads: 2, headDim: 8, maxSeqs: 2, ctxLen: 4 });
    const one = (n: number) => activations(cpu, 1, n, random(n));
    for (const [seq, pos, message] of [[0, 4, /position 4 is beyond the context length 4/], [2, 0, /slot 2 is beyond the cache's 2 slots/]] as const) {
      assert.throws(() => cpu.attention(cpu.createActivations(1, qCols), one(qCols), one(kvCols), one(kvCols), cache, 0,
        { seqs: Int32Array.of(seq), positions: Int32Array.of(pos) }, p), message);
    }
  } finally {
    cpu.dispose();
  }
});

test('copyKV of a long prefix (on the pool) and a short one: the copies attend as the original does, equal to the reference', async () => {
  const cpu = await CpuBackend.create(2);
  try {
    // Rows of 8 KV heads × 128 (4 KiB): 70 positions are enough for the pool.
    const p: AttentionParams = { nHeads: 8, nKVHeads: 8, headDim: 128, scale: 0.05 };
    const qCols = p.nHeads * p.headDim, kvCols = p.nKVHeads * p.headDim;
    const prompt = { q: random(70 * qCols), k: random(70 * kvCols), v: random(70 * kvCols) };
    const probe = { q: random(qCols), k: random(kvCols), v: random(kvCols) };
    const run = async (be: Backend) => {
      const cache = be.createKVCache({ nLayers: 2, nKVHeads: p.nKVHeads, headDim: p.headDim, maxSeqs: 3, ctxLen: 80 });
      const attend = (layer: number, seq: number, positions: number[], x: typeof probe) => {
        const n = positions.length, o = be.createActivations(n, qCols);
        be.attention(o, activations(be, n, qCols, x.q), activations(be, n, kvCols, x.k), activations(be, n, kvCols, x.v), cache, layer,
          { seqs: new Int32Array(n).fill(seq), positions: Int32Array.from(positions) }, p);
        return be.read(o);
      };
      for (let layer = 0; layer < 2; layer++) await attend(layer, 0, [...Array(70).keys()], prompt);
      be.copyKV(cache, 0, 2, 70);
      be.copyKV(cache, 0, 1, 3);
      const outs: Float32Array[] = [];
      for (let layer = 0; layer < 2; layer++) {
        // The long copy from position 70 on, beside the original; the short one from position 3
        // (after it, slot 0's position 3 holds the same probe as slot 1's).
        outs.push(await attend(layer, 2, [70], probe), await attend(layer, 0, [70], probe));
        outs.push(await attend(layer, 1, [3], probe), await attend(layer, 0, [3], probe));
      }
      return outs;
    };
    const got = await run(cpu), expected = await run(new ReferenceBackend());
    for (let i = 0; i < got.length; i += 2) assert.deepEqual(got[i], got[i + 1], `copy ${i / 2} attends as the original`);
    for (let i = 0; i < got.length; i++) assertClose(got[i]!, expected[i]!, 1e-5, `output ${i}`);
    const cache = cpu.createKVCache({ nLayers: 1, nKVHeads: 1, headDim: 8, maxSeqs: 2, ctxLen: 4 });
    assert.throws(() => cpu.copyKV(cache, 0, 2, 1), /copyKV: to 2 is outside 0..1/);
    assert.throws(() => cpu.copyKV(cache, 0, 1, 5), /copyKV: count 5 is outside 0..4/);
  } finally {
    cpu.dispose();
  }
});

test('a matmul\'s bias is the f32 sum of the product and the bias (one token and many, f32 and Q8_0), equal to the reference', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    for (const [dtype, n, k, tokens] of [['F32', 4100, 16, 20], ['F32', 37, 16, 1], ['Q8_0', 37, 64, 3]] as const) {
      const { info, bytes } = randomTable(dtype, n, k);
      const b = random(n).map((v) => v * 4);
      const x = random(tokens * k);
      const outs = async (be: Backend) => {
        const w = be.loadWeight(info, bytes.slice());
        const bias = be.loadWeight({ name: 'bias', dtype: 'F32', shape: [n], byteLength: 4 * n }, new Uint8Array(b.buffer.slice(0)));
        const plain = be.createActivations(tokens, n), biased = be.createActivations(tokens, n);
        be.matmul(plain, activations(be, tokens, k, x), w);
        be.matmul(biased, activations(be, tokens, k, x), w, bias);
        return [(await be.read(plain)).slice(), await be.read(biased)] as const;
      };
      const [plain, biased] = await outs(cpu);
      assert.deepEqual(biased, plain.map((v, i) => Math.fround(v + b[i % n]!)), `${dtype} [${n}, ${k}] × ${tokens}`);
      // (Q8_0 kernels quantize x to 8-bit blocks, as llama.cpp does, so only f32 products are close to the reference's.)
      if (dtype === 'F32') assertClose(biased, (await outs(ref))[1], 1e-5, `${dtype} [${n}, ${k}] × ${tokens} vs reference`);
    }
  } finally {
    cpu.dispose();
  }
});

test('addRmsNorm equals the reference, and cpu add then rmsNorm bit for bit: sum in place of a, normed in place of b, odd widths', async () => {
  const cpu = await CpuBackend.create(2), ref = new ReferenceBackend();
  try {
    for (const [rows, cols] of [[1, 7], [3, 64], [9, 130], [5, 37]] as const) {
      const x = random(rows * cols), y = random(rows * cols).map((v, i) => (i % 7 === 0 ? v * 30 : v)), w = random(cols);
      const weight = (be: Backend) => be.loadWeight({ name: 'norm', dtype: 'F32', shape: [cols], byteLength: 4 * cols }, new Uint8Array(w.buffer.slice(0)));
      const fused = async (be: Backend, normedIsB: boolean) => {
        const a = activations(be, rows, cols, x), b = activations(be, rows, cols, y);
        const normed = normedIsB ? b : be.createActivations(rows, cols);
        be.addRmsNorm!(a, normed, a, b, weight(be), 1e-6);
        return [(await be.read(a)).slice(), await be.read(normed)] as const;
      };
      const separate = async (be: Backend) => {
        const a = activations(be, rows, cols, x), normed = be.createActivations(rows, cols);
        be.add(a, a, activations(be, rows, cols, y));
        be.rmsNorm(normed, a, weight(be), 1e-6);
        return [(await be.read(a)).slice(), await be.read(normed)] as const;
      };
      const [sum, normed] = await fused(cpu, false), [refSum, refNormed] = await fused(ref, false);
      assert.deepEqual(sum, refSum, `sum [${rows}, ${cols}]`);
      assertClose(normed, refNormed, 1e-5, `normed [${rows}, ${cols}]`);
      assert.deepEqual([sum, normed], await separate(cpu), `fused = add, rmsNorm on cpu [${rows}, ${cols}]`);
      assert.deepEqual(await fused(cpu, true), [sum, normed], `normed written over b [${rows}, ${cols}]`);
      assert.deepEqual(await fused(ref, true), [refSum, refNormed], `reference: normed written over b [${rows}, ${cols}]`);
    }
  } finally {
    cpu.dispose();
  }
});

// The graph adds each block's output into the residual and normalises it for the next block in one
// op where the backend has addRmsNorm: with it or without it (add, then rmsNorm) the logits must be
// the same bits — Gemma 2's post-norms and the last layer (whose final norm runs on gathered rows
// only) included.
test('the Llama graph gives bit-identical logits and hidden states with addRmsNorm and without it (Llama, Gemma 2 post-norms)', async () => {
  for (const shape of [
    { arch: 'llama', dim: 64, nLayers: 3, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false, vocabSize: 300 },
    { arch: 'gemma2', dim: 64, nLayers: 3, nHeads: 4, nKVHeads: 2, headDim: 32, ffnDim: 128, tied: true, vocabSize: 300, slidingWindow: 4, attnSoftcap: 2, finalSoftcap: 5 },
  ] as RandomModelShape[]) {
    const spec = randomSpec(shape), weights = randomWeights(spec, 17);
    const run = async (be: Backend) => {
      const loaded = new Map<string, Weight>();
      for (const [name, { shape: dims, data }] of weights) {
        const values = typeof data === 'function' ? data() : data;
        loaded.set(name, be.loadWeight({ name, dtype: 'F32', shape: dims, byteLength: 4 * values.length }, new Uint8Array(values.buffer.slice(0))));
      }
      const graph = new LlamaGraph(be, spec, loaded, { maxBatchTokens: 8, maxOutputs: 8 });
      const cache = be.createKVCache({ nLayers: spec.nLayers, nKVHeads: spec.nKVHeads, headDim: spec.headDim, maxSeqs: 1, ctxLen: 16 });
      const ids = Int32Array.of(1, 45, 299, 17, 3, 180);
      const hidden = { rows: Int32Array.of(5, 2), into: new Float32Array(2 * spec.dim) };
      const prefill = await graph.forward(ids, { positions: Int32Array.from(ids.keys()), seqs: new Int32Array(ids.length) }, Int32Array.of(5, 0), cache, undefined, hidden);
      const decode = await graph.forward(Int32Array.of(7), { positions: Int32Array.of(6), seqs: Int32Array.of(0) }, Int32Array.of(0), cache);
      return [prefill.slice(), decode.slice(), hidden.into];
    };
    const fused = await CpuBackend.create(2), plain = await CpuBackend.create(2);
    try {
      Object.defineProperty(plain, 'addRmsNorm', { value: undefined }); // a backend without the op
      assert.equal(plain.addRmsNorm, undefined);
      assert.deepEqual(await run(fused), await run(plain), shape.arch);
    } finally {
      fused.dispose();
      plain.dispose();
    }
    const ref = new ReferenceBackend(), refPlain = new ReferenceBackend();
    Object.defineProperty(refPlain, 'addRmsNorm', { value: undefined });
    assert.deepEqual(await run(ref), await run(refPlain), `${shape.arch}, reference`);
  }
});
