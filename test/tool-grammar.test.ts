// Forced tool calls (src/chat/tool-grammar.ts) under constrained decoding with the real
// tokenizers of Qwen2.5, Mistral Nemo and Llama 3.2: the grammar admits the call text each model's
// own chat template writes, the constraint walks a valid call token by token (special-token
// markers included) and refuses invalid ones, and every call it lets a random sampler produce is
// read back by the tool-call parser with arguments that Ajv — an independent JSON Schema
// validator — finds valid against the function's schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { toolCallGrammar, type ToolGrammarOptions } from '../src/chat/tool-grammar.js';
import { ToolCallParser, parseToolCalls } from '../src/chat/tool-call-parser.js';
import { toolCallFormat, toolMarkerTokens } from '../src/chat/tool-format.js';
import { splitReasoning } from '../src/chat/reasoning.js';
import type { ToolCall, ToolFunction } from '../src/chat/tool-types.js';
import type { Grammar } from '../src/engine/grammar.js';
import { SchemaError } from '../src/engine/json-schema-grammar.js';
import { GrammarConstraint } from '../src/engine/token-constraint.js';
import { Rng } from '../src/engine/rng.js';
import { IncrementalDecoder, type Tokenizer } from '../src/tokenizer/index.js';
import { lenmlTemplate, lenmlTokenizer, renderLenml, type LenmlModel } from './helpers/lenml.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

const TOOLS: ToolFunction[] = [
  {
    name: 'get_weather',
    description: 'Current weather in a city',
    parameters: {
      type: 'object',
      properties: {
        city: { type: 'string', minLength: 1, maxLength: 12 },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      },
      required: ['city'],
      additionalProperties: false,
    },
  },
  {
    name: 'book_table',
    parameters: {
      type: 'object',
      properties: {
        restaurant: { type: 'string', maxLength: 8 },
        date: { type: 'string', format: 'date' },
        guests: { type: 'integer' },
        outside: { type: 'boolean' },
        tags: { type: 'array', items: { $ref: '#/$defs/tag' }, maxItems: 2 },
      },
      required: ['restaurant', 'guests'],
      additionalProperties: false,
      $defs: { tag: { type: 'string', enum: ['quiet', 'vegan'] } },
    },
  },
  { name: 'get_time', parameters: { type: 'object', properties: {} } },
];

function accepts(g: Grammar, text: string): boolean {
  const s = g.advanceBytes(g.initial, Buffer.from(text, 'utf8'));
  return s !== undefined && s.accepting;
}

/** The assistant turn of a rendered conversation, between the template's own markers. */
const TURN: Partial<Record<LenmlModel, [string, string]>> = {
  llama3_2: ['<|start_header_id|>assistant<|end_header_id|>\n\n', '<|eot_id|>'],
  qwen2_5: ['<|im_start|>assistant\n', '<|im_end|>'],
  qwen3: ['<|im_start|>assistant\n', '<|im_end|>'],
  mistral_nemo: ['[/INST]', '</s>'],
};

/** What the model's template writes for these past calls (the model's own format). */
function templateCalls(model: LenmlModel, calls: ToolCall[]): string {
  const rendered = renderLenml(model, {
    tools: TOOLS.map((f) => ({ type: 'function', function: { name: f.name, description: f.description ?? '', parameters: f.parameters } })),
    messages: [
      { role: 'user', content: 'Book a table for two at Noma and tell me the weather in Copenhagen.' },
      { role: 'assistant', content: '', tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) },
    ],
  });
  const [open, close] = TURN[model]!;
  const start = rendered.lastIndexOf(open) + open.length;
  return splitReasoning(rendered.slice(start, rendered.indexOf(close, start))).content;
}

const CALLS: ToolCall[] = [
  { id: 'a1B2c3D4e', name: 'book_table', arguments: { restaurant: 'Noma', date: '2025-02-28', guests: 2, tags: ['quiet'] } },
  { id: 'Zz9Yy8Xx7', name: 'get_weather', arguments: { city: 'Copenhagen', unit: 'celsius' } },
];

test('the grammar admits the calls each model\'s own template writes, and nothing else', () => {
  for (const model of ['qwen2_5', 'qwen3', 'mistral_nemo', 'llama3_2'] as const) {
    const format = toolCallFormat(lenmlTemplate(model));
    const parallel = model !== 'llama3_2'; // Llama 3.2's template takes one call per turn
    const calls = parallel ? CALLS : CALLS.slice(0, 1);
    const text = templateCalls(model, calls);
    const g = toolCallGrammar({ format, tools: TOOLS, choice: 'required', parallel });
    assert.ok(accepts(g, text), `${model} ${JSON.stringify(text)}`);
    // One call only: the parallel text is refused, its first call alone admitted.
    const single = toolCallGrammar({ format, tools: TOOLS, choice: 'required', parallel: false });
    assert.equal(accepts(single, text), !parallel, model);
    assert.ok(accepts(single, templateCalls(model, CALLS.slice(0, 1))), model);
    // A named function admits that function only.
    assert.ok(accepts(toolCallGrammar({ format, tools: TOOLS, choice: { name: 'book_table' } }), templateCalls(model, CALLS.slice(0, 1))), model);
    assert.ok(!accepts(toolCallGrammar({ format, tools: TOOLS, choice: { name: 'get_weather' } }), templateCalls(model, CALLS.slice(0, 1))), model);
    // Arguments that break the schema, and functions that were not offered.
    for (const bad of [
      { name: 'book_table', arguments: { restaurant: 'Noma' } }, // guests is required
      { name: 'book_table', arguments: { restaurant: 'Noma', guests: 2.5 } }, // not an integer
      { name: 'book_table', arguments: { restaurant: 'Noma', guests: 2, date: '2025-02-29' } }, // no such day
      { name: 'book_table', arguments: { restaurant: 'Noma', guests: 2, tags: ['loud'] } }, // not in the enum
      { name: 'get_weather', arguments: { city: 'Copenhagen', wind: true } }, // additionalProperties: false
      { name: 'get_weather', arguments: { city: 'Llanfairpwllgwyngyll' } }, // maxLength 12
      { name: 'delete_account', arguments: {} },
    ]) {
      const t = templateCalls(model, [{ id: 'a1B2c3D4e', ...bad }]);
      assert.ok(!accepts(g, t), `${model} admits ${t}`);
      assert.ok(!ajv.validate(TOOLS.find((f) => f.name === bad.name)?.parameters ?? false, bad.arguments), 'the oracle agrees');
    }
    // Text around the call is not a forced call.
    assert.ok(!accepts(g, `Sure! ${templateCalls(model, CALLS.slice(0, 1))}`), model);
  }
});

test('tool grammars: unenforceable schemas and unknown names are errors naming the function', () => {
  const tools: ToolFunction[] = [...TOOLS, { name: 'search', parameters: { type: 'object', properties: { q: { type: 'string', pattern: '^[a-z]+$' } } } }];
  assert.throws(() => toolCallGrammar({ format: 'hermes', tools, choice: 'required' }), (e: unknown) => {
    assert.ok(e instanceof SchemaError);
    assert.match(e.message, /function "search" parameters #\/properties\/q: "pattern" is not supported/);
    return true;
  });
  // Naming another function leaves "search" out, so its schema does not matter.
  assert.ok(toolCallGrammar({ format: 'hermes', tools, choice: { name: 'get_time' } }));
  assert.throws(() => toolCallGrammar({ format: 'hermes', tools, choice: { name: 'nope' } }), /tool_choice names function "nope", which is not among the tools/);
  assert.throws(() => toolCallGrammar({ format: 'hermes', tools: [], choice: 'required' }), RangeError);
  assert.throws(
    () => toolCallGrammar({ format: 'llama3', tools: [{ name: 'f', parameters: { type: 'string' } }], choice: 'required' }),
    (e: unknown) => e instanceof SchemaError && /function "f" parameters #\/type/.test(e.message),
  );
  // Each function's "$ref"s point into its own schema, though the names are the same.
  const refs = toolCallGrammar({
    format: 'hermes', choice: 'required', tools: [
      { name: 'a', parameters: { type: 'object', properties: { v: { $ref: '#/$defs/v' } }, required: ['v'], $defs: { v: { type: 'integer' } } } },
      { name: 'b', parameters: { type: 'object', properties: { v: { $ref: '#/$defs/v' } }, required: ['v'], $defs: { v: { type: 'boolean' } } } },
    ],
  });
  const call = (name: string, v: unknown): string => `<tool_call>\n{"name": "${name}", "arguments": {"v": ${JSON.stringify(v)}}}\n</tool_call>`;
  assert.ok(accepts(refs, call('a', 7)) && accepts(refs, call('b', true)));
  assert.ok(!accepts(refs, call('a', true)) && !accepts(refs, call('b', 7)));
  // Parameters that leave the type open are an object; {} takes any object.
  const g = toolCallGrammar({ format: 'generic', tools: [{ name: 'f', parameters: {} }], choice: 'required', parallel: false });
  assert.ok(accepts(g, '{"name": "f", "arguments": {"x": [1, {"y": null}]}}'));
  assert.ok(!accepts(g, '{"name": "f", "arguments": 3}'));
});

const closerTables = new WeakMap<Tokenizer, number[]>();

/** Ids of the tokens whose text closes a string or a structure ('"', '}', ']', '>'), and the ends. */
function closers(tok: Tokenizer): number[] {
  let t = closerTables.get(tok);
  if (t) return t;
  t = [...tok.eosIds];
  for (let id = 0; id < tok.vocabSize; id++) {
    const b = tok.tokenBytes(id);
    if (b !== undefined && (b.includes(0x22) || b.includes(0x7d) || b.includes(0x5d) || b.includes(0x3e))) t.push(id);
  }
  closerTables.set(tok, t);
  return t;
}

/**
 * A random admissible token path, as a sampler under the constraint would produce one: like the
 * scheduler, it draws a token and asks allows(), and masks the vocabulary only when draws keep
 * failing. Past a few steps it leans towards tokens that close strings and structures (or end),
 * so that unbounded strings and repetitions end.
 */
function samplePath(tok: Tokenizer, options: ToolGrammarOptions, keepSpecial: readonly number[], rng: Rng): number[] {
  const c = new GrammarConstraint(toolCallGrammar(options), tok, tok.eosIds, { specialText: keepSpecial });
  const closing = closers(tok);
  const logits = new Float32Array(tok.vocabSize);
  const path: number[] = [];
  for (let step = 0; step < 400; step++) {
    if (c.finished) return path;
    const close = step > 12 && rng.next() < 0.7;
    let id = -1;
    for (let k = 0; k < 64 && id === -1; k++) {
      const draw = close ? closing[Math.floor(rng.next() * closing.length)]! : Math.floor(rng.next() * tok.vocabSize);
      if (c.allows(draw)) id = draw;
    }
    if (id === -1) {
      logits.fill(0);
      c.mask(logits);
      const allowed: number[] = [];
      for (let t = 0; t < logits.length; t++) if (logits[t] !== -Infinity) allowed.push(t);
      assert.ok(allowed.length > 0, 'the constraint leaves some token');
      id = allowed[Math.floor(rng.next() * allowed.length)]!;
      assert.ok(c.allows(id));
    }
    if (tok.eosIds.includes(id)) return path;
    c.accept(id);
    path.push(id);
  }
  throw new Error('no path ended within 400 tokens');
}

for (const [model, label] of [['qwen2_5', 'Qwen2.5 (hermes)'], ['mistral_nemo', 'Mistral Nemo (mistral)'], ['llama3_2', 'Llama 3.2 (llama3)']] as const) {
  test(`${label}: the constraint walks a valid call token by token, and whatever it admits parses and validates`, async () => {
    const tok = await lenmlTokenizer(model);
    const format = toolCallFormat(lenmlTemplate(model));
    const keep = toolMarkerTokens(format, tok);
    const parallel = model !== 'llama3_2';
    const options: ToolGrammarOptions = { format, tools: TOOLS, choice: 'required', parallel };

    // A valid call, encoded as the tokenizer does, goes through token by token.
    const text = templateCalls(model, parallel ? CALLS : CALLS.slice(0, 1));
    const ids = tok.encode(text, { addSpecial: false });
    const walk = (specialText: readonly number[]): number => {
      const c = new GrammarConstraint(toolCallGrammar(options), tok, tok.eosIds, { specialText });
      for (let i = 0; i < ids.length; i++) {
        if (!c.allows(ids[i]!)) return i;
        c.accept(ids[i]!);
      }
      assert.ok(ids.length > 0 && tok.eosIds.every((e) => c.allows(e)), 'the text may end after the calls');
      return ids.length;
    };
    assert.equal(walk(keep), ids.length, `${model}: ${JSON.stringify(text)}`);
    if (format === 'mistral') {
      assert.equal(ids[0], 9, '[TOOL_CALLS] is a special token');
      assert.equal(walk([]), 0, 'a special token is refused unless the constraint is told it may write it');
      // The marker is all the constraint allows of the special tokens, and the text cannot end yet.
      const c = new GrammarConstraint(toolCallGrammar(options), tok, tok.eosIds, { specialText: keep });
      const logits = new Float32Array(tok.vocabSize);
      c.mask(logits);
      assert.equal(logits[9], 0);
      for (const id of [1, 2, 5, 6, 7, 8]) assert.equal(logits[id], -Infinity, `special token ${id}`);
    }
    // An invalid call is refused at some token.
    const bad = templateCalls(model, [{ id: 'a1B2c3D4e', name: 'get_weather', arguments: { city: 'Copenhagen', unit: 'kelvin' } }]);
    const badIds = tok.encode(bad, { addSpecial: false });
    const c = new GrammarConstraint(toolCallGrammar(options), tok, tok.eosIds, { specialText: keep });
    assert.ok(!badIds.every((id) => c.allows(id) && (c.accept(id), true)), `${model} admits ${bad}`);

    // Random paths through the constraint: each decodes (markers kept) to calls the parser reads
    // back with nothing left over, and Ajv validates every call's arguments.
    const rng = new Rng(1234);
    const seen = new Set<string>();
    for (let n = 0; n < 12; n++) {
      const choice = n % 4 === 3 ? { name: TOOLS[n % TOOLS.length]!.name } : 'required' as const;
      const path = samplePath(tok, { ...options, choice }, keep, rng);
      const d = new IncrementalDecoder(tok, { keepSpecial: keep });
      const out = path.map((id) => d.push(id)).join('') + d.flush();
      const parsed = parseToolCalls(out, { format, tools: TOOLS });
      assert.equal(parsed.content, '', `${model}: ${JSON.stringify(out)}`);
      assert.ok(parsed.calls.length >= 1, JSON.stringify(out));
      if (!parallel || choice !== 'required') assert.equal(parsed.calls.length, 1);
      for (const call of parsed.calls) {
        if (choice !== 'required') assert.equal(call.name, choice.name);
        const schema = TOOLS.find((f) => f.name === call.name)!.parameters;
        assert.ok(ajv.validate(schema, call.arguments), `${JSON.stringify(call)}: ${ajv.errorsText()}`);
        seen.add(call.name);
      }
      // Streamed token by token, the parser gives the same calls.
      const p = new ToolCallParser({ format, tools: TOOLS });
      const d2 = new IncrementalDecoder(tok, { keepSpecial: keep });
      const streamed = [...path.map((id) => p.push(d2.push(id))), p.push(d2.flush()), p.flush()];
      assert.deepEqual(streamed.flatMap((o) => o.calls).map((c) => [c.name, c.arguments]), parsed.calls.map((c) => [c.name, c.arguments]));
      assert.equal(streamed.map((o) => o.content).join(''), '');
    }
    assert.ok(seen.size >= 2, `the samples reach several functions (${[...seen].join(', ')})`);
  });
}

test('Qwen3: reasoning may come before forced calls, and a prompt that opened <think> must close it', async () => {
  const calls = templateCalls('qwen3', CALLS);
  const reasoning = 'The user wants a table at Noma for two on 2025-02-28 and the weather. Tags like <quiet> matter; "</thin" is not the end.';
  const block = toolCallGrammar({ format: 'hermes', tools: TOOLS, choice: 'required', reasoning: 'block' });
  for (const text of [calls, `<think>\n\n</think>\n\n${calls}`, `<think>\n${reasoning}\n</think>\n\n${calls}`]) assert.ok(accepts(block, text), text);
  for (const text of [
    `<think>\n${reasoning}\n${calls}`, // never closed
    `<think>\n${reasoning}\n</think>\n\nI will call the tools now.\n${calls}`, // text between
    `<think>a</think><think>b</think>${calls}`,
    `<think>\n${reasoning}\n</think>\n\n`, // no call
  ]) assert.ok(!accepts(block, text), text);
  const open = toolCallGrammar({ format: 'hermes', tools: TOOLS, choice: { name: 'book_table' }, reasoning: 'open' });
  const one = templateCalls('qwen3', CALLS.slice(0, 1));
  assert.ok(accepts(open, `${reasoning}\n</think>\n\n${one}`));
  assert.ok(!accepts(open, one) && !accepts(open, `<think>\n${reasoning}\n</think>\n\n${one}\n${one}`));

  // Token by token with Qwen3's tokenizer (<think>, </think>, <tool_call> are its added tokens).
  const tok = await lenmlTokenizer('qwen3');
  const reply = `<think>\n${reasoning}\n</think>\n\n${calls}`;
  const ids = tok.encode(reply, { addSpecial: false });
  assert.ok(ids.includes(151667) && ids.includes(151668), 'the markers are single tokens');
  const c = new GrammarConstraint(block, tok, tok.eosIds);
  for (const id of ids) {
    assert.ok(c.allows(id), tok.decode([id], { skipSpecial: false }));
    c.accept(id);
  }
  assert.ok(c.allows(tok.eosIds[0]!));
  const split = splitReasoning(reply);
  assert.equal(split.reasoning, reasoning);
  assert.deepEqual(parseToolCalls(split.content, { format: 'hermes', tools: TOOLS }).calls.map((x) => [x.name, x.arguments]), CALLS.map((x) => [x.name, x.arguments]));
});
