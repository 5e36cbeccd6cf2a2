// Tool calling against a live server with the clients agents are built with: the openai SDK, the
// Vercel AI SDK (OpenAI-compatible provider), LangChain.js ChatOpenAI and the ollama client. The
// models have random weights, so calls are forced (tool_choice "required" or a named function):
// the grammar then guarantees a call in the model's own format, which the server must parse back.
// Three formats: ChatML's Hermes-style blocks (a model without a template), Llama 3.2's JSON and
// Mistral Nemo's [TOOL_CALLS] (their real templates put beside the same weights as <model>.jinja).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { generateText, jsonSchema, streamText, tool, stepCountIs } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { ChatOpenAI } from '@langchain/openai';
import { ToolMessage } from '@langchain/core/messages';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { startServer, SPEC } from './helpers/server.js';
import { randomWeights, writeGGUFModel } from './helpers/random-model.js';
import { lenmlTemplate } from './helpers/lenml.js';
import type { MinervaServer } from '../src/server/server.js';

let dir: string;
let server: MinervaServer;
let url: string;
let openai: OpenAI;

/** Model names by the format their template makes them write. */
const MODELS = { hermes: 'plain', llama3: 'llama3tpl', mistral: 'nemotpl' } as const;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-tools-'));
  if (skip) return;
  const models = path.join(dir, 'models');
  await mkdir(models);
  const weights = randomWeights(SPEC, 7);
  for (const name of Object.values(MODELS)) await writeGGUFModel(path.join(models, `${name}.gguf`), SPEC, weights, { dtype: 'Q8_0' });
  await writeFile(path.join(models, 'llama3tpl.jinja'), lenmlTemplate('llama3_2'));
  await writeFile(path.join(models, 'nemotpl.jinja'), lenmlTemplate('mistral_nemo'));
  ({ server, url } = await startServer(models, { contextLength: 2048 }));
  openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const WEATHER_PARAMS = {
  type: 'object',
  properties: {
    city: { type: 'string', enum: ['Paris', 'Oslo', 'Lima'] },
    unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    days: { type: 'integer' },
  },
  required: ['city', 'unit'],
  additionalProperties: false,
};
const TIME_PARAMS = { type: 'object', properties: { utc: { type: 'boolean' } }, required: ['utc'], additionalProperties: false };
const TOOLS: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'get_weather', description: 'Weather now in a city', parameters: WEATHER_PARAMS } },
  { type: 'function', function: { name: 'get_time', description: 'The time now', parameters: TIME_PARAMS } },
];
const ajv = new Ajv2020({ strict: false });
const validate = { get_weather: ajv.compile(WEATHER_PARAMS), get_time: ajv.compile(TIME_PARAMS) } as Record<string, ReturnType<typeof ajv.compile>>;

function assertValidCall(name: string, args: unknown, where: string): void {
  assert.ok(name in validate, `${where}: a tool that was offered, got ${name}`);
  assert.ok(validate[name]!(args), `${where}: arguments ${JSON.stringify(args)} are valid: ${ajv.errorsText(validate[name]!.errors)}`);
}

const ASK: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Paris?' }];

for (const [format, model] of Object.entries(MODELS)) {
  test(`openai SDK (${format} format): a forced call comes back as message.tool_calls, streamed the same, and its result goes back in`, { skip }, async () => {
    const request = { model, messages: ASK, tools: TOOLS, tool_choice: 'required' as const, parallel_tool_calls: false, temperature: 0, max_tokens: 200 };
    const whole = await openai.chat.completions.create(request);
    const choice = whole.choices[0]!;
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    const calls = choice.message.tool_calls!;
    assert.equal(calls.length, 1);
    const call = calls[0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.equal(call.type, 'function');
    assertValidCall(call.function.name, JSON.parse(call.function.arguments), format);
    // Mistral's templates only take back ids of nine letters and digits.
    if (format === 'mistral') assert.match(call.id, /^[A-Za-z0-9]{9}$/);

    // Streamed: tool-call deltas with an index; accumulated, the same call (greedy, same prompt).
    const stream = await openai.chat.completions.create({ ...request, stream: true });
    const streamed: { id?: string; name: string; args: string }[] = [];
    let finish: string | null = null, content = '';
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (!c) continue;
      content += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
      for (const d of c.delta.tool_calls ?? []) {
        streamed[d.index] ??= { name: '', args: '' };
        if (d.id) streamed[d.index]!.id = d.id;
        streamed[d.index]!.name += d.function?.name ?? '';
        streamed[d.index]!.args += d.function?.arguments ?? '';
      }
    }
    assert.equal(finish, 'tool_calls');
    assert.equal(content, '');
    assert.deepEqual(streamed.map((s) => [s.name, JSON.parse(s.args)]), [[call.function.name, JSON.parse(call.function.arguments)]]);

    // The round trip: the call and its result in the history, and the model answers (or calls again).
    const next = await openai.chat.completions.create({
      model, tools: TOOLS, temperature: 0, max_tokens: 8,
      messages: [...ASK, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temperature": 21}' }],
    });
    assert.ok(['stop', 'length', 'tool_calls'].includes(next.choices[0]!.finish_reason));
    assert.ok(next.usage!.prompt_tokens > whole.usage!.prompt_tokens, 'the history (call and result) is in the prompt');
  });
}

test('a named function is the one called; parallel calls may be several, each valid', { skip }, async () => {
  const named = await openai.chat.completions.create({
    model: MODELS.hermes, messages: ASK, tools: TOOLS, tool_choice: { type: 'function', function: { name: 'get_time' } }, temperature: 0, max_tokens: 100,
  });
  const calls = named.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
  assert.deepEqual(calls.map((c) => c.function.name), ['get_time']);
  assertValidCall('get_time', JSON.parse(calls[0]!.function.arguments), 'named');

  const parallel = await openai.chat.completions.create({ model: MODELS.llama3, messages: ASK, tools: TOOLS, tool_choice: 'required', temperature: 0.9, seed: 3, max_tokens: 300 });
  const many = parallel.choices[0]!.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
  assert.ok(many.length >= 1);
  for (const c of many) assertValidCall(c.function.name, JSON.parse(c.function.arguments), 'parallel');
  assert.equal(new Set(many.map((c) => c.id)).size, many.length, 'ids are unique');
});

test('refusals: an argument schema the grammar cannot enforce, response_format with a forced call, tools that are not functions', { skip }, async () => {
  const post = (body: object) => fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const pattern = await post({
    model: MODELS.hermes, messages: ASK, tool_choice: 'required',
    tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { code: { type: 'string', pattern: '^[A-Z]+$' } } } } }],
  });
  assert.equal(pattern.status, 400);
  const err = ((await pattern.json()) as { error: { message: string; param: string } }).error;
  assert.match(err.message, /lookup/);
  assert.match(err.message, /pattern/);
  assert.equal(err.param, 'tools');
  const both = await post({ model: MODELS.hermes, messages: ASK, tools: TOOLS, tool_choice: 'required', response_format: { type: 'json_object' } });
  assert.equal(both.status, 400);
  assert.equal(((await both.json()) as { error: { param: string } }).error.param, 'response_format');
  const notFn = await post({ model: MODELS.hermes, messages: ASK, tools: [{ type: 'code_interpreter' }] });
  assert.equal(notFn.status, 400);
  // The deprecated functions API is refused by name, not ignored.
  const legacy = await post({ model: MODELS.hermes, messages: ASK, functions: [{ name: 'f', parameters: {} }] });
  assert.equal(legacy.status, 400);
  assert.equal(((await legacy.json()) as { error: { param: string } }).error.param, 'functions');
  // A Mistral template refuses call ids it cannot take: a 400 with the template's own words.
  const badId = await post({
    model: MODELS.mistral, tools: TOOLS, messages: [...ASK,
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_time', arguments: '{"utc": true}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '12:00' }],
  });
  assert.equal(badId.status, 400);
  assert.match(((await badId.json()) as { error: { message: string } }).error.message, /length 9/);
});

test('Vercel AI SDK: generateText and streamText run a tool loop (call, execute, answer)', { skip }, async () => {
  const provider = createOpenAICompatible({ name: 'minerva', baseURL: `${url}/v1`, apiKey: 'unused' });
  const executed: unknown[] = [];
  const tools = {
    get_weather: tool({
      description: 'Weather now in a city',
      inputSchema: jsonSchema<{ city: string; unit: string; days?: number }>(WEATHER_PARAMS as never),
      execute: async (input) => { executed.push(input); return { temperature: 21, sky: 'clear' }; },
    }),
  };
  for (const run of ['generateText', 'streamText'] as const) {
    executed.length = 0;
    const options = {
      model: provider.chatModel(MODELS.hermes), tools, prompt: 'What is the weather in Paris?', temperature: 0, maxOutputTokens: 120,
      stopWhen: stepCountIs(2),
      // The first step must call; the second answers with the result in its history.
      prepareStep: ({ stepNumber }: { stepNumber: number }) => ({ toolChoice: stepNumber === 0 ? 'required' as const : 'none' as const }),
    };
    let steps: { toolCalls: { toolName: string; input: unknown }[]; toolResults: unknown[] }[];
    let text: string;
    if (run === 'generateText') {
      const r = await generateText(options);
      steps = r.steps; text = r.text;
    } else {
      const r = streamText(options);
      text = await r.text;
      steps = await r.steps;
    }
    assert.equal(steps.length, 2, run);
    assert.equal(steps[0]!.toolCalls.length, 1, run);
    assert.equal(steps[0]!.toolCalls[0]!.toolName, 'get_weather');
    assertValidCall('get_weather', steps[0]!.toolCalls[0]!.input, run);
    assert.deepEqual(executed, [steps[0]!.toolCalls[0]!.input], `${run}: the tool ran with the model's arguments`);
    assert.equal(steps[0]!.toolResults.length, 1);
    assert.equal(typeof text, 'string');
  }
});

test('LangChain.js ChatOpenAI with bindTools: tool_calls with parsed args, and a ToolMessage round trip', { skip }, async () => {
  const chat = new ChatOpenAI({ model: MODELS.llama3, apiKey: 'unused', configuration: { baseURL: `${url}/v1` }, temperature: 0, maxTokens: 200, maxRetries: 0 });
  const bound = chat.bindTools(TOOLS, { tool_choice: 'required', parallel_tool_calls: false });
  const reply = await bound.invoke([{ role: 'user', content: 'What is the weather in Oslo?' }]);
  assert.equal(reply.tool_calls?.length, 1);
  const call = reply.tool_calls![0]!;
  assertValidCall(call.name, call.args, 'langchain');
  const answer = await chat.bindTools(TOOLS).invoke([
    { role: 'user', content: 'What is the weather in Oslo?' }, reply, new ToolMessage({ tool_call_id: call.id!, content: '5 C' }),
  ]);
  assert.equal(typeof answer.content, 'string');
});

test('ollama client: tools on /api/chat give message.tool_calls with arguments as an object, streamed or not', { skip }, async () => {
  const ollama = new Ollama({ host: url });
  const tools = TOOLS.map((t) => t as never);
  // Ollama's API has no tool_choice; this server takes OpenAI's on /api/chat as an extension.
  const request = { model: MODELS.mistral, messages: [{ role: 'user', content: 'Weather in Lima?' }], tools, options: { temperature: 0, num_predict: 200 }, tool_choice: 'required', parallel_tool_calls: false };
  const whole = await ollama.chat({ ...request, stream: false } as never) as unknown as { message: { content: string; tool_calls?: { function: { name: string; arguments: Record<string, unknown> } }[] }; done_reason: string };
  assert.equal(whole.message.tool_calls?.length, 1);
  const fn = whole.message.tool_calls![0]!.function;
  assertValidCall(fn.name, fn.arguments, 'ollama');
  const parts = await ollama.chat({ ...request, stream: true } as never) as unknown as AsyncIterable<{ message: { tool_calls?: { function: { name: string; arguments: object } }[] } }>;
  const streamed = [];
  for await (const p of parts) streamed.push(...(p.message.tool_calls ?? []));
  assert.deepEqual(streamed.map((c) => c.function), [fn]);

  // The round trip the Ollama way: the call without an id, the result by tool_name.
  const next = await ollama.chat({
    model: MODELS.mistral, tools, options: { temperature: 0, num_predict: 8 }, stream: false,
    messages: [{ role: 'user', content: 'Weather in Lima?' }, { role: 'assistant', content: '', tool_calls: whole.message.tool_calls as never }, { role: 'tool', content: '18 C', tool_name: fn.name } as never],
  });
  assert.equal(next.done, true);
});

test('a model without a chat template chats with ChatML, and says so in /api/show with its capabilities', { skip }, async () => {
  const show = await fetch(`${url}/api/show`, { method: 'POST', body: JSON.stringify({ model: MODELS.hermes }) });
  const body = (await show.json()) as { template: string; capabilities: string[]; model_info: Record<string, string> };
  assert.ok(body.template.includes('<|im_start|>'));
  assert.match(body.model_info['minerva.chat_template']!, /^chatml \(the model has no chat template; the default is used\)/);
  assert.deepEqual(body.capabilities, ['completion', 'tools']);
  const llama = (await (await fetch(`${url}/api/show`, { method: 'POST', body: JSON.stringify({ model: MODELS.llama3 }) })).json()) as { model_info: Record<string, string> };
  assert.match(llama.model_info['minerva.chat_template']!, /chosen with --chat-template or a \.jinja file/);
  const reply = await openai.chat.completions.create({ model: MODELS.hermes, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, temperature: 0 });
  assert.equal(reply.choices[0]!.message.role, 'assistant');
});
