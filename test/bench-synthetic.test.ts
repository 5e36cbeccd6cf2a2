// `minerva bench --synthetic`: random-weight models with real dimensions, cached. The generator is
// tested on a small shape (the real presets take a minute to write); the presets' values against
// the published configs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { getLlama, LlamaLogLevel, type Llama } from 'node-llama-cpp';
import { loadModel } from '../src/index.js';
import { SYNTHETIC_PRESETS, syntheticModel } from '../src/bench/synthetic.js';
import type { RandomModelShape } from '../src/model/random-model.js';
import { logitsDiff } from './helpers/generation.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
const SHAPE: RandomModelShape = { arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 128, tied: false, vocabSize: 1200 };
const TEXT = 'the quick brown fox jumps over the lazy dog, 3 times!';
let dir: string;
let llama: Llama | undefined;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-synthetic-'));
  llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error }).catch(() => undefined);
});
after(async () => {
  await llama?.dispose();
  await rm(dir, { recursive: true, force: true });
});

test('the presets have the published dimensions', () => {
  assert.deepEqual(SYNTHETIC_PRESETS['tinyllama-1.1b'], {
    arch: 'llama', dim: 2048, nLayers: 22, nHeads: 32, nKVHeads: 4, ffnDim: 5632, tied: false,
    vocabSize: 32000, contextLength: 2048, ropeTheta: 10000,
  });
  const l = SYNTHETIC_PRESETS['llama-3.2-1b'];
  assert.equal(l.nLayers, 16);
  assert.deepEqual([l.dim, l.nHeads, l.nKVHeads, l.ffnDim, l.vocabSize, l.tied, l.ropeTheta], [2048, 32, 8, 8192, 128256, true, 500000]);
  assert.deepEqual(l.llama3Rope, { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 });
});

test('a synthetic model: SafeTensors and GGUF of the same weights, same tokens and logits in Minerva, cached', async () => {
  const cacheDir = path.join(dir, 'cache');
  const m = await syntheticModel('small', SHAPE, 'f16', { cacheDir });
  assert.ok(m.hf, 'float types get a SafeTensors folder');
  const [hf, gguf] = [await loadModel(m.hf), await loadModel(m.gguf)];
  try {
    const ids = hf.tokenize(TEXT);
    assert.deepEqual(gguf.tokenize(TEXT), ids);
    assert.equal(hf.detokenize(ids.slice(1)), TEXT, 'the vocabulary round-trips text');
    // The GGUF has Q/K rows permuted for llama.cpp's RoPE layout: equal logits prove it.
    const { maxDiff, maxAbs } = logitsDiff(await hf.logits(ids), await gguf.logits(ids));
    assert.ok(maxDiff <= 1e-4 * maxAbs, `max |Δlogit| ${maxDiff} of ${maxAbs}`);
  } finally {
    hf.dispose();
    gguf.dispose();
  }
  // Cached: a second call writes nothing.
  const before = (await stat(m.gguf)).mtimeMs;
  const again = await syntheticModel('small', SHAPE, 'f16', { cacheDir });
  assert.deepEqual(again, m);
  assert.equal((await stat(m.gguf)).mtimeMs, before);
  // Deterministic: the same seed gives the same bytes.
  const other = await syntheticModel('small', SHAPE, 'f16', { cacheDir: path.join(dir, 'other') });
  assert.deepEqual(await readFile(other.gguf), await readFile(m.gguf));
  // Quantized types are GGUF only.
  const q = await syntheticModel('small', SHAPE, 'q8_0', { cacheDir });
  assert.equal(q.hf, undefined);
  assert.ok((await stat(q.gguf)).size < (await stat(m.gguf)).size);
});

test('an interrupted generation does not count as cached', async () => {
  const cacheDir = path.join(dir, 'interrupted');
  // What a killed run leaves behind: a partial folder.
  await mkdir(path.join(cacheDir, `small-f32.partial-12345`), { recursive: true });
  const m = await syntheticModel('small', SHAPE, 'f32', { cacheDir });
  assert.ok((await stat(m.gguf)).size > 0);
  await assert.rejects(syntheticModel('small', { ...SHAPE, dim: 63 }, 'f16', { cacheDir }), /./, 'a bad shape fails');
  await assert.rejects(stat(path.join(cacheDir, 'small-f16')), /ENOENT/, 'and leaves no cache entry behind');
});

test('llama.cpp reads the synthetic vocabulary and tokenizes as Minerva does', async (t) => {
  if (!llama) return t.skip('node-llama-cpp could not load llama.cpp here');
  const m = await syntheticModel('small', SHAPE, 'f16', { cacheDir: path.join(dir, 'cache') });
  const theirs = await llama.loadModel({ modelPath: m.gguf });
  const ours = await loadModel(m.hf!);
  try {
    for (const text of [TEXT, ' leading space', 'zzz qqq', 'ünïcödé 日本 🚀']) {
      assert.deepEqual([...theirs.tokenize(text, true)], ours.tokenize(text, { addSpecial: false }), text);
    }
  } finally {
    await theirs.dispose();
    ours.dispose();
  }
});

test('bench --synthetic: argument errors are one line and exit 1', async () => {
  const fails = async (args: string[], pattern: RegExp) => {
    await assert.rejects(run(process.execPath, [CLI, 'bench', ...args], { timeout: 60_000 }),
      (e: { code?: number; stderr?: string }) => e.code === 1 && pattern.test(e.stderr ?? ''));
  };
  await fails(['--synthetic', 'nope'], /--synthetic.*nope.*invalid/);
  await fails(['model.gguf', '--synthetic', 'tinyllama-1.1b'], /give a model path or --synthetic <preset>, not both/);
  await fails([], /give a model path or --synthetic <preset>, not both/);
  await fails(['model.gguf', '--dtype', 'f16'], /--dtype chooses the weight type of a --synthetic model/);
  await fails(['--synthetic', 'tinyllama-1.1b', '--dtype', 'q3_k'], /--dtype.*q3_k.*invalid/);
});
