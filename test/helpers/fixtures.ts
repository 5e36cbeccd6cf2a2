// Where the shared fixtures are, and small readers for them. Tests skip (with this message) only
// when the fixtures folder is absent.
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openGGUF } from '../../src/formats/gguf.js';

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
