// Fuzz target: the JSON Schema → grammar compiler (src/engine/json-schema-grammar.ts) and the
// grammar it builds (grammar.ts, token-constraint.ts). Schemas come from requests, so for any
// schema: compiling either succeeds or throws SchemaError, in bounded time; a compiled grammar can
// be walked (bytes, and tokens of the Llama 2 vocabulary) throwing nothing but GrammarError (its
// bounds on work per step); and a text the walk completes parses as JSON and validates against the
// schema by Ajv, an independent validator.
// Inputs: schemas generated over the supported keywords and some unsupported ones (random $refs,
// bounds and values), and mutations of the seed corpus in test/fuzz/corpus/json-schema/.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import fc from 'fast-check';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { GrammarError, SchemaError, jsonSchemaGrammar, type Grammar } from '../src/index.js';
import type { GrammarState } from '../src/engine/grammar.js';
import { GrammarConstraint } from '../src/engine/token-constraint.js';
import { loadHFTokenizer, type Tokenizer } from '../src/tokenizer/index.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';
import { fuzz, mutatedText, seedCorpus } from './helpers/fuzz.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020, formats: string[]) => Ajv2020;
// Only the formats the grammar enforces (others are annotations for it, and for this Ajv);
// ownProperties: a required "toString" is not present on {}.
const ajv = addFormats(new Ajv2020({ strict: false, ownProperties: true, logger: false, validateFormats: true }), ['date', 'time', 'date-time', 'uuid']);

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const bound = fc.oneof(fc.nat({ max: 12 }), fc.constantFrom(-1, 0.5, 1e9, 10_000, 10_001, 1000, 1001), fc.string({ maxLength: 2 }));
const refTarget = fc.constantFrom('#', '#/$defs/a', '#/$defs/b', '#/definitions/c', '#/$defs/missing', '#/properties/p', '#/anyOf/0',
  '#/$defs/a/items', '#/%E0', '#/$defs/%61', 'https://example.com/s.json', '', 5);
const typeName = fc.constantFrom('string', 'number', 'integer', 'boolean', 'null', 'object', 'array', 'wat');
const propName = fc.oneof(fc.constantFrom('p', 'q', 'a/b', 'toString', '__proto__', 'constructor', ''), fc.string({ maxLength: 4 }));

/**
 * Schemas over the keywords the compiler knows, nested: mostly one kind of schema each (as people
 * write them), sometimes a record of random keywords (most of which the compiler must refuse).
 */
const { schema: schemaArb } = fc.letrec<{ schema: unknown; node: unknown }>((tie) => ({
  schema: fc.oneof({ depthSize: 'small', withCrossShrink: true }, { weight: 1, arbitrary: fc.boolean() }, { weight: 10, arbitrary: tie('node') }),
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: typeName }),
    fc.record({ type: fc.array(typeName, { minLength: 1, maxLength: 3 }) }),
    fc.record({ type: fc.constant('string'), minLength: bound, maxLength: bound }, { requiredKeys: ['type'] }),
    fc.record({ type: fc.constant('string'), format: fc.constantFrom('date', 'time', 'date-time', 'uuid', 'email', 'wat') }),
    fc.record({ type: fc.constant('array'), items: tie('schema'), minItems: bound, maxItems: bound }, { requiredKeys: ['type'] }),
    fc.record({
      type: fc.constant('object'), properties: fc.dictionary(propName, tie('schema'), { maxKeys: 4 }),
      required: fc.array(propName, { maxLength: 3 }), additionalProperties: tie('schema'),
    }, { requiredKeys: ['type'] }),
    fc.record({ enum: fc.array(jsonValue, { maxLength: 5 }), type: fc.constantFrom('string', 'integer', 'null') }, { requiredKeys: ['enum'] }),
    fc.record({ const: jsonValue, type: fc.constantFrom('string', 'number', 'object') }, { requiredKeys: ['const'] }),
    fc.record({ anyOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ oneOf: fc.array(tie('schema'), { maxLength: 3 }) }),
    fc.record({ allOf: fc.array(tie('schema'), { maxLength: 2 }) }),
    fc.record({ $ref: refTarget, title: fc.string({ maxLength: 4 }) }, { requiredKeys: ['$ref'] }),
    fc.record({
      type: fc.oneof(typeName, fc.array(typeName, { maxLength: 3 })), properties: fc.dictionary(propName, tie('schema'), { maxKeys: 2 }),
      items: fc.oneof(tie('schema'), fc.array(tie('schema'), { maxLength: 2 })), maxLength: bound, enum: fc.array(jsonValue, { maxLength: 3 }),
      anyOf: fc.array(tie('schema'), { maxLength: 2 }), $ref: refTarget, pattern: fc.constant('^a'), minimum: fc.integer(), not: tie('schema'),
      description: fc.string({ maxLength: 4 }),
    }, { requiredKeys: [] }),
  ),
}));
/** A root: a schema, with definitions for its "$ref"s to point at. */
const rootArb = fc.tuple(schemaArb, fc.record({ a: schemaArb, b: schemaArb }, { requiredKeys: [] }), fc.option(schemaArb, { nil: undefined }))
  .map(([root, defs, c]) => (typeof root === 'object' && root !== null
    ? { ...root, $defs: defs, ...(c === undefined ? {} : { definitions: { c } }) } : root));

const seeds = seedCorpus('json-schema').map((s) => new TextDecoder().decode(s.bytes));

/** A schema value: generated, or a mutated seed that still parses as JSON (undefined when not). */
const inputs: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: rootArb },
  { weight: 2, arbitrary: mutatedText(seeds, 512).map((text) => { try { return JSON.parse(text) as unknown; } catch { return undefined; } }) },
);

/** Bytes a walk prefers, so that strings, arrays and objects close and the text completes. */
const CLOSING = [...'"}]0nt1,:'].map((c) => c.charCodeAt(0));

/**
 * Walks `grammar` byte by byte from its start, choosing among the bytes it admits by `choices`,
 * for at most `limit` bytes; returns the text when it reached a state that may end.
 */
function walk(grammar: Grammar, choices: readonly number[], limit: number): string | undefined {
  let state: GrammarState = grammar.initial;
  const out: number[] = [];
  for (let i = 0; i < limit; i++) {
    const c = choices[i % choices.length]!;
    if (state.accepting && (state.stacks.length === 0 || c % 4 === 0)) return Buffer.from(out).toString('utf8');
    const next: [number, GrammarState][] = [];
    for (let b = 0; b < 256; b++) {
      const s = grammar.advance(state, b);
      if (s.stacks.length > 0 || s.accepting) next.push([b, s]);
    }
    assert.ok(next.length > 0, `the grammar admits no byte after ${JSON.stringify(Buffer.from(out).toString('utf8'))} and cannot end there`);
    const closing = next.filter(([b]) => CLOSING.includes(b));
    const pool = closing.length > 0 && c % 8 !== 0 ? closing : next;
    const [b, s] = pool[c % pool.length]!;
    out.push(b);
    state = s;
  }
  return state.accepting ? Buffer.from(out).toString('utf8') : undefined;
}

function hasKey(v: unknown, key: string): boolean {
  if (typeof v !== 'object' || v === null) return false;
  if (Object.hasOwn(v, key)) return true;
  return Object.values(v).some((x) => hasKey(x, key));
}

/** Compiles `schema`; when it compiles, walks it, and checks what completes against Ajv. */
const tally = { compiled: 0, validated: 0 };

/**
 * jsonSchemaGrammar, where a GrammarError is a failure: the compiler turns every limit it hits into
 * a SchemaError (a 400). Only walking a compiled grammar may end in GrammarError (its per-token bounds).
 */
function compile(schema: unknown): Grammar {
  try {
    return jsonSchemaGrammar(schema);
  } catch (e) {
    if (e instanceof GrammarError) throw new Error(`a GrammarError left the schema compiler: ${e.message}`, { cause: e });
    throw e;
  }
}

function compileAndWalk(schema: unknown, choices: readonly number[]): void {
  const grammar = compile(schema);
  tally.compiled++;
  const text = walk(grammar, choices, 160);
  // oneOf is compiled as anyOf (documented): a value may match two alternatives, which Ajv refuses.
  if (text === undefined || hasKey(schema, 'oneOf')) return;
  let validate;
  try { validate = ajv.compile(schema as object); } catch { return; } // a schema Ajv itself cannot compile
  const value: unknown = JSON.parse(text);
  tally.validated++;
  assert.ok(validate(value), `the grammar completed ${text}, which Ajv refuses: ${ajv.errorsText(validate.errors)}\nschema: ${JSON.stringify(schema)}`);
}

test('fuzz: JSON schemas compile or are refused with SchemaError, in bounded time; what their grammars complete validates', async (t) => {
  const { runs } = await fuzz({
    name: 'json-schema',
    inputs: fc.tuple(inputs, fc.array(fc.nat({ max: 1 << 16 }), { minLength: 1, maxLength: 32 })),
    run: ([schema, choices]) => { if (schema !== undefined) compileAndWalk(schema, choices); },
    expected: [SchemaError, GrammarError],
    sizeOf: ([schema]) => Buffer.byteLength(JSON.stringify(schema) ?? ''),
    memory: { fixed: 16 << 20 },
  });
  t.diagnostic(`${runs} schemas, ${tally.compiled} compiled, ${tally.validated} completed texts validated by Ajv`);
  assert.ok(tally.validated > 0, 'some generated texts reached Ajv');
});

test('fuzz: every seed schema is replayed first', () => {
  for (const { file, bytes } of seedCorpus('json-schema')) {
    const schema: unknown = JSON.parse(new TextDecoder().decode(bytes));
    try {
      compileAndWalk(schema, [3, 1, 4, 1, 5, 9, 2, 6]);
    } catch (e) {
      if (!(e instanceof SchemaError)) throw new Error(`${file}: ${(e as Error).message}`, { cause: e });
    }
  }
});

let llama2: Tokenizer;
before(async () => {
  if (!skip) llama2 = await loadHFTokenizer(path.join(FIXTURES, 'hf/llama2'));
});

test('fuzz: the token constraint of a compiled schema, on the Llama 2 vocabulary, throws nothing but GrammarError', { skip }, async () => {
  const logits = new Float32Array(llama2.vocabSize);
  await fuzz({
    name: 'json-schema-tokens',
    inputs: fc.tuple(inputs, fc.array(fc.nat(), { minLength: 3, maxLength: 3 })),
    run: ([schema, picks]) => {
      if (schema === undefined) return;
      const c = new GrammarConstraint(compile(schema), llama2, llama2.eosIds);
      // A few steps as the scheduler takes them: a token from the mask, then accepted.
      for (const pick of picks) {
        if (c.finished) return;
        logits.fill(0);
        if (c.mask(logits) === 0) return;
        const allowed = [];
        for (let id = 0; id < logits.length; id++) if (logits[id] === 0) allowed.push(id);
        const token = allowed[pick % allowed.length]!;
        assert.ok(c.allows(token), `the mask allowed token ${token}, allows() refuses it`);
        if (llama2.eosIds.includes(token)) return;
        c.accept(token);
      }
    },
    expected: [SchemaError, GrammarError],
    timeoutMs: 5000,
    sizeOf: ([schema]) => Buffer.byteLength(JSON.stringify(schema) ?? ''),
    memory: { fixed: 16 << 20 },
  });
});
