// Untrusted JSON schemas (issue 17): a schema that would blow up the grammar is refused with a
// SchemaError naming what is too big and the limit, in well under a second, and a 400 through the
// server; a grammar too ambiguous to follow fails its own request, never the batch around it.
// Each case here was an attack on json-schema-grammar.ts / grammar.ts / token-constraint.ts;
// those marked "was:" broke before the limits. The oracle for "valid" is Ajv.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { GrammarError, SchemaError, jsonSchemaGrammar, loadModel, type Grammar, type Model } from '../src/index.js';
import {
  MAX_ALTERNATIVES, MAX_ENUM_VALUES, MAX_GRAMMAR_SIZE, MAX_LITERAL_BYTES, MAX_PROPERTIES, MAX_SCHEMA_DEPTH, MAX_VALUE_DEPTH,
} from '../src/engine/json-schema-grammar.js';
import { GrammarConstraint, MAX_MASK_STEPS } from '../src/engine/token-constraint.js';
import { loadHFTokenizer, type Tokenizer } from '../src/tokenizer/index.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeHFModel } from './helpers/random-model.js';
import { startServer, writeModels } from './helpers/server.js';
import { collect } from './helpers/generation.js';
import type { MinervaServer } from '../src/server/server.js';

// ownProperties: without it Ajv counts a required "toString" as present on {} (inherited).
const ajv = new Ajv2020({ strict: false, ownProperties: true });
const range = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

function nest(levels: number, wrap: (inner: object) => object, inner: object = { type: 'string' }): object {
  let s = inner;
  for (let i = 0; i < levels; i++) s = wrap(s);
  return s;
}

/** Schemas past each limit, and what the refusal must say. Sizes are those of the attacks. */
const REFUSED: [string, () => unknown, RegExp][] = [
  ['objects nested 100 deep', () => nest(100, (s) => ({ type: 'object', properties: { a: s }, required: ['a'] })), new RegExp(`nested more than ${MAX_SCHEMA_DEPTH} levels`)],
  ['anyOf in anyOf 100 deep', () => nest(100, (s) => ({ anyOf: [s, { type: 'null' }] })), /nested more than 64 levels/],
  ['a $ref chain 10,000 long', () => ({
    $defs: Object.fromEntries([...range(10_000, (i) => [`d${i}`, { $ref: `#/$defs/d${i + 1}` }]), ['d10000', { type: 'string' }]]),
    $ref: '#/$defs/d0',
  }), /#\/\$defs\/d64: nested more than 64 levels/],
  ['an enum of 100,000 values', () => ({ enum: range(100_000, (i) => `value-${i}`) }), new RegExp(`#/enum: has 100000 values, above the limit of ${MAX_ENUM_VALUES}`)],
  ['an enum of 1,000 strings of 1 kB', () => ({ enum: range(1000, (i) => 'x'.repeat(1000) + i) }), new RegExp(`enum and const values add up to more than ${MAX_LITERAL_BYTES} bytes`)],
  ['a const of 200 kB', () => ({ type: 'object', properties: { a: { const: 'y'.repeat(200_000) } } }), /#\/properties\/a\/const: the enum and const values add up/],
  // was: RangeError (Maximum call stack size exceeded) from JSON.stringify
  ['a const nested 100,000 deep', () => ({ const: nest(100_000, (v) => [v], {}) }), new RegExp(`#/const: the value is nested more than ${MAX_VALUE_DEPTH} levels`)],
  ['an anyOf of 2,000 schemas', () => ({ anyOf: range(2000, () => ({})) }), new RegExp(`#/anyOf: has 2000 schemas, above the limit of ${MAX_ALTERNATIVES}`)],
  // was: RangeError (Maximum call stack size exceeded) building the properties' rules
  ['an object of 10,000 required properties', () => ({
    type: 'object', properties: Object.fromEntries(range(10_000, (i) => [`p${i}`, { type: 'integer' }])), required: range(10_000, (i) => `p${i}`),
  }), new RegExp(`#: has 10000 properties, above the limit of ${MAX_PROPERTIES}`)],
  // was: compiled, then GrammarError ("left recursion") at the first token, inside the scheduler
  ['an object of 2,000 optional properties', () => ({ type: 'object', properties: Object.fromEntries(range(2000, (i) => [`p${i}`, { type: 'string' }])) }), /has 2000 properties/],
  ['strings of distinct maxLength under anyOf', () => ({ anyOf: range(1000, (i) => ({ type: 'string', maxLength: 10 + i })) }), new RegExp(`too large to enforce: more than ${MAX_GRAMMAR_SIZE} symbols`)],
  ['200 properties of distinct maxLength 10,000', () => ({
    type: 'object', properties: Object.fromEntries(range(200, (i) => [`p${i}`, { type: 'string', maxLength: 10_000 - i }])),
  }), /too large to enforce: more than 500000 symbols/],
  // was: compiled, then GrammarError at the first "{" (each object may begin in several ways)
  ['an anyOf of 1,000 objects', () => ({ anyOf: range(1000, (i) => ({ type: 'object', properties: { a: { type: 'string' }, [`k${i}`]: { type: 'integer' } } })) }),
    /#: the schema's alternatives overlap too much to enforce: more than 4096 ways to continue/],
  ['a $ref to itself', () => ({ $ref: '#' }), /"\$ref" cycle reads nothing/],
  ['a $ref to itself through anyOf', () => ({ anyOf: [{ $ref: '#' }, { type: 'string' }] }), /"\$ref" cycle reads nothing/],
  ['mutual $refs', () => ({ $defs: { a: { $ref: '#/$defs/b' }, b: { $ref: '#/$defs/a' } }, $ref: '#/$defs/a' }), /"\$ref" cycle reads nothing/],
  ['mutual $refs through anyOf', () => ({
    $defs: { a: { anyOf: [{ $ref: '#/$defs/b' }, { type: 'null' }] }, b: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'integer' }] } }, $ref: '#/$defs/a',
  }), /"\$ref" cycle reads nothing/],
  // was: URIError from decodeURIComponent
  ['a $ref that is not a URI fragment', () => ({ $ref: '#/%E0' }), /#\/\$ref: "#\/%E0" is not a valid URI fragment/],
];

test('a schema past a limit is refused with a SchemaError naming what and the limit, in well under a second', () => {
  for (const [name, make, message] of REFUSED) {
    const schema = make();
    const start = performance.now();
    assert.throws(() => jsonSchemaGrammar(schema), (e: unknown) => e instanceof SchemaError && message.test(e.message), name);
    const ms = performance.now() - start;
    assert.ok(ms < 1000, `${name}: refused after ${ms.toFixed(0)} ms`);
  }
});

function accepts(g: Grammar, text: string): boolean {
  const s = g.advanceBytes(g.initial, Buffer.from(text, 'utf8'));
  return s !== undefined && s.accepting;
}

test('regressions: required names from the prototype or twice, shared alternatives, shared string bounds', () => {
  // was: "toString" in {} is true, so a required "toString" without a schema was never generated.
  const proto = { type: 'object', properties: {}, required: ['toString', 'constructor'] };
  const g = jsonSchemaGrammar(proto);
  for (const text of ['{}', '{"toString":1,"constructor":null}', '{"toString":1}']) {
    assert.equal(accepts(g, text), ajv.validate(proto, JSON.parse(text)), text);
  }
  // was: a required name listed twice was generated twice.
  const twice = jsonSchemaGrammar({ type: 'object', required: ['a', 'a'] });
  assert.ok(accepts(twice, '{"a":1}'));
  assert.ok(!accepts(twice, '{"a":1,"a":2}'));
  // was: anyOf: [x, x] nested n deep through $defs expanded 2^n times for every byte (a hang at 30).
  const doubling = {
    $defs: Object.fromEntries([['l0', { type: 'string', maxLength: 3 }], ...range(30, (i) => [`l${i + 1}`, { anyOf: [{ $ref: `#/$defs/l${i}` }, { $ref: `#/$defs/l${i}` }] }])]),
    $ref: '#/$defs/l30',
  };
  const start = performance.now();
  const d = jsonSchemaGrammar(doubling);
  assert.ok(accepts(d, '"abc"') && !accepts(d, '"abcd"'));
  assert.ok(performance.now() - start < 1000);
  // was: "type" beside const / enum / anyOf was ignored, so {"type": "string", "const": 5} generated 5.
  const typed = jsonSchemaGrammar({ type: 'string', enum: ['a', 1, null, 'b'] });
  assert.deepEqual(['"a"', '1', 'null', '"b"'].map((t) => accepts(typed, t)), [true, false, false, true]);
  assert.ok(accepts(jsonSchemaGrammar({ type: 'integer', enum: [1.0, 1.5] }), '1'));
  assert.throws(() => jsonSchemaGrammar({ type: 'string', const: 5 }), /#\/const: is not of the schema's type "string"/);
  assert.throws(() => jsonSchemaGrammar({ type: 'null', enum: [1] }), /#\/enum: has no value of the schema's type/);
  assert.throws(() => jsonSchemaGrammar({ type: 'object', anyOf: [{ type: 'string' }] }), /"type" beside "anyOf" is not supported/);
  // 200 strings of maxLength 10,000 share one rule: they compile (they were "too large").
  const wide = { type: 'object', properties: Object.fromEntries(range(200, (i) => [`p${i}`, { type: 'string', maxLength: 10_000 }])), required: ['p0'] };
  const w = jsonSchemaGrammar(wide);
  assert.ok(accepts(w, `{"p0":"${'z'.repeat(10_000)}","p199":""}`) && !accepts(w, `{"p0":"${'z'.repeat(10_001)}"}`));
  // 1,000 optional properties (the limit): a chain of 1,000 rules that read nothing, walked without recursion.
  const many = { type: 'object', properties: Object.fromEntries(range(1000, (i) => [`p${i}`, { type: 'integer' }])) };
  const m = jsonSchemaGrammar(many);
  // (Properties come in their declared order, and undeclared ones are never generated.)
  const texts: [string, boolean][] = [['{}', true], ['{"p999":1}', true], ['{"p0":1,"p500":2,"p999":3}', true], ['{"p500":1,"p0":2}', false], ['{"p1000":1}', false]];
  for (const [text, expected] of texts) {
    assert.equal(accepts(m, text), expected, text);
    if (expected) assert.ok(ajv.validate(many, JSON.parse(text)), text);
  }
});

let llama2: Tokenizer;
before(async () => {
  if (!skip) llama2 = await loadHFTokenizer(path.join(FIXTURES, 'hf/llama2'));
});

/** The Llama-2 token whose bytes are exactly `text`. */
function tokenOf(tok: Tokenizer, text: string): number {
  for (let id = 0; id < tok.vocabSize; id++) if (Buffer.from(tok.tokenBytes(id) ?? []).toString('utf8') === text) return id;
  throw new Error(`no token for ${JSON.stringify(text)}`);
}

/** Overlapping alternatives: inside the string every one of them is alive, for every byte of every token. */
const AMBIGUOUS = { anyOf: range(20, (i) => ({ type: 'string', maxLength: 1000 + i })) };

test('per-token work is bounded: a mask past MAX_MASK_STEPS is a GrammarError, and plain strings stay well under it', { skip }, () => {
  const quote = tokenOf(llama2, '"');
  const maskInString = (schema: object): number => {
    const c = new GrammarConstraint(jsonSchemaGrammar(schema), llama2, llama2.eosIds);
    assert.ok(c.allows(quote));
    c.accept(quote);
    return c.mask(new Float32Array(llama2.vocabSize));
  };
  // One free string or a bounded one, alone or among three alternatives: every token but the
  // control bytes (and the end of sequence) may come next.
  for (const schema of [{ type: 'string' }, { type: 'string', maxLength: 1000 }, { anyOf: range(3, (i) => ({ type: 'string', maxLength: 1000 + i })) }]) {
    assert.ok(maskInString(schema) > 31_000, JSON.stringify(schema));
  }
  const start = performance.now();
  assert.throws(() => maskInString(AMBIGUOUS), (e: unknown) => e instanceof GrammarError && e.message.includes(`more than ${MAX_MASK_STEPS} parse steps`));
  assert.ok(performance.now() - start < 5000, 'the bound is reached in bounded time');
});

let dir: string | undefined;
let model: Model;
let server: MinervaServer | undefined;
let url: string;
before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-schema-limits-'));
  const spec = randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false });
  await writeHFModel(path.join(dir, 'm'), spec, randomWeights(spec, 21));
  model = await loadModel(path.join(dir, 'm'), { contextLength: 256, threads: 2, parallel: 4 });
  await writeModels(path.join(dir, 'models'));
  ({ server, url } = await startServer(path.join(dir, 'models')));
});
after(async () => {
  model?.dispose();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a grammar too ambiguous to follow fails its own sequence with that error; its neighbours are unchanged', { skip }, async () => {
  const free = () => collect(model.generate('Once upon a time', { temperature: 0, maxTokens: 12 }));
  const alone = await free();
  // A bias towards a control byte, which no JSON string admits, forces a mask at every step.
  const control = tokenOf(llama2, '\x01');
  const hostile = collect(model.generate('JSON:', { grammar: jsonSchemaGrammar(AMBIGUOUS), temperature: 0, maxTokens: 20, logitBias: { [control]: 100 } }));
  const [a, bad, b] = await Promise.allSettled([free(), hostile, free()]);
  assert.equal(bad.status, 'rejected');
  assert.match(String((bad as PromiseRejectedResult).reason), /too ambiguous \(more than \d+ parse steps/);
  assert.deepEqual(a.status === 'fulfilled' && a.value.tokens, alone.tokens);
  assert.deepEqual(b.status === 'fulfilled' && b.value.tokens, alone.tokens);
  assert.equal(model.stats().active, 0);
});

test('through the server, an oversized schema is a 400 naming the limit, for OpenAI and Ollama, at once', { skip }, async () => {
  const post = (route: string, body: unknown) => fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const huge = { enum: range(100_000, (i) => `v${i}`) };
  const cycle = { $defs: { a: { anyOf: [{ $ref: '#/$defs/a' }, { type: 'null' }] } }, $ref: '#/$defs/a' };
  const start = performance.now();
  const openai = await post('/v1/chat/completions', {
    model: 'tiny', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_schema', json_schema: { name: 'x', schema: huge } },
  });
  assert.equal(openai.status, 400);
  const err = (await openai.json()) as { error: { message: string; param: string } };
  assert.match(err.error.message, /response_format\.json_schema\.schema: JSON schema at #\/enum: has 100000 values, above the limit of 1000/);
  assert.equal(err.error.param, 'response_format');
  const ollama = await post('/api/generate', { model: 'tiny', prompt: 'x', format: cycle, stream: false });
  assert.equal(ollama.status, 400);
  assert.match(((await ollama.json()) as { error: string }).error, /format: JSON schema at #: a "\$ref" cycle reads nothing/);
  assert.ok(performance.now() - start < 3000, 'refused at once');
});
