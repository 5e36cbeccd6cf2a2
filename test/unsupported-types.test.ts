// A GGUF file whose matrices use types no backend computes with (here IQ2_XXS and TQ2_0, whose
// bytes need not mean anything: they are never read) is refused when the model opens, from its
// header alone, with one error naming each type and its tensors: through the library, the CLI,
// and the server, which answers a request for it with that error (400; the model stays out of
// the list) and goes on serving other models.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadModel, UnsupportedTypeError } from '../src/index.js';
import { openModelFiles } from '../src/model/load.js';
import { metadataEntries, openGGUF, writeGGUF, type GGUFTensorToWrite } from '../src/formats/gguf.js';
import { byteSize, type DType } from '../src/quant/dtype.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeGGUFModel } from './helpers/random-model.js';
import { startServer, writeModels } from './helpers/server.js';

const execFileAsync = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;

/** Tensors rewritten with another type (bytes of the right size, all 0x11), in file order. */
const SWAP: Record<string, DType> = {
  'blk.0.attn_q.weight': 'IQ2_XXS', 'blk.0.attn_v.weight': 'IQ2_XXS', 'blk.0.ffn_up.weight': 'IQ2_XXS',
  'blk.1.attn_q.weight': 'IQ2_XXS', 'blk.1.attn_k.weight': 'TQ2_0', 'blk.1.ffn_gate.weight': 'IQ2_XXS',
};
/** The error's text for the file named `file`. */
const MESSAGE = (file: string) => new RegExp(`${file.replaceAll('.', '\\.')}: weight types not supported: `
  + 'IQ2_XXS \\(5 tensors: blk\\.0\\.attn_q\\.weight, blk\\.0\\.attn_v\\.weight, blk\\.0\\.ffn_up\\.weight and 2 more\\); '
  + 'TQ2_0 \\(1 tensor: blk\\.1\\.attn_k\\.weight\\)\\. Minerva computes with F32, F16, BF16, Q8_0, ');

let dir: string;
let file: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-unsupported-'));
  if (skip) return;
  // A model folder for the server: "tiny-gguf" runs; "mixed" is the same shape with swapped types.
  await writeModels(dir);
  const spec = randomSpec({ arch: 'llama', dim: 256, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 512, tied: true });
  const base = path.join(dir, 'base.tmp');
  await writeGGUFModel(base, spec, randomWeights(spec, 3), { dtype: 'F32' });
  const source = await openGGUF(base);
  try {
    const tensors: GGUFTensorToWrite[] = [];
    for (const [name, info] of source.tensors) {
      const dtype = SWAP[name];
      const data = dtype ? new Uint8Array(byteSize(dtype, info.shape.reduce((a, b) => a * b, 1))).fill(0x11) : (await source.read(name)).slice();
      tensors.push({ name, dtype: dtype ?? info.dtype, shape: info.shape, data });
    }
    file = path.join(dir, 'mixed.gguf');
    await writeGGUF(file, { metadata: metadataEntries(source), tensors });
  } finally {
    await source.close();
  }
  await rm(base);
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

test('the library refuses the file when it opens, naming each type and its tensors', { skip }, async () => {
  // Opening reads headers only: the refusal comes before any backend exists or any weight is read.
  await assert.rejects(openModelFiles(file), (e: unknown) => {
    assert.ok(e instanceof UnsupportedTypeError);
    assert.match(e.message, MESSAGE(file));
    assert.deepEqual([...e.tensorsByType], [
      ['IQ2_XXS', ['blk.0.attn_q.weight', 'blk.0.attn_v.weight', 'blk.0.ffn_up.weight', 'blk.1.attn_q.weight', 'blk.1.ffn_gate.weight']],
      ['TQ2_0', ['blk.1.attn_k.weight']],
    ]);
    return true;
  });
  for (const backend of ['reference', 'cpu'] as const) await assert.rejects(loadModel(file, { backend, threads: 1 }), MESSAGE(file));
});

test('the CLI says so and exits with an error', { skip }, async () => {
  await assert.rejects(execFileAsync(process.execPath, [CLI, 'run', file, 'Hello', '-n', '2']), (e: { code?: number; stderr?: string }) => {
    assert.equal(e.code, 1);
    assert.match(e.stderr ?? '', new RegExp(`^minerva: ${MESSAGE(file).source}`));
    return true;
  });
});

test('the server answers a request for the model with the error and goes on serving', { skip }, async () => {
  const { server, url } = await startServer(dir, { backend: 'cpu' });
  try {
    const chat = (model: string) => fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
    });
    const refused = await chat('mixed');
    const body = await refused.json() as { error?: { message?: string } };
    assert.equal(refused.status, 400);
    assert.match(body.error?.message ?? '', new RegExp(`^model "mixed": ${MESSAGE('mixed.gguf').source}`));
    const ok = await chat('tiny-gguf');
    assert.equal(ok.status, 200, await ok.clone().text());
    assert.equal(((await ok.json()) as { object: string }).object, 'chat.completion');
    // And the same again: the failed load left nothing behind.
    assert.equal((await chat('mixed')).status, refused.status);
  } finally {
    await server.close();
  }
});
