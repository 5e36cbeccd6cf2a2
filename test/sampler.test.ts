import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, argmax, resolveSampling } from '../src/engine/sampler.js';
import { Rng, choiceSeed } from '../src/engine/rng.js';
import { StopMatcher } from '../src/engine/stop-strings.js';

const logits = () => Float32Array.from([1, 5, 3, 4.9, -2, 0]);

test('temperature 0 is greedy and uses no randomness', () => {
  const s = new Sampler(resolveSampling({ temperature: 0, seed: 1 }), 6);
  assert.equal(s.sample(logits(), []), 1);
  assert.equal(argmax(Float32Array.from([2, 7, 7])), 1, 'first index wins ties');
});

test('the same seed reproduces the same sample sequence; another seed differs', () => {
  const draw = (seed: number) => {
    const s = new Sampler(resolveSampling({ temperature: 1.5, topK: 0, topP: 1, minP: 0, seed }), 6);
    return Array.from({ length: 40 }, () => s.sample(logits(), []));
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
});

test('top-k 1 always picks the best token', () => {
  const s = new Sampler(resolveSampling({ temperature: 5, topK: 1, seed: 3 }), 6);
  for (let i = 0; i < 20; i++) assert.equal(s.sample(logits(), []), 1);
});

test('top-k, top-p and min-p only ever return kept tokens', () => {
  const seen = (o: Parameters<typeof resolveSampling>[0]) => {
    const s = new Sampler(resolveSampling({ temperature: 2, ...o }), 6);
    const out = new Set<number>();
    for (let i = 0; i < 300; i++) out.add(s.sample(logits(), []));
    return [...out].sort();
  };
  assert.deepEqual(seen({ topK: 2, topP: 1, minP: 0, seed: 1 }), [1, 3]);
  // p(1) ≈ p(3) ≈ 0.45 at temperature 1 for top-p: the two reach 0.9
  assert.deepEqual(seen({ topK: 0, topP: 0.85, minP: 0, seed: 2 }), [1, 3]);
  // min-p 0.2: token 2 (e^3 / e^5 ≈ 0.135) is dropped, 3 kept
  assert.deepEqual(seen({ topK: 0, topP: 1, minP: 0.2, seed: 4 }), [1, 3]);
});

test('sampling follows the softmax distribution', () => {
  const s = new Sampler(resolveSampling({ temperature: 1, topK: 0, topP: 1, minP: 0, seed: 9 }), 3);
  const l = Float32Array.from([0, Math.log(3), 0]); // p = 0.2, 0.6, 0.2
  const counts = [0, 0, 0];
  for (let i = 0; i < 5000; i++) counts[s.sample(l.slice(), [])]!++;
  assert.ok(Math.abs(counts[1]! / 5000 - 0.6) < 0.03, `p(1) ≈ 0.6, got ${counts[1]! / 5000}`);
});

test('repetition, presence and frequency penalties lower seen tokens', () => {
  const rep = new Sampler(resolveSampling({ temperature: 0, repeatPenalty: 2 }), 6);
  assert.equal(rep.sample(logits(), [1]), 3, 'logit 5 / 2 = 2.5 < 4.9');
  const freq = new Sampler(resolveSampling({ temperature: 0, frequencyPenalty: 0.1 }), 6);
  assert.equal(freq.sample(logits(), [1, 1]), 3, '5 - 0.2 < 4.9');
  const pres = new Sampler(resolveSampling({ temperature: 0, presencePenalty: 0.05, repeatLastN: 1 }), 6);
  assert.equal(pres.sample(logits(), [1, 3]), 1, 'only the last token is penalised');
});

test('logit bias: added before everything else; -100 bans, +100 is always chosen', () => {
  assert.equal(new Sampler(resolveSampling({ temperature: 0, logitBias: { 3: 0.2 } }), 6).sample(logits(), []), 3, '4.9 + 0.2 > 5');
  assert.equal(new Sampler(resolveSampling({ temperature: 0, logitBias: new Map([[1, -100]]) }), 6).sample(logits(), []), 3);
  const draws = (o: Parameters<typeof resolveSampling>[0]) => {
    const s = new Sampler(resolveSampling({ temperature: 1.5, topK: 0, topP: 1, minP: 0, seed: 5, ...o }), 6);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(s.sample(logits(), []));
    return [...seen].sort();
  };
  assert.deepEqual(draws({}), [0, 1, 2, 3, 4, 5], 'unbiased, every token comes up at temperature 1.5');
  assert.deepEqual(draws({ logitBias: { 1: -100, 3: -100 } }), [0, 2, 4, 5], 'banned tokens never');
  assert.deepEqual(draws({ logitBias: { 4: 100 } }), [4], 'a +100 token always');
  // The bias comes before the repetition penalty (as in llama.cpp): logit 5 - 6 = -1, then ×2 as a
  // negative logit of a seen token = -2 (the other order would give 5 / 2 - 6 = -3.5). The logits
  // are changed in place, which is what logprobs are then computed from.
  const l = logits();
  new Sampler(resolveSampling({ temperature: 0, repeatPenalty: 2, logitBias: { 1: -6 } }), 6).sample(l, [1]);
  assert.equal(l[1], -2);
  // Banning every token leaves nothing to sample: -1, greedy or not.
  const all = Object.fromEntries([0, 1, 2, 3, 4, 5].map((id) => [id, -100]));
  assert.equal(new Sampler(resolveSampling({ temperature: 0, logitBias: all }), 6).sample(logits(), []), -1);
  assert.equal(new Sampler(resolveSampling({ temperature: 1, seed: 1, logitBias: all }), 6).sample(logits(), []), -1);
});

test('a bad logit bias is refused, naming the token id', () => {
  assert.throws(() => resolveSampling({ logitBias: { 6: 1 } }, 6), /logit_bias token id 6 is outside the vocabulary \(0\.\.5\)/);
  assert.throws(() => resolveSampling({ logitBias: new Map([[1.5, 1]]) }), /logit_bias token id 1\.5 must be an integer/);
  assert.throws(() => resolveSampling({ logitBias: { ['-1' as unknown as number]: 1 } }), /logit_bias token id NaN/);
  assert.throws(() => resolveSampling({ logitBias: { 2: 101 } }), /logit_bias for token 2 must be a number in \[-100, 100\], got 101/);
  assert.throws(() => resolveSampling({ logitBias: new Map([[2, NaN]]) }), /logit_bias for token 2/);
  assert.throws(() => resolveSampling({ logitBias: { 2: '1' as unknown as number } }), /logit_bias for token 2/);
  const many = Object.fromEntries(Array.from({ length: 1025 }, (_, i) => [i, 1]));
  assert.throws(() => resolveSampling({ logitBias: many }), /logit_bias has 1025 entries; at most 1024/);
  assert.equal(resolveSampling({ logitBias: { 5: 1 } }, 6).logitBias.get(5), 1);
});

test('choice seeds: choice 0 keeps the seed, the others all differ', () => {
  const seeds = new Set(Array.from({ length: 128 }, (_, i) => choiceSeed(42, i)));
  assert.equal(choiceSeed(42, 0), 42);
  assert.equal(seeds.size, 128);
  assert.notEqual(choiceSeed(42, 1), choiceSeed(43, 1));
});

test('bad sampling options are refused with the option named', () => {
  assert.throws(() => resolveSampling({ temperature: -1 }), /temperature/);
  assert.throws(() => resolveSampling({ topP: 0 }), /top_p/);
  assert.throws(() => resolveSampling({ topK: 1.5 }), /top_k/);
  assert.throws(() => resolveSampling({ seed: -3 }), /seed/);
  assert.throws(() => resolveSampling({ minP: 2 }), /min_p/);
});

test('the PRNG is uniform enough and reproducible', () => {
  const a = new Rng(7), b = new Rng(7);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = a.next();
    assert.equal(x, b.next());
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});

test('stop strings end the text before them, even split across chunks', () => {
  const m = new StopMatcher(['</s>', 'User:']);
  const out: string[] = [];
  let stopped = false;
  for (const piece of ['Hello', ' wor', 'ld', '\nUs', 'er', ': hi']) {
    const r = m.push(piece);
    out.push(r.text);
    if (r.stopped) { stopped = true; break; }
  }
  assert.ok(stopped);
  assert.equal(out.join(''), 'Hello world\n');
  assert.ok(!out.some((t) => t.includes('Us')), 'no part of a stop string is shown');
});

test('held-back text is released when it turns out not to be a stop string', () => {
  const m = new StopMatcher(['STOP']);
  assert.equal(m.push('go ST').text, 'go ');
  assert.equal(m.push('ay').text, 'STay');
  assert.equal(m.push('S').text, '');
  assert.equal(m.flush(), 'S');
});
