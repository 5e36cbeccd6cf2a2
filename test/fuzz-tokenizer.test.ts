// Fuzzing tokenizer.json / tokenizer_config.json loading (a tiny SentencePiece-style BPE and a
// tiny byte-level BPE, mutated), then encoding and decoding with whatever loaded; and config.json
// parsing into a model spec. Bad files must fail with a FormatError (tokenizer files) or a
// ConfigError (config.json) naming the file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { FormatError } from '../src/formats/tensor.js';
import { ConfigError } from '../src/model/config-reader.js';
import { specFromHFConfig } from '../src/model/hf-config.js';
import { loadHFTokenizer } from '../src/tokenizer/load-hf.js';
import { corpus, fuzz, mutatedText, seedCorpus } from './helpers/fuzz.js';
import { encodeDecodeSome } from './helpers/fuzz-tokenizer.js';

const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-fuzz-tokenizer-'));
after(() => rm(dir, { recursive: true, force: true }));

const decoder = new TextDecoder();

/** The seed tokenizers: <kind>.tokenizer.json with its <kind>.tokenizer_config.json. */
function tokenizerSeeds(): { valid: boolean; tokenizer: string; config: string | undefined }[] {
  const files = seedCorpus('tokenizer-json');
  const text = (name: string) => {
    const f = files.find((s) => s.file === name);
    return f === undefined ? undefined : decoder.decode(f.bytes);
  };
  return files.filter((f) => f.file.endsWith('.tokenizer.json')).map((f) => ({
    valid: f.file.startsWith('seed-'),
    tokenizer: decoder.decode(f.bytes),
    config: text(f.file.replace(/\.tokenizer\.json$/, '.tokenizer_config.json')),
  }));
}

test('fuzz: tokenizer.json and tokenizer_config.json loading, then encode and decode', async () => {
  const seeds = tokenizerSeeds();
  assert.ok(seeds.length >= 2, 'the tokenizer-json seed corpus is missing');
  // Each input: one seed's tokenizer.json and config, either of them mutated (or the config left out).
  const inputs = fc.oneof(...seeds.map((s) => fc.oneof(
    fc.record({ tokenizer: mutatedText([s.tokenizer]), config: fc.constant(s.config) }),
    fc.record({ tokenizer: fc.constant(s.tokenizer), config: fc.option(mutatedText(s.config === undefined ? [] : [s.config]), { nil: undefined }) }),
  )));
  const tokenizerFile = path.join(dir, 'tokenizer.json');
  const configFile = path.join(dir, 'tokenizer_config.json');
  const { runs } = await fuzz({
    name: 'tokenizer-json',
    inputs,
    valid: seeds.filter((s) => s.valid),
    replay: seeds.filter((s) => !s.valid),
    expected: [FormatError],
    async run({ tokenizer, config }) {
      await writeFile(tokenizerFile, tokenizer);
      if (config === undefined) await unlink(configFile).catch(() => {});
      else await writeFile(configFile, config);
      encodeDecodeSome(await loadHFTokenizer(dir));
    },
  });
  console.log(`tokenizer-json: ${runs} inputs`);
});

test('fuzz: config.json to a model spec', async () => {
  const { all: seeds, valid, replay } = corpus('hf-config', (b) => decoder.decode(b));
  assert.ok(seeds.length > 0, 'the hf-config seed corpus is missing');
  // Mutated text (mostly not JSON), and parsed seeds with one key's value replaced by any JSON value.
  const parsed = seeds.map((s) => JSON.parse(s) as Record<string, unknown>);
  const keyed = fc.constantFrom(...parsed).chain((c) => fc.tuple(fc.constant(c), fc.constantFrom(...Object.keys(c)), fc.jsonValue()))
    .map(([c, key, value]) => JSON.stringify({ ...c, [key]: value }));
  const { runs } = await fuzz({
    name: 'hf-config',
    inputs: fc.oneof(mutatedText(seeds), keyed),
    valid,
    replay,
    expected: [ConfigError],
    run(text) {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch {
        return; // the loader refuses unparsable JSON before specFromHFConfig sees it
      }
      const spec = specFromHFConfig(raw, 'config.json');
      assert.ok(spec.dim > 0 && spec.nLayers > 0 && spec.vocabSize > 0);
    },
  });
  console.log(`hf-config: ${runs} inputs`);
});
