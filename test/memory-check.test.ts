// A model is checked against the free memory before the cpu backend takes any: one that would not
// fit (weights + KV cache + activations) is refused with both numbers, from the library and from the server,
// rather than left for the OOM killer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadModel, NotEnoughMemoryError } from '../src/index.js';
import { ReferenceBackend } from '../src/backends/reference/reference-backend.js';
import { LlamaGraph } from '../src/model/arch/llama.js';
import { activationBytes } from '../src/model/spec.js';
import { randomSpec, randomWeights, writeHFModel } from './helpers/random-model.js';
import { loadWeights, openModel } from '../src/model/load.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';

test('loadModel refuses a model larger than the free memory, naming what it needs and what is free', { skip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-memory-'));
  try {
    await writeModels(dir);
    const file = path.join(dir, 'tiny-gguf.gguf');
    await assert.rejects(loadModel(file, { backend: 'cpu', threads: 1, contextLength: 64, freeMemory: 1000 }), (e: unknown) => {
      assert.ok(e instanceof NotEnoughMemoryError);
      assert.match(e.message, /tiny-gguf\.gguf needs [\d.]+ MiB \(weights [\d.]+ MiB, KV cache [\d.]+ MiB for 1 × 64 positions, activations [\d.]+ MiB\) and 0\.0 MiB of memory is free/);
      assert.ok(!e.message.includes(dir), 'no full path');
      return true;
    });
    // A context that would not fit is refused the same way, though the weights alone fit.
    const fits = await loadModel(file, { backend: 'cpu', threads: 1, contextLength: 64 });
    const info = fits.info();
    fits.dispose();
    await assert.rejects(loadModel(file, { backend: 'cpu', threads: 1, contextLength: info.spec.contextLength, parallel: 64, freeMemory: 2 ** 20 }),
      /KV cache [\d.]+ MiB for 64 × \d+ positions.*use a smaller context \(--ctx-size\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the server answers 503 naming the model and both numbers, and keeps serving', { skip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-memory-'));
  const models = path.join(dir, 'models');
  await mkdir(models);
  await writeModels(models);
  const { server, url } = await startServer(models, { backend: 'cpu', threads: 1, freeMemory: 1000 });
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny-gguf', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 }),
    });
    assert.equal(res.status, 503);
    const body = await res.json() as { error: { message: string; code: string } };
    assert.equal(body.error.code, 'insufficient_memory');
    assert.match(body.error.message, /model "tiny-gguf": tiny-gguf\.gguf needs [\d.]+ MiB .* and [\d.]+ MiB of memory is free/);
    assert.ok(!body.error.message.includes(dir));
    assert.equal((await fetch(`${url}/health`)).status, 200);
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the activations counted before a load are the buffers the graph allocates', { skip }, async () => {
  for (const arch of ['llama', 'qwen3'] as const) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-activations-'));
    try {
      const spec = randomSpec({ arch, dim: 64, nLayers: 1, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: true });
      await writeHFModel(dir, spec, randomWeights(spec, 3));
      const opened = await openModel(dir);
      const backend = new ReferenceBackend();
      const weights = await loadWeights(opened, backend);
      await opened.close();
      let allocated = 0;
      const counting = new Proxy(backend, {
        get: (b, key) => (key === 'createActivations'
          ? (rows: number, cols: number) => { allocated += 4 * rows * cols; return b.createActivations(rows, cols); }
          : Reflect.get(b, key)),
      });
      new LlamaGraph(counting, opened.spec, weights, { maxBatchTokens: 24, maxOutputs: 3, contextLength: 32 });
      assert.equal(activationBytes(opened.spec, 24, 3), allocated, arch);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});
