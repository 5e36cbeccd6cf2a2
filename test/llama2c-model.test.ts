// The real trained model: stories260K (llama2.c), greedy output checked against the text that
// llama2.c's run.c prints for the same prompt (published in the llama2.c64 README:
// `./run stories260K.bin -z tok512.bin -t 0 -i "Zoo" -n 60`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadModel } from '../src/index.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';
import { collect } from './helpers/generation.js';

const MODEL = path.join(FIXTURES, 'llama2c/stories260K.bin');
const TOKENIZER = path.join(FIXTURES, 'llama2c/tok512.bin');

test('stories260K greedy output equals llama2.c run.c token for token', { skip }, async () => {
  const model = await loadModel(MODEL, { tokenizer: TOKENIZER });
  try {
    const prompt = model.tokenize('Zoo');
    assert.equal(prompt[0], 1, 'BOS first, as run.c encodes');
    // run.c -n 60 runs positions 0..59 and prints the token sampled after each one past the
    // prompt: 60 - prompt.length + 1 tokens.
    const steps = 60 - prompt.length + 1;
    const out = await collect(model.generate('Zoo', { temperature: 0, maxTokens: steps }));
    assert.equal('Zoo' + out.text,
      'Zoo was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. '
      + 'She wanted to play with it, but she didn\'t want to play with');
    assert.equal(out.last.finishReason, 'length');
    assert.equal(out.last.usage?.completionTokens, steps);
  } finally {
    model.dispose();
  }
});

test('greedy output is deterministic and a seeded sample is reproducible', { skip }, async () => {
  const model = await loadModel(MODEL, { tokenizer: TOKENIZER });
  try {
    const greedy = async () => (await collect(model.generate('Once upon a time', { temperature: 0, maxTokens: 40 }))).tokens;
    assert.deepEqual(await greedy(), await greedy());
    const sample = async (seed: number) =>
      (await collect(model.generate('Once upon a time', { temperature: 1, topK: 0, topP: 1, minP: 0, seed, maxTokens: 40 }))).text;
    const a = await sample(7);
    assert.equal(await sample(7), a);
    assert.notEqual(await sample(8), a);
    // A trained model writes words, not noise: most of what it samples is made of letters and spaces.
    const letters = (a.match(/[A-Za-z ,.']/g) ?? []).length;
    assert.ok(letters / a.length > 0.9, `sampled text looks like English: ${JSON.stringify(a)}`);
  } finally {
    model.dispose();
  }
});

test('a stop string ends generation before it; EOS ends a story', { skip }, async () => {
  const model = await loadModel(MODEL, { tokenizer: TOKENIZER });
  try {
    const out = await collect(model.generate('Zoo', { temperature: 0, maxTokens: 100, stop: ['Lily'] }));
    assert.equal(out.text, ' was a little girl named ');
    assert.equal(out.last.finishReason, 'stop');
    const story = await collect(model.generate('Once', { temperature: 0, maxTokens: 400 }));
    assert.equal(story.last.finishReason, 'stop', 'the model ends its story with EOS within 400 tokens');
  } finally {
    model.dispose();
  }
});
