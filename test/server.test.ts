// minerva serve against real clients on loopback: the official `openai` SDK and the `ollama`
// client, many concurrent streams (some hanging up midway), malformed requests, the queue limit,
// the API key, and an empty models folder.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';
import type { MinervaServer } from '../src/server/server.js';
import { loadHFTokenizer } from '../src/tokenizer/index.js';

let dir: string;
let server: MinervaServer;
let url: string;
let openai: OpenAI;
let ollama: Ollama;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-server-'));
  if (skip) return;
  await mkdir(path.join(dir, 'models'));
  await writeModels(path.join(dir, 'models'));
  ({ server, url } = await startServer(path.join(dir, 'models')));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  ollama = new Ollama({ host: url });
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const post = (route: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

test('OpenAI SDK: models, chat and completions, streamed and not, with usage and logprobs', { skip }, async () => {
  const models = await openai.models.list();
  assert.deepEqual(models.data.map((m) => m.id).sort(), ['tiny', 'tiny-gguf']);
  assert.equal((await openai.models.retrieve('tiny')).id, 'tiny');

  const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Tell me a story' }];
  const whole = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0 });
  assert.equal(whole.object, 'chat.completion');
  assert.equal(whole.choices[0]!.finish_reason, 'length');
  assert.equal(whole.usage!.completion_tokens, 12);
  assert.ok(whole.usage!.prompt_tokens > 5);
  assert.equal(whole.usage!.total_tokens, whole.usage!.prompt_tokens + 12);
  const text = whole.choices[0]!.message.content!;
  assert.ok(text.length > 0);

  // The same request streamed gives the same text, then a usage chunk.
  const stream = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let streamed = '', finish: string | null = null, usage;
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  assert.equal(streamed, text);
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 12);

  // Seeded sampling repeats; logprobs come with top alternatives, best first.
  const seeded = { model: 'tiny', messages, max_tokens: 8, temperature: 1, seed: 42, logprobs: true, top_logprobs: 3 };
  const [a, b] = [await openai.chat.completions.create(seeded), await openai.chat.completions.create(seeded)];
  assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
  const lp = a.choices[0]!.logprobs!.content!;
  assert.equal(lp.length, 8);
  for (const t of lp) {
    assert.ok(t.logprob <= 0 && t.top_logprobs.length === 3);
    assert.ok(t.top_logprobs[0]!.logprob >= t.top_logprobs[1]!.logprob && t.top_logprobs[1]!.logprob >= t.top_logprobs[2]!.logprob);
  }

  const completion = await openai.completions.create({ model: 'tiny-gguf', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stop: ['\n\n'] });
  assert.equal(completion.object, 'text_completion');
  assert.equal(completion.usage!.completion_tokens <= 6, true);
  const streamedCompletion = await openai.completions.create({ model: 'tiny-gguf', prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stop: ['\n\n'], stream: true });
  let s = '';
  for await (const c of streamedCompletion) s += c.choices[0]?.text ?? '';
  assert.equal(s, completion.choices[0]!.text);

  await assert.rejects(openai.chat.completions.create({ model: 'nope', messages }), (e: unknown) => e instanceof OpenAI.NotFoundError && /model "nope" not found/.test(e.message));
  await assert.rejects(openai.chat.completions.create({ model: 'tiny', messages, max_tokens: -1 }), (e: unknown) => e instanceof OpenAI.BadRequestError && /max_tokens/.test(e.message));
});

test('OpenAI SDK: n choices, streamed and not, each with its own finish_reason; usage counts the prompt once', { skip }, async () => {
  const messages = [{ role: 'user' as const, content: 'Tell me a story' }];
  const request = { model: 'tiny', messages, max_tokens: 10, temperature: 1, seed: 42, logprobs: true, top_logprobs: 2 };
  const one = await openai.chat.completions.create(request);
  const three = await openai.chat.completions.create({ ...request, n: 3 });
  assert.deepEqual(three.choices.map((c) => c.index), [0, 1, 2]);
  // Choice 0 samples with the request's seed: it is the request with n = 1.
  assert.equal(three.choices[0]!.message.content, one.choices[0]!.message.content);
  assert.ok(new Set(three.choices.map((c) => c.message.content)).size > 1, 'the choices differ');
  let completionTokens = 0;
  for (const c of three.choices) {
    assert.ok(c.finish_reason === 'length' || c.finish_reason === 'stop');
    completionTokens += c.logprobs!.content!.length;
  }
  assert.equal(three.usage!.prompt_tokens, one.usage!.prompt_tokens, 'the prompt counted once');
  assert.equal(three.usage!.completion_tokens, completionTokens);
  assert.equal(three.usage!.total_tokens, three.usage!.prompt_tokens + completionTokens);

  // Streamed: each choice's deltas carry its index, and each choice ends with its own finish_reason.
  const stream = await openai.chat.completions.create({ ...request, n: 3, stream: true, stream_options: { include_usage: true } });
  const texts = ['', '', ''], finishes: string[][] = [[], [], []];
  let usage;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      texts[c.index] += c.delta.content ?? '';
      if (c.finish_reason) finishes[c.index]!.push(c.finish_reason);
    }
    usage = chunk.usage ?? usage;
  }
  assert.deepEqual(texts, three.choices.map((c) => c.message.content));
  assert.deepEqual(finishes, three.choices.map((c) => [c.finish_reason]));
  assert.deepEqual(usage, three.usage);

  // Completions too, and greedy choices are all the same.
  const prompt = 'Once upon a time';
  const greedy = await openai.completions.create({ model: 'tiny-gguf', prompt, max_tokens: 6, temperature: 0 });
  const completions = await openai.completions.create({ model: 'tiny-gguf', prompt, max_tokens: 6, temperature: 0, n: 2 });
  assert.deepEqual(completions.choices.map((c) => [c.index, c.text]), [[0, greedy.choices[0]!.text], [1, greedy.choices[0]!.text]]);
  assert.equal(completions.usage!.completion_tokens, 2 * greedy.usage!.completion_tokens);
  const streamed = await openai.completions.create({ model: 'tiny-gguf', prompt, max_tokens: 6, temperature: 0.8, seed: 3, n: 3, stream: true });
  const parts = ['', '', ''];
  const ends = [0, 0, 0];
  for await (const chunk of streamed) for (const c of chunk.choices) { parts[c.index] += c.text; if (c.finish_reason) ends[c.index]!++; }
  assert.deepEqual(ends, [1, 1, 1]);
  const whole = await openai.completions.create({ model: 'tiny-gguf', prompt, max_tokens: 6, temperature: 0.8, seed: 3, n: 3 });
  assert.deepEqual(parts, whole.choices.map((c) => c.text));

  for (const n of [0, 129, 1.5]) {
    const r = await post('/v1/chat/completions', { model: 'tiny', messages, n });
    assert.equal(r.status, 400);
    assert.equal(((await r.json()) as { error: { param: string } }).error.param, 'n');
  }
});

test('OpenAI logit_bias: -100 bans a token, +100 makes it the only choice; bad entries are refused', { skip }, async () => {
  // Token ids from the models' own tokenizer (the fixtures' Llama-2 one): "▁the" and "▁castle".
  const tok = await loadHFTokenizer(path.join(dir, 'models', 'tiny'));
  const [the] = tok.encode('the', { addSpecial: false }), [castle] = tok.encode('castle', { addSpecial: false });
  assert.equal(tok.encode('the castle', { addSpecial: false }).length, 2);
  const words = async (logit_bias: Record<string, number>, temperature: number) => {
    const r = await openai.completions.create({ model: 'tiny', prompt: 'Once upon a time', max_tokens: 8, temperature, seed: 6, logit_bias });
    return new Set(r.choices[0]!.text.trim().split(/\s+/));
  };
  for (const temperature of [0, 1]) {
    assert.deepEqual(await words({ [the!]: 100 }, temperature), new Set(['the']));
    assert.deepEqual(await words({ [the!]: -100, [castle!]: 100 }, temperature), new Set(['castle']), 'the favoured "the" banned');
  }
  const chat = await openai.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, temperature: 0, logit_bias: { [castle!]: 100 } });
  assert.deepEqual(new Set(chat.choices[0]!.message.content!.trim().split(/\s+/)), new Set(['castle']));

  for (const [bias, message] of [
    [{ abc: 1 }, /logit_bias: "abc" is not a token id/],
    [{ '-1': 1 }, /logit_bias: "-1" is not a token id/],
    [{ 5: 101 }, /logit_bias: the bias of token 5 must be a number in \[-100, 100\], got 101/],
    [{ 5: '1' }, /logit_bias: the bias of token 5 must be a number/],
    [[1, 2], /logit_bias must be an object/],
    [{ 99999: 1 }, /logit_bias token id 99999 is outside the vocabulary \(0\.\.31999\)/],
  ] as const) {
    const r = await post('/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], logit_bias: bias });
    assert.equal(r.status, 400, JSON.stringify(bias));
    const err = (await r.json()) as { error: { message: string; param: string | null } };
    assert.match(err.error.message, message);
  }
});

test('Ollama client: list, show, ps, version, generate and chat, streamed and not', { skip }, async () => {
  const { models } = await ollama.list();
  assert.deepEqual(models.map((m) => m.name).sort(), ['tiny-gguf:latest', 'tiny:latest']);
  assert.equal(models.find((m) => m.name === 'tiny-gguf:latest')!.details.quantization_level, 'Q8_0');
  assert.match(((await (await fetch(`${url}/api/version`)).json()) as { version: string }).version, /^\d+\.\d+\.\d+/);
  const shown = await ollama.show({ model: 'tiny' });
  assert.equal(shown.details.family, 'llama');

  const whole = await ollama.generate({ model: 'tiny', prompt: 'Why is the sky blue?', options: { temperature: 0, num_predict: 10 } });
  assert.equal(whole.done, true);
  assert.equal(whole.eval_count, 10);
  let streamed = '';
  for await (const part of await ollama.generate({ model: 'tiny', prompt: 'Why is the sky blue?', stream: true, options: { temperature: 0, num_predict: 10 } })) {
    streamed += part.response;
  }
  assert.equal(streamed, whole.response);

  const chat = await ollama.chat({ model: 'tiny:latest', messages: [{ role: 'user', content: 'Hello' }], options: { seed: 3, num_predict: 6 } });
  assert.equal(chat.message.role, 'assistant');
  assert.equal(chat.done_reason, 'length');
  let chatStreamed = '';
  for await (const part of await ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'Hello' }], stream: true, options: { seed: 3, num_predict: 6 } })) {
    chatStreamed += part.message.content;
  }
  assert.equal(chatStreamed, chat.message.content);

  const ps = await ollama.ps();
  assert.ok(ps.models.some((m) => m.name === 'tiny:latest'));
  await assert.rejects(ollama.chat({ model: 'missing', messages: [{ role: 'user', content: 'x' }] }), /not found/);
});

test('structured output: OpenAI json_schema and json_object, Ollama format; the replies parse and validate', { skip }, async () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 10 }, age: { type: 'integer' }, color: { enum: ['red', 'green', 'blue'] } },
    required: ['name', 'age', 'color'],
    additionalProperties: false,
  };
  const ajv = new Ajv2020({ strict: false });
  const validate = ajv.compile(schema);
  const messages = [{ role: 'user' as const, content: 'Describe a person as JSON.' }];
  for (const temperature of [0, 1]) {
    const r = await openai.chat.completions.create({
      model: 'tiny', messages, max_tokens: 200, temperature, seed: 5,
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } },
    });
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    const value: unknown = JSON.parse(r.choices[0]!.message.content!);
    assert.ok(validate(value), `${r.choices[0]!.message.content}: ${ajv.errorsText(validate.errors)}`);
  }
  // Streamed, the pieces join into the same valid JSON.
  const stream = await openai.chat.completions.create({
    model: 'tiny', messages, max_tokens: 200, temperature: 0.5, seed: 9, stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'person', schema } },
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  assert.ok(validate(JSON.parse(text)), text);

  const obj = await openai.completions.create({
    model: 'tiny', prompt: 'JSON:', max_tokens: 40, temperature: 0.7, seed: 1,
    // The SDK's completions types lack response_format; the server takes it on both endpoints.
    ...({ response_format: { type: 'json_object' } } as object),
  });
  if (obj.choices[0]!.finish_reason === 'stop') assert.equal(typeof JSON.parse(obj.choices[0]!.text), 'object');
  else assert.ok(obj.choices[0]!.text.startsWith('{'), obj.choices[0]!.text);

  const gen = await ollama.generate({ model: 'tiny-gguf', prompt: 'A person:', format: schema, options: { temperature: 0, num_predict: 200 } });
  assert.equal(gen.done_reason, 'stop');
  assert.ok(validate(JSON.parse(gen.response)), gen.response);
  const chat = await ollama.chat({ model: 'tiny', messages, format: schema, stream: false, options: { temperature: 0.8, seed: 3, num_predict: 200 } });
  assert.ok(validate(JSON.parse(chat.message.content)), chat.message.content);

  // A schema the grammar cannot enforce is refused up front, naming the keyword.
  const bad = await post('/v1/chat/completions', {
    model: 'tiny', messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', pattern: '^a' } } },
  });
  assert.equal(bad.status, 400);
  const err = (await bad.json()) as { error: { message: string; param: string } };
  assert.match(err.error.message, /"pattern" is not supported/);
  assert.equal(err.error.param, 'response_format');
  const badOllama = await post('/api/generate', { model: 'tiny', prompt: 'x', format: 'yaml' });
  assert.equal(badOllama.status, 400);
  assert.match(((await badOllama.json()) as { error: string }).error, /format must be "json" or a JSON schema/);
});

test('16 concurrent streams, some hanging up midway: the server stays healthy and every finished stream equals its run alone', { skip }, async () => {
  const prompts = Array.from({ length: 16 }, (_, i) => `Request number ${i}: ${'and more '.repeat(i % 5)}tell me something`);
  const body = (p: string) => ({ model: 'tiny', messages: [{ role: 'user' as const, content: p }], max_tokens: 10, temperature: 0, stream: true });
  const alone: string[] = [];
  for (const p of prompts) {
    const r = await openai.chat.completions.create({ ...body(p), stream: false });
    alone.push(r.choices[0]!.message.content!);
  }
  const run = async (p: string, i: number): Promise<string | undefined> => {
    const ctrl = new AbortController();
    const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(p)), signal: ctrl.signal });
    assert.equal(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '', text = '', events = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let at;
      while ((at = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(6, at);
        buffer = buffer.slice(at + 2);
        if (data === '[DONE]') return text;
        text += (JSON.parse(data) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '';
        if (i % 4 === 3 && ++events === 3) { ctrl.abort(); return undefined; } // hangs up
      }
    }
    return text;
  };
  const results = await Promise.all(prompts.map(async (p, i) => run(p, i).catch((e: Error) => (e.name === 'AbortError' ? undefined : Promise.reject(e)))));
  results.forEach((r, i) => { if (i % 4 !== 3) assert.equal(r, alone[i], `stream ${i}`); });
  assert.equal((await fetch(`${url}/health`)).status, 200);
  // Hung-up streams are cancelled: nothing stays active or queued, no KV cache is held.
  await waitFor(async () => /minerva_active_sequences\{model="tiny"\} 0/.test(await (await fetch(`${url}/metrics`)).text()));
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /minerva_queue_depth\{model="tiny"\} 0/);
  assert.match(metrics, /minerva_kv_cache_tokens\{model="tiny"\} 0/);
  assert.match(metrics, /minerva_time_to_first_token_seconds_count\{model="tiny"\} \d+/);
});

test('malformed requests get a 4xx naming the problem, and the server keeps serving', { skip }, async () => {
  const chat = { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 };
  const cases: [string, unknown, number, RegExp][] = [
    ['/v1/chat/completions', '{not json', 400, /not valid JSON/],
    ['/v1/chat/completions', '[1, 2]', 400, /JSON object/],
    ['/v1/chat/completions', { ...chat, model: 7 }, 400, /model must be a string/],
    ['/v1/chat/completions', { ...chat, messages: 'hi' }, 400, /messages must be a non-empty array/],
    ['/v1/chat/completions', { ...chat, messages: [{ role: 'wizard', content: 'x' }] }, 400, /messages\[0\]\.role/],
    ['/v1/chat/completions', { ...chat, max_tokens: -5 }, 400, /max_tokens/],
    ['/v1/chat/completions', { ...chat, max_tokens: 1e12 }, 400, /max_tokens/],
    ['/v1/chat/completions', { ...chat, temperature: 'hot' }, 400, /temperature must be a number/],
    ['/v1/chat/completions', { ...chat, model: '../../etc/passwd' }, 404, /not found/],
    ['/v1/chat/completions', { ...chat, model: '/etc/passwd' }, 404, /not found/],
    ['/v1/completions', { model: 'tiny', prompt: 'x', stop: [1] }, 400, /stop must be a string/],
    ['/v1/completions', { model: 'tiny', prompt: Array(300).fill(5) }, 400, /the prompt has 300 tokens; the context holds 256/],
    ['/api/chat', { model: 'tiny', messages: [{ role: 'user', content: 'x' }], options: { num_predict: 'many' } }, 400, /options\.num_predict must be a number/],
    ['/api/generate', { model: 'tiny', prompt: 'x', keep_alive: 'soon' }, 400, /keep_alive/],
    ['/api/show', { model: '../tiny' }, 404, /not found/],
  ];
  for (const [route, body, status, message] of cases) {
    const res = await post(route, body);
    const json = await res.json() as { error: string | { message: string } };
    const text = typeof json.error === 'string' ? json.error : json.error.message;
    assert.equal(res.status, status, `${route} ${JSON.stringify(body).slice(0, 60)}: ${text}`);
    assert.match(text, message);
  }
  const huge = await post('/v1/chat/completions', { ...chat, messages: [{ role: 'user', content: 'x'.repeat(5 << 20) }] });
  assert.equal(huge.status, 413);
  const ok = await post('/v1/chat/completions', chat);
  assert.equal(ok.status, 200);
});

test('beyond the sequence slots and the queue: 429 with Retry-After', { skip }, async () => {
  const busy = await startServer(path.join(dir, 'models'), { parallel: 1, maxQueue: 0 });
  try {
    const body = { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 200, temperature: 0, stream: true };
    const first = await post2(busy.url, body);
    const second = await post2(busy.url, body);
    assert.equal(first.status, 200);
    assert.equal(second.status, 429);
    assert.equal(second.headers.get('retry-after'), '1');
    assert.match((await second.json() as { error: { message: string } }).error.message, /busy/);
    await first.body!.cancel();
  } finally {
    await busy.server.close();
  }
});

test('a queued stream gets its headers at once, before its first token, in both APIs', { skip }, async () => {
  const busy = await startServer(path.join(dir, 'models'), { parallel: 1, maxQueue: 4, threads: 1, contextLength: 4096 });
  const stop = new AbortController();
  try {
    // The one slot: a long generation, which never ends by itself within the test.
    const long = await fetch(`${busy.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, signal: stop.signal,
      body: JSON.stringify({ model: 'tiny', prompt: 'Once', max_tokens: 4000, temperature: 0, stream: true, logit_bias: { 2: -100 } }),
    });
    assert.equal(long.status, 200);
    for (const [route, body] of [
      ['/v1/completions', { model: 'tiny', prompt: 'Hi', max_tokens: 4, stream: true }],
      ['/v1/chat/completions', { model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream: true }],
      ['/api/generate', { model: 'tiny', prompt: 'Hi', options: { num_predict: 4 } }],
    ] as const) {
      // fetch resolves with the headers: while the slot is still busy, so this one is queued.
      const queued = await fetch(`${busy.url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, signal: stop.signal, body: JSON.stringify(body) });
      assert.equal(queued.status, 200, route);
      const gauges = await (await fetch(`${busy.url}/metrics`)).text();
      assert.match(gauges, /^minerva_queue_depth\{model="tiny"\} [1-9]$/m, `${route} is waiting in the queue`);
      void queued.body!.cancel();
    }
  } finally {
    stop.abort();
    await busy.server.close();
  }
});

test('--api-key: /v1, /api and /metrics need the bearer token; /health does not', { skip }, async () => {
  const locked = await startServer(path.join(dir, 'models'), { apiKey: 'sesame' });
  try {
    assert.equal((await fetch(`${locked.url}/v1/models`)).status, 401);
    assert.equal((await fetch(`${locked.url}/api/tags`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
    assert.equal((await fetch(`${locked.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${locked.url}/health`)).status, 200);
    const client = new OpenAI({ baseURL: `${locked.url}/v1`, apiKey: 'sesame', maxRetries: 0 });
    assert.equal((await client.models.list()).data.length, 2);
  } finally {
    await locked.server.close();
  }
});

test('an empty models folder offers the bundled demo model, which chats; with no demo the lists are empty and the page says how to add a model', async () => {
  await mkdir(path.join(dir, 'empty'), { recursive: true });
  const demo = await startServer(path.join(dir, 'empty'));
  try {
    const listed = (await (await fetch(`${demo.url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.deepEqual(listed.data.map((m) => m.id), ['stories260K-demo']);
    assert.equal(((await (await fetch(`${demo.url}/ui/config.json`)).json()) as { demoModel: string }).demoModel, 'stories260K-demo');
    // It has no chat template, so chats go through ChatML (the default); the story model answers with story text.
    const reply = await post2(demo.url, { model: 'stories260K-demo', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 20, temperature: 0 });
    assert.equal(reply.status, 200);
    const text = ((await reply.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
    assert.match(text, /[A-Za-z]{3,}/, `a story: ${JSON.stringify(text)}`);
    const del = await fetch(`${demo.url}/api/delete`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stories260K-demo' }) });
    assert.equal(del.status, 400);
    assert.match(((await del.json()) as { error: string }).error, /built-in demo model/);
  } finally {
    await demo.server.close();
  }
  const empty = await startServer(path.join(dir, 'empty'), { demoModel: false });
  try {
    assert.deepEqual(await (await fetch(`${empty.url}/v1/models`)).json(), { object: 'list', data: [] });
    assert.deepEqual(await (await fetch(`${empty.url}/api/tags`)).json(), { models: [] });
    assert.deepEqual(await (await fetch(`${empty.url}/ready`)).json(), { status: 'ready' });
    // The page is the web app, served with its script; what it says of an empty folder ("No models
    // yet", how to add one) is checked in a browser by web-chat.test.ts.
    const page = await (await fetch(`${empty.url}/`)).text();
    assert.match(page, /<div id="app"><\/div>/);
    const script = /<script type="module" crossorigin src="\.\/(assets\/[^"]+\.js)">/.exec(page);
    assert.ok(script, page);
    const js = await fetch(`${empty.url}/${script[1]}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
  } finally {
    await empty.server.close();
  }
});

async function post2(base: string, body: unknown): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

async function waitFor(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}
