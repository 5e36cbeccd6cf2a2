// Fuzzing the server's request parsing through the real Fastify app (app.inject, no sockets) with
// the bundled demo model (stories260K, so each generation is quick): JSON bodies of any shape, and
// bodies with the routes' own field names holding wrong types, huge or negative numbers, long
// strings and deep nesting; also raw bodies that are not JSON at all. Property: the answer is a
// 2xx, or a 4xx with the API's error shape (OpenAI's {error: {message, type, param, code}} under
// /v1, Ollama's {error: "..."} under /api); never a 5xx, never a hang, and the server keeps answering.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { bundledDemoModel } from '../src/server/demo-model.js';
import { createServer, DEFAULTS, type MinervaServer } from '../src/server/server.js';
import { corpus, fuzz } from './helpers/fuzz.js';

const demo = bundledDemoModel();
const skip = demo === undefined ? 'the bundled demo model (models/demo/stories260K.gguf) is absent' : false;

let dir: string;
let server: MinervaServer;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-fuzz-server-'));
  // /api/pull must never reach the network from a test: offline, with a cache of its own.
  process.env.HF_HUB_OFFLINE = '1';
  process.env.HF_HUB_CACHE = path.join(dir, 'hub-cache');
  await mkdir(path.join(dir, 'models'));
  if (skip) return;
  server = await createServer({
    host: '127.0.0.1', port: 0, modelsDir: path.join(dir, 'models'), parallel: 4, maxQueue: 64, maxMemory: 2 ** 30,
    keepAliveMs: 60_000, contextLength: 128, threads: 1, requestTimeoutMs: 20_000, bodyLimit: DEFAULTS.bodyLimit, logger: false,
  });
});
after(async () => {
  await server?.app.close();
  await rm(dir, { recursive: true, force: true });
});

const MODEL = demo?.name ?? 'stories260K-demo';

/** Values that break careless parsing: wrong types, edges of number ranges, long and odd strings. */
const wild: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(-1, 0, 1, 2, -(2 ** 31), 2 ** 31, 2 ** 32, 2 ** 53, -(2 ** 53), 1e308, -1e308, 5e-324, 0.5, -0.0, 1e21),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom('', ' ', '\u0000', '\uD800', 'null', '{}', '[]', 'NaN', '-1', '1e999', '__proto__', 'constructor', '<s>', '<|im_end|>'),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('x'.repeat(5000), 'ab '.repeat(3000)),
  fc.nat({ max: 40 }).map((depth) => nest(depth)),
);

/** Arrays nested `depth` deep around a number. */
function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

/**
 * A field's value from its plausible values, or (by the `field` in use) sometimes a wild one;
 * `odd` are values of the right type a route may still refuse.
 */
type Field = (plausible: fc.Arbitrary<unknown>, odd?: fc.Arbitrary<unknown>) => fc.Arbitrary<unknown>;

/** Often wrong: a third of the fields wild (exercises the refusals, most bodies are refused). */
const often: Field = (plausible, odd) => fc.oneof({ weight: 2, arbitrary: plausible }, { weight: 1, arbitrary: odd ? fc.oneof(odd, wild) : wild });
/** Plausible: right types and ranges, a few odd values (bodies that reach generation). */
const seldom: Field = (plausible, odd) => (odd ? fc.oneof({ weight: 40, arbitrary: plausible }, { weight: 1, arbitrary: odd }) : plausible);

/** Request bodies per route, with the route's own field names. */
function routeBodies(field: Field): Record<string, fc.Arbitrary<Record<string, unknown>>> {

  const role = field(fc.constantFrom('system', 'user', 'assistant'), fc.constantFrom('developer', 'tool', 'function', ''));
  const message = fc.record({
    role,
    content: field(fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.record({ type: fc.constant('text'), text: fc.string({ maxLength: 10 }) }), { maxLength: 3 })), fc.array(fc.record({ type: fc.constantFrom('text', 'image_url'), text: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }), { maxLength: 3 })),
    tool_calls: field(fc.array(fc.record({ id: fc.constantFrom('call_1', 'c2'), type: fc.constant('function'), function: fc.record({ name: fc.constantFrom('get_weather', 'f'), arguments: field(fc.constantFrom('{}', '{"city":"Paris"}'), fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }))) }) }), { maxLength: 2 }), fc.array(fc.record({ id: fc.string({ maxLength: 5 }), function: fc.record({ name: fc.string({ maxLength: 8 }) }, { requiredKeys: [] }) }, { requiredKeys: [] }), { maxLength: 2 })),
    tool_call_id: field(fc.string({ maxLength: 5 })),
    name: field(fc.string({ maxLength: 5 })),
    images: field(fc.constant([]), fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 })),
    thinking: field(fc.string({ maxLength: 10 })),
  }, { requiredKeys: ['role', 'content'] });
  const messages = fc.array(field(message), { minLength: 1, maxLength: 4 });
  const tool = fc.record({
    type: field(fc.constant('function')),
    function: field(fc.record({
      name: field(fc.constantFrom('get_weather', 'f'), fc.constantFrom('', 'a b', 'x'.repeat(100))),
      description: field(fc.string({ maxLength: 10 })),
      parameters: field(fc.constantFrom({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, {}, { type: 'object' })),
    }, { requiredKeys: ['name'] })),
  }, { requiredKeys: ['type', 'function'] });
  const count = field(fc.integer({ min: 1, max: 6 }), fc.oneof(fc.integer({ min: -3, max: 40 }), fc.constantFrom(1e6, 2 ** 31, 2 ** 53)));
  const unit = field(fc.double({ min: 0, max: 1, noNaN: true }), fc.oneof(fc.double({ min: -3, max: 3, noNaN: true }), fc.constantFrom(0, 1, 2, 100)));
  const stop = field(fc.oneof(fc.string({ maxLength: 4 }), fc.array(fc.string({ maxLength: 4 }), { maxLength: 4 })), fc.array(fc.string({ maxLength: 4 }), { maxLength: 20 }));
  const format = fc.oneof(
    fc.constantFrom('json', '', 'xml'),
    fc.constantFrom({ type: 'object', properties: { a: { type: 'integer' } }, required: ['a'] }, { type: 'string', maxLength: 3 }, { enum: [1, 'x'] }),
  );
  const responseFormat = fc.oneof(
    fc.constantFrom({ type: 'text' }, { type: 'json_object' }, { type: 'json_schema' }, { type: 'xml' }),
    format.map((schema) => ({ type: 'json_schema', json_schema: { name: 'x', schema, strict: true } })),
  );
  const modelName = field(fc.constantFrom(MODEL, `${MODEL}:latest`, 'nope', '', 'a/b', '../x'));
  const ollamaOptions = fc.record({
    num_predict: count, num_ctx: field(fc.oneof(count, fc.constantFrom(16, 4096, 1 << 20))), temperature: unit, top_k: count,
    top_p: unit, min_p: unit, seed: count, stop: stop, repeat_penalty: unit, repeat_last_n: count,
    presence_penalty: unit, frequency_penalty: unit, num_gpu: count, num_thread: count, mirostat: count,
  }, { requiredKeys: [] });
  const keepAlive = field(fc.oneof(fc.constantFrom('5m', '0', '-1', '1h', '10x', 0, -1, 1e12), fc.integer()));

  return {
    '/v1/chat/completions': fc.record({
      model: modelName, messages: field(messages), max_tokens: count, max_completion_tokens: count, n: count,
      temperature: unit, top_p: unit, top_k: count, min_p: unit, seed: count, stream: field(fc.boolean()),
      stream_options: field(fc.record({ include_usage: field(fc.boolean()) }, { requiredKeys: [] })), stop: stop,
      logprobs: field(fc.boolean()), top_logprobs: count, presence_penalty: unit, frequency_penalty: unit,
      repeat_penalty: unit, logit_bias: field(fc.dictionary(fc.constantFrom('0', '1', '5'), unit, { maxKeys: 3 }), fc.dictionary(fc.constantFrom('-1', '99999', 'x', '1.5'), unit, { maxKeys: 2 })),
      response_format: field(responseFormat), tools: field(fc.array(tool, { maxLength: 1 }), fc.array(tool, { maxLength: 3 })),
      tool_choice: field(fc.constantFrom('auto', 'none'), fc.oneof(fc.constantFrom('required', 'x'), fc.constant({ type: 'function', function: { name: 'get_weather' } }))),
      parallel_tool_calls: field(fc.boolean()), chat_template_kwargs: field(fc.dictionary(fc.constantFrom('enable_thinking', 'x'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), fc.constant({ messages: [] })),
      reasoning_format: field(fc.constantFrom('none', 'deepseek', 'auto', 'x')), user: field(fc.string({ maxLength: 5 })),
      modalities: field(fc.constant(['text']), fc.constant(['text', 'audio'])), audio: field(fc.constant(null), wild),
    }, { requiredKeys: [] }),
    '/v1/completions': fc.record({
      model: modelName, prompt: field(fc.oneof(fc.string({ minLength: 1, maxLength: 30 }), fc.array(fc.integer({ min: 1, max: 500 }), { minLength: 1, maxLength: 5 })),
        fc.oneof(fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 5 }), fc.array(fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 3 }), { maxLength: 2 }))),
      max_tokens: count, n: count, temperature: unit, top_p: unit, seed: count, stream: field(fc.boolean()),
      stop: stop, logprobs: count, echo: field(fc.constant(false), fc.constant(true)), suffix: field(fc.constant(null), fc.string({ maxLength: 3 })), best_of: count,
      response_format: field(responseFormat), logit_bias: field(fc.dictionary(fc.constantFrom('0', '1', '-1', '1e3'), unit, { maxKeys: 2 })),
    }, { requiredKeys: [] }),
    '/v1/embeddings': fc.record({
      model: modelName, input: field(fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 5 }))),
      encoding_format: field(fc.constantFrom('float', 'base64', 'x')), dimensions: count, user: field(fc.string({ maxLength: 3 })),
    }, { requiredKeys: [] }),
    '/api/chat': fc.record({
      model: modelName, messages: field(messages), stream: field(fc.boolean()), format: field(format), options: field(ollamaOptions),
      keep_alive: keepAlive, tools: field(fc.array(tool, { maxLength: 1 }), fc.array(tool, { maxLength: 3 })), think: field(fc.oneof(fc.boolean(), fc.constantFrom('high', 'low'))),
    }, { requiredKeys: [] }),
    '/api/generate': fc.record({
      model: modelName, prompt: field(fc.string({ maxLength: 30 })), suffix: field(fc.string({ maxLength: 3 })), system: field(fc.string({ maxLength: 10 })),
      template: field(fc.string({ maxLength: 3 })), raw: field(fc.boolean()), stream: field(fc.boolean()), format: field(format),
      options: field(ollamaOptions), keep_alive: keepAlive, images: field(fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 })),
      context: field(fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 4 })), think: field(fc.boolean()),
    }, { requiredKeys: [] }),
    '/api/embed': fc.record({
      model: modelName, input: field(fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }))),
      truncate: field(fc.boolean()), dimensions: count, options: field(ollamaOptions), keep_alive: keepAlive,
    }, { requiredKeys: [] }),
    '/api/embeddings': fc.record({ model: modelName, prompt: field(fc.string({ maxLength: 30 })), options: field(ollamaOptions), keep_alive: keepAlive }, { requiredKeys: [] }),
    '/api/show': fc.record({ model: modelName, name: modelName, verbose: field(fc.boolean()) }, { requiredKeys: [] }),
    '/api/pull': fc.record({
      model: field(fc.constantFrom('hf.co/org/repo:Q4_K_M', 'org/repo', 'llama3.2', 'org/repo:latest', 'a/b/c/d', 'org/repo@main', '')),
      name: modelName, stream: field(fc.boolean()), insecure: field(fc.boolean()),
    }, { requiredKeys: [] }),
  };
}

const bodies = { often: routeBodies(often), seldom: routeBodies(seldom) };
const ROUTES = Object.keys(bodies.often);

/** Raw bodies that are not the JSON a route expects: not JSON, deep nesting, duplicate keys. */
const rawBody = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', 'null', '[]', '"x"', '1', 'true', '{', '{"model":', '{"model":"x","model":1}', '\uFEFF{}', '{"__proto__":{"model":"x"}}'),
  fc.nat({ max: 20000 }).map((depth) => `{"model":${JSON.stringify(MODEL)},"messages":${'['.repeat(depth)}${']'.repeat(depth)}}`),
  fc.nat({ max: 20000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
);

type Input = { route: string; body: string };

const inputs: fc.Arbitrary<Input> = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(...ROUTES.map((route) => bodies.often[route]!.map((b) => ({ route, body: JSON.stringify(b) })))) },
  // Plausible bodies, with the model named and at most one field replaced by a wild value.
  {
    weight: 4,
    arbitrary: fc.oneof(...ROUTES.map((route) => fc.tuple(bodies.seldom[route]!, fc.option(fc.tuple(fc.string({ maxLength: 12 }), wild)))
      .map(([b, replace]) => {
        const body: Record<string, unknown> = { ...b, model: MODEL };
        // Options that need another: plausible only together.
        if (body.stream !== true) delete body.stream_options;
        if (body.logprobs !== true && route === '/v1/chat/completions') delete body.top_logprobs;
        if (replace) body[Object.keys(b)[replace[0].length % Math.max(1, Object.keys(b).length)] ?? replace[0]] = replace[1];
        return { route, body: JSON.stringify(body) };
      }))),
  },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), fc.json({ maxDepth: 4 })).map(([route, body]) => ({ route, body })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), rawBody).map(([route, body]) => ({ route, body })) },
);

/**
 * Keeps each input quick: an Ollama num_ctx that fits in memory but is larger than 256 becomes 256
 * (without num_predict, Ollama generates until the context is full: 4096 tokens take ~15 s here).
 * Sizes that cannot fit (refused at load) and out-of-range ones (refused as parameters) stay.
 */
function shortGeneration(body: string): string {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return body;
  }
  const options = (json as { options?: { num_ctx?: unknown } } | null)?.options;
  if (typeof options !== 'object' || options === null || typeof options.num_ctx !== 'number') return body;
  if (options.num_ctx > 256 && options.num_ctx < 1 << 19) options.num_ctx = 256;
  return JSON.stringify(json);
}

/** Checks one answer: its status, its error shape, and that a stream came out whole. */
function checkAnswer(route: string, status: number, contentType: string, body: string): void {
  const what = `${route} answered ${status}: ${body.slice(0, 300)}`;
  // A pull that cannot reach the Hub (offline here) is the upstream's failure: 502-504 are its answers.
  const upstream = route === '/api/pull' && status >= 502 && status <= 504;
  // A num_ctx whose KV cache does not fit the memory limit is refused with 503 insufficient_memory
  // (server.ts maps InsufficientMemoryError so; a 4xx would suit a request that can never fit: reported).
  const memory = status === 503 && /needs [\d.]+ [KMG]iB .* memory limit/.test(body);
  assert.ok((status >= 200 && status < 500 && !(status >= 300 && status < 400)) || upstream || memory, what);
  if (status >= 400) {
    const json = JSON.parse(body) as { error?: unknown };
    if (route.startsWith('/v1/')) {
      const e = json.error as { message?: unknown; type?: unknown; code?: unknown; param?: unknown } | undefined;
      assert.ok(e && typeof e.message === 'string' && e.message.length > 0 && typeof e.type === 'string', `not OpenAI's error shape: ${what}`);
      assert.ok(e.param === null || typeof e.param === 'string', what);
    } else {
      assert.ok(typeof json.error === 'string' && json.error.length > 0, `not Ollama's error shape: ${what}`);
    }
    assert.ok(!/TypeError|RangeError|ReferenceError|Cannot read propert|is not a function/.test(body), `an internal error leaked: ${what}`);
    return;
  }
  if (contentType.includes('text/event-stream')) {
    // OpenAI streaming: data lines of JSON, ending with [DONE]; no error events.
    const data = body.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6));
    assert.equal(data.at(-1), '[DONE]', what);
    for (const d of data.slice(0, -1)) assert.ok(!('error' in (JSON.parse(d) as object)), `an error in a stream: ${what}`);
  } else if (contentType.includes('ndjson')) {
    const lines = body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    if (route === '/api/pull') return; // (offline: the stream reports its own failure)
    for (const l of lines) assert.ok(!('error' in l), `an error in a stream: ${what}`);
    assert.equal(lines.at(-1)?.done, true, what);
  } else if (body !== '') {
    JSON.parse(body);
  }
}

/** The busy gauges that are not 0, after giving a sequence that finishes just after its answer a moment. */
async function leftBusy(): Promise<string[]> {
  const busy = async () => (await server.app.inject({ method: 'GET', url: '/metrics' })).body.split('\n')
    .filter((l) => /^minerva_(active|queued|running)\w*\{/.test(l) && !/ 0$/.test(l));
  let left = await busy();
  for (let i = 0; i < 20 && left.length > 0; i++) {
    await new Promise((r) => setTimeout(r, 50));
    left = await busy();
  }
  return left;
}

test('fuzz: request bodies of the OpenAI and Ollama routes', { skip }, async () => {
  const answers = new Map<string, number>();
  const { runs } = await fuzz({
    name: 'server',
    inputs,
    // Past findings: test/fuzz/corpus/server/regress-*.json, each {"route": ..., "body": "<the raw body>"}.
    replay: corpus('server', (b) => JSON.parse(new TextDecoder().decode(b)) as Input).replay,
    expected: [],
    timeoutMs: 15_000,
    // The model's weights and caches are the server's own memory, not the request's.
    memory: { fixed: 256 << 20 },
    async run(input) {
      const { route } = input;
      const body = shortGeneration(input.body);
      const res = await server.app.inject({ method: 'POST', url: route, payload: body, headers: { 'content-type': 'application/json' } });
      const key = `${route} ${res.statusCode}`;
      answers.set(key, (answers.get(key) ?? 0) + 1);
      checkAnswer(route, res.statusCode, String(res.headers['content-type'] ?? ''), res.body);
      assert.deepEqual(await leftBusy(), [], 'sequences or queue entries outlived their request');
      const health = await server.app.inject({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 200, 'the server stopped answering');
    },
  });
  console.log(`server: ${runs} inputs; answers: ${[...answers].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}`);
});
