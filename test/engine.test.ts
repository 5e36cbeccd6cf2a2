// The engine on random-weight models written as Hugging Face folders: load paths, prompt-prefix
// reuse, batching independence, generation controls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GrammarBuilder, chars, loadModel, type GenerationChunk, type Model } from '../src/index.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { LlamaGraph } from '../src/model/arch/llama.js';
import { openModel, loadWeights } from '../src/model/load.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeHFModel } from './helpers/random-model.js';
import { collect, logitsDiff } from './helpers/generation.js';

let dir: string;
const spec = randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false });
const weights = randomWeights(spec, 11);

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-engine-'));
  if (skip) return;
  await writeHFModel(path.join(dir, 'f32'), spec, weights);
  await writeHFModel(path.join(dir, 'sharded'), spec, weights, { maxShardBytes: 2 << 20 });
  await writeHFModel(path.join(dir, 'bf16'), spec, weights, { dtype: 'BF16' });
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function withModel<T>(sub: string, fn: (m: Model) => Promise<T>): Promise<T> {
  const m = await loadModel(path.join(dir, sub), { contextLength: 128 });
  try {
    return await fn(m);
  } finally {
    m.dispose();
  }
}

test('a sharded folder gives the same logits as a single file; BF16 stays close to F32', { skip }, async () => {
  const prompt = [1, 450, 4996, 17354, 1701, 432];
  const single = await withModel('f32', (m) => m.logits(prompt));
  const sharded = await withModel('sharded', (m) => m.logits(prompt));
  assert.deepEqual(sharded, single);
  const bf16 = await withModel('bf16', (m) => m.logits(prompt));
  const { maxDiff, maxAbs } = logitsDiff(single, bf16);
  assert.ok(maxDiff < 0.05 * maxAbs, `bf16 logits within 5% of the f32 range`);
});

test('reusing a cached prompt prefix gives exactly the logits of a fresh evaluation', { skip }, async () => {
  const a = [1, 450, 4996, 17354, 1701, 432, 12500];
  const b = [1, 450, 4996, 29871, 13];
  await withModel('f32', async (m) => {
    const freshB = await m.logits(b);
    await m.logits(a); // shares the first three tokens with b
    assert.deepEqual(await m.logits(b), freshB);
    assert.deepEqual(await m.logits(b), freshB, 'the same prompt again');
  });
});

test('results do not depend on what else is in the batch', { skip }, async () => {
  const opened = await openModel(path.join(dir, 'f32'));
  const be = new ReferenceBackend();
  const w = await loadWeights(opened, be);
  await opened.close();
  const graph = new LlamaGraph(be, opened.spec, w, { maxBatchTokens: 16, maxOutputs: 2 });
  const shape = { nLayers: spec.nLayers, nKVHeads: spec.nKVHeads, headDim: spec.headDim, maxSeqs: 2, ctxLen: 32 };
  const seqA = [1, 450, 4996, 17354], seqB = [1, 29871, 13];
  const alone = async (ids: number[]) => {
    const cache = be.createKVCache(shape);
    return graph.forward(Int32Array.from(ids), { positions: Int32Array.from(ids.keys()), seqs: new Int32Array(ids.length) },
      Int32Array.of(ids.length - 1), cache);
  };
  const cache = be.createKVCache(shape);
  const both = await graph.forward(Int32Array.from([...seqA, ...seqB]), {
    positions: Int32Array.from([0, 1, 2, 3, 0, 1, 2]), seqs: Int32Array.from([0, 0, 0, 0, 1, 1, 1]),
  }, Int32Array.of(3, 6), cache);
  const v = spec.vocabSize;
  assert.deepEqual(both.subarray(0, v), await alone(seqA));
  assert.deepEqual(both.subarray(v, 2 * v), await alone(seqB));
});

test('generation honours maxTokens, abort, and the context limit', { skip }, async () => {
  await withModel('f32', async (m) => {
    const zero = await collect(m.generate('Hello', { maxTokens: 0 }));
    assert.deepEqual(zero.tokens, []);
    assert.equal(zero.last.finishReason, 'length');

    const ten = await collect(m.generate('Hello', { temperature: 0, maxTokens: 10 }));
    assert.ok(ten.tokens.length <= 10);
    assert.equal(ten.last.usage?.completionTokens, ten.tokens.length);

    // Aborting mid-stream ends it with a final chunk saying so.
    const ctrl = new AbortController();
    const seen: GenerationChunk[] = [];
    for await (const c of m.generate('Hello', { temperature: 1, seed: 3, minP: 0, maxTokens: 50, signal: ctrl.signal })) {
      seen.push(c);
      if (seen.length === 3) ctrl.abort();
    }
    const end = seen[seen.length - 1]!;
    assert.equal(end.finishReason, 'abort');
    assert.equal(end.usage?.completionTokens, 3);
    const aborted = await collect(m.generate('Hello', { temperature: 1, seed: 3, signal: AbortSignal.abort() }));
    assert.equal(aborted.last.finishReason, 'abort');
    assert.deepEqual(aborted.tokens, []);

    // No maxTokens: generation runs until the context is full (the random model never emits EOS
    // here; the fixed seed and weights make that deterministic).
    const full = await collect(m.generate('Hello', { temperature: 0, repeatPenalty: 1.3, minP: 0 }));
    assert.equal(full.last.finishReason, 'length');
    assert.equal(full.last.usage!.promptTokens + full.last.usage!.completionTokens, 128, 'stops when the context is full');
    await assert.rejects(collect(m.generate(Array(200).fill(5))), /the prompt has 200 tokens; the context holds 128/);
    await assert.rejects(collect(m.generate([1, 99999])), /token id 99999 is outside the vocabulary/);
    await assert.rejects(collect(m.generate('x', { temperature: -1 })), /temperature/);
  });
});

test('concurrent generations run one after another and equal sequential runs', { skip }, async () => {
  await withModel('f32', async (m) => {
    const opts = { temperature: 0.9, seed: 5, maxTokens: 12 };
    const seqA = await collect(m.generate('The cat', opts));
    const seqB = await collect(m.generate('A dog', opts));
    const [a, b] = await Promise.all([collect(m.generate('The cat', opts)), collect(m.generate('A dog', opts))]);
    assert.deepEqual(a.tokens, seqA.tokens);
    assert.deepEqual(b.tokens, seqB.tokens);
  });
});

test('logit bias: banned tokens never appear, a +100 token is always chosen, logprobs are after the bias', { skip }, async () => {
  await withModel('f32', async (m) => {
    const opts = { temperature: 1, seed: 4, topK: 0, minP: 0, maxTokens: 20 };
    const free = await collect(m.generate('Once upon a time', opts));
    const banned = new Map([...new Set(free.tokens)].map((t) => [t, -100]));
    const biased = await collect(m.generate('Once upon a time', { ...opts, logitBias: banned }));
    assert.equal(biased.tokens.length, 20);
    assert.deepEqual(biased.tokens.filter((t) => banned.has(t)), [], 'no banned token');

    const the = m.tokenize('the', { addSpecial: false })[0]!;
    for (const o of [opts, { temperature: 0, maxTokens: 8 }]) {
      const favoured = await collect(m.generate('Once upon a time', { ...o, logitBias: { [the]: 100 } }));
      assert.deepEqual(new Set(favoured.tokens), new Set([the]));
    }

    // The reported log-probabilities are those of the biased logits (as OpenAI reports them):
    // checked against the model's own logits for the prompt, biased here.
    const prompt = m.tokenize('Once upon a time');
    const logits = await m.logits(prompt);
    const order = [...logits.keys()].sort((a, b) => logits[b]! - logits[a]!);
    const [best, second] = order as [number, number];
    const bias = new Map([[best, -100], [second, 0.5]]);
    const expected = logits.slice();
    expected[best] = -Infinity;
    expected[second] = expected[second]! + 0.5;
    const max = Math.max(...expected);
    const logZ = max + Math.log(expected.reduce((s, v) => s + Math.exp(v - max), 0));
    const one = await collect(m.generate(prompt, { temperature: 0, maxTokens: 1, logprobs: 3, logitBias: bias }));
    assert.deepEqual(one.tokens, [second]);
    const chunks: GenerationChunk[] = [];
    for await (const c of m.generate(prompt, { temperature: 0, maxTokens: 1, logprobs: 3, logitBias: bias })) chunks.push(c);
    const lp = chunks[0]!.logprobs![0]!;
    assert.ok(Math.abs(lp.logprob - (expected[second]! - logZ)) < 1e-4, `${lp.logprob} vs ${expected[second]! - logZ}`);
    assert.deepEqual(lp.top.map((t) => t.token), order.filter((t) => t !== best).slice(0, 3).sort((a, b) => expected[b]! - expected[a]!));
    assert.ok(!lp.top.some((t) => t.token === best), 'a banned token is no alternative');

    await assert.rejects(collect(m.generate('x', { logitBias: { [spec.vocabSize]: 1 } })), new RegExp(`logit_bias token id ${spec.vocabSize} is outside the vocabulary`));
    await assert.rejects(collect(m.generate('x', { logitBias: { 5: -101 } })), /logit_bias for token 5 must be a number in \[-100, 100\]/);
  });
});

test('logit bias with a grammar: only allowed, unbanned tokens; banning all the grammar allows is an error', { skip }, async () => {
  await withModel('f32', async (m) => {
    const b = new GrammarBuilder();
    const grammar = b.build(b.define('root', [b.repeat('digits', [chars(['0', '9'])], 8, 8)]));
    // Every token that writes a single digit (the Llama-2 vocabulary has no longer digit tokens).
    const digitTokens = (from: string, to: string) => [...Array(m.tokenizer.vocabSize).keys()].filter((id) => {
      const bytes = m.tokenizer.tokenBytes(id);
      return bytes?.length === 1 && bytes[0]! >= from.charCodeAt(0) && bytes[0]! <= to.charCodeAt(0);
    });
    const low = digitTokens('0', '4');
    assert.ok(low.length >= 5);
    const opts = { temperature: 1, seed: 8, topK: 0, minP: 0, maxTokens: 20, grammar };
    const free = await collect(m.generate('Numbers:', opts));
    assert.match(free.text, /^\d{8}$/);
    assert.match(free.text, /[0-4]/, 'unbiased, some low digit comes up');
    const high = await collect(m.generate('Numbers:', { ...opts, logitBias: Object.fromEntries(low.map((t) => [t, -100])) }));
    assert.match(high.text, /^[5-9]{8}$/);
    const none = Object.fromEntries(digitTokens('0', '9').map((t) => [t, -100]));
    await assert.rejects(collect(m.generate('Numbers:', { ...opts, logitBias: none })), /the logit bias bans every token that can continue the required format/);
  });
});
