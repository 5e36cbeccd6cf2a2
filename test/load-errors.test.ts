// Bad model input, end to end: every case gives one clear line naming the file and the problem,
// through the library (a rejected promise) and through the CLI (stderr, non-zero exit).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, unlink, cp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadModel } from '../src/index.js';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeHFModel } from './helpers/random-model.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
let dir: string;
let good: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-bad-'));
  good = path.join(dir, 'good');
  if (skip) return;
  const spec = randomSpec({ arch: 'llama', dim: 16, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 32, tied: true });
  await writeHFModel(good, spec, randomWeights(spec, 1));
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

/** A copy of the good model folder, changed by `edit`. */
async function variant(name: string, edit: (d: string) => Promise<void>): Promise<string> {
  const d = path.join(dir, name);
  await cp(good, d, { recursive: true });
  await edit(d);
  return d;
}

async function cliError(args: string[]): Promise<string> {
  try {
    await run(process.execPath, [CLI, ...args], { timeout: 60_000 });
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    assert.equal(err.code, 1, 'exit status 1');
    const lines = (err.stderr ?? '').trim().split('\n');
    assert.equal(lines.length, 1, `one line on stderr, got: ${err.stderr}`);
    return lines[0]!;
  }
  assert.fail('the CLI should have failed');
}

const cases: [string, () => Promise<string>, RegExp][] = [
  ['no such path', async () => path.join(dir, 'nope'), /nope: no such file or folder/],
  ['malformed config.json', () => variant('badjson', (d) => writeFile(path.join(d, 'config.json'), '{"model_type": ')),
    /config\.json: not valid JSON/],
  ['unsupported architecture', () => variant('arch', async (d) => {
    const c = JSON.parse(await readFile(path.join(d, 'config.json'), 'utf8'));
    await writeFile(path.join(d, 'config.json'), JSON.stringify({ ...c, model_type: 'gpt_neox' }));
  }), /config\.json: model_type "gpt_neox" is not supported/],
  ['missing config.json', () => variant('noconfig', (d) => unlink(path.join(d, 'config.json'))), /config\.json: missing/],
  ['missing tokenizer', () => variant('notok', (d) => unlink(path.join(d, 'tokenizer.json'))), /tokenizer\.json: missing/],
  ['missing tensor', () => variant('missing', async (d) => {
    const c = JSON.parse(await readFile(path.join(d, 'config.json'), 'utf8'));
    await writeFile(path.join(d, 'config.json'), JSON.stringify({ ...c, num_hidden_layers: 2 }));
  }), /missing tensors: blk\.1\.attn_norm\.weight/],
  ['wrong shape', () => variant('shape', async (d) => {
    const c = JSON.parse(await readFile(path.join(d, 'config.json'), 'utf8'));
    await writeFile(path.join(d, 'config.json'), JSON.stringify({ ...c, intermediate_size: 48 }));
  }), /blk\.0\.ffn_gate\.weight is \[32, 16\], expected \[48, 16\]/],
  ['truncated safetensors', () => variant('trunc', async (d) => {
    const f = path.join(d, 'model.safetensors');
    const bytes = await readFile(f);
    await writeFile(f, bytes.subarray(0, bytes.length - 100));
  }), /model\.safetensors: /],
  ['llama2.c checkpoint without a tokenizer', async () => path.join(FIXTURES, 'llama2c/stories260K.bin'),
    /stories260K\.bin: a llama2\.c checkpoint has no tokenizer: pass one with --tokenizer/],
  ['not a model file', async () => {
    const f = path.join(dir, 'notes.txt');
    await writeFile(f, 'hello');
    return f;
  }, /notes\.txt: unknown model format/],
];

for (const [name, make, pattern] of cases) {
  test(`bad input: ${name}`, { skip }, async () => {
    const p = await make();
    await assert.rejects(loadModel(p), pattern);
    assert.match(await cliError(['run', p, 'hi', '-n', '1']), pattern);
  });
}

test('bad CLI arguments are refused with the option named', { skip }, async () => {
  const err = async (args: string[]) => {
    try {
      await run(process.execPath, [CLI, ...args], { timeout: 60_000 });
    } catch (e) {
      const x = e as { code?: number; stderr?: string };
      assert.notEqual(x.code, 0);
      return x.stderr ?? '';
    }
    assert.fail('should fail');
  };
  assert.match(await err(['run', good, 'hi', '--temperature', 'hot']), /--temperature.*expected a number/);
  assert.match(await err(['run', good, 'hi', '--max-tokens', '-3']), /--max-tokens.*expected an integer/);
  assert.match(await err(['run', good, 'hi', '--top-p', '2']), /--top-p.*expected a number in/);
  assert.match(await err(['run', good]), /missing required argument 'prompt'/);
  assert.match(await err(['frobnicate']), /unknown command 'frobnicate'/);
  assert.match(await err(['run', good, 'hi', '--quant', 'q2_k']), /--quant.*q2_k.*invalid.*q8_0, q4_0, q4_k, q5_k, q3_k/);
  await assert.rejects(loadModel(good, { quant: 'q2_k' as never }), /quant must be one of q8_0, q4_0, q4_k, q5_k, q3_k, got q2_k/);
});
