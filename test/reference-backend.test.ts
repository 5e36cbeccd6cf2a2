// Op-level checks of the reference backend against values worked out by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import type { Activations } from '../src/backends/backend.js';
import { Rng } from '../src/engine/rng.js';
import { copyKVContinues } from './helpers/backend-ops.js';

const be = new ReferenceBackend();
const f32 = (xs: number[]) => new Uint8Array(Float32Array.from(xs).buffer);
const weight = (shape: number[], xs: number[]) => be.loadWeight({ name: 'w', dtype: 'F32', shape, byteLength: xs.length * 4 }, f32(xs));
function acts(rows: number, cols: number, xs: number[]): Activations {
  const a = be.createActivations(rows, cols);
  // Fill through embed: a table holding the rows, indexed 0..rows-1.
  be.embed(a, weight([rows, cols], xs), Int32Array.from({ length: rows }, (_, i) => i));
  return a;
}
const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
};

test('matmul computes x·Wᵀ + bias', async () => {
  const out = be.createActivations(2, 3);
  be.matmul(out, acts(2, 2, [1, 2, 3, 4]), weight([3, 2], [1, 0, 0, 1, 1, 1]), weight([3], [10, 20, 30]));
  close(await be.read(out), [11, 22, 33, 13, 24, 37]);
});

test('rmsNorm scales each row to unit RMS times the weight', async () => {
  const out = be.createActivations(1, 2);
  be.rmsNorm(out, acts(1, 2, [3, 4]), weight([2], [1, 2]), 0);
  const r = Math.sqrt(12.5);
  close(await be.read(out), [3 / r, 8 / r]);
});

test('rope rotates pairs by position × frequency, in both layouts', async () => {
  const invFreq = Float32Array.from([1, 0.5]);
  const batch = { positions: Int32Array.of(2), seqs: Int32Array.of(0) };
  const inter = acts(1, 4, [1, 0, 1, 0]);
  be.rope(inter, batch, 1, 4, { style: 'interleaved', invFreq });
  close(await be.read(inter), [Math.cos(2), Math.sin(2), Math.cos(1), Math.sin(1)]);
  const halves = acts(1, 4, [1, 1, 0, 0]);
  be.rope(halves, batch, 1, 4, { style: 'halves', invFreq });
  close(await be.read(halves), [Math.cos(2), Math.cos(1), Math.sin(2), Math.sin(1)]);
});

test('attention is causal, per sequence, grouped-query, with an optional sliding window', async () => {
  const cache = be.createKVCache({ nLayers: 1, nKVHeads: 1, headDim: 2, maxSeqs: 2, ctxLen: 4 });
  const p = { nHeads: 2, nKVHeads: 1, headDim: 2, scale: 1 };
  // Sequence 0 gets two tokens, sequence 1 one token, in one batch.
  const batch = { positions: Int32Array.of(0, 1, 0), seqs: Int32Array.of(0, 0, 1) };
  const q = acts(3, 4, [0, 0, 0, 0, 0, 0, 5, 0, 1, 1, 1, 1]);
  const k = acts(3, 2, [1, 0, 0, 1, 7, 7]);
  const v = acts(3, 2, [10, 20, 30, 40, 50, 60]);
  const out = be.createActivations(3, 4);
  be.attention(out, q, k, v, cache, 0, batch, p);
  const o = await be.read(out);
  // token 0 sees only itself; token 2 (other sequence) only itself.
  close(o.subarray(0, 4), [10, 20, 10, 20]);
  close(o.subarray(8, 12), [50, 60, 50, 60]);
  // token 1, head 0: q = 0 → equal weights over positions 0, 1.
  close(o.subarray(4, 6), [20, 30]);
  // token 1, head 1: q = (5, 0): scores 5 and 0.
  const w0 = Math.exp(5) / (Math.exp(5) + 1);
  close(o.subarray(6, 8), [w0 * 10 + (1 - w0) * 30, w0 * 20 + (1 - w0) * 40], 1e-4);

  // Sliding window 1: a token sees only itself.
  const next = { positions: Int32Array.of(2), seqs: Int32Array.of(0) };
  const out2 = be.createActivations(1, 4);
  be.attention(out2, acts(1, 4, [1, 0, 1, 0]), acts(1, 2, [0, 0]), acts(1, 2, [-1, -2]), cache, 0, next, { ...p, slidingWindow: 1 });
  close(await be.read(out2), [-1, -2, -1, -2]);
});

test('siluMul, add and gatherRows', async () => {
  const out = be.createActivations(1, 2);
  be.siluMul(out, acts(1, 2, [0, 2]), acts(1, 2, [5, 3]));
  close(await be.read(out), [0, (2 / (1 + Math.exp(-2))) * 3]);
  const sum = be.createActivations(1, 2);
  be.add(sum, acts(1, 2, [1, 2]), acts(1, 2, [3, 4]));
  close(await be.read(sum), [4, 6]);
  const g = be.createActivations(2, 2);
  be.gatherRows(g, acts(3, 2, [1, 2, 3, 4, 5, 6]), Int32Array.of(2, 0));
  close(await be.read(g), [5, 6, 1, 2]);
});

test('copyKV gives another slot a prompt\'s keys and values in every layer', async () => {
  const rng = new Rng(5);
  const { original, copied, untouched } = await copyKVContinues(new ReferenceBackend(), (n) => Float32Array.from({ length: n }, () => rng.next() * 2 - 1));
  assert.deepEqual(copied, original);
  assert.deepEqual(untouched[1], untouched[0], 'the other slot is untouched');
});
