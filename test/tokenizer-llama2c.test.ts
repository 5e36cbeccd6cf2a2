// llama2.c tokenizer.bin: llama.cpp's SentencePiece vocab tests and llama2.c's own test prompts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError } from '../src/formats/tensor.js';
import { loadLlama2cTokenizer, parseLlama2cVocab } from '../src/tokenizer/index.js';
import { FIXTURES, fixturesSkip as skip, readLlama2Encodings, readVocabTests, withTempDir } from './helpers/fixtures.js';
import { assertVocabTests } from './helpers/vocab-tests.js';

const tokenizerBin = path.join(FIXTURES, 'llama2c/tokenizer.bin');

test('tokenizer.bin reproduces every llama.cpp llama-spm vocab test (no BOS)', { skip }, async () => {
  const tok = await loadLlama2cTokenizer(tokenizerBin);
  assertVocabTests(tok, await readVocabTests('ggml-vocab-llama-spm.gguf'));
});

test('tokenizer.bin reproduces llama2.c test.c encodings (with BOS)', { skip }, async () => {
  const tok = await loadLlama2cTokenizer(tokenizerBin, 32000);
  const cases = await readLlama2Encodings();
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    assert.equal(c.add_bos, true);
    assert.deepEqual(tok.encode(c.text), c.expected_ids, JSON.stringify(c.text));
  }
});

test('tokenizer.bin: ids, special tokens and decoding', { skip }, async () => {
  const tok = await loadLlama2cTokenizer(tokenizerBin);
  assert.equal(tok.kind, 'llama2c');
  assert.equal(tok.vocabSize, 32000);
  assert.equal(tok.bosId, 1);
  assert.deepEqual(tok.eosIds, [2, 1], 'EOS, and BOS which ends a llama2.c story as in run.c');
  assert.equal(tok.addBos, true);
  assert.equal(tok.chatTemplate, undefined);
  // The file stores BOS/EOS as "\n<s>\n" / "\n</s>\n"; the token text is the bare marker.
  assert.equal(tok.tokenText(1), '<s>');
  assert.equal(tok.tokenText(2), '</s>');
  assert.equal(tok.tokenText(13), '<0x0A>');
  assert.equal(tok.tokenText(3439), '▁Sim');
  assert.ok(tok.isSpecial(1) && tok.isSpecial(2) && !tok.isSpecial(13));
  // Special-token text in the input is the special token.
  assert.deepEqual(tok.encode('<s>Hi</s>', { addSpecial: false }), [1, ...tok.encode('Hi', { addSpecial: false }), 2]);
  const ids = tok.encode('Hello world\n');
  assert.equal(tok.decode(ids), 'Hello world\n');
  assert.equal(tok.decode(ids, { skipSpecial: false }), '<s> Hello world\n');
  assert.throws(() => tok.decode([32000]), RangeError);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'hi' }]), /no chat template/);
});

test('tok512.bin (stories260K) loads; its vocab is 512 with the BOS piece stored as "\\n<s>\\n"', { skip }, async () => {
  const bytes = await readFile(path.join(FIXTURES, 'llama2c/tok512.bin'));
  const raw = parseLlama2cVocab(bytes, 'tok512.bin');
  assert.equal(raw.pieces.length, 512);
  assert.equal(raw.pieces[1], '\n<s>\n');
  const tok = await loadLlama2cTokenizer(path.join(FIXTURES, 'llama2c/tok512.bin'), 512);
  assert.equal(tok.vocabSize, 512);
  assert.equal(tok.tokenText(1), '<s>');
  const text = 'Once upon a time, there was a little girl named Lily.';
  const ids = tok.encode(text);
  assert.equal(ids[0], 1);
  assert.ok(ids.length < text.length, 'merges apply');
  assert.equal(tok.decode(ids), text);
  // Characters outside the tiny vocabulary fall back to bytes and come back intact.
  assert.equal(tok.decode(tok.encode('日本 🦙')), '日本 🦙');
});

test('tokenizer.bin files that do not match their length are refused, naming the file', async () => {
  await withTempDir(async (dir) => {
    // A valid 4-token file: max_token_length 5, then (score, length, bytes) per token.
    const piece = (score: number, text: string): Buffer => {
      const head = Buffer.alloc(8);
      head.writeFloatLE(score, 0);
      head.writeInt32LE(Buffer.byteLength(text), 4);
      return Buffer.concat([head, Buffer.from(text)]);
    };
    const header = Buffer.alloc(4);
    header.writeInt32LE(5, 0);
    const good = Buffer.concat([header, piece(0, '<unk>'), piece(0, '<s>'), piece(0, '</s>'), piece(-1, ' a')]);
    const file = path.join(dir, 'tok.bin');
    await writeFile(file, good);
    const tok = await loadLlama2cTokenizer(file);
    assert.equal(tok.vocabSize, 4);
    assert.deepEqual(tok.encode('a'), [1, 3]);

    const refused = async (bytes: Buffer, vocabSize: number | undefined, message: RegExp) => {
      await writeFile(file, bytes);
      await assert.rejects(loadLlama2cTokenizer(file, vocabSize), (e: unknown) => {
        assert.ok(e instanceof FormatError);
        assert.match(e.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
        assert.match(e.message, message);
        return true;
      });
    };
    await refused(good.subarray(0, good.length - 1), undefined, /runs past the end/);
    await refused(good.subarray(0, 30), undefined, /ends inside the header of token 2 at byte 28/);
    await refused(good, 5, /ends inside the header of token 4.*expected 5 tokens/);
    await refused(good, 3, /bytes follow the 3 tokens/);
    await refused(Buffer.concat([good, Buffer.from([1, 2])]), undefined, /ends inside the header/);
    const longPiece = Buffer.concat([header, piece(0, '<unk>'), piece(0, '<s>'), piece(0, '</s>'), piece(0, 'toolong')]);
    await refused(longPiece, undefined, /token 3 has length 7 \(max_token_length is 5\)/);
    const negative = Buffer.from(good);
    negative.writeInt32LE(-3, 4 + 4);
    await refused(negative, undefined, /token 0 has length -3/);
    await refused(Buffer.from([1, 0]), undefined, /too short/);
    await assert.rejects(loadLlama2cTokenizer(path.join(dir, 'absent.bin')), /absent\.bin: cannot read/);
  });
});
