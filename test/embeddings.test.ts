// Embeddings over HTTP, as real clients ask for them: the `openai` SDK (float and base64), the
// `ollama` client (embed and the legacy embeddings), the Vercel AI SDK (embed, embedMany through
// @ai-sdk/openai-compatible) and LangChain.js (OpenAIEmbeddings); each vector equal to what the
// library gives for the same model, and bad requests answered in each API's error shape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { embed, embedMany } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { OpenAIEmbeddings } from '@langchain/openai';
import { loadModel, type BackendName, type EmbedOptions, type Model, type ModelSpec } from '../src/index.js';
import type { MinervaServer } from '../src/server/server.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { SPEC, startServer, writeModels } from './helpers/server.js';
import { randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';

const TEXTS = ['The sky is blue because of Rayleigh scattering', 'Grass is green', 'Über café 東京 🚀'];
const CONTEXT = 256;

let dir: string;
let server: MinervaServer;
let url: string;
let openai: OpenAI;
let ollama: Ollama;
/** The same models through the library, for the expected vectors. */
const models = new Map<string, Model>();

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-embeddings-'));
  if (skip) return;
  const models_ = path.join(dir, 'models');
  await mkdir(models_);
  await writeModels(models_); // "tiny" and "tiny-gguf": chat models, no pooling declared
  const last: ModelSpec = { ...SPEC, pooling: { type: 'last', normalize: true } };
  await writeHFModel(path.join(models_, 'embed-last'), last, randomWeights(last, 31)); // sentence-transformers files
  const mean: ModelSpec = { ...SPEC, pooling: { type: 'mean', normalize: true } };
  await writeGGUFModel(path.join(models_, 'embed-mean.gguf'), mean, randomWeights(mean, 32), { dtype: 'F32' });
  ({ server, url } = await startServer(models_));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: url });
  for (const [name, f] of [['tiny', 'tiny'], ['embed-last', 'embed-last'], ['embed-mean', 'embed-mean.gguf']]) {
    models.set(name!, await loadModel(path.join(models_, f!), { contextLength: CONTEXT, threads: 2, backend: await server.registry.resolvedBackend() as BackendName }));
  }
});
after(async () => {
  for (const m of models.values()) m.dispose();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const post = (route: string, body: unknown) =>
  fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function expected(model: string, input: string | string[] | number[][], o: EmbedOptions = {}): Promise<Float32Array[]> {
  return (await models.get(model)!.embed(input, o)).embeddings;
}

/** Vectors equal to the library's, up to the 9 significant digits JSON carries (exact in f32). */
function assertSame(actual: ArrayLike<number>[], want: Float32Array[], what: string): void {
  assert.equal(actual.length, want.length, what);
  actual.forEach((a, i) => {
    assert.equal(a.length, want[i]!.length, `${what} [${i}] length`);
    assert.deepEqual(Float32Array.from(a), want[i], `${what} [${i}]`);
  });
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

test('OpenAI SDK: embeddings.create, float and base64, strings and token ids, dimensions, usage', { skip }, async () => {
  for (const model of ['embed-mean', 'embed-last', 'tiny']) {
    const float = await openai.embeddings.create({ model, input: TEXTS, encoding_format: 'float' });
    assert.equal(float.object, 'list');
    assert.equal(float.model, model);
    assert.deepEqual(float.data.map((d) => [d.object, d.index]), TEXTS.map((_, i) => ['embedding', i]));
    const want = await expected(model, TEXTS);
    assertSame(float.data.map((d) => d.embedding), want, `${model} float`);
    const tokens = TEXTS.reduce((n, t) => n + models.get(model)!.tokenize(t).length, 0);
    assert.deepEqual(float.usage, { prompt_tokens: tokens, total_tokens: tokens });

    // base64 as asked for: little-endian f32 bytes, exactly the library's vector.
    const b64 = await openai.embeddings.create({ model, input: TEXTS[0]!, encoding_format: 'base64' });
    const bytes = Buffer.from(b64.data[0]!.embedding as unknown as string, 'base64');
    assert.deepEqual(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4), want[0]);
    // The SDK's default asks for base64 and decodes it itself.
    const byDefault = await openai.embeddings.create({ model, input: TEXTS[1]! });
    assertSame([byDefault.data[0]!.embedding], [want[1]!], `${model} SDK default`);
  }

  // Token ids: one input, and several.
  const ids = TEXTS.map((t) => models.get('embed-mean')!.tokenize(t));
  const byIds = await openai.embeddings.create({ model: 'embed-mean', input: ids, encoding_format: 'float' });
  assertSame(byIds.data.map((d) => d.embedding), await expected('embed-mean', TEXTS), 'token-id inputs');
  const one = await openai.embeddings.create({ model: 'embed-mean', input: ids[0]!, encoding_format: 'float' });
  assert.equal(one.data.length, 1);

  // Matryoshka on an embedding model; refused, naming the parameter, on a chat model.
  const short = await openai.embeddings.create({ model: 'embed-last', input: TEXTS[0]!, dimensions: 16, encoding_format: 'float' });
  assertSame([short.data[0]!.embedding], await expected('embed-last', TEXTS[0]!, { dimensions: 16 }), 'dimensions');
  assert.ok(Math.abs(norm(short.data[0]!.embedding) - 1) < 1e-6);
  await assert.rejects(openai.embeddings.create({ model: 'tiny', input: 'x', dimensions: 16 }),
    (e: InstanceType<typeof OpenAI.BadRequestError>) => e.status === 400 && e.param === 'dimensions' && /declares no embedding pooling/.test(e.message));
});

test('/v1/embeddings refuses bad requests in OpenAI\'s error shape', { skip }, async () => {
  const cases: [unknown, number, string | null, RegExp][] = [
    [{ model: 'embed-mean', input: '' }, 400, 'input', /empty string/],
    [{ model: 'embed-mean', input: [] }, 400, 'input', /empty array/],
    [{ model: 'embed-mean', input: ['a', 1] }, 400, 'input', /array of strings/],
    [{ model: 'embed-mean', input: [[1, 2], []] }, 400, 'input', /input\[1\] must be a non-empty array of token ids/],
    [{ model: 'embed-mean', input: [1, -2] }, 400, 'input', /integers >= 0/],
    [{ model: 'embed-mean', input: [[1, SPEC.vocabSize]] }, 400, 'input', /outside the vocabulary/],
    [{ model: 'embed-mean', input: Array.from({ length: CONTEXT + 1 }, () => 100) }, 400, 'input', /has 257 tokens; the context holds 256/],
    [{ model: 'embed-mean', input: 'x', encoding_format: 'hex' }, 400, 'encoding_format', /"float" or "base64"/],
    [{ model: 'embed-mean', input: 'x', dimensions: 65 }, 400, 'dimensions', /1\.\.64/],
    [{ model: 'embed-mean', input: 'x', dimensions: 0 }, 400, 'dimensions', /dimensions/],
    [{ input: 'x' }, 400, 'model', /model is required/],
    [{ model: 'nope', input: 'x' }, 404, 'model', /nope/],
  ];
  for (const [body, status, param, message] of cases) {
    const res = await post('/v1/embeddings', body);
    const err = (await res.json() as { error: { message: string; param: string | null; type: string } }).error;
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(err.param, param, JSON.stringify(body));
    assert.match(err.message, message);
  }
});

test('ollama client: embed (always unit length, truncate, dimensions) and the legacy embeddings', { skip }, async () => {
  for (const model of ['embed-mean', 'embed-last', 'tiny']) {
    const r = await ollama.embed({ model, input: TEXTS });
    assert.equal(r.model, model);
    assertSame(r.embeddings, await expected(model, TEXTS, { normalize: true }), `${model} embed`);
    assert.equal(r.prompt_eval_count, TEXTS.reduce((n, t) => n + models.get(model)!.tokenize(t).length, 0));
    assert.ok(r.total_duration >= r.load_duration && r.load_duration >= 0);
    const single = await ollama.embed({ model, input: TEXTS[2]! });
    assertSame(single.embeddings, await expected(model, [TEXTS[2]!], { normalize: true }), `${model} one string`);

    const legacy = await ollama.embeddings({ model, prompt: TEXTS[0]! });
    assertSame([legacy.embedding], await expected(model, TEXTS[0]!), `${model} legacy`);
  }
  const cut = await ollama.embed({ model: 'embed-last', input: TEXTS[0]!, dimensions: 8 });
  assertSame(cut.embeddings, await expected('embed-last', TEXTS[0]!, { dimensions: 8 }), 'dimensions');

  // Longer than the context: cut by default (keeping BOS), refused with truncate: false.
  const long = TEXTS.join(' ').repeat(20);
  const truncated = await ollama.embed({ model: 'embed-mean', input: long });
  assertSame(truncated.embeddings, await expected('embed-mean', long, { truncate: true, normalize: true }), 'truncated');
  assert.equal(truncated.prompt_eval_count, CONTEXT);
  await assert.rejects(ollama.embed({ model: 'embed-mean', input: long, truncate: false }),
    (e: Error & { status_code?: number }) => e.status_code === 400 && /the context holds 256/.test(e.message));

  // No input loads the model and answers with no vectors, as Ollama does.
  assert.deepEqual((await ollama.embed({ model: 'embed-mean', input: [] })).embeddings, []);
  assert.deepEqual((await ollama.embeddings({ model: 'embed-mean', prompt: '' })).embedding, []);
  const bad = await post('/api/embed', { model: 'embed-mean', input: [1, 2] });
  assert.equal(bad.status, 400);
  assert.match((await bad.json() as { error: string }).error, /input must be a string or an array of strings/);
  const badOption = await post('/api/embed', { model: 'embed-mean', input: 'x', options: { num_ctx: 'big' } });
  assert.equal(badOption.status, 400);
  assert.match((await badOption.json() as { error: string }).error, /options\.num_ctx/);
});

test('Vercel AI SDK: embed and embedMany through @ai-sdk/openai-compatible', { skip }, async () => {
  const provider = createOpenAICompatible({ name: 'minerva', baseURL: `${url}/v1`, apiKey: 'unused' });
  const one = await embed({ model: provider.embeddingModel('embed-mean'), value: TEXTS[0]!, maxRetries: 0 });
  assertSame([one.embedding], await expected('embed-mean', TEXTS[0]!), 'embed');
  assert.equal(one.usage.tokens, models.get('embed-mean')!.tokenize(TEXTS[0]!).length);
  const many = await embedMany({ model: provider.textEmbeddingModel('embed-last'), values: TEXTS, maxRetries: 0 });
  assertSame(many.embeddings, await expected('embed-last', TEXTS), 'embedMany');
});

test('LangChain.js: OpenAIEmbeddings embedQuery and embedDocuments', { skip }, async () => {
  const embeddings = new OpenAIEmbeddings({ model: 'embed-last', apiKey: 'unused', maxRetries: 0, configuration: { baseURL: `${url}/v1` } });
  assertSame([await embeddings.embedQuery(TEXTS[1]!)], await expected('embed-last', TEXTS[1]!), 'embedQuery');
  assertSame(await embeddings.embedDocuments(TEXTS), await expected('embed-last', TEXTS), 'embedDocuments');
});

test('embeddings and chat streams at once: every vector is the one computed alone', { skip }, async () => {
  const chats = Array.from({ length: 3 }, () => openai.chat.completions.create({
    model: 'embed-mean', messages: [{ role: 'user', content: 'Tell me a story' }], max_tokens: 24, temperature: 0,
  }).catch((e: Error) => e));
  const vectors = await Promise.all(TEXTS.map((t) => openai.embeddings.create({ model: 'embed-mean', input: [t, t + ' again'], encoding_format: 'float' })));
  const want = await Promise.all(TEXTS.map((t) => expected('embed-mean', [t, t + ' again'])));
  vectors.forEach((v, i) => assertSame(v.data.map((d) => d.embedding), want[i]!, `request ${i}`));
  for (const c of await Promise.all(chats)) assert.ok(!(c instanceof Error), String(c));
});
