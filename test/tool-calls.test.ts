// Tool calls out of generated text (src/chat/tool-call-parser.ts), the format a chat template
// uses (tool-format.ts) and reasoning split from the answer (reasoning.ts). The texts are written
// as the models write them; the models' own chat templates (rendered by @huggingface/jinja) are
// the oracle for each format: what a template writes as a past call must parse back to that call.
// Every text is also fed split at each character boundary and one character at a time: streaming
// must give what the whole text gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ToolCallParser, parseToolCalls, type ToolCallParserOptions, type ToolParseOutput } from '../src/chat/tool-call-parser.js';
import { mistralCallForm, toolCallFormat, toolMarkerTokens } from '../src/chat/tool-format.js';
import { ReasoningSplitter, promptOpensThinking, splitReasoning, type ReasoningOutput, type ReasoningSplitterOptions } from '../src/chat/reasoning.js';
import type { ToolCall, ToolFunction } from '../src/chat/tool-types.js';
import { IncrementalDecoder } from '../src/tokenizer/index.js';
import { lenmlTemplate, lenmlTokenizer, renderLenml, type LenmlModel } from './helpers/lenml.js';

const TOOLS: ToolFunction[] = [
  { name: 'get_current_temperature', parameters: { type: 'object', properties: { location: { type: 'string' }, unit: { type: 'string' } }, required: ['location'] } },
  { name: 'get_temperature_date', parameters: { type: 'object', properties: { location: { type: 'string' }, date: { type: 'string' } }, required: ['location', 'date'] } },
  { name: 'get_time', parameters: { type: 'object', properties: {} } },
];

/** Feeds `chunks` to a parser whose made-up ids count up (call_0, call_1, …). */
function parseChunks(chunks: readonly string[], options: ToolCallParserOptions): ToolParseOutput {
  let n = 0;
  const p = new ToolCallParser({ makeId: () => `call_${n++}`, ...options });
  const out: ToolParseOutput = { content: '', calls: [] };
  for (const piece of [...chunks.map((c) => p.push(c)), p.flush()]) {
    out.content += piece.content;
    out.calls.push(...piece.calls);
  }
  return out;
}

/** The text parses to `expected` whole, split at every boundary, and character by character. */
function assertParses(text: string, options: ToolCallParserOptions, expected: { content: string; calls: (Omit<ToolCall, 'id'> & { id?: string })[] }): void {
  const want = { content: expected.content, calls: expected.calls.map((c, i) => ({ id: c.id ?? `call_${i}`, name: c.name, arguments: c.arguments })) };
  assert.deepEqual(parseChunks([text], options), want, `whole: ${JSON.stringify(text)}`);
  for (let i = 1; i < text.length; i++) {
    assert.deepEqual(parseChunks([text.slice(0, i), text.slice(i)], options), want, `split at ${i}: ${JSON.stringify(text)}`);
  }
  assert.deepEqual(parseChunks([...text], options), want, `char by char: ${JSON.stringify(text)}`);
}

const hermes: ToolCallParserOptions = { format: 'hermes', tools: TOOLS };

test('Qwen2.5 / Qwen3 (hermes): one call, parallel calls, text around them', () => {
  // As Qwen2.5-7B-Instruct answers the function-calling example of Qwen's documentation.
  assertParses(
    '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}\n</tool_call>',
    hermes, { content: '', calls: [{ name: 'get_current_temperature', arguments: { location: 'San Francisco, CA, USA' } }] },
  );
  assertParses(
    '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}\n</tool_call>\n' +
      '<tool_call>\n{"name": "get_temperature_date", "arguments": {"location": "San Francisco, CA, USA", "date": "2024-10-01"}}\n</tool_call>',
    hermes, {
      content: '',
      calls: [
        { name: 'get_current_temperature', arguments: { location: 'San Francisco, CA, USA' } },
        { name: 'get_temperature_date', arguments: { location: 'San Francisco, CA, USA', date: '2024-10-01' } },
      ],
    },
  );
  assertParses(
    'Sure, let me check the current temperature for you.\n\n<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "Paris, France", "unit": "celsius"}}\n</tool_call>\nI will get back to you with the result.',
    hermes, {
      content: 'Sure, let me check the current temperature for you.\n\nI will get back to you with the result.',
      calls: [{ name: 'get_current_temperature', arguments: { location: 'Paris, France', unit: 'celsius' } }],
    },
  );
  // A function without arguments, written without "arguments".
  assertParses('<tool_call>\n{"name": "get_time"}\n</tool_call>', hermes, { content: '', calls: [{ name: 'get_time', arguments: {} }] });
  // Arguments as a JSON string, as OpenAI's API carries them.
  assertParses('<tool_call>\n{"name": "get_time", "arguments": "{}"}\n</tool_call>', hermes, { content: '', calls: [{ name: 'get_time', arguments: {} }] });
  // The closing marker inside a string of the arguments is text.
  assertParses(
    '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "</tool_call> <tool_call>"}}\n</tool_call>',
    hermes, { content: '', calls: [{ name: 'get_current_temperature', arguments: { location: '</tool_call> <tool_call>' } }] },
  );
  // Generation ended (max tokens, a stop string) before </tool_call>: the JSON is whole, so it is a call.
  assertParses('<tool_call>\n{"name": "get_time", "arguments": {}}\n', hermes, { content: '', calls: [{ name: 'get_time', arguments: {} }] });
});

test('hermes: text that only looks like a marker, and calls that do not parse, stay content', () => {
  for (const text of [
    'The weather is fine. Use <tool> tags, or a < b, or <tool_cal without the rest.',
    'A reply that ends in the start of a marker <tool_c',
    'Trailing whitespace is kept when no call was made.\n\n',
    // Bad JSON (the closing brace of the call is missing).
    'Checking.\n<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "Paris"}\n</tool_call>',
    // A function that was not offered.
    '<tool_call>\n{"name": "delete_everything", "arguments": {}}\n</tool_call>',
    // No name; arguments that are not an object.
    '<tool_call>\n{"arguments": {"location": "Paris"}}\n</tool_call>',
    '<tool_call>\n{"name": "get_time", "arguments": [1, 2]}\n</tool_call>',
    // Cut off inside the JSON.
    '<tool_call>\n{"name": "get_time", "argu',
    // Something other than </tool_call> after the JSON; no JSON at all.
    '<tool_call>\n{"name": "get_time", "arguments": {}} and more\n</tool_call>',
    '<tool_call>\nget_time()\n</tool_call>',
    '<tool_call>',
  ]) assertParses(text, hermes, { content: text, calls: [] });
  // A good call after a bad one still parses; the bad one is content.
  assertParses(
    '<tool_call>\n{"name": "nope", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
    hermes, { content: '<tool_call>\n{"name": "nope", "arguments": {}}\n</tool_call>', calls: [{ name: 'get_time', arguments: {} }] },
  );
  // Without a list of tools, any name is a call.
  assertParses('<tool_call>\n{"name": "delete_everything", "arguments": {}}\n</tool_call>', { format: 'hermes' }, { content: '', calls: [{ name: 'delete_everything', arguments: {} }] });
});

test('hermes: content streams out before the call completes, holding back only a possible marker', () => {
  const p = new ToolCallParser(hermes);
  assert.deepEqual(p.push('Let me check that.\n<tool'), { content: 'Let me check that.', calls: [] });
  assert.deepEqual(p.push('_call>\n{"name": "get_time", '), { content: '', calls: [] });
  const done = p.push('"arguments": {}}\n</tool_call>');
  assert.equal(done.content, '');
  assert.equal(done.calls.length, 1);
  assert.match(done.calls[0]!.id, /^call_[A-Za-z0-9]{24}$/);
  assert.deepEqual(p.flush(), { content: '', calls: [] });
  // '<' that turns out to be text is given out as soon as that is known.
  const q = new ToolCallParser(hermes);
  assert.deepEqual(q.push('a <'), { content: 'a', calls: [] });
  assert.deepEqual(q.push('b'), { content: ' <b', calls: [] });
});

test('Qwen3: reasoning, then calls; the reasoning splitter feeds the parser', () => {
  const reply = '<think>\nThe user wants the temperature in Paris and the date of tomorrow. I should call get_current_temperature with location "Paris, France".\n</think>\n\n' +
    '<tool_call>\n{"name": "get_current_temperature", "arguments": {"location": "Paris, France"}}\n</tool_call>';
  const split = splitReasoning(reply);
  assert.equal(split.reasoning, 'The user wants the temperature in Paris and the date of tomorrow. I should call get_current_temperature with location "Paris, France".');
  // Streamed: split character by character, each piece of content into the parser.
  const splitter = new ReasoningSplitter();
  const parser = new ToolCallParser(hermes);
  let reasoning = '', content = '';
  const calls: ToolCall[] = [];
  for (const c of [...reply]) {
    const r = splitter.push(c);
    reasoning += r.reasoning;
    const o = parser.push(r.content);
    content += o.content;
    calls.push(...o.calls);
  }
  const r = splitter.flush();
  reasoning += r.reasoning;
  for (const o of [parser.push(r.content), parser.flush()]) {
    content += o.content;
    calls.push(...o.calls);
  }
  assert.equal(reasoning, split.reasoning);
  assert.equal(content, '');
  assert.deepEqual(calls.map((c) => [c.name, c.arguments]), [['get_current_temperature', { location: 'Paris, France' }]]);
});

const llama3: ToolCallParserOptions = { format: 'llama3', tools: TOOLS };

test('Llama 3.x: the reply is the call, maybe after <|python_tag|>, maybe several', () => {
  // Llama-3.2-3B-Instruct answering with the JSON its template asks for.
  assertParses(
    '{"name": "get_current_temperature", "parameters": {"location": "San Francisco, CA", "unit": "fahrenheit"}}',
    llama3, { content: '', calls: [{ name: 'get_current_temperature', arguments: { location: 'San Francisco, CA', unit: 'fahrenheit' } }] },
  );
  // Llama 3.1 writes <|python_tag|> first (kept in the text stream by keepSpecial).
  assertParses(
    '<|python_tag|>{"name": "get_current_temperature", "parameters": {"location": "Oslo"}}',
    llama3, { content: '', calls: [{ name: 'get_current_temperature', arguments: { location: 'Oslo' } }] },
  );
  const two = [{ name: 'get_current_temperature', arguments: { location: 'Oslo' } }, { name: 'get_temperature_date', arguments: { location: 'Oslo', date: '2024-10-01' } }];
  assertParses(
    '{"name": "get_current_temperature", "parameters": {"location": "Oslo"}}; {"name": "get_temperature_date", "parameters": {"location": "Oslo", "date": "2024-10-01"}}',
    llama3, { content: '', calls: two },
  );
  assertParses(
    '\n{"name": "get_current_temperature", "parameters": {"location": "Oslo"}}\n{"name": "get_temperature_date", "parameters": {"location": "Oslo", "date": "2024-10-01"}}\n',
    llama3, { content: '', calls: two },
  );
  assertParses(
    '[{"name": "get_current_temperature", "parameters": {"location": "Oslo"}}, {"name": "get_temperature_date", "arguments": {"location": "Oslo", "date": "2024-10-01"}}]',
    llama3, { content: '', calls: two },
  );
});

test('Llama 3.x: answers in text or in other JSON stay content', () => {
  for (const text of [
    'The current temperature in Oslo is 3 degrees Celsius.',
    '  Leading spaces are content too.',
    '{"answer": 42}',
    '{"name": "get_current_temperature", "parameters": {"location": "Oslo"}',
    '{"name": "get_current_temperature"}',
    '{"name": "unknown_function", "parameters": {}}',
    '<|python_tag|>brave_search.call(query="weather in Oslo")',
    '<|python_tag',
    'Here is the call: {"name": "get_time", "parameters": {}}',
    '[1] A reply that opens with a bracket',
    '{ }',
    '[',
  ]) assertParses(text, llama3, { content: text, calls: [] });
  // Text that cannot open a call streams at once; what can is held back until it is decided.
  const p = new ToolCallParser(llama3);
  assert.deepEqual(p.push('[1'), { content: '[1', calls: [] });
  const q = new ToolCallParser(llama3);
  assert.deepEqual(q.push(' {\n '), { content: '', calls: [] });
  const done = q.push('"name": "get_time", "parameters": {}} ');
  assert.equal(done.content, '');
  assert.deepEqual(done.calls.map((c) => c.name), ['get_time']);
  // Text after a call is content.
  assertParses('{"name": "get_time", "parameters": {}}\n\nDone.', llama3, { content: 'Done.', calls: [{ name: 'get_time', arguments: {} }] });
});

const mistral: ToolCallParserOptions = { format: 'mistral', tools: TOOLS };

test('Mistral Nemo: [TOOL_CALLS] then an array of calls, with their own ids', () => {
  assertParses(
    '[TOOL_CALLS][{"name": "get_current_temperature", "arguments": {"location": "Paris, France", "unit": "celsius"}, "id": "Ch1fJz0Yp"}]',
    mistral, { content: '', calls: [{ id: 'Ch1fJz0Yp', name: 'get_current_temperature', arguments: { location: 'Paris, France', unit: 'celsius' } }] },
  );
  assertParses(
    '[TOOL_CALLS] [{"name": "get_current_temperature", "arguments": {"location": "Paris"}, "id": "a1B2c3D4e"}, {"name": "get_temperature_date", "arguments": {"location": "Paris", "date": "2024-10-01"}, "id": "Zz9Yy8Xx7"}]',
    mistral, {
      content: '',
      calls: [
        { id: 'a1B2c3D4e', name: 'get_current_temperature', arguments: { location: 'Paris' } },
        { id: 'Zz9Yy8Xx7', name: 'get_temperature_date', arguments: { location: 'Paris', date: '2024-10-01' } },
      ],
    },
  );
  // Without ids (or with ids the template would refuse) the parser makes them up.
  assertParses(
    '[TOOL_CALLS][{"name": "get_time", "arguments": {}}, {"name": "get_time", "arguments": {}, "id": "bad id!"}]',
    mistral, { content: '', calls: [{ name: 'get_time', arguments: {} }, { name: 'get_time', arguments: {} }] },
  );
  const made = parseToolCalls('[TOOL_CALLS][{"name": "get_time", "arguments": {}}]', mistral).calls[0]!;
  assert.match(made.id, /^[A-Za-z0-9]{9}$/, 'Mistral templates take back only 9 letters and digits');
  // The newer form: [TOOL_CALLS]name[ARGS]{…}, and [CALL_ID] before [ARGS].
  assertParses(
    '[TOOL_CALLS]get_current_temperature[ARGS]{"location": "Paris"}[TOOL_CALLS]get_time[ARGS]{}',
    mistral, { content: '', calls: [{ name: 'get_current_temperature', arguments: { location: 'Paris' } }, { name: 'get_time', arguments: {} }] },
  );
  assertParses('[TOOL_CALLS]get_time[CALL_ID]k9Lm2Np4Q[ARGS]{}', mistral, { content: '', calls: [{ id: 'k9Lm2Np4Q', name: 'get_time', arguments: {} }] });
  // Text before the calls is content.
  assertParses('Let me look.[TOOL_CALLS][{"name": "get_time", "arguments": {}}]', mistral, { content: 'Let me look.', calls: [{ name: 'get_time', arguments: {} }] });
});

test('Mistral: calls that do not parse stay content, marker and all', () => {
  for (const text of [
    'No tools needed: Paris is the capital of France.',
    '[TOOL_CALLS][{"name": "get_time", "arguments": {}]',
    '[TOOL_CALLS][{"name": "get_time", "arguments": {}}, {"name": "unknown", "arguments": {}}]',
    '[TOOL_CALLS][]',
    '[TOOL_CALLS]I cannot do that.',
    '[TOOL_CALLS]get_time[ARGS]not json',
    '[TOOL_CALLS]get_time[ARGS]{"a": ',
    '[TOOL_CA',
  ]) assertParses(text, mistral, { content: text, calls: [] });
});

test('generic: a reply that is one JSON call or an array of them', () => {
  const generic: ToolCallParserOptions = { format: 'generic', tools: TOOLS };
  assertParses('{"name": "get_current_temperature", "arguments": {"location": "Oslo"}}', generic, { content: '', calls: [{ name: 'get_current_temperature', arguments: { location: 'Oslo' } }] });
  assertParses(' {"name":"get_time","parameters":{}} ', generic, { content: '', calls: [{ name: 'get_time', arguments: {} }] });
  assertParses(
    '[{"name": "get_time", "arguments": {}}, {"name": "get_current_temperature", "arguments": {"location": "Oslo"}}]',
    generic, { content: '', calls: [{ name: 'get_time', arguments: {} }, { name: 'get_current_temperature', arguments: { location: 'Oslo' } }] },
  );
  for (const text of [
    'It is 3 degrees in Oslo.',
    '{"name": "get_time"}',
    '{"name": "get_time", "arguments": {}, "explanation": "an answer in JSON, not a call"}',
    '[{"name": "get_time", "arguments": {}}, 3]',
    '{"name": "get_time", "arguments": {}',
  ]) assertParses(text, generic, { content: text, calls: [] });
});

/** The assistant turn of a rendered conversation, between the template's own markers. */
const TURN: Record<LenmlModel, [string, string]> = {
  llama3_2: ['<|start_header_id|>assistant<|end_header_id|>\n\n', '<|eot_id|>'],
  qwen2_5: ['<|im_start|>assistant\n', '<|im_end|>'],
  qwen3: ['<|im_start|>assistant\n', '<|im_end|>'],
  mistral_nemo: ['[/INST]', '</s>'],
};

test('the real chat templates: each one\'s format is detected, and the calls it writes parse back', () => {
  const expected: Record<LenmlModel, string> = { llama3_2: 'llama3', qwen2_5: 'hermes', qwen3: 'hermes', mistral_nemo: 'mistral' };
  for (const model of Object.keys(expected) as LenmlModel[]) {
    const format = toolCallFormat(lenmlTemplate(model));
    assert.equal(format, expected[model], model);
    assert.equal(mistralCallForm(lenmlTemplate(model)), 'array');
    // Llama 3.2's template takes one call per turn; the others any number.
    const calls: ToolCall[] = [
      { id: 'a1B2c3D4e', name: 'get_current_temperature', arguments: { location: 'Paris, France', unit: 'celsius' } },
      { id: 'Zz9Yy8Xx7', name: 'get_temperature_date', arguments: { location: 'Paris, France', date: '2024-10-01' } },
    ].slice(0, model === 'llama3_2' ? 1 : 2);
    const rendered = renderLenml(model, {
      tools: TOOLS.map((f) => ({ type: 'function', function: { name: f.name, parameters: f.parameters } })),
      messages: [
        { role: 'user', content: 'How warm is it in Paris today and tomorrow?' },
        { role: 'assistant', content: '', tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) },
      ],
    });
    const [open, close] = TURN[model];
    const start = rendered.lastIndexOf(open) + open.length;
    // Qwen3's template writes an empty reasoning block before the calls of the last turn.
    const turn = splitReasoning(rendered.slice(start, rendered.indexOf(close, start))).content;
    const out = parseToolCalls(turn, { format, tools: TOOLS, makeId: () => 'made-up' });
    assert.equal(out.content, '', `${model}: ${JSON.stringify(turn)}`);
    // Mistral's own ids come back; the others have none in their format.
    assert.deepEqual(out.calls, calls.map((c) => ({ ...c, id: format === 'mistral' ? c.id : 'made-up' })), model);
  }
  assert.equal(toolCallFormat(undefined), 'generic');
  assert.equal(toolCallFormat("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"), 'generic');
  assert.equal(toolCallFormat('{{ "<|python_tag|>" }}'), 'llama3');
  assert.equal(mistralCallForm('{{ "[TOOL_CALLS]" + name + "[ARGS]" + args }}'), 'args');
});

test('markers that are special tokens reach the parser only when kept in the text stream', async () => {
  const nemo = await lenmlTokenizer('mistral_nemo');
  assert.deepEqual(toolMarkerTokens('mistral', nemo), [9]); // [TOOL_CALLS]; Nemo has no [ARGS]
  const llama = await lenmlTokenizer('llama3_2');
  assert.deepEqual(toolMarkerTokens('llama3', llama), [128010]); // <|python_tag|>
  // Qwen's <tool_call> is an ordinary added token: always in the text.
  assert.deepEqual(toolMarkerTokens('hermes', await lenmlTokenizer('qwen2_5')), []);

  const reply = '[TOOL_CALLS][{"name": "get_time", "arguments": {}, "id": "a1B2c3D4e"}]';
  const ids = nemo.encode(reply, { addSpecial: false });
  assert.equal(ids[0], 9);
  const stream = (keepSpecial?: readonly number[]): string => {
    const d = new IncrementalDecoder(nemo, { keepSpecial });
    return ids.map((id) => d.push(id)).join('') + d.flush();
  };
  assert.equal(stream(), reply.slice('[TOOL_CALLS]'.length), 'special tokens are left out by default');
  assert.equal(stream(toolMarkerTokens('mistral', nemo)), reply);
  assert.deepEqual(parseToolCalls(stream(toolMarkerTokens('mistral', nemo)), mistral).calls, [{ id: 'a1B2c3D4e', name: 'get_time', arguments: {} }]);
  // Other special tokens stay out: </s> at the end.
  const d = new IncrementalDecoder(nemo, { keepSpecial: [9] });
  assert.equal([...ids, 2].map((id) => d.push(id)).join('') + d.flush(), reply);
});

/** Feeds chunks to a splitter. */
function splitChunks(chunks: readonly string[], options: ReasoningSplitterOptions = {}): ReasoningOutput {
  const s = new ReasoningSplitter(options);
  const out = { reasoning: '', content: '' };
  for (const piece of [...chunks.map((c) => s.push(c)), s.flush()]) {
    out.reasoning += piece.reasoning;
    out.content += piece.content;
  }
  return out;
}

function assertSplits(text: string, options: ReasoningSplitterOptions, expected: ReasoningOutput): void {
  assert.deepEqual(splitChunks([text], options), expected, `whole: ${JSON.stringify(text)}`);
  for (let i = 1; i < text.length; i++) assert.deepEqual(splitChunks([text.slice(0, i), text.slice(i)], options), expected, `split at ${i}`);
  assert.deepEqual(splitChunks([...text], options), expected, 'char by char');
}

test('reasoning: <think>…</think> apart from the answer, streamed', () => {
  // Qwen3 with thinking on.
  assertSplits('<think>\nOkay, the user asks for 2 + 2. That is 4.\n</think>\n\n2 + 2 = 4.', {}, { reasoning: 'Okay, the user asks for 2 + 2. That is 4.', content: '2 + 2 = 4.' });
  // Qwen3 with thinking off writes an empty block (its template puts it in the prompt, see below).
  assertSplits('<think>\n\n</think>\n\nHello!', {}, { reasoning: '', content: 'Hello!' });
  // No reasoning at all; a <think> later in the reply is content.
  assertSplits('Hello! I do not <think> much.\n', {}, { reasoning: '', content: 'Hello! I do not <think> much.\n' });
  assertSplits('<thin', {}, { reasoning: '', content: '<thin' });
  // DeepSeek-R1's template ends the prompt with "<think>\n": the reply starts inside.
  assertSplits('Let me think about x < y.\n</think>\n\nx is smaller.', { startInThinking: true }, { reasoning: 'Let me think about x < y.', content: 'x is smaller.' });
  // Cut off while thinking: all reasoning.
  assertSplits('<think>\nStill thinking about </thin', {}, { reasoning: 'Still thinking about </thin', content: '' });
  // Reasoning streams before </think> arrives, holding back only a possible marker and whitespace.
  const s = new ReasoningSplitter();
  assert.deepEqual(s.push('<think>\nStep one.\nStep two.\n</th'), { reasoning: 'Step one.\nStep two.', content: '' });
  assert.deepEqual(s.push('ink>\n\nAnswer'), { reasoning: '', content: 'Answer' });

  const qwen3Prompt = renderLenml('qwen3', { messages: [{ role: 'user', content: 'Hi' }], add_generation_prompt: true, enable_thinking: false });
  assert.ok(qwen3Prompt.endsWith('<think>\n\n</think>\n\n'));
  assert.equal(promptOpensThinking(qwen3Prompt), false);
  assert.equal(promptOpensThinking('<｜User｜>Hi<｜Assistant｜><think>\n'), true);
  assert.equal(promptOpensThinking('<|im_start|>assistant\n'), false);
});
