// What the backend tests (cpu-ops, webgpu-ops, cpu-backend, webgpu-model) share: filling a
// backend's activations, comparing results, running attention steps, and a model's logits
// token by token against one mixed batch.
import assert from 'node:assert/strict';
import type { Activations, AttentionParams, Backend, BatchLayout } from '../../src/backends/backend.js';
import { LlamaGraph } from '../../src/model/arch/llama.js';
import { loadWeights, type OpenedModel } from '../../src/model/load.js';

/** An activation buffer holding `values` ([rows, cols]), written through the backend's own ops. */
export function activations(be: Backend, rows: number, cols: number, values: Float32Array): Activations {
  const a = be.createActivations(rows, cols);
  const table = be.loadWeight({ name: 'x', dtype: 'F32', shape: [rows, cols], byteLength: 4 * values.length }, new Uint8Array(values.buffer.slice(0)));
  be.embed(a, table, Int32Array.from({ length: rows }, (_, i) => i));
  return a;
}

/** Every value within tol · (1 + |expected|). */
export function assertClose(actual: Float32Array, expected: Float32Array, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i]! - expected[i]!) <= tol * (1 + Math.abs(expected[i]!)), `${what} [${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

export interface AttentionStep { batch: BatchLayout; q: Float32Array; k: Float32Array; v: Float32Array }

/** Runs forward steps of attention (say a batch, then one more token per sequence) on a backend; each step's output. */
export async function attentionSteps(be: Backend, p: AttentionParams, steps: AttentionStep[], ctxLen = 24): Promise<Float32Array[]> {
  const cache = be.createKVCache({ nLayers: 2, nKVHeads: p.nKVHeads, headDim: p.headDim, maxSeqs: 3, ctxLen });
  const outs: Float32Array[] = [];
  for (const s of steps) {
    const n = s.batch.positions.length;
    const q = activations(be, n, p.nHeads * p.headDim, s.q), k = activations(be, n, p.nKVHeads * p.headDim, s.k);
    const v = activations(be, n, p.nKVHeads * p.headDim, s.v), o = be.createActivations(n, p.nHeads * p.headDim);
    be.attention(o, q, k, v, cache, 1, s.batch, p);
    outs.push(await be.read(o));
  }
  return outs;
}

/**
 * Two sequences run token by token, then together in one mixed batch: their last logits must be
 * bit-identical (decode and batches take different kernels; continuous batching needs a greedy
 * request to give the same tokens alone or beside others).
 */
export async function assertBatchEqualsTokenByToken(be: Backend, opened: OpenedModel): Promise<void> {
  const s = opened.spec;
  const graph = new LlamaGraph(be, s, await loadWeights(opened, be), { maxBatchTokens: 16, maxOutputs: 2 });
  const shape = { nLayers: s.nLayers, nKVHeads: s.nKVHeads, headDim: s.headDim, maxSeqs: 2, ctxLen: 32 };
  const seqA = [1, 450, 4996, 17354, 1701, 432], seqB = [1, 29871, 13, 3118, 263];
  const oneByOne = async (ids: number[]) => {
    const cache = be.createKVCache(shape);
    let last: Float32Array = new Float32Array(0);
    for (let p = 0; p < ids.length; p++) {
      last = await graph.forward(Int32Array.of(ids[p]!), { positions: Int32Array.of(p), seqs: Int32Array.of(0) }, Int32Array.of(0), cache);
    }
    return last;
  };
  const both = await graph.forward(Int32Array.from([...seqA, ...seqB]), {
    positions: Int32Array.from([...seqA.keys(), ...seqB.keys()]),
    seqs: Int32Array.from([...seqA.map(() => 0), ...seqB.map(() => 1)]),
  }, Int32Array.of(seqA.length - 1, seqA.length + seqB.length - 1), be.createKVCache(shape));
  const v = s.vocabSize;
  assert.deepEqual(both.subarray(0, v), await oneByOne(seqA));
  assert.deepEqual(both.subarray(v, 2 * v), await oneByOne(seqB));
}

/**
 * copyKV as the scheduler uses it (several choices of one prompt): slot 0 reads a 5-token
 * prompt in both layers; slot 2, holding other tokens before, takes slot 0's first 4 positions by
 * copyKV; then the prompt's last token runs in slot 0 and in slot 2 alike. The two outputs of
 * each layer must be the same bits, and slot 1 must be untouched.
 */
export async function copyKVContinues(be: Backend, random: (n: number) => Float32Array): Promise<{ original: Float32Array[]; copied: Float32Array[]; untouched: [Float32Array, Float32Array] }> {
  const p: AttentionParams = { nHeads: 4, nKVHeads: 2, headDim: 6, scale: 0.4 };
  const qCols = p.nHeads * p.headDim, kvCols = p.nKVHeads * p.headDim;
  const cache = be.createKVCache({ nLayers: 2, nKVHeads: p.nKVHeads, headDim: p.headDim, maxSeqs: 3, ctxLen: 8 });
  const run = (layer: number, seqs: number[], positions: number[], q: Float32Array, k: Float32Array, v: Float32Array) => {
    const n = seqs.length, o = be.createActivations(n, qCols);
    be.attention(o, activations(be, n, qCols, q), activations(be, n, kvCols, k), activations(be, n, kvCols, v), cache, layer,
      { seqs: Int32Array.from(seqs), positions: Int32Array.from(positions) }, p);
    return be.read(o);
  };
  const last = { q: random(qCols), k: random(kvCols), v: random(kvCols) };
  const probe = { q: random(qCols), k: random(kvCols), v: random(kvCols) };
  const original: Float32Array[] = [], copied: Float32Array[] = [];
  const before: Float32Array[] = [];
  for (let layer = 0; layer < 2; layer++) {
    // Slot 1 and slot 2 hold 6 tokens of their own; slot 0 the prompt's first 4.
    for (const slot of [1, 2]) await run(layer, [slot, slot, slot, slot, slot, slot], [0, 1, 2, 3, 4, 5], random(6 * qCols), random(6 * kvCols), random(6 * kvCols));
    await run(layer, [0, 0, 0, 0], [0, 1, 2, 3], random(4 * qCols), random(4 * kvCols), random(4 * kvCols));
  }
  // Slot 1 seen from position 6, before the copy.
  for (let layer = 0; layer < 2; layer++) before.push(await run(layer, [1], [6], probe.q, probe.k, probe.v));
  be.copyKV(cache, 0, 2, 4);
  for (let layer = 0; layer < 2; layer++) {
    original.push(await run(layer, [0], [4], last.q, last.k, last.v));
    copied.push(await run(layer, [2], [4], last.q, last.k, last.v));
  }
  return { original, copied, untouched: [before[1]!, await run(1, [1], [6], probe.q, probe.k, probe.v)] };
}
