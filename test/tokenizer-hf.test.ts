// Hugging Face folders: tokenizer.json (+ tokenizer_config.json, generation_config.json).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError } from '../src/formats/tensor.js';
import { loadHFTokenizer } from '../src/tokenizer/index.js';
import { FIXTURES, fixturesSkip as skip, readLlama2Encodings, readVocabTests, withTempDir } from './helpers/fixtures.js';
import { assertVocabTests } from './helpers/vocab-tests.js';

const llama2Dir = path.join(FIXTURES, 'hf/llama2');

test('Llama-2 tokenizer.json reproduces every llama.cpp llama-spm vocab test', { skip }, async () => {
  const tok = await loadHFTokenizer(llama2Dir);
  assertVocabTests(tok, await readVocabTests('ggml-vocab-llama-spm.gguf'));
});

test('Llama-2 tokenizer.json: BOS from tokenizer_config, llama2.c encodings, decoding', { skip }, async () => {
  const tok = await loadHFTokenizer(llama2Dir);
  assert.equal(tok.kind, 'tokenizer.json');
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.bosId, 1);
  assert.deepEqual(tok.eosIds, [2]);
  assert.equal(tok.addBos, true);
  assert.equal(tok.chatTemplate, undefined);
  for (const c of await readLlama2Encodings()) assert.deepEqual(tok.encode(c.text), c.expected_ids, JSON.stringify(c.text));
  assert.equal(tok.tokenText(1), '<s>');
  assert.equal(tok.tokenText(3439), '▁Sim');
  assert.ok(tok.isSpecial(2) && !tok.isSpecial(3439));
  assert.equal(tok.decode(tok.encode('Simply put, 3 + 4 = 7.')), 'Simply put, 3 + 4 = 7.');
  assert.equal(tok.decode([1, 15043, 2]), 'Hello');
  assert.equal(tok.decode([1, 15043, 2], { skipSpecial: false }), '<s> Hello</s>');
  assert.equal(tok.decode([]), '');
});

test('a missing tokenizer.json is an error naming the folder and the file', async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(loadHFTokenizer(dir), (e: unknown) => {
      assert.ok(e instanceof FormatError);
      assert.ok(e.message.includes(path.join(dir, 'tokenizer.json')), e.message);
      assert.match(e.message, /missing: the folder .* has no tokenizer\.json/);
      return true;
    });
  });
});

test('malformed JSON files are errors naming the file and the problem', async () => {
  await withTempDir(async (dir) => {
    const file = path.join(dir, 'tokenizer.json');
    const rejects = async (message: RegExp, named = file) => {
      await assert.rejects(loadHFTokenizer(dir), (e: unknown) => {
        assert.ok(e instanceof FormatError, String(e));
        assert.ok(e.message.startsWith(`${named}: `), e.message);
        assert.match(e.message, message);
        return true;
      });
    };
    await writeFile(file, '{"model": {"type": "BPE", ');
    await rejects(/is not valid JSON/);
    await writeFile(file, '[1, 2]');
    await rejects(/must hold a JSON object/);
    await writeFile(file, '{"added_tokens": []}');
    await rejects(/"model" must be an object/);
    await writeFile(file, JSON.stringify({ ...tinyTokenizerJSON(), added_tokens: [{ content: '<s>' }] }));
    await rejects(/added_tokens\[0\] must have an integer "id"/);
    await writeFile(file, JSON.stringify({ ...tinyTokenizerJSON(), model: { type: 'NoSuchModel', vocab: {} } }));
    await rejects(/model type "NoSuchModel" is not supported/);
    await writeFile(file, JSON.stringify({ ...tinyTokenizerJSON(), model: { type: 'BPE', vocab: 5 } }));
    await rejects(/"model.vocab" must be an object or an array/);
    await writeFile(file, JSON.stringify({ ...tinyTokenizerJSON(), decoder: { type: 'NoSuchDecoder' } }));
    await rejects(/tokenizer is not usable: Unknown Decoder type: NoSuchDecoder/, dir);

    await writeFile(file, JSON.stringify(tinyTokenizerJSON()));
    const config = path.join(dir, 'tokenizer_config.json');
    await writeFile(config, '{"bos_token": ');
    await rejects(/is not valid JSON/, config);
    await writeFile(config, JSON.stringify({ bos_token: '<nope>' }));
    await rejects(/bos_token "<nope>" is not in/, config);
    await writeFile(config, JSON.stringify({ eos_token: 7 }));
    await rejects(/"eos_token" must be a string or an object/, config);
    await writeFile(config, JSON.stringify({ add_bos_token: 'yes' }));
    await rejects(/"add_bos_token" must be true or false/, config);
    await writeFile(config, JSON.stringify({ chat_template: [{ name: 'default' }] }));
    await rejects(/chat_template\[0\] must have a string "name" and "template"/, config);
    await writeFile(config, '{}');
    const generation = path.join(dir, 'generation_config.json');
    await writeFile(generation, JSON.stringify({ eos_token_id: ['x'] }));
    await rejects(/"eos_token_id" must be a token id or a list/, generation);
    await writeFile(generation, JSON.stringify({ eos_token_id: 99 }));
    await rejects(/EOS id 99 is outside the vocabulary/, dir);
  });
});

/** A small hand-written tokenizer.json: "hi" merges, <s> added by the post-processor. */
function tinyTokenizerJSON(): Record<string, unknown> {
  const special = (id: number, content: string) => ({ id, content, special: true, normalized: false });
  return {
    version: '1.0',
    added_tokens: [special(0, '<s>'), special(1, '</s>'), special(2, '<|eot|>')],
    normalizer: null,
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] } },
    },
    decoder: { type: 'Fuse' },
    model: {
      type: 'BPE', unk_token: null, byte_fallback: false, ignore_merges: false,
      vocab: { '<s>': 0, '</s>': 1, '<|eot|>': 2, h: 3, i: 4, hi: 5, ' ': 6 },
      merges: [['h', 'i']],
    },
  };
}

test('tokenizer_config.json and generation_config.json: special tokens, BOS policy, chat template', async () => {
  await withTempDir(async (dir) => {
    await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJSON()));
    // No config at all: BOS is whatever the post-processor adds; no ids are known.
    let tok = await loadHFTokenizer(dir);
    assert.deepEqual(tok.encode('hi hi'), [0, 5, 6, 5]);
    assert.equal(tok.bosId, undefined);
    assert.deepEqual(tok.eosIds, []);
    assert.equal(tok.addBos, false, 'no BOS id is known');

    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({
      bos_token: { __type: 'AddedToken', content: '<s>' },
      eos_token: '</s>',
      chat_template: [
        { name: 'tool_use', template: 'TOOLS' },
        { name: 'default', template: '{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}' },
      ],
    }));
    await writeFile(path.join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 0, eos_token_id: [1, 2] }));
    tok = await loadHFTokenizer(dir);
    assert.equal(tok.bosId, 0);
    assert.deepEqual(tok.eosIds, [1, 2], 'EOS and every generation_config end id, once each');
    assert.equal(tok.addBos, true);
    assert.deepEqual(tok.encode('hi'), [0, 5]);
    assert.deepEqual(tok.encode('hi', { addSpecial: false }), [5]);
    assert.deepEqual(tok.encode('<s>hi<|eot|>', { addSpecial: false }), [0, 5, 2]);
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), '<s>[user]hi</s>[assistant]');
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: false }), '<s>[user]hi</s>');
    assert.equal(tok.decode([0, 5, 6, 5, 2]), 'hi hi');
    assert.equal(tok.decode([0, 5, 6, 5, 2], { skipSpecial: false }), '<s>hi hi<|eot|>');

    // add_bos_token false overrides the post-processor; a template string; chat_template.jinja is
    // only a fallback.
    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({
      bos_token: '<s>', eos_token: '</s>', add_bos_token: false, add_eos_token: true, chat_template: 'T{{ messages[0].content }}',
    }));
    await writeFile(path.join(dir, 'chat_template.jinja'), 'J');
    tok = await loadHFTokenizer(dir);
    assert.equal(tok.addBos, false);
    assert.deepEqual(tok.encode('hi'), [5, 1]);
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), 'Tx');

    await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<s>', add_bos_token: true }));
    tok = await loadHFTokenizer(dir);
    assert.equal(tok.chatTemplate, 'J');
    assert.equal(tok.addBos, true);
  });
});
