// Where the shared fixtures are, and small readers for them. Tests skip (with this message) only
// when the fixtures folder is absent.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openGGUF } from '../../src/formats/gguf.js';
import { TokenType } from '../../src/tokenizer/token-types.js';

/** <repo>/../shared/fixtures (this file runs from <repo>/dist/test/helpers/). */
export const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));
/** For `test(name, { skip: fixturesSkip }, …)`. */
export const fixturesSkip: string | false = existsSync(FIXTURES) ? false : `fixtures folder ${FIXTURES} is absent`;

/** llama.cpp's tokenizer tests: texts from NAME.inp, expected ids (no BOS) from NAME.out. */
export async function readVocabTests(name: string): Promise<{ text: string; ids: number[] }[]> {
  const dir = path.join(FIXTURES, 'llama.cpp-vocab-tests');
  const texts = (await readFile(path.join(dir, `${name}.inp`), 'utf8')).split('\n__ggml_vocab_test__\n');
  texts.pop(); // the file ends with the separator
  const lines = (await readFile(path.join(dir, `${name}.out`), 'utf8')).split('\n');
  return texts.map((text, i) => ({ text, ids: lines[i]!.trim() === '' ? [] : lines[i]!.trim().split(/\s+/).map(Number) }));
}

/** llama2.c's test.c prompts with the ids (BOS first) its tokenizer gives them. */
export async function readLlama2Encodings(): Promise<{ text: string; add_bos: boolean; expected_ids: number[] }[]> {
  const file = path.join(FIXTURES, 'oracles/llama2-tokenizer-encodings.json');
  const oracle = JSON.parse(await readFile(file, 'utf8')) as { cases: { text: string; add_bos: boolean; expected_ids: number[] }[] };
  return oracle.cases;
}

/** A GGUF file's metadata (the tokenizer tests need no tensors). */
export async function readGGUFMetadata(file: string): Promise<ReadonlyMap<string, unknown>> {
  const g = await openGGUF(file);
  await g.close();
  return g.metadata;
}

/** Runs fn with a fresh temporary folder, removed afterwards. */
export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-test-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Llama-3's 256 control tokens after its 128000 regular ones. */
function llama3Specials(): string[] {
  const named = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|reserved_special_token_1|>',
    '<|finetune_right_pad_id|>', '<|reserved_special_token_2|>', '<|start_header_id|>', '<|end_header_id|>',
    '<|eom_id|>', '<|eot_id|>', '<|python_tag|>'];
  return Array.from({ length: 256 }, (_, i) => named[i] ?? `<|reserved_special_token_${i - 8}|>`);
}

/**
 * GGUF tokenizer metadata for Llama 3 (a gpt2-style byte-level BPE vocab) as llama.cpp's converter
 * writes it, built from the Llama-3.2 encoder.json + vocab.bpe fixture.
 */
export async function llama3VocabMetadata(): Promise<Map<string, unknown>> {
  const dir = path.join(FIXTURES, 'bpe/llama3.2');
  const encoder = JSON.parse(await readFile(path.join(dir, 'encoder.json'), 'utf8')) as Record<string, number>;
  const tokens: string[] = [];
  for (const [text, id] of Object.entries(encoder)) tokens[id] = text;
  if (tokens.length !== 128000) throw new Error(`${dir}/encoder.json: expected 128000 tokens, found ${tokens.length}`);
  const types: number[] = tokens.map(() => TokenType.normal);
  for (const s of llama3Specials()) { tokens.push(s); types.push(TokenType.control); }
  const merges = (await readFile(path.join(dir, 'vocab.bpe'), 'utf8')).split('\n').filter((line) => line.length > 0);
  return new Map<string, unknown>([
    ['tokenizer.ggml.model', 'gpt2'],
    ['tokenizer.ggml.pre', 'llama-bpe'],
    ['tokenizer.ggml.tokens', tokens],
    ['tokenizer.ggml.token_type', Int32Array.from(types)],
    ['tokenizer.ggml.merges', merges],
    ['tokenizer.ggml.bos_token_id', 128000],
    ['tokenizer.ggml.eos_token_id', 128009n],
    ['tokenizer.ggml.eom_token_id', 128008],
    ['tokenizer.chat_template', '{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}'],
  ]);
}
