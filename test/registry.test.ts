// The server's model registry (src/server/registry.ts) over a models folder of random-weight
// models and broken files: discovery from headers, load on first use (one load for concurrent
// requests), least-recently-used unloading within the memory budget, models in use kept, keep-alive
// expiry, names that cannot leave the folder; and /ready before the server can serve.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { InsufficientMemoryError, ModelRegistry, UnknownModelError, type RegistryOptions } from '../src/server/registry.js';
import { createServer, DEFAULTS } from '../src/server/server.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { SPEC } from './helpers/server.js';
import { activationBytes, graphBatchTokens, kvCacheBytes } from '../src/model/spec.js';
import { randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';

let dir: string;
let models: string;
/** What one model holds when loaded: weights (the listed size) plus its KV cache. */
let perModel: number;
const CTX = 64;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-registry-'));
  models = path.join(dir, 'models');
  await mkdir(models);
  if (skip) return;
  const weights = randomWeights(SPEC, 7);
  // Three models of one shape: "alpha" and "gamma" HF folders, "beta" a GGUF file (F32, so all weigh the same).
  await writeHFModel(path.join(models, 'alpha'), SPEC, weights);
  await writeGGUFModel(path.join(models, 'beta.gguf'), SPEC, weights, { dtype: 'F32' });
  await writeHFModel(path.join(models, 'gamma'), SPEC, weights);
  // Things that are not models, or broken ones: never listed, never fatal.
  const good = await readFile(path.join(models, 'beta.gguf'));
  await writeFile(path.join(models, 'truncated.gguf'), good.subarray(0, 200));
  await writeFile(path.join(models, 'junk.gguf'), Buffer.from('this is not a gguf file at all'));
  await mkdir(path.join(models, 'bad-config'));
  await writeFile(path.join(models, 'bad-config', 'config.json'), '{ not json');
  await mkdir(path.join(models, 'no-config'));
  await copyFile(path.join(models, 'alpha', 'tokenizer.json'), path.join(models, 'no-config', 'tokenizer.json'));
  await writeFile(path.join(models, 'notes.txt'), 'hello');
  await mkdir(path.join(models, '.hidden'));
  // The escape targets: a model right outside the folder must stay unreachable.
  await copyFile(path.join(models, 'beta.gguf'), path.join(dir, 'outside.gguf'));
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

function registry(o: Partial<RegistryOptions> = {}): ModelRegistry {
  return new ModelRegistry({ dir: models, maxMemory: 2 ** 30, keepAliveMs: 60_000, load: { contextLength: CTX, threads: 2, parallel: 1 }, ...o });
}

const names = (r: ModelRegistry) => r.running().map((l) => l.entry.name);

test('the listing finds HF folders and GGUF files from their headers, skips what is broken, loads nothing', { skip }, async () => {
  const r = registry();
  const list = await r.list();
  assert.deepEqual(list.map((e) => [e.name, e.format]), [['alpha', 'safetensors'], ['beta', 'gguf'], ['gamma', 'safetensors']]);
  for (const e of list) {
    assert.equal(e.architecture, 'llama');
    assert.ok(e.parameters > 0 && e.size > 0);
  }
  assert.deepEqual(names(r), [], 'listing loads no model');
  const { loaded, release } = await r.acquire('alpha');
  perModel = loaded.bytes;
  assert.equal(perModel, list[0]!.size + kvCacheBytes(loaded.model.spec, CTX, 1) + activationBytes(loaded.model.spec, graphBatchTokens(undefined, CTX, 1), 1),
    'weights, KV cache and activations');
  release();
  r.dispose();
  // A folder that does not exist yet lists as empty.
  assert.deepEqual(await registry({ dir: path.join(dir, 'absent') }).list(), []);
});

test('names are looked up in the listing only: paths, traversal and NUL never reach a file', { skip }, async () => {
  const r = registry();
  try {
    for (const name of ['../outside', '../../etc/passwd', '/etc/passwd', path.join(dir, 'outside.gguf'), 'alpha/../beta', 'beta.gguf',
      'alpha\0', '.', '..', '', 'truncated', 'bad-config', 'notes.txt', '.hidden', 'ALPHA']) {
      await assert.rejects(r.acquire(name), UnknownModelError, JSON.stringify(name));
    }
    assert.deepEqual(names(r), []);
    // Ollama clients send "name:latest".
    const { loaded, release } = await r.acquire('beta:latest');
    assert.equal(loaded.entry.name, 'beta');
    release();
  } finally {
    r.dispose();
  }
});

test('a model loads on first use, once for concurrent requests', { skip }, async () => {
  const r = registry();
  try {
    const uses = await Promise.all([r.acquire('alpha'), r.acquire('alpha'), r.acquire('alpha:latest')]);
    assert.ok(uses.every((u) => u.loaded === uses[0]!.loaded), 'one load shared by all three');
    assert.equal(uses[0]!.loaded.users, 3);
    assert.deepEqual(names(r), ['alpha']);
    uses.forEach((u) => u.release());
    assert.equal(uses[0]!.loaded.users, 0);
    const again = await r.acquire('alpha');
    assert.equal(again.loaded, uses[0]!.loaded, 'a loaded model is reused');
    again.release();
  } finally {
    r.dispose();
  }
});

test('within --max-memory the least recently used idle model unloads first; models in use never do', { skip }, async () => {
  const r = registry({ maxMemory: Math.floor(perModel * 2.5) }); // room for two
  try {
    const use = async (name: string) => (await r.acquire(name)).release();
    await use('alpha');
    await use('beta');
    assert.deepEqual(names(r), ['beta', 'alpha']);
    await use('gamma');
    assert.deepEqual(names(r), ['gamma', 'beta'], 'alpha, least recently used, made room');
    await use('beta');
    await use('alpha');
    assert.deepEqual(names(r), ['alpha', 'beta'], 'gamma was now the least recently used');

    // alpha in use (a request streaming): loading gamma must unload beta, not alpha.
    const held = await r.acquire('alpha');
    await use('beta'); // beta is now more recent than alpha, but alpha is busy
    await use('gamma');
    assert.deepEqual(names(r).sort(), ['alpha', 'gamma']);
    assert.equal(held.loaded.model.stats().slots, 1, 'the held model is still usable');
    // Both loaded models busy: a third cannot fit, and says why.
    const held2 = await r.acquire('gamma');
    await assert.rejects(r.acquire('beta'), (e: unknown) => e instanceof InsufficientMemoryError && /in use or loading/.test(e.message));
    held.release();
    held2.release();
    await use('beta');
    assert.equal(r.running().length, 2);
    assert.ok(r.memoryInUse() <= Math.floor(perModel * 2.5));
  } finally {
    r.dispose();
  }
});

test('two models loading at once cannot both take the same room', { skip }, async () => {
  const r = registry({ maxMemory: Math.floor(perModel * 1.5) }); // room for one
  try {
    const results = await Promise.allSettled([r.acquire('alpha'), r.acquire('beta')]);
    assert.equal(results.filter((x) => x.status === 'fulfilled').length, 1);
    const failed = results.find((x) => x.status === 'rejected') as PromiseRejectedResult;
    assert.ok(failed.reason instanceof InsufficientMemoryError);
    assert.equal(r.running().length, 1);
    for (const x of results) if (x.status === 'fulfilled') x.value.release();
  } finally {
    r.dispose();
  }
});

test('a model larger than --max-memory is refused with the sizes', { skip }, async () => {
  const r = registry({ maxMemory: 1 << 16 });
  try {
    await assert.rejects(r.acquire('alpha'), (e: unknown) => e instanceof InsufficientMemoryError
      && /model "alpha" needs [\d.]+ MiB \(weights, KV cache and activations\) and the memory limit is 0\.1 MiB/.test(e.message));
    assert.deepEqual(names(r), []);
  } finally {
    r.dispose();
  }
});

test('keep-alive: an idle model unloads when it expires; keep_alive 0 unloads at once; -1 keeps it', { skip }, async () => {
  const r = registry({ keepAliveMs: 100 });
  try {
    (await r.acquire('alpha')).release();
    assert.deepEqual(names(r), ['alpha']);
    const deadline = Date.now() + 10_000;
    while (r.running().length > 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 25));
    assert.deepEqual(names(r), [], 'unloaded after its keep-alive');

    (await r.acquire('beta', 0)).release();
    assert.deepEqual(names(r), [], 'keep_alive 0: unloaded when the request ends');

    const held = await r.acquire('gamma', 0);
    await new Promise((res) => setTimeout(res, 150));
    assert.deepEqual(names(r), ['gamma'], 'never while in use');
    held.release();
    assert.deepEqual(names(r), []);

    (await r.acquire('alpha', Infinity)).release();
    await new Promise((res) => setTimeout(res, 250));
    assert.deepEqual(names(r), ['alpha'], 'keep_alive -1: stays');
  } finally {
    r.dispose();
  }
});

test('/ready answers 503 until the server can serve, /health at once; /api/ps shows what is loaded', { skip }, async () => {
  const server = await createServer({
    host: '127.0.0.1', port: 0, modelsDir: models, parallel: 1, maxQueue: 4, maxMemory: 2 ** 30, keepAliveMs: 60_000,
    contextLength: CTX, threads: 2, requestTimeoutMs: 60_000, bodyLimit: DEFAULTS.bodyLimit, logger: false,
  });
  try {
    assert.equal((await server.app.inject({ method: 'GET', url: '/ready' })).statusCode, 503);
    assert.equal((await server.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    const url = await server.listen();
    assert.equal((await fetch(`${url}/ready`)).status, 200);
    const ps = async () => ((await (await fetch(`${url}/api/ps`)).json()) as { models: { name: string }[] }).models.map((m) => m.name);
    assert.deepEqual(await ps(), []);
    const tags = (await (await fetch(`${url}/api/tags`)).json()) as { models: { name: string }[] };
    assert.deepEqual(tags.models.map((m) => m.name.replace(/:latest$/, '')), ['alpha', 'beta', 'gamma']);
    const res = await fetch(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'beta', prompt: 'Hi', stream: false, options: { num_predict: 2 } }) });
    assert.equal(res.status, 200, await res.text());
    assert.deepEqual(await ps(), ['beta:latest']);
    const esc = await fetch(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: '../outside', prompt: 'Hi' }) });
    assert.equal(esc.status, 404);
    assert.match(((await esc.json()) as { error: string }).error, /model "\.\.\/outside" not found/);
  } finally {
    await server.close();
  }
});
