// A chat reply as the server reads it (server/chat-reply.ts): the prompt rendered with tools and
// enable_thinking through a real template (Qwen3's), and known replies of that model split into
// reasoning, content and tool calls, whole or streamed in small pieces.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Model } from '../src/index.js';
import { planChat, joinPieces, type ChatPlan, type ReplyPiece } from '../src/server/chat-reply.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { SPEC } from './helpers/server.js';
import { randomWeights, writeGGUFModel } from './helpers/random-model.js';
import { lenmlTemplate } from './helpers/lenml.js';

let dir: string;
let model: Model;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-chat-reply-'));
  if (skip) return;
  await writeGGUFModel(path.join(dir, 'm.gguf'), SPEC, randomWeights(SPEC, 3));
  model = await Model.load(path.join(dir, 'm.gguf'), { backend: 'reference', chatTemplate: lenmlTemplate('qwen3') });
});
after(async () => {
  model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const TOOLS = [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];
const ASK = [{ role: 'user', content: 'Weather in Paris?' }];

/** Reads a reply pushed in pieces of `size` characters. */
function read(plan: ChatPlan, text: string, size: number): ReplyPiece {
  const reader = plan.reader();
  let all: ReplyPiece = { content: '', reasoning: '', calls: [] };
  for (let i = 0; i < text.length; i += size) all = joinPieces(all, reader.push(text.slice(i, i + size)));
  return joinPieces(all, reader.flush());
}

test('Qwen3: enable_thinking reaches the template; a reply with reasoning and a call comes apart, in any pieces', { skip }, () => {
  const thinking = planChat(model, { messages: ASK, tools: { tools: TOOLS, choice: 'auto', parallel: true }, variables: {}, think: undefined, separateReasoning: true }, 'qwen3');
  assert.equal(thinking.format, 'hermes');
  assert.ok(thinking.text.includes('<tools>\n{"type": "function", "function": {"name": "get_weather"'));
  assert.ok(thinking.text.endsWith('<|im_start|>assistant\n'));
  const off = planChat(model, { messages: ASK, tools: undefined, variables: {}, think: false, separateReasoning: true }, 'qwen3');
  assert.ok(off.text.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'), 'think: false closes the thinking in the prompt');

  const reply = '<think>\nThe user wants the weather; I will call the tool.\n</think>\n\nLet me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';
  for (const size of [1, 3, 7, reply.length]) {
    const r = read(thinking, reply, size);
    assert.equal(r.reasoning, 'The user wants the weather; I will call the tool.', `pieces of ${size}`);
    assert.equal(r.content, 'Let me check.');
    assert.deepEqual(r.calls.map((c) => [c.name, c.arguments]), [['get_weather', { city: 'Paris' }]]);
  }
  // reasoning_format "none": the reasoning stays in the content.
  const raw = planChat(model, { messages: ASK, tools: undefined, variables: {}, think: undefined, separateReasoning: false }, 'qwen3');
  assert.equal(read(raw, '<think>\nhm\n</think>\n\nHi', 2).content, '<think>\nhm\n</think>\n\nHi');
});

test('a forced call turns thinking off and constrains the reply to a call; an unenforceable schema is a 400', { skip }, () => {
  const forced = planChat(model, { messages: ASK, tools: { tools: TOOLS, choice: 'required', parallel: false }, variables: {}, think: true, separateReasoning: true }, 'qwen3');
  assert.ok(forced.options.grammar, 'a grammar forces the call');
  assert.ok(forced.text.endsWith('<think>\n\n</think>\n\n'), 'no room for reasoning before a forced call');
  assert.throws(
    () => planChat(model, { messages: ASK, tools: { tools: [{ name: 'f', parameters: { type: 'object', properties: { n: { type: 'number', minimum: 1 } } } }], choice: 'required', parallel: true }, variables: {}, think: undefined, separateReasoning: true }, 'qwen3'),
    (e: Error & { param?: string }) => e.name === 'BadRequest' && /"f"/.test(e.message) && /minimum/.test(e.message) && e.param === 'tools',
  );
});
