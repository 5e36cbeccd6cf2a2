// Continuous batching (src/engine/scheduler.ts) on a random-weight model and the cpu backend:
// concurrent sequences decode together in shared forward passes and each gives exactly what it
// gives alone; readers that leave free their slots; the wait queue is bounded; a slot's prefix
// is reused by the next request that shares it; several choices of one prompt read it once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadModel, QueueFullError, type Model } from '../src/index.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeHFModel } from './helpers/random-model.js';
import { collect } from './helpers/generation.js';
import { choiceSeed } from '../src/engine/rng.js';

let dir: string;
// Untied: with the output tied to the embedding, a random model mostly repeats its last token, blind to
// positions and context, and could not tell a misplaced token from a right one.
const spec = randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false });

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-scheduler-'));
  if (!skip) await writeHFModel(path.join(dir, 'm'), spec, randomWeights(spec, 4));
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

const load = (opts: Parameters<typeof loadModel>[1] = {}) => loadModel(path.join(dir, 'm'), { contextLength: 96, threads: 2, ...opts });

/** Requests of different prompt lengths and samplers: greedy, seeded, with and without stop strings. */
const requests = [
  { prompt: 'Once upon a time', opts: { temperature: 0, maxTokens: 20 } },
  { prompt: 'The quick brown fox jumps over the lazy dog and keeps running far away', opts: { temperature: 0.9, seed: 7, maxTokens: 15 } },
  { prompt: 'Hi', opts: { temperature: 0, maxTokens: 30, repeatPenalty: 1.2 } },
  { prompt: 'A long story begins with a single word, then another, then many more words follow', opts: { temperature: 1.1, seed: 2, topK: 0, minP: 0, maxTokens: 12 } },
  { prompt: 'x', opts: { temperature: 0, maxTokens: 8 } },
  { prompt: 'Numbers: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13', opts: { temperature: 0.7, seed: 99, maxTokens: 25 } },
];

test('concurrent sequences batched together each equal their run alone', { skip }, async () => {
  const alone = await load({ parallel: 1 });
  const together = await load({ parallel: 3, prefillChunk: 5 }); // small chunks: prompts interleave with decoding
  try {
    const expected: Awaited<ReturnType<typeof collect>>[] = [];
    for (const r of requests) expected.push(await collect(alone.generate(r.prompt, r.opts)));
    // Six requests on three slots: three wait, and join as slots free up.
    const got = await Promise.all(requests.map((r) => collect(together.generate(r.prompt, r.opts))));
    got.forEach((g, i) => {
      assert.deepEqual(g.tokens, expected[i]!.tokens, `request ${i}`);
      assert.equal(g.text, expected[i]!.text);
      assert.deepEqual(g.last.usage, expected[i]!.last.usage);
    });
    assert.deepEqual(together.stats(), { slots: 3, active: 0, queued: 0, kvTokens: 0 });
  } finally {
    alone.dispose();
    together.dispose();
  }
});

test('a reader that leaves, or an aborted request, frees its slot; the others finish unchanged', { skip }, async () => {
  const m = await load({ parallel: 2 });
  try {
    const r = requests[0]!;
    const expected = await collect(m.generate(r.prompt, r.opts));
    const ctrl = new AbortController();
    const leaving = (async () => {
      let n = 0;
      for await (const c of m.generate('Hello there', { temperature: 0, maxTokens: 40 })) if (c.tokens.length && ++n === 3) break;
      return n;
    })();
    const aborted = collect(m.generate('Goodbye', { temperature: 0, maxTokens: 40, signal: ctrl.signal }));
    setTimeout(() => ctrl.abort(), 5);
    const staying = collect(m.generate(r.prompt, r.opts)); // waits for a slot, then runs beside the others
    assert.equal(await leaving, 3);
    assert.equal((await aborted).last.finishReason, 'abort');
    assert.deepEqual((await staying).tokens, expected.tokens);
    await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(m.stats(), { slots: 2, active: 0, queued: 0, kvTokens: 0 });
  } finally {
    m.dispose();
  }
});

test('beyond the slots and the queue, start() refuses at once with QueueFullError', { skip }, async () => {
  const m = await load({ parallel: 1, maxQueue: 1 });
  try {
    const ids = m.tokenize('Hello');
    const running = collect(m.start(ids, { temperature: 0, maxTokens: 10 }));
    const queued = collect(m.start(ids, { temperature: 0, maxTokens: 10 }));
    // The first holds the slot only once the loop admits it; until then both wait in line.
    await new Promise((res) => setImmediate(res));
    assert.throws(() => m.start(ids, { maxTokens: 10 }), (e: unknown) => e instanceof QueueFullError && /busy/.test(e.message));
    const [a, b] = await Promise.all([running, queued]);
    assert.deepEqual(a.tokens, b.tokens);
    assert.ok(b.last.timings!.queueMs > 0, 'the second waited for the slot');
    assert.throws(() => m.start([], {}), /the prompt is empty/);
  } finally {
    m.dispose();
  }
});

test('a burst arriving while slots are free takes the free slots and the queue, and no more', { skip }, async () => {
  const m = await load({ parallel: 2, maxQueue: 1 });
  try {
    const ids = m.tokenize('Hello');
    // All five arrive before the loop has admitted anyone (as requests do between two steps, just
    // after a step freed slots): two slots and one queue place hold three.
    const taken = [], refused = [];
    for (let i = 0; i < 5; i++) {
      try {
        taken.push(collect(m.start(ids, { temperature: 0, maxTokens: 4 })));
      } catch (e) {
        assert.ok(e instanceof QueueFullError, String(e));
        refused.push(e);
      }
    }
    assert.equal(taken.length, 3);
    assert.equal(refused.length, 2);
    await Promise.all(taken);
  } finally {
    m.dispose();
  }
});

test('the next turn of a chat reuses the slot that holds its prefix', { skip }, async () => {
  const m: Model = await load({ parallel: 2 });
  try {
    const first = await collect(m.generate('User: hello\nAssistant:', { temperature: 0, maxTokens: 6 }));
    await collect(m.generate('Something else entirely', { temperature: 0, maxTokens: 6 })); // takes the other slot
    const turn2 = m.tokenize('User: hello\nAssistant:').concat(first.tokens, m.tokenize('User: more', { addSpecial: false }));
    const next = await collect(m.generate(turn2, { temperature: 0, maxTokens: 4 }));
    // Only what the first turn did not evaluate is computed: the new user text and its last sampled token.
    const fresh = next.last.timings!.promptTokens;
    assert.ok(fresh <= m.tokenize('User: more', { addSpecial: false }).length + 1, `${fresh} prompt tokens evaluated of ${turn2.length}`);
    // And the result is that of a fresh evaluation.
    const cold = await load({ parallel: 1 });
    try {
      assert.deepEqual((await collect(cold.generate(turn2, { temperature: 0, maxTokens: 4 }))).tokens, next.tokens);
    } finally {
      cold.dispose();
    }
  } finally {
    m.dispose();
  }
});

// Several choices from one prompt (startChoices): the prompt is read once, by the first choice;
// the others copy its keys and values and evaluate only the last prompt token, so each gives
// exactly what the same request gives alone with that choice's seed.
const story = 'The quick brown fox jumps over the lazy dog and keeps running far away';
const sampled = { temperature: 0.9, seed: 7, maxTokens: 12 };

/** Each choice alone, on a model of its own: choice i samples with choiceSeed(seed, i). */
async function solo(prompt: string, n: number, opts: typeof sampled | { temperature: number; maxTokens: number }) {
  const alone = await load({ parallel: 1 });
  try {
    const out: Awaited<ReturnType<typeof collect>>[] = [];
    for (let i = 0; i < n; i++) out.push(await collect(alone.generate(prompt, 'seed' in opts ? { ...opts, seed: choiceSeed(opts.seed, i) } : opts)));
    return out;
  } finally {
    alone.dispose();
  }
}

test('n choices read the prompt once, and each equals its run alone', { skip }, async () => {
  const expected = await solo(story, 3, sampled);
  const m = await load({ parallel: 3 });
  try {
    const promptLength = m.tokenize(story).length;
    const got = await Promise.all(m.startChoices(m.tokenize(story), 3, sampled).map((s) => collect(s)));
    got.forEach((g, i) => {
      assert.deepEqual(g.tokens, expected[i]!.tokens, `choice ${i}`);
      assert.equal(g.text, expected[i]!.text);
      assert.deepEqual(g.last.usage, { promptTokens: promptLength, completionTokens: 12 });
      // Only the first choice evaluated the prompt; the others only its last token.
      assert.equal(g.last.timings!.promptTokens, i === 0 ? promptLength : 1, `choice ${i} prompt tokens evaluated`);
    });
    assert.ok(new Set(got.map((g) => g.text)).size > 1, 'sampled choices differ');
    // Choice 0 samples with the request's own seed: it is the request alone.
    assert.deepEqual(got[0]!.tokens, (await collect(m.generate(story, sampled))).tokens);
    assert.deepEqual(m.stats(), { slots: 3, active: 0, queued: 0, kvTokens: 0 });
  } finally {
    m.dispose();
  }
});

test('more choices than slots: the rest wait, reuse the prompt, and still equal their runs alone', { skip }, async () => {
  const expected = await solo(story, 5, sampled);
  const greedy = await solo(story, 1, { temperature: 0, maxTokens: 10 });
  const m = await load({ parallel: 2 });
  try {
    const other = collect(m.generate('Hi', { temperature: 0, maxTokens: 5 })); // a request beside them
    const got = await Promise.all(m.generateChoices(story, 5, sampled).map((s) => collect(s)));
    got.forEach((g, i) => {
      assert.deepEqual(g.tokens, expected[i]!.tokens, `choice ${i}`);
      if (i > 0) assert.equal(g.last.timings!.promptTokens, 1, `choice ${i} prompt tokens evaluated`);
    });
    await other;
    // Greedy choices are all the request alone.
    for (const g of await Promise.all(m.generateChoices(story, 3, { temperature: 0, maxTokens: 10 }).map((s) => collect(s)))) {
      assert.deepEqual(g.tokens, greedy[0]!.tokens);
    }
  } finally {
    m.dispose();
  }
});

test('with one slot the choices run one after another', { skip }, async () => {
  const expected = await solo(story, 3, sampled);
  const m = await load({ parallel: 1 });
  try {
    const events: string[] = [];
    const got = await Promise.all(m.startChoices(m.tokenize(story), 3, sampled).map(async (s, i) => {
      const r = await collect((async function* () {
        for await (const c of s) { events.push(`${i}${c.finishReason ? ' end' : ''}`); yield c; }
      })());
      return r;
    }));
    got.forEach((g, i) => assert.deepEqual(g.tokens, expected[i]!.tokens, `choice ${i}`));
    const order = events.filter((e, i) => e !== events[i - 1]);
    assert.deepEqual(order, ['0', '0 end', '1', '1 end', '2', '2 end'], 'each choice streams only after the one before ended');
    assert.ok(got.slice(1).every((g) => g.last.timings!.promptTokens === 1), 'later choices reuse the prompt left in the slot');
  } finally {
    m.dispose();
  }
});

test('a choice that is abandoned, even the one reading the prompt, leaves the others unchanged', { skip }, async () => {
  const expected = await solo(story, 3, sampled);
  const m = await load({ parallel: 3, prefillChunk: 4 });
  try {
    // The reader of choice 1 leaves after two tokens.
    const streams = m.startChoices(m.tokenize(story), 3, sampled);
    const leaving = (async () => {
      let n = 0;
      for await (const c of streams[1]!) if (c.tokens.length && ++n === 2) break;
      return n;
    })();
    const [a, , c] = await Promise.all([collect(streams[0]!), leaving, collect(streams[2]!)]);
    assert.deepEqual(a.tokens, expected[0]!.tokens);
    assert.deepEqual(c.tokens, expected[2]!.tokens);
    // Choice 0 leaves before reading the prompt: another choice reads it instead.
    const again = m.startChoices(m.tokenize('Something else entirely, and a few more words'), 3, sampled);
    await again[0]!.return!();
    const rest = await Promise.all([collect(again[1]!), collect(again[2]!)]);
    const alone = await solo('Something else entirely, and a few more words', 3, sampled);
    assert.deepEqual(rest.map((r) => r.tokens), [alone[1]!.tokens, alone[2]!.tokens]);
    await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(m.stats(), { slots: 3, active: 0, queued: 0, kvTokens: 0 });
  } finally {
    m.dispose();
  }
});

test('choices are taken all or none: QueueFullError when the free slots and queue places are too few', { skip }, async () => {
  const m = await load({ parallel: 1, maxQueue: 1 });
  try {
    const ids = m.tokenize('Hello');
    assert.throws(() => m.startChoices(ids, 3, { maxTokens: 4 }), QueueFullError, 'one slot and one queue place do not hold three');
    assert.equal(m.stats().queued, 0, 'none of them was taken');
    const two = m.startChoices(ids, 2, { temperature: 0, maxTokens: 4 });
    assert.throws(() => m.startChoices(ids, 2, { maxTokens: 4 }), QueueFullError);
    const [a, b] = await Promise.all(two.map((s) => collect(s)));
    assert.deepEqual(a.tokens, b.tokens);
    assert.throws(() => m.startChoices(ids, 0), /n must be an integer in 1\.\.128, got 0/);
    assert.throws(() => m.startChoices(ids, 129), /n must be an integer in 1\.\.128/);
    assert.throws(() => m.generateChoices(ids, 1.5), /n must be an integer/);
  } finally {
    m.dispose();
  }
});
