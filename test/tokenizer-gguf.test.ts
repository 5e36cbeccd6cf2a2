// Tokenizers from GGUF vocabulary metadata: SentencePiece ("llama") and byte-level BPE ("gpt2").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { FormatError } from '../src/formats/tensor.js';
import { deriveSpmMerges, tokenizerFromGGUF } from '../src/tokenizer/index.js';
import { FIXTURES, fixturesSkip as skip, llama3VocabMetadata, readLlama2Encodings, readVocabTests, readGGUFMetadata } from './helpers/fixtures.js';
import { assertVocabTests } from './helpers/vocab-tests.js';

const spmGGUF = path.join(FIXTURES, 'llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf');

test('GGUF llama-spm vocab reproduces every llama.cpp vocab test; merges derive fast', { skip }, async () => {
  const meta = await readGGUFMetadata(spmGGUF);
  const pieces = meta.get('tokenizer.ggml.tokens') as string[];
  const t0 = performance.now();
  const merges = deriveSpmMerges({
    pieces, scores: meta.get('tokenizer.ggml.scores') as number[], types: meta.get('tokenizer.ggml.token_type') as number[],
    unkId: 0, addSpacePrefix: true,
  });
  const mergeMs = performance.now() - t0;
  assert.ok(merges.length > 60000, `${merges.length} merges`);
  assert.ok(mergeMs < 1000, `deriving merges from 32000 pieces took ${mergeMs.toFixed(0)} ms`);

  const tok = tokenizerFromGGUF(meta, spmGGUF);
  assert.equal(tok.kind, 'gguf');
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.bosId, 1);
  assert.deepEqual(tok.eosIds, [2]);
  assert.equal(tok.addBos, true);
  assert.equal(tok.tokenText(29871), '▁');
  assert.ok(tok.isSpecial(1) && tok.isSpecial(0) && !tok.isSpecial(13));
  assertVocabTests(tok, await readVocabTests('ggml-vocab-llama-spm.gguf'), { roundTrip: true });
  assert.deepEqual(tok.encode('Hello'), [1, 15043]);
});

test('GGUF llama-spm vocab reproduces llama2.c test.c encodings (with BOS)', { skip }, async () => {
  const tok = tokenizerFromGGUF(await readGGUFMetadata(spmGGUF), spmGGUF);
  for (const c of await readLlama2Encodings()) assert.deepEqual(tok.encode(c.text), c.expected_ids, JSON.stringify(c.text));
});

test('a gpt2-style vocab built from Llama-3.2 encoder.json + vocab.bpe reproduces every llama-bpe vocab test', { skip }, async () => {
  const meta = await llama3VocabMetadata();
  const tok = tokenizerFromGGUF(meta, 'llama3.gguf');
  assert.equal(tok.vocabSize, 128256);
  assert.equal(tok.bosId, 128000);
  assert.deepEqual(tok.eosIds, [128009, 128008]);
  assert.equal(tok.addBos, true, 'llama-bpe adds BOS unless the file says otherwise');
  assert.equal(tok.tokenText(128009), '<|eot_id|>');
  assertVocabTests(tok, await readVocabTests('ggml-vocab-llama-bpe.gguf'), { roundTrip: true });

  const prompt = tok.applyChatTemplate([{ role: 'user', content: 'Hi' }]);
  assert.deepEqual(tok.encode(prompt), [128000, 128006, 882, 128007, 271, 13347, 128009]);
  assert.equal(tok.decode([128000, 13347, 128009]), 'Hi');
  assert.equal(tok.decode([128000, 13347, 128009], { skipSpecial: false }), '<|begin_of_text|>Hi<|eot_id|>');
});

/** A minimal valid SentencePiece-style metadata map to vary in the error tests. */
function tinySpmMeta(): Map<string, unknown> {
  return new Map<string, unknown>([
    ['tokenizer.ggml.model', 'llama'],
    ['tokenizer.ggml.tokens', ['<unk>', '<s>', '</s>', '▁', 'a', '▁a']],
    ['tokenizer.ggml.scores', new Float32Array([0, 0, 0, -1, -2, -3])],
    ['tokenizer.ggml.token_type', [2, 3, 3, 1, 1, 1]],
  ]);
}

test('a tiny SentencePiece vocab: defaults, add_bos_token, add_space_prefix', () => {
  let tok = tokenizerFromGGUF(tinySpmMeta(), 'tiny.gguf');
  assert.deepEqual(tok.encode('a a'), [1, 5, 5]);
  assert.equal(tok.decode([1, 5, 5]), 'a a');
  const meta = tinySpmMeta();
  meta.set('tokenizer.ggml.add_bos_token', false);
  meta.set('tokenizer.ggml.add_space_prefix', false);
  tok = tokenizerFromGGUF(meta, 'tiny.gguf');
  assert.equal(tok.addBos, false);
  assert.deepEqual(tok.encode('a a'), [4, 5]);
  assert.equal(tok.decode([4, 5]), 'a a');
});

test('bad GGUF vocabulary metadata is refused, naming the file and the key', () => {
  const refused = (change: (m: Map<string, unknown>) => void, message: RegExp) => {
    const meta = tinySpmMeta();
    change(meta);
    assert.throws(() => tokenizerFromGGUF(meta, 'bad.gguf'), (e: unknown) => {
      assert.ok(e instanceof FormatError, String(e));
      assert.ok(e.message.startsWith('bad.gguf: '), e.message);
      assert.match(e.message, message);
      return true;
    });
  };
  refused((m) => m.delete('tokenizer.ggml.model'), /tokenizer\.ggml\.model is missing/);
  refused((m) => m.set('tokenizer.ggml.model', 'bert'), /"bert": only "llama".*and "gpt2"/);
  refused((m) => m.delete('tokenizer.ggml.tokens'), /tokenizer\.ggml\.tokens is missing/);
  refused((m) => m.set('tokenizer.ggml.tokens', []), /tokenizer\.ggml\.tokens is empty/);
  refused((m) => m.set('tokenizer.ggml.tokens', ['a', 7]), /tokenizer\.ggml\.tokens\[1\] must be a string/);
  refused((m) => m.set('tokenizer.ggml.scores', [0, 0]), /tokenizer\.ggml\.scores has 2 entries but there are 6 tokens/);
  refused((m) => m.set('tokenizer.ggml.scores', [0, 0, 0, 0, 0, NaN]), /scores\[5\] must be a finite number/);
  refused((m) => m.set('tokenizer.ggml.token_type', 'normal'), /token_type must be a numeric array/);
  refused((m) => m.set('tokenizer.ggml.bos_token_id', 6), /bos_token_id is 6, outside the vocabulary \(0\.\.5\)/);
  refused((m) => m.set('tokenizer.ggml.eot_token_id', 1.5), /eot_token_id must be an integer/);
  refused((m) => m.set('tokenizer.ggml.add_bos_token', 1), /add_bos_token must be a boolean/);
  refused((m) => m.set('tokenizer.chat_template', 42), /chat_template must be a string/);
  refused((m) => m.set('tokenizer.ggml.model', 'gpt2'), /tokenizer\.ggml\.merges is missing/);
  refused((m) => {
    m.set('tokenizer.ggml.model', 'gpt2');
    m.set('tokenizer.ggml.merges', ['a b']);
    m.set('tokenizer.ggml.pre', 'no-such-pre');
  }, /tokenizer\.ggml\.pre is "no-such-pre", a pre-tokenizer this engine does not know \(known: default, llama3/);
  refused((m) => {
    m.set('tokenizer.ggml.model', 'gpt2');
    m.set('tokenizer.ggml.merges', ['ab']);
  }, /tokenizer\.ggml\.merges\[0\] \("ab"\) is not two tokens/);
});
