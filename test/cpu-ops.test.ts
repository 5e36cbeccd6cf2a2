// The cpu backend's own op kernels (attention, silu·up, rmsNorm whole rows and per head, add, rope) against the reference backend, op by op:
// random inputs, odd head sizes, grouped-query heads, a sliding window, and batches that mix
// sequences at different positions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AttentionParams, Backend } from '../src/backends/backend.js';
import { CpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { Rng } from '../src/engine/rng.js';
import { encodeF16 } from '../src/quant/f16.js';
import { activations, assertClose, attentionSteps, copyKVContinues } from './helpers/backend-ops.js';
import { assertGemmaOpsMatchReference } from './helpers/gemma-ops.js';

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
