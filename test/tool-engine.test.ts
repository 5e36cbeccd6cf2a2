// Forced tool calls through the engine: a random-weight model (cpu backend, batched scheduler)
// generating under a tool-call grammar whose marker is a special token. GenerateOptions.keepSpecial
// lets the constraint produce the marker token and writes its text into the stream, so the parser
// reads back calls whose arguments Ajv validates.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { loadModel, type Model } from '../src/index.js';
import { toolCallGrammar } from '../src/chat/tool-grammar.js';
import { parseToolCalls } from '../src/chat/tool-call-parser.js';
import { toolMarkerTokens } from '../src/chat/tool-format.js';
import type { ToolFunction } from '../src/chat/tool-types.js';
import * as random from '../src/model/random-model.js';
import { randomSpec, randomWeights } from './helpers/random-model.js';
import { byteLevelTokenizer } from './helpers/byte-level-tokenizer.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { collect } from './helpers/generation.js';

const ajv = new Ajv2020({ strict: false });

const TOOLS: ToolFunction[] = [
  { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 10 }, days: { type: 'integer' } }, required: ['city'], additionalProperties: false } },
  { name: 'get_time', parameters: { type: 'object', properties: {}, additionalProperties: false } },
];

let dir: string | undefined;
let model: Model;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-tools-'));
  // A small Llama 3 style vocabulary whose reserved special token is Mistral's call marker.
  const tok = await byteLevelTokenizer('llama3', 1000);
  const tokenizer = { ...tok, tokenizerJSON: tok.tokenizerJSON.replace('<|reserved_special_token_0|>', '[TOOL_CALLS]') };
  const spec = randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false, vocabSize: tok.vocabSize });
  const folder = path.join(dir, 'm');
  await random.writeHFModel(folder, spec, randomWeights(spec, 77), { tokenizer });
  const configFile = path.join(folder, 'config.json');
  const config = JSON.parse(await readFile(configFile, 'utf8')) as Record<string, unknown>;
  await writeFile(configFile, JSON.stringify({ ...config, bos_token_id: tok.bosId ?? null, eos_token_id: tok.eosId }));
  model = await loadModel(folder, { contextLength: 512, threads: 2, parallel: 4 });
});
after(async () => {
  model?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a forced call whose marker is a special token: generated, streamed and parsed', { skip }, async () => {
  const marker = toolMarkerTokens('mistral', model.tokenizer);
  assert.equal(marker.length, 1);
  assert.equal(model.tokenizer.isSpecial(marker[0]!), true);
  const grammar = toolCallGrammar({ format: 'mistral', tools: TOOLS, choice: 'required', parallel: false });
  const runs = await Promise.all([0, 0.7, 1, 1.3, 1.6, 2].map((temperature, i) => collect(model.generate('Call a tool:', {
    grammar, keepSpecial: marker, temperature, seed: 300 + i, maxTokens: 300,
  }))));
  let usedMarker = 0;
  for (const r of runs) {
    assert.equal(r.last.finishReason, 'stop', r.text);
    assert.ok(r.text.startsWith('[TOOL_CALLS]'), r.text);
    if (r.tokens.includes(marker[0]!)) usedMarker++;
    const { content, calls } = parseToolCalls(r.text, { format: 'mistral', tools: TOOLS });
    assert.equal(content, '', r.text);
    assert.equal(calls.length, 1, r.text);
    for (const c of calls) assert.ok(ajv.validate(TOOLS.find((f) => f.name === c.name)!.parameters, c.arguments), JSON.stringify(c));
  }
  assert.ok(usedMarker > 0, 'some run wrote the marker as its special token');
  // Without keepSpecial the special token is never generated: the marker is spelled in text.
  const plain = await collect(model.generate('Call a tool:', { grammar, temperature: 1, seed: 301, maxTokens: 300 }));
  assert.ok(!plain.tokens.includes(marker[0]!));
  assert.ok(plain.text.startsWith('[TOOL_CALLS]'), plain.text);
});
