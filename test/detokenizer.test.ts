// decode(encode(x)) round trips and the streaming IncrementalDecoder, on a SentencePiece vocab
// (Llama-2, byte fallback) and a byte-level BPE vocab (GPT-2 layout).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { IncrementalDecoder, TokenType, loadLlama2cTokenizer, tokenizerFromGGUF } from '../src/tokenizer/index.js';
import type { DecodeOptions, Tokenizer } from '../src/tokenizer/index.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';

let llama2Loaded: Promise<Tokenizer> | undefined;
/** The Llama-2 vocabulary, loaded once for the whole file. */
const llama2 = () => (llama2Loaded ??= loadLlama2cTokenizer(path.join(FIXTURES, 'llama2c/tokenizer.bin')));

const TEXTS = [
  'Hello, world!',
  ' leading space and trailing space ',
  'Unicode: Äpfel, naïve café, Ελληνικά, русский, עברית, العربية',
  'Emoji: 🦙🦙 🚀👍🏽 👨‍👩‍👧‍👦 ✨',
  'CJK: 日本語のテキスト、中文文本，한국어 텍스트',
  'Digits: 3.14159 1234567890 007 1e-9',
  'Whitespace   runs\t\ttabs\n\n\nnewlines \n \r\n end',
  '    ',
  '\n',
  'Khmer កាន់តែពិសេសអាច and math ∑∫√∞ ≠ ≤',
];

/** Streams ids through an IncrementalDecoder: the chunks, flush last. */
function stream(tok: Tokenizer, ids: readonly number[], options?: ConstructorParameters<typeof IncrementalDecoder>[1]): string[] {
  const decoder = new IncrementalDecoder(tok, options);
  const chunks = ids.map((id) => decoder.push(id));
  chunks.push(decoder.flush());
  return chunks;
}

function assertStreams(tok: Tokenizer, ids: readonly number[], options?: DecodeOptions, what = ''): string[] {
  const chunks = stream(tok, ids, { skipSpecial: options?.skipSpecial });
  const whole = tok.decode(ids, options);
  assert.equal(chunks.join(''), whole, `streamed chunks concatenate to decode() ${what}`);
  if (!whole.includes('\uFFFD')) {
    assert.ok(chunks.every((c) => !c.includes('\uFFFD')), `no chunk holds a broken character ${what}: ${JSON.stringify(chunks)}`);
  }
  return chunks;
}

test('SentencePiece (Llama-2): decode(encode(x)) == x and streaming matches decode', { skip }, async () => {
  const tok = await llama2();
  for (const text of TEXTS) {
    const ids = tok.encode(text);
    assert.equal(ids[0], tok.bosId);
    assert.equal(tok.decode(ids), text, JSON.stringify(text));
    assertStreams(tok, ids, undefined, JSON.stringify(text));
    assertStreams(tok, ids, { skipSpecial: false }, `${JSON.stringify(text)} with specials`);
  }
});

test('a 4-byte emoji split over byte-fallback tokens is emitted whole, once complete', { skip }, async () => {
  const tok = await llama2();
  const ids = tok.encode('a🦙b', { addSpecial: false });
  // "▁a" then <0xF0><0x9F><0xA6><0x99> then "b".
  assert.deepEqual(ids.slice(1, 5).map((id) => tok.tokenText(id)), ['<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
  const decoder = new IncrementalDecoder(tok);
  assert.deepEqual(ids.map((id) => decoder.push(id)), ['a', '', '', '', '🦙', 'b']);
  assert.equal(decoder.flush(), '');

  // An incomplete character left at the end comes out of flush() as decode() shows it.
  const cut = new IncrementalDecoder(tok);
  assert.equal(cut.push(ids[0]), 'a');
  assert.equal(cut.push(ids[1]), '');
  assert.equal(cut.push(ids[2]), '');
  assert.equal(cut.flush(), tok.decode(ids.slice(1, 3)));
  assert.equal(cut.flush(), '');

  // A bad id is refused and leaves the decoder usable.
  const guarded = new IncrementalDecoder(tok);
  assert.throws(() => guarded.push(32000), RangeError);
  assert.throws(() => guarded.push(-1), RangeError);
  assert.equal(guarded.push(ids[0]), 'a');
});

test('streaming keeps SentencePiece spaces: after special tokens, "▁" tokens, and a prompt context', { skip }, async () => {
  const tok = await llama2();
  const hello = tok.encode('Hello', { addSpecial: false });
  const world = tok.encode(' world', { addSpecial: false }); // "▁▁world" → "▁", "▁world"
  const space = tok.encode(' ', { addSpecial: false });
  const sequences = [
    [...hello, 2, ...world],
    [1, ...hello, 1, 2, ...hello],
    [...space, ...space, ...hello],
    [...hello, ...space, ...space, ...world, 2],
    [2, 2, ...world],
  ];
  for (const ids of sequences) {
    assertStreams(tok, ids, undefined, `[${ids}]`);
    assertStreams(tok, ids, { skipSpecial: false }, `[${ids}] with specials`);
  }
  // Continuing a prompt: "▁Paris" after "...is" is " Paris", as the whole text decodes.
  const prompt = tok.encode('The capital of France is');
  const answer = tok.encode(' Paris', { addSpecial: false }).slice(1); // drop the dummy-prefix "▁"
  const chunks = stream(tok, answer, { context: prompt });
  assert.equal(chunks.join(''), tok.decode([...prompt, ...answer]).slice(tok.decode(prompt).length));
  assert.equal(chunks.join(''), ' Paris');
});

test('invalid byte runs do not hold text back forever', { skip }, async () => {
  const tok = await llama2();
  const ff = 3 + 0xff; // byte pieces <0x00>..<0xFF> are ids 3..258
  assert.equal(tok.tokenText(ff), '<0xFF>');
  const ids = [...tok.encode('x', { addSpecial: false }), ...Array.from({ length: 12 }, () => ff)];
  const decoder = new IncrementalDecoder(tok);
  const chunks = ids.map((id) => decoder.push(id));
  assert.ok(chunks.slice(0, -1).join('').length > 1, 'text is emitted before the end');
  chunks.push(decoder.flush());
  assert.equal(chunks.join(''), tok.decode(ids));
});

test('the decoder re-decodes a short window, not the whole sequence', { skip }, async () => {
  const tok = await llama2();
  let longest = 0;
  // A Tokenizer that records how many ids each decode() call receives.
  const counting: Tokenizer = Object.assign(Object.create(tok) as Tokenizer, {
    decode(ids: readonly number[], options?: DecodeOptions) {
      longest = Math.max(longest, ids.length);
      return tok.decode(ids, options);
    },
  });
  const paragraph = TEXTS.join(' ');
  const ids: number[] = [];
  while (ids.length < 20000) ids.push(...tok.encode(paragraph, { addSpecial: false }));
  const decoder = new IncrementalDecoder(counting);
  let text = '';
  const t0 = performance.now();
  for (const id of ids) text += decoder.push(id);
  text += decoder.flush();
  const ms = performance.now() - t0;
  assert.ok(longest <= 8, `longest decode window ${longest}`);
  assert.equal(text, tok.decode(ids));
  assert.ok(ms < 2000, `${ids.length} tokens streamed in ${ms.toFixed(0)} ms`);
});

/** GPT-2's byte → printable character map (every byte-level BPE vocabulary writes tokens with it). */
function bytesToUnicode(): string[] {
  const map: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map[b] = String.fromCharCode(printable ? b : next++);
  }
  return map;
}

/** A byte-level vocab: the 256 bytes, a few merges ("Ġthe", "ing", "日"), two control tokens. */
function tinyByteLevelTokenizer(): Tokenizer {
  const byteChars = bytesToUnicode();
  const tokens = [...byteChars];
  const merges: string[] = [];
  const merge = (left: string, right: string) => { merges.push(`${left} ${right}`); tokens.push(left + right); };
  merge('Ġ', 't'); merge('h', 'e'); merge('Ġt', 'he'); merge('i', 'n'); merge('in', 'g');
  // "日" is E6 97 A5: two merges make it one token.
  const [e6, x97, xa5] = [...Buffer.from('日')].map((b) => byteChars[b]);
  merge(e6, x97); merge(e6 + x97, xa5);
  const types: number[] = tokens.map(() => TokenType.normal);
  tokens.push('<|bos|>', '<|eot|>');
  types.push(TokenType.control, TokenType.control);
  return tokenizerFromGGUF(new Map<string, unknown>([
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', 'qwen2'],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', types],
    ['tokenizer.ggml.merges', merges],
    ['tokenizer.ggml.bos_token_id', tokens.length - 2],
    ['tokenizer.ggml.eos_token_id', tokens.length - 1],
    ['tokenizer.ggml.add_bos_token', true],
  ]), 'tiny-bpe.gguf');
}

test('byte-level BPE: round trips, merges, and streaming of characters split over byte tokens', () => {
  const tok = tinyByteLevelTokenizer();
  const bos = tok.bosId as number;
  const eot = tok.eosIds[0];
  assert.deepEqual(tok.encode(' the thing', { addSpecial: false }).map((id) => tok.tokenText(id)), ['Ġthe', 'Ġt', 'h', 'ing']);
  assert.equal(tok.encode('日本', { addSpecial: false }).length, 1 + 3, '日 merged, 本 as three bytes');
  for (const text of TEXTS) {
    const ids = [...tok.encode(text), eot];
    assert.equal(ids[0], bos);
    assert.equal(tok.decode(ids), text, JSON.stringify(text));
    assertStreams(tok, ids, undefined, JSON.stringify(text));
    assertStreams(tok, ids, { skipSpecial: false }, `${JSON.stringify(text)} with specials`);
  }
  // Each of the emoji's four bytes is its own token here; only the fourth completes it.
  const decoder = new IncrementalDecoder(tok);
  const ids = tok.encode('🦙', { addSpecial: false });
  assert.equal(ids.length, 4);
  assert.deepEqual(ids.map((id) => decoder.push(id)), ['', '', '', '🦙']);
});
