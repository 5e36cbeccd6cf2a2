// The model registry behind `minerva serve`, through the server's HTTP API: discovery of HF
// folders and GGUF files (broken ones left out), load on first use, one load for concurrent
// requests, LRU unloading within --max-memory (never a model in use), keep-alive expiry and
// Ollama's keep_alive 0, model names that can never reach outside the models folder, and /ready.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';
import { startServer } from './helpers/server.js';
import { createServer, DEFAULTS, type MinervaServer, type ServeOptions } from '../src/server/server.js';

// Tiny (a few MB), with a context long enough that a generation can outlast several requests.
const SPEC = randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false, contextLength: 2048 });
/** The same for every server here, so that every copy of "a" needs the same bytes. */
const SERVE: Partial<ServeOptions> = { parallel: 2, contextLength: 1024, threads: 1 };

let dir: string;
let models: string;
/** Bytes one of the GGUF copies a, b, c holds when loaded (weights, KV cache and activations), as /api/ps reports it. */
let need: number;
let main: { server: MinervaServer; url: string };
const servers: MinervaServer[] = [];

async function serve(o: Partial<ServeOptions> = {}): Promise<string> {
  const s = await startServer(models, { ...SERVE, ...o });
  servers.push(s.server);
  return s.url;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-registry-'));
  if (skip) return;
  models = path.join(dir, 'models');
  await mkdir(models);
  const weights = randomWeights(SPEC, 11);
  await writeHFModel(path.join(models, 'hf-tiny'), SPEC, weights);
  const a = path.join(models, 'a.gguf');
  await writeGGUFModel(a, SPEC, weights, { dtype: 'Q8_0' });
  await copyFile(a, path.join(models, 'b.gguf'));
  await copyFile(a, path.join(models, 'c.gguf'));
  // A valid model beside the models folder, which no name may reach.
  await mkdir(path.join(dir, 'outside'));
  await copyFile(a, path.join(dir, 'outside', 'secret.gguf'));

  // What a models folder also holds in practice: an interrupted download, junk, notes, a folder
  // whose config.json is broken, a folder with a config and no weights, a folder that is no model.
  const bytes = await readFile(a);
  await writeFile(path.join(models, 'truncated.gguf'), bytes.subarray(0, Math.floor(bytes.length * 0.9)));
  await writeFile(path.join(models, 'header-only.gguf'), bytes.subarray(0, 100));
  await writeFile(path.join(models, 'junk.gguf'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 255)));
  await writeFile(path.join(models, 'README.txt'), 'my models\n');
  await mkdir(path.join(models, 'bad-config'));
  await writeFile(path.join(models, 'bad-config', 'config.json'), '{"model_type": "llama", ');
  await copyFile(path.join(models, 'hf-tiny', 'model.safetensors'), path.join(models, 'bad-config', 'model.safetensors'));
  await mkdir(path.join(models, 'no-weights'));
  await copyFile(path.join(models, 'hf-tiny', 'config.json'), path.join(models, 'no-weights', 'config.json'));
  await mkdir(path.join(models, 'not-a-model'));
  await writeFile(path.join(models, 'not-a-model', 'notes.md'), 'nothing here');

  main = await startServer(models, { ...SERVE, maxMemory: 2 ** 30 });
  servers.push(main.server);
  await generate(main.url, 'a');
  need = (await ps(main.url)).find((m) => m.name === 'a:latest')!.size;
  assert.ok(need > (await stat(a)).size, 'the loaded size counts the KV cache too');
  await post(main.url, '/api/generate', { model: 'a', keep_alive: 0 });
  assert.deepEqual(await psNames(main.url), []);
});
after(async () => {
  for (const s of servers) await s.close();
  await rm(dir, { recursive: true, force: true });
});

const post = (base: string, route: string, body: unknown) =>
  fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** A short whole (not streamed) Ollama generation; returns the response. */
async function generate(base: string, model: string, extra: object = {}): Promise<Response> {
  return post(base, '/api/generate', { model, prompt: 'Once upon a time', stream: false, options: { temperature: 0, num_predict: 2 }, ...extra });
}

type PsModel = { name: string; size: number; expires_at: string };
async function ps(base: string): Promise<PsModel[]> {
  return ((await (await fetch(`${base}/api/ps`)).json()) as { models: PsModel[] }).models;
}
/** Loaded models, most recently used first. */
async function psNames(base: string): Promise<string[]> {
  return (await ps(base)).map((m) => m.name);
}

/** How many times the server has loaded `model` (minerva_model_loads_total). */
async function loads(base: string, model: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const m = new RegExp(`^minerva_model_loads_total\\{model="${model}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** The error message of an Ollama or OpenAI error body (the whole body when it is no error). */
async function errorOf(res: Response): Promise<string> {
  const json = (await res.json()) as { error?: string | { message: string } };
  if (json.error === undefined) return `no error: ${JSON.stringify(json).slice(0, 200)}`;
  return typeof json.error === 'string' ? json.error : json.error.message;
}

async function waitFor(check: () => Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('discovery: GGUF files and HF folders by name, from headers only; broken entries are left out, the rest still listed', { skip }, async () => {
  const url = await serve();
  const ids = ((await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] }).data.map((m) => m.id);
  assert.deepEqual(ids, ['a', 'b', 'c', 'hf-tiny']);

  type Tag = { name: string; size: number; details: { format: string; family: string; quantization_level: string } };
  const tags = ((await (await fetch(`${url}/api/tags`)).json()) as { models: Tag[] }).models;
  assert.deepEqual(tags.map((t) => t.name), ['a:latest', 'b:latest', 'c:latest', 'hf-tiny:latest']);
  const gguf = tags.find((t) => t.name === 'a:latest')!, hf = tags.find((t) => t.name === 'hf-tiny:latest')!;
  assert.deepEqual([gguf.details.format, gguf.details.family, gguf.details.quantization_level], ['gguf', 'llama', 'Q8_0']);
  assert.deepEqual([hf.details.format, hf.details.family, hf.details.quantization_level], ['safetensors', 'llama', 'F32']);
  assert.equal(gguf.size, (await stat(path.join(models, 'a.gguf'))).size);
  assert.ok(hf.size > gguf.size * 3, 'an F32 folder holds about 4× the bytes of the same weights as Q8_0');

  // Listing read headers only: nothing was loaded.
  assert.deepEqual(await psNames(url), []);
  assert.equal(await loads(url, 'a'), 0);

  // A broken entry is not offered, so asking for it is a 404, not a crash; the server keeps serving.
  for (const name of ['truncated', 'header-only', 'junk', 'bad-config', 'no-weights', 'not-a-model', 'README.txt', 'README']) {
    const res = await post(url, '/api/show', { model: name });
    assert.equal(res.status, 404, name);
    assert.match(await errorOf(res), /not found/);
  }
  assert.equal((await generate(url, 'hf-tiny')).status, 200, 'the HF folder loads and generates');

  // The folder is read live: a model copied in is offered at once, one removed is gone.
  await copyFile(path.join(models, 'a.gguf'), path.join(models, 'new.gguf'));
  try {
    assert.ok(((await (await fetch(`${url}/api/tags`)).json()) as { models: Tag[] }).models.some((t) => t.name === 'new:latest'));
  } finally {
    await rm(path.join(models, 'new.gguf'));
  }
  assert.equal((await post(url, '/api/show', { model: 'new' })).status, 404);
});

test('a model loads on first use, once, and stays loaded for the next request', { skip }, async () => {
  const url = await serve();
  assert.deepEqual(await psNames(url), []);
  assert.equal((await post(url, '/api/show', { model: 'b' })).status, 200);
  assert.deepEqual(await psNames(url), [], '/api/show describes without loading');

  const res = await post(url, '/v1/completions', { model: 'b', prompt: 'Hello', max_tokens: 3, temperature: 0 });
  assert.equal(res.status, 200);
  const [loaded] = await ps(url);
  assert.equal(loaded?.name, 'b:latest');
  assert.equal(loaded.size, need);
  assert.equal(await loads(url, 'b'), 1);
  assert.equal((await generate(url, 'b')).status, 200);
  assert.equal(await loads(url, 'b'), 1, 'the second request used the loaded model');
});

test('concurrent requests for a model that is loading wait for its one load', { skip }, async () => {
  const url = await serve();
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 === 0
    ? post(url, '/v1/completions', { model: 'c', prompt: `Request ${i}`, max_tokens: 3, temperature: 0 })
    : generate(url, 'c:latest'))));
  assert.deepEqual(results.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  assert.equal(await loads(url, 'c'), 1);
  assert.deepEqual(await psNames(url), ['c:latest']);
});

test('--max-memory: several models stay loaded within it, the least recently used is unloaded first', { skip }, async () => {
  const url = await serve({ maxMemory: Math.floor(2.5 * need) });
  await generate(url, 'a');
  await generate(url, 'b');
  assert.deepEqual(await psNames(url), ['b:latest', 'a:latest'], 'two fit');
  await generate(url, 'c');
  assert.deepEqual(await psNames(url), ['c:latest', 'b:latest'], 'a, least recently used, made room for c');
  await generate(url, 'b'); // b is now used more recently than c, though c was loaded later
  await generate(url, 'a');
  assert.deepEqual(await psNames(url), ['a:latest', 'b:latest'], 'c, least recently used, made room for a');
  assert.equal(await loads(url, 'a'), 2);
  assert.equal(await loads(url, 'b'), 1, 'b was never unloaded');
  const held = (await ps(url)).reduce((n, m) => n + m.size, 0);
  assert.ok(held <= 2.5 * need);
});

test('--max-memory: concurrent first requests for different models never load more than fits', { skip }, async () => {
  const budget = Math.floor(1.5 * need);
  const url = await serve({ maxMemory: budget });
  const results = await Promise.all(['a', 'b', 'c'].map((m) => generate(url, m)));
  const statuses = results.map((r) => r.status);
  assert.ok(statuses.includes(200), `one of them loads (${statuses.join(', ')})`);
  for (const r of results) {
    if (r.status !== 200) {
      assert.equal(r.status, 503);
      assert.match(await errorOf(r), /needs .* [MG]iB .*limit; try again when they are idle/);
    }
  }
  const loaded = await ps(url);
  assert.ok(loaded.reduce((n, m) => n + m.size, 0) <= budget, `loaded together: ${loaded.map((m) => m.name).join(', ')}`);
});

test('--max-memory: a model in use is never unloaded for another; it is once idle', { skip }, async () => {
  const url = await serve({ maxMemory: Math.floor(1.5 * need) });
  const ctrl = new AbortController();
  // The headers come once the model is taken and the generation has started: a is in use.
  const res = await fetch(`${url}/api/generate`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, signal: ctrl.signal,
    body: JSON.stringify({ model: 'a', prompt: 'Tell me a long story', options: { temperature: 0, num_predict: 1000 } }),
  });
  assert.equal(res.status, 200);
  const active = async () => /^minerva_active_sequences\{model="a"\} 1$/m.test(await (await fetch(`${url}/metrics`)).text());

  // b does not fit beside a, and a is not unloaded to make room.
  const refused = await generate(url, 'b');
  assert.equal(refused.status, 503);
  assert.match(await errorOf(refused), /^model "b" needs .* [MG]iB and the models in use or loading hold .* [MG]iB of the .* [MG]iB limit; try again when they are idle$/);
  const openai = await post(url, '/v1/completions', { model: 'b', prompt: 'x', max_tokens: 1 });
  assert.equal(openai.status, 503);
  assert.equal(((await openai.json()) as { error: { code: string } }).error.code, 'insufficient_memory');
  assert.deepEqual(await psNames(url), ['a:latest']);
  assert.ok(await active(), 'a is still generating');

  // The client hangs up: a is idle (its expiry is set), and b takes its place.
  ctrl.abort();
  await res.body!.cancel().catch(() => undefined);
  await waitFor(async () => (await ps(url)).every((m) => new Date(m.expires_at).getUTCFullYear() < 9999), 'a is idle');
  assert.equal((await generate(url, 'b')).status, 200);
  assert.deepEqual(await psNames(url), ['b:latest']);
});

test('--max-memory: a model larger than the whole limit is refused with the sizes, and nothing else changes', { skip }, async () => {
  const url = await serve({ maxMemory: Math.floor(need / 2) });
  const res = await generate(url, 'a');
  assert.equal(res.status, 503);
  assert.match(await errorOf(res), /^model "a" needs [\d.]+ [MG]iB \(weights, KV cache and activations\) and the memory limit is [\d.]+ [MG]iB \(--max-memory\)$/);
  const openai = await post(url, '/v1/chat/completions', { model: 'a', messages: [{ role: 'user', content: 'x' }] });
  assert.equal(openai.status, 503);
  const body = (await openai.json()) as { error: { type: string; code: string; message: string } };
  assert.deepEqual([body.error.type, body.error.code], ['server_error', 'insufficient_memory']);
  assert.match(body.error.message, /--max-memory/);
  assert.deepEqual(await psNames(url), []);
  assert.equal((await fetch(`${url}/ready`)).status, 200);
});

test('keep_alive: a short one expires, 0 unloads right after the request, -1 and long ones keep the model', { skip }, async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const url = await serve({ keepAliveMs: 60_000 });
    // A request's keep_alive overrides the server's: this one expires in well under a minute.
    assert.equal((await generate(url, 'a', { keep_alive: '300ms' })).status, 200);
    const [a] = await ps(url);
    assert.equal(a?.name, 'a:latest');
    assert.ok(Date.parse(a.expires_at) < Date.now() + 30_000, a.expires_at);
    await waitFor(async () => (await psNames(url)).length === 0, 'a expires');

    // keep_alive 0: unloaded when the request ends, streamed or not (Ollama's semantics).
    assert.equal((await generate(url, 'b', { keep_alive: 0 })).status, 200);
    assert.deepEqual(await psNames(url), []);
    const streamed = await post(url, '/api/generate', { model: 'b', prompt: 'Hi', stream: true, keep_alive: '0s', options: { num_predict: 3 } });
    assert.equal(streamed.status, 200);
    const lines = (await streamed.text()).trim().split('\n').map((l) => JSON.parse(l) as { done: boolean });
    assert.equal(lines.at(-1)!.done, true);
    assert.deepEqual(await psNames(url), []);

    // Ollama's preload and unload: an empty prompt loads; an empty prompt with keep_alive 0 unloads.
    const load = (await (await post(url, '/api/generate', { model: 'c' })).json()) as { done_reason: string };
    assert.equal(load.done_reason, 'load');
    assert.deepEqual(await psNames(url), ['c:latest']);
    const unload = (await (await post(url, '/api/chat', { model: 'c', keep_alive: 0 })).json()) as { done_reason: string };
    assert.equal(unload.done_reason, 'unload');
    assert.deepEqual(await psNames(url), []);

    // Negative: forever. Longer than a timer can wait (30 days): kept, without the timer misfiring.
    assert.equal((await generate(url, 'a', { keep_alive: -1 })).status, 200);
    assert.equal(new Date((await ps(url))[0]!.expires_at).getUTCFullYear(), 9999);
    assert.equal((await generate(url, 'b', { keep_alive: '720h' })).status, 200);
    const b = (await ps(url)).find((m) => m.name === 'b:latest')!;
    assert.ok(Date.parse(b.expires_at) > Date.now() + 29 * 86_400_000, b.expires_at);
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual((await psNames(url)).sort(), ['a:latest', 'b:latest']);
    assert.deepEqual(warnings.filter((w) => w.name === 'TimeoutOverflowWarning').map((w) => w.message), []);
  } finally {
    process.off('warning', onWarning);
  }
});

test('the server\'s own keep-alive (--keep-alive) unloads an idle model', { skip }, async () => {
  const url = await serve({ keepAliveMs: 200 });
  assert.equal((await generate(url, 'a')).status, 200);
  assert.deepEqual(await psNames(url), ['a:latest']);
  await waitFor(async () => (await psNames(url)).length === 0, 'a expires');
});

test('model names are only ever matched against the listing: no path reaches outside the models folder', { skip }, async () => {
  const url = main.url;
  const outside = path.join(dir, 'outside', 'secret.gguf');
  const names = [
    '../outside/secret', '../outside/secret.gguf', '../../etc/passwd', '..', '.', '../models/a', './a', 'a/../a',
    outside, outside.slice(0, -'.gguf'.length), path.join(models, 'a.gguf'), '/etc/passwd', 'a\u0000', 'a\u0000.gguf', '\u0000',
    'a:7b', ':latest', 'a:latest:latest', '..%2Foutside%2Fsecret', '..\\outside\\secret',
  ];
  for (const name of names) {
    for (const [route, body] of [
      ['/api/show', { model: name }],
      ['/api/generate', { model: name, prompt: 'x', stream: false }],
      ['/v1/chat/completions', { model: name, messages: [{ role: 'user', content: 'x' }] }],
    ] as const) {
      const res = await post(url, route, body);
      const message = await errorOf(res);
      assert.equal(res.status, 404, `${route} ${JSON.stringify(name)}: ${message}`);
      assert.match(message, /^model ".*" not found; GET \/v1\/models or \/api\/tags lists the models in the models folder$/s);
    }
  }
  // In the URL, percent-encoded slashes, dots and NUL included.
  for (const id of ['..%2Foutside%2Fsecret', '%2E%2E%2Foutside%2Fsecret', '..%2F..%2F..%2Fetc%2Fpasswd', encodeURIComponent(outside), 'a%00', '%2E%2E']) {
    const res = await fetch(`${url}/v1/models/${id}`);
    assert.ok(res.status === 404 || res.status === 400, `${id}: ${res.status}`);
    const body = (await res.json()) as { error: { message: string } };
    assert.ok(body.error.message.length > 0);
  }
  assert.equal((await post(url, '/api/generate', { model: '', prompt: 'x' })).status, 400);
  // Nothing was loaded for any of them.
  assert.deepEqual(await psNames(url), []);
  assert.equal(await loads(url, 'secret'), 0);

  // Ollama clients send "name:latest": the same model as "name", for every route.
  assert.equal((await (await fetch(`${url}/v1/models/a:latest`)).json() as { id: string }).id, 'a');
  assert.equal((await post(url, '/api/show', { model: 'hf-tiny:latest' })).status, 200);
  assert.equal((await generate(url, 'a:latest', { keep_alive: 0 })).status, 200);
  const chat = await post(url, '/v1/completions', { model: 'a:latest', prompt: 'x', max_tokens: 1 });
  assert.equal(chat.status, 200);
  assert.equal(((await chat.json()) as { model: string }).model, 'a');
});

test('/ready answers 503 until the server can serve, /health at once; an absent models folder is an empty list', { skip }, async () => {
  const server = await createServer({
    host: '127.0.0.1', port: 0, modelsDir: path.join(dir, 'absent'), parallel: 1, maxQueue: 4, maxMemory: 2 ** 30,
    keepAliveMs: 60_000, threads: 1, requestTimeoutMs: 60_000, bodyLimit: DEFAULTS.bodyLimit, logger: false,
  });
  servers.push(server);
  const early = await server.app.inject({ method: 'GET', url: '/ready' });
  assert.equal(early.statusCode, 503);
  assert.deepEqual(early.json(), { status: 'starting' });
  assert.equal((await server.app.inject({ method: 'GET', url: '/health' })).statusCode, 200);
  const url = await server.listen();
  const ready = await fetch(`${url}/ready`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready' });
  assert.deepEqual(await (await fetch(`${url}/v1/models`)).json(), { object: 'list', data: [] });
  assert.deepEqual(await (await fetch(`${url}/api/tags`)).json(), { models: [] });
  assert.deepEqual(await (await fetch(`${url}/api/ps`)).json(), { models: [] });
  const missing = await post(url, '/api/generate', { model: 'a', prompt: 'x' });
  assert.equal(missing.status, 404);
  assert.match(await errorOf(missing), /model "a" not found/);
});
