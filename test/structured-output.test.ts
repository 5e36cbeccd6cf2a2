// Structured output: JSON schemas become grammars (src/engine/json-schema-grammar.ts), grammars
// constrain decoding (src/engine/token-constraint.ts, the scheduler). The oracle for "valid" is
// Ajv, an independent JSON Schema validator: a grammar must accept exactly what Ajv accepts (for
// the supported keywords), and whatever a model generates under a schema must parse and validate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import {
  GrammarBuilder, GrammarError, SchemaError, chars, jsonObjectGrammar, jsonSchemaGrammar, literal, loadModel, type Grammar, type Model,
} from '../src/index.js';
import { GrammarConstraint } from '../src/engine/token-constraint.js';
import { Sampler, resolveSampling } from '../src/engine/sampler.js';
import {
  IncrementalDecoder, loadHFTokenizer, loadLlama2cTokenizer, tokenizerFromGGUF, type Tokenizer,
} from '../src/tokenizer/index.js';
import { FIXTURES, fixturesSkip as skip, llama3VocabMetadata, readGGUFMetadata, readVocabTests } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeHFModel } from './helpers/random-model.js';
import { collect } from './helpers/generation.js';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));

function accepts(g: Grammar, text: string): boolean {
  const s = g.advanceBytes(g.initial, Buffer.from(text, 'utf8'));
  return s !== undefined && s.accepting;
}

/** Schemas of the supported subset, each with texts that do and do not validate. */
const CASES: { name: string; schema: object; texts: string[] }[] = [
  {
    name: 'object with required, optional and nested properties',
    schema: {
      type: 'object',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 6 },
        age: { type: 'integer' },
        score: { type: 'number' },
        ok: { type: 'boolean' },
        address: { type: 'object', properties: { city: { type: 'string' }, zip: { type: ['string', 'null'] } }, required: ['city'], additionalProperties: false },
      },
      required: ['name', 'age'],
      additionalProperties: false,
    },
    texts: [
      '{"name":"Ann","age":30}', '{"name":"Ann","age":-3,"score":1.5e-3,"ok":true}', '{ "name" : "Zoë", "age" : 0 }',
      '{"name":"Ann","age":30,"address":{"city":"Oslo","zip":null}}', '{"name":"Ann","age":30,"address":{"city":"Oslo"}}',
      '{\n  "name": "a\\"b",\n  "age": 7\n}',
      '{"name":"","age":30}', '{"name":"toolong","age":30}', '{"age":30}', '{"name":"Ann","age":3.5}', '{"name":"Ann","age":30,"x":1}',
      '{"name":"Ann","age":30,"address":{"zip":"1"}}', '{"name":"Ann","age":01}', '{"name":"Ann","age":30', '[]', '"Ann"',
    ],
  },
  {
    name: 'enum, const, anyOf and arrays with bounds',
    schema: {
      type: 'object',
      properties: {
        color: { enum: ['red', 'green', 42, null] },
        kind: { const: 'point' },
        id: { anyOf: [{ type: 'integer' }, { type: 'string', maxLength: 3 }] },
        tags: { type: 'array', items: { type: 'string', maxLength: 4 }, minItems: 1, maxItems: 3 },
      },
      required: ['color', 'kind', 'id', 'tags'],
    },
    texts: [
      '{"color":"red","kind":"point","id":7,"tags":["a"]}', '{"color":42,"kind":"point","id":"abc","tags":["a","b","c"]}',
      '{"color":null,"kind":"point","id":-1,"tags":[ "x" , "y" ]}',
      '{"color":"blue","kind":"point","id":7,"tags":["a"]}', '{"color":"red","kind":"line","id":7,"tags":["a"]}',
      '{"color":"red","kind":"point","id":"abcd","tags":["a"]}', '{"color":"red","kind":"point","id":7,"tags":[]}',
      '{"color":"red","kind":"point","id":7,"tags":["a","b","c","d"]}', '{"color":"red","kind":"point","id":7,"tags":["abcde"]}',
    ],
  },
  {
    name: 'recursion through $ref',
    schema: {
      $defs: { node: { type: 'object', properties: { value: { type: 'integer' }, children: { type: 'array', items: { $ref: '#/$defs/node' } } }, required: ['value', 'children'] } },
      $ref: '#/$defs/node',
    },
    texts: [
      '{"value":1,"children":[]}', '{"value":1,"children":[{"value":2,"children":[{"value":3,"children":[]}]}]}',
      '{"value":1}', '{"value":1,"children":[{"value":2}]}', '{"value":"1","children":[]}',
    ],
  },
  {
    name: 'string formats',
    schema: {
      type: 'object',
      properties: { day: { type: 'string', format: 'date' }, at: { type: 'string', format: 'date-time' }, id: { type: 'string', format: 'uuid' } },
      required: ['day', 'at', 'id'],
    },
    texts: [
      '{"day":"2024-02-29","at":"2024-02-29T23:59:59Z","id":"123e4567-e89b-12d3-a456-426614174000"}',
      '{"day":"2024-12-31","at":"2024-01-01T00:00:00.123+05:30","id":"00000000-0000-0000-0000-000000000000"}',
      '{"day":"2024-13-01","at":"2024-02-29T23:59:59Z","id":"123e4567-e89b-12d3-a456-426614174000"}',
      '{"day":"2024-02-29","at":"2024-02-29 23:59:59Z","id":"123e4567-e89b-12d3-a456-426614174000"}',
      '{"day":"2024-02-29","at":"2024-02-29T23:59:59Z","id":"123e4567e89b12d3a456426614174000"}',
      '{"day":"2023-02-29","at":"2024-02-29T23:59:59Z","id":"123e4567-e89b-12d3-a456-426614174000"}',
      '{"day":"2000-02-29","at":"1900-02-28t00:00:00z","id":"123e4567-e89b-12d3-a456-426614174000"}',
      '{"day":"2100-02-29","at":"2024-02-29T23:59:59Z","id":"123e4567-e89b-12d3-a456-426614174000"}',
      '{"day":"2024-04-31","at":"2024-02-29T23:59:59Z","id":"123e4567-e89b-12d3-a456-426614174000"}',
      '{"day":"2024-04-30","at":"2024-02-29T24:00:00Z","id":"123e4567-e89b-12d3-a456-426614174000"}',
    ],
  },
  {
    name: 'a map (additionalProperties) and any value',
    schema: { type: 'object', additionalProperties: { type: 'array', items: {}, maxItems: 2 } },
    texts: ['{}', '{"a":[]}', '{"a":[1,{"b":[null,true]}],"c":["x"]}', '{"a":1}', '{"a":[1,2,3]}', '{"a":[],}'],
  },
];

test('a schema grammar accepts exactly the texts Ajv validates', () => {
  for (const c of CASES) {
    const g = jsonSchemaGrammar(c.schema);
    const validate = ajv.compile(c.schema);
    let valid = 0;
    for (const text of c.texts) {
      let expected: boolean;
      try { expected = validate(JSON.parse(text)) as boolean; } catch { expected = false; }
      if (expected) valid++;
      assert.equal(accepts(g, text), expected, `${c.name}: ${text} (Ajv: ${expected ? 'valid' : 'invalid'})`);
    }
    assert.ok(valid > 0 && valid < c.texts.length, `${c.name}: cases on both sides`);
  }
});

test('json_object mode accepts any JSON object and nothing else', () => {
  const g = jsonObjectGrammar();
  for (const t of ['{}', '{"a":[1,-2.5e+3,"\\u00e9\\n",{"b":null}],"c":false}', '{ "k" : { } }']) assert.ok(accepts(g, t), t);
  for (const t of ['[]', '"x"', '{"a":}', '{"a":1,}', '{a:1}', '{"a":"\x01"}', ' {}']) assert.ok(!accepts(g, t), t);
});

test('schema keywords the grammar cannot enforce are refused, naming keyword and place', () => {
  const refused: [object, RegExp][] = [
    [{ type: 'string', pattern: '^a+$' }, /at #: "pattern" is not supported/],
    [{ type: 'object', properties: { n: { type: 'number', minimum: 0 } } }, /at #\/properties\/n: "minimum" is not supported/],
    [{ type: 'array', items: [{ type: 'string' }] }, /#\/items: tuple items/],
    [{ type: 'array', uniqueItems: true }, /"uniqueItems" is not supported/],
    [{ anyOf: [{ type: 'string' }], minLength: 2 }, /"anyOf" beside "minLength"/],
    [{ type: 'wat' }, /#\/type: "wat" is not a JSON Schema type/],
    [{ $ref: 'https://example.com/s.json' }, /only local references/],
    [{ $ref: '#/$defs/missing' }, /points at nothing/],
    [{ type: 'string', maxLength: 1e9 }, /above the supported 10000/],
    [{ type: 'string', minLength: 5, maxLength: 2 }, /minLength 5 is above maxLength 2/],
    [{ enum: [] }, /#\/enum: must be a non-empty array/],
  ];
  for (const [schema, message] of refused) {
    assert.throws(() => jsonSchemaGrammar(schema), (e: unknown) => e instanceof SchemaError && message.test(e.message), JSON.stringify(schema));
  }
  // Nesting beyond the limit, and a schema whose grammar would be huge, are refused, not built.
  let deep: object = { type: 'string' };
  for (let i = 0; i < 100; i++) deep = { type: 'array', items: deep };
  assert.throws(() => jsonSchemaGrammar(deep), /nested more than 64 levels/);
  const wide = { type: 'object', properties: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`p${i}`, { type: 'string', maxLength: 10000 - i }])) };
  assert.throws(() => jsonSchemaGrammar(wide), /too large to enforce/);
});

test('a left-recursive grammar is an error, not a hang', () => {
  const b = new GrammarBuilder();
  b.define('list', [['list', ...literal(',')], [chars(['a', 'z'])]]);
  assert.throws(() => b.build('list'), GrammarError);
});

/** Texts of llama.cpp's vocab tests (varied scripts, spaces, emoji), as generated-text samples. */
async function sampleTexts(): Promise<string[]> {
  return (await readVocabTests('ggml-vocab-llama-spm.gguf')).map((c) => c.text).filter((t) => t.length > 0);
}

async function realTokenizers(): Promise<[string, Tokenizer][]> {
  const spm = path.join(FIXTURES, 'llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf');
  return [
    ['Llama 2 tokenizer.json (SentencePiece BPE, byte fallback)', await loadHFTokenizer(path.join(FIXTURES, 'hf/llama2'))],
    ['Llama 2 GGUF vocab', tokenizerFromGGUF(await readGGUFMetadata(spm), spm)],
    ['Llama 3 GGUF vocab (byte-level BPE)', tokenizerFromGGUF(await llama3VocabMetadata(), 'llama3.gguf')],
    ['llama2.c tokenizer.bin', await loadLlama2cTokenizer(path.join(FIXTURES, 'llama2c/tokenizer.bin'))],
  ];
}

test('token bytes are exactly the text the detokenizer streams, on real tokenizers', { skip }, async () => {
  const texts = await sampleTexts();
  for (const [name, tok] of await realTokenizers()) {
    const prompt = tok.encode('Reply:', { addSpecial: true });
    for (const text of texts) {
      // What a model would generate after the prompt: the text's tokens (SentencePiece ones start with "▁").
      const ids = tok.encode(` ${text}`, { addSpecial: false });
      const decoder = new IncrementalDecoder(tok, { context: prompt });
      const streamed = ids.map((id) => decoder.push(id)).join('') + decoder.flush();
      const bytes = Buffer.concat(ids.map((id) => tok.tokenBytes(id) ?? Buffer.alloc(0)));
      assert.equal(bytes.toString('utf8'), streamed, `${name}: ${JSON.stringify(text)}`);
    }
    for (const id of tok.eosIds) assert.equal(tok.tokenBytes(id), undefined, `${name}: EOS writes no text`);
  }
});

/** Generates under `grammar` with random logits: the constraint alone, on a real vocabulary. */
function constrainedRandom(tok: Tokenizer, grammar: Grammar, seed: number, maxTokens: number): { ids: number[]; finished: boolean } {
  const c = new GrammarConstraint(grammar, tok, tok.eosIds);
  const vocab = tok.vocabSize, logits = new Float32Array(vocab), work = new Float32Array(vocab);
  const sampler = new Sampler(resolveSampling({ temperature: 1, seed }), vocab);
  let x = seed + 1;
  const ids: number[] = [];
  while (ids.length < maxTokens) {
    for (let i = 0; i < vocab; i++) { x = (x * 1103515245 + 12345) % 2147483648; logits[i] = (x / 2147483648) * 8; }
    work.set(logits);
    let t = sampler.sample(work, ids);
    if (!c.allows(t)) {
      work.set(logits);
      assert.ok(c.mask(work) > 0, 'some token can always continue');
      t = sampler.sample(work, ids);
      assert.ok(c.allows(t), 'the resampled token is allowed');
    }
    if (tok.eosIds.includes(t)) return { ids, finished: true };
    c.accept(t);
    ids.push(t);
    if (c.finished) return { ids, finished: true };
  }
  return { ids, finished: false };
}

/** Schemas whose every string, array and number is bounded (not the recursive one): output must complete. */
const BOUNDED = [CASES[0]!, CASES[1]!, CASES[3]!].map((c) => c.schema);
const ALL = CASES.slice(0, 4).map((c) => c.schema);

test('random logits constrained by a schema always give valid JSON, on real vocabularies', { skip }, async () => {
  const tokenizers = await realTokenizers();
  for (const [name, tok] of [tokenizers[0]!, tokenizers[2]!]) {
    BOUNDED.forEach((schema, i) => {
      const validate = ajv.compile(schema);
      const g = jsonSchemaGrammar(schema);
      const { ids, finished } = constrainedRandom(tok, g, 11 + i, 2000);
      const text = Buffer.concat(ids.map((id) => tok.tokenBytes(id)!)).toString('utf8');
      assert.ok(finished, `${name} schema ${i}: unfinished after ${ids.length} tokens: ${text}`);
      const value: unknown = JSON.parse(text);
      assert.ok(validate(value), `${name} schema ${i}: ${text}\n${ajv.errorsText(validate.errors)}`);
    });
  }
});

// End to end: the engine (cpu backend, batched scheduler) generating under schemas.
let dir: string | undefined;
let model: Model;
const spec = randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false });
before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-structured-'));
  await writeHFModel(path.join(dir, 'm'), spec, randomWeights(spec, 21));
  model = await loadModel(path.join(dir, 'm'), { contextLength: 512, threads: 2, parallel: 4 });
});
after(async () => {
  model?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a model generating under a schema gives JSON that validates, greedy and sampled, batched', { skip }, async () => {
  const runs = ALL.flatMap((schema) => [0, 0.8, 1.5].map((temperature, k) => ({ schema, temperature, seed: 100 + k })));
  const results = await Promise.all(runs.map((r) => collect(model.generate('Give me JSON:', {
    grammar: jsonSchemaGrammar(r.schema), temperature: r.temperature, seed: r.seed, maxTokens: 400,
  }))));
  results.forEach((res, i) => {
    const r = runs[i]!;
    assert.equal(res.last.finishReason, 'stop', `run ${i}: ${res.text}`);
    const validate = ajv.compile(r.schema);
    let value: unknown;
    assert.doesNotThrow(() => { value = JSON.parse(res.text); }, `run ${i}: ${res.text}`);
    assert.ok(validate(value), `run ${i}: ${res.text}\n${ajv.errorsText(validate.errors)}`);
  });
  assert.equal(model.stats().active, 0);
});

test('a constrained sequence beside unconstrained ones changes none of them', { skip }, async () => {
  const free = () => collect(model.generate('Once upon a time', { temperature: 0, maxTokens: 12 }));
  const alone = await free();
  const schema = BOUNDED[1]!;
  const [a, constrained, b] = await Promise.all([
    free(), collect(model.generate('JSON:', { grammar: jsonSchemaGrammar(schema), temperature: 0, maxTokens: 300 })), free(),
  ]);
  assert.deepEqual(a.tokens, alone.tokens);
  assert.deepEqual(b.tokens, alone.tokens);
  const again = await collect(model.generate('JSON:', { grammar: jsonSchemaGrammar(schema), temperature: 0, maxTokens: 300 }));
  assert.equal(constrained.text, again.text, 'greedy constrained output does not depend on its neighbours');
  assert.ok(ajv.validate(schema, JSON.parse(again.text)));
});

test('json_object mode ends with a complete object, or stops at max tokens with "length"', { skip }, async () => {
  for (const seed of [1, 2, 3]) {
    const r = await collect(model.generate('JSON:', { grammar: jsonObjectGrammar(), temperature: 1, seed, maxTokens: 60 }));
    if (r.last.finishReason === 'stop') {
      const v: unknown = JSON.parse(r.text);
      assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), r.text);
    } else {
      assert.equal(r.last.finishReason, 'length');
      assert.equal(r.tokens.length, 60);
      assert.ok(accepts(jsonObjectGrammar(), r.text) === false && r.text.startsWith('{'), r.text);
    }
  }
});
