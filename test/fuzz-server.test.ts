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
import { fuzz } from './helpers/fuzz.js';

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
    keepAliveMs: 60_000, contextLength: 48, threads: 1, requestTimeoutMs: 20_000, bodyLimit: DEFAULTS.bodyLimit, logger: false,
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

/** A field's value: usually a plausible one, often a wild one. */
const field = (plausible: fc.Arbitrary<unknown>) => fc.oneof({ weight: 2, arbitrary: plausible }, { weight: 1, arbitrary: wild });

const role = fc.constantFrom('system', 'developer', 'user', 'assistant', 'tool', 'function', '');
const message = fc.record({
  role: field(role),
  content: field(fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.record({ type: fc.constantFrom('text', 'image_url'), text: fc.string({ maxLength: 10 }) }, { requiredKeys: [] }), { maxLength: 3 }))),
  tool_calls: field(fc.array(fc.record({ id: fc.string({ maxLength: 5 }), type: fc.constant('function'), function: fc.record({ name: fc.string({ maxLength: 8 }), arguments: fc.oneof(fc.string({ maxLength: 20 }), fc.jsonValue({ maxDepth: 2 })) }, { requiredKeys: [] }) }, { requiredKeys: [] }), { maxLength: 2 })),
  tool_call_id: field(fc.string({ maxLength: 5 })),
  name: field(fc.string({ maxLength: 5 })),
  images: field(fc.array(fc.string({ maxLength: 8 }), { maxLength: 2 })),
  thinking: field(fc.string({ maxLength: 10 })),
}, { requiredKeys: [] });
const messages = fc.array(field(message), { maxLength: 4 });
const tool = fc.record({
  type: field(fc.constant('function')),
  function: field(fc.record({
    name: field(fc.constantFrom('get_weather', 'f', '')),
    description: field(fc.string({ maxLength: 10 })),
    parameters: field(fc.constantFrom({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, {}, { type: 'object' })),
  }, { requiredKeys: [] })),
}, { requiredKeys: [] });
const count = fc.oneof(fc.integer({ min: -3, max: 40 }), fc.constantFrom(1e6, 2 ** 31, 2 ** 53));
const unit = fc.oneof(fc.double({ min: -3, max: 3, noNaN: true }), fc.constantFrom(0, 1, 2, 100));
const stop = fc.oneof(fc.string({ maxLength: 4 }), fc.array(fc.string({ maxLength: 4 }), { maxLength: 20 }));
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
  num_predict: field(count), num_ctx: field(fc.oneof(count, fc.constantFrom(16, 4096, 1 << 20))), temperature: field(unit), top_k: field(count),
  top_p: field(unit), min_p: field(unit), seed: field(count), stop: field(stop), repeat_penalty: field(unit), repeat_last_n: field(count),
  presence_penalty: field(unit), frequency_penalty: field(unit), num_gpu: field(count), num_thread: field(count), mirostat: field(count),
}, { requiredKeys: [] });
const keepAlive = field(fc.oneof(fc.constantFrom('5m', '0', '-1', '1h', '10x', 0, -1, 1e12), fc.integer()));

/** Request bodies per route, with the route's own field names. */
const bodies: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  '/v1/chat/completions': fc.record({
    model: modelName, messages: field(messages), max_tokens: field(count), max_completion_tokens: field(count), n: field(count),
    temperature: field(unit), top_p: field(unit), top_k: field(count), min_p: field(unit), seed: field(count), stream: field(fc.boolean()),
    stream_options: field(fc.record({ include_usage: field(fc.boolean()) }, { requiredKeys: [] })), stop: field(stop),
    logprobs: field(fc.boolean()), top_logprobs: field(count), presence_penalty: field(unit), frequency_penalty: field(unit),
    repeat_penalty: field(unit), logit_bias: field(fc.dictionary(fc.constantFrom('0', '1', '5', '-1', '99999', 'x'), unit, { maxKeys: 3 })),
    response_format: field(responseFormat), tools: field(fc.array(tool, { maxLength: 2 })),
    tool_choice: field(fc.oneof(fc.constantFrom('auto', 'none', 'required', 'x'), fc.constant({ type: 'function', function: { name: 'get_weather' } }))),
    parallel_tool_calls: field(fc.boolean()), chat_template_kwargs: field(fc.dictionary(fc.constantFrom('enable_thinking', 'messages', 'x'), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 })),
    reasoning_format: field(fc.constantFrom('none', 'deepseek', 'auto', 'x')), user: field(fc.string({ maxLength: 5 })),
    modalities: field(fc.array(fc.constantFrom('text', 'audio'), { maxLength: 2 })), audio: wild,
  }, { requiredKeys: [] }),
  '/v1/completions': fc.record({
    model: modelName, prompt: field(fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 5 }), fc.array(fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 3 }), { maxLength: 2 }))),
    max_tokens: field(count), n: field(count), temperature: field(unit), top_p: field(unit), seed: field(count), stream: field(fc.boolean()),
    stop: field(stop), logprobs: field(count), echo: field(fc.boolean()), suffix: field(fc.string({ maxLength: 3 })), best_of: field(count),
    response_format: field(responseFormat), logit_bias: field(fc.dictionary(fc.constantFrom('0', '1', '-1', '1e3'), unit, { maxKeys: 2 })),
  }, { requiredKeys: [] }),
  '/v1/embeddings': fc.record({
    model: modelName, input: field(fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }), fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 5 }))),
    encoding_format: field(fc.constantFrom('float', 'base64', 'x')), dimensions: field(count), user: field(fc.string({ maxLength: 3 })),
  }, { requiredKeys: [] }),
  '/api/chat': fc.record({
    model: modelName, messages: field(messages), stream: field(fc.boolean()), format: field(format), options: field(ollamaOptions),
    keep_alive: keepAlive, tools: field(fc.array(tool, { maxLength: 2 })), think: field(fc.oneof(fc.boolean(), fc.constantFrom('high', 'low'))),
  }, { requiredKeys: [] }),
  '/api/generate': fc.record({
    model: modelName, prompt: field(fc.string({ maxLength: 30 })), suffix: field(fc.string({ maxLength: 3 })), system: field(fc.string({ maxLength: 10 })),
    template: field(fc.string({ maxLength: 3 })), raw: field(fc.boolean()), stream: field(fc.boolean()), format: field(format),
    options: field(ollamaOptions), keep_alive: keepAlive, images: field(fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 })),
    context: field(fc.array(fc.integer({ min: -1, max: 600 }), { maxLength: 4 })), think: field(fc.boolean()),
  }, { requiredKeys: [] }),
  '/api/embed': fc.record({
    model: modelName, input: field(fc.oneof(fc.string({ maxLength: 30 }), fc.array(fc.string({ maxLength: 10 }), { maxLength: 3 }))),
    truncate: field(fc.boolean()), dimensions: field(count), options: field(ollamaOptions), keep_alive: keepAlive,
  }, { requiredKeys: [] }),
  '/api/embeddings': fc.record({ model: modelName, prompt: field(fc.string({ maxLength: 30 })), options: field(ollamaOptions), keep_alive: keepAlive }, { requiredKeys: [] }),
  '/api/show': fc.record({ model: modelName, name: modelName, verbose: field(fc.boolean()) }, { requiredKeys: [] }),
  '/api/pull': fc.record({
    model: field(fc.constantFrom('hf.co/org/repo:Q4_K_M', 'org/repo', 'llama3.2', 'org/repo:latest', 'a/b/c/d', 'org/repo@main', '')),
    name: modelName, stream: field(fc.boolean()), insecure: field(fc.boolean()),
  }, { requiredKeys: [] }),
};
const ROUTES = Object.keys(bodies);

/** Raw bodies that are not the JSON a route expects: not JSON, deep nesting, duplicate keys. */
const rawBody = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom('', 'null', '[]', '"x"', '1', 'true', '{', '{"model":', '{"model":"x","model":1}', '\uFEFF{}', '{"__proto__":{"model":"x"}}'),
  fc.nat({ max: 20000 }).map((depth) => `{"model":${JSON.stringify(MODEL)},"messages":${'['.repeat(depth)}${']'.repeat(depth)}}`),
  fc.nat({ max: 20000 }).map((depth) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`),
);

type Input = { route: string; body: string };

const inputs: fc.Arbitrary<Input> = fc.oneof(
  { weight: 6, arbitrary: fc.oneof(...ROUTES.map((route) => bodies[route]!.map((b) => ({ route, body: JSON.stringify(b) })))) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), fc.json({ maxDepth: 4 })).map(([route, body]) => ({ route, body })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ROUTES), rawBody).map(([route, body]) => ({ route, body })) },
);

/** Checks one answer: its status, its error shape, and that a stream came out whole. */
function checkAnswer(route: string, status: number, contentType: string, body: string): void {
  const what = `${route} answered ${status}: ${body.slice(0, 300)}`;
  assert.ok(status >= 200 && status < 500 && !(status >= 300 && status < 400), what);
  if (status >= 400) {
    const json = JSON.parse(body) as { error?: unknown };
    if (route.startsWith('/v1/')) {
      const e = json.error as { message?: unknown; type?: unknown; code?: unknown; param?: unknown } | undefined;
      assert.ok(e && typeof e.message === 'string' && e.message.length > 0 && typeof e.type === 'string', `not OpenAI's error shape: ${what}`);
      assert.ok(e.param === null || typeof e.param === 'string', what);
    } else {
      assert.ok(typeof json.error === 'string' && json.error.length > 0, `not Ollama's error shape: ${what}`);
    }
    assert.ok(!/TypeError|RangeError|ReferenceError|Cannot read propert|is not a function|undefined/.test(body), `an internal error leaked: ${what}`);
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

test('fuzz: request bodies of the OpenAI and Ollama routes', { skip }, async () => {
  const { runs } = await fuzz({
    name: 'server',
    inputs,
    expected: [],
    timeoutMs: 15_000,
    // The model's weights and caches are the server's own memory, not the request's.
    memory: { fixed: 256 << 20 },
    async run({ route, body }) {
      const res = await server.app.inject({ method: 'POST', url: route, payload: body, headers: { 'content-type': 'application/json' } });
      checkAnswer(route, res.statusCode, String(res.headers['content-type'] ?? ''), res.body);
      const health = await server.app.inject({ method: 'GET', url: '/health' });
      assert.equal(health.statusCode, 200, 'the server stopped answering');
    },
  });
  console.log(`server: ${runs} inputs`);
  // Nothing is left running or queued.
  const metrics = (await server.app.inject({ method: 'GET', url: '/metrics' })).body;
  for (const line of metrics.split('\n').filter((l) => /^minerva_(active|queued|running)\w*\{/.test(l))) {
    assert.match(line, / 0$/, `a gauge did not return to 0: ${line}`);
  }
});
