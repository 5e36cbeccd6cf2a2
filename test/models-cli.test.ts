// minerva list · rm · verify, as a user runs them: a models folder listed as a table and as JSON,
// a model removed, and verify passing a sound model and naming what is wrong with broken ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
const cli = (args: string[]) => run(process.execPath, [CLI, ...args], { timeout: 120_000 });
let dir: string, models: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-models-cli-'));
  if (skip) return;
  models = path.join(dir, 'models');
  await mkdir(models);
  const spec = randomSpec({ arch: 'llama', dim: 32, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 64, tied: false });
  const weights = randomWeights(spec, 5);
  await writeGGUFModel(path.join(models, 'small.gguf'), spec, weights, { dtype: 'Q8_0' });
  await writeHFModel(path.join(models, 'small-hf'), spec, weights, { dtype: 'F32', maxShardBytes: 20_000 });
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

test('minerva list shows each model with its architecture, parameters, weight type and size', { skip }, async () => {
  const { stdout } = await cli(['list', '--models-dir', models]);
  const lines = stdout.trim().split('\n');
  assert.match(lines[0]!, /^NAME\s+ARCHITECTURE\s+PARAMETERS\s+WEIGHTS\s+SIZE\s+FORMAT\s+SOURCE\s+REVISION\s+MODIFIED$/);
  const row = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? '';
  assert.match(row('small'), /^small\s+llama\s+[\d.]+[KMB]\s+Q8_0\s+[\d.]+ MiB\s+gguf\s+local\s+-\s+\d{4}-\d\d-\d\d$/);
  assert.match(row('small-hf'), /^small-hf\s+llama\s+[\d.]+[KMB]\s+F32\s+[\d.]+ MiB\s+safetensors/);
  const json = JSON.parse((await cli(['ls', '--models-dir', models, '--json'])).stdout) as { name: string; parameters: number }[];
  assert.deepEqual(json.map((e) => e.name).sort(), ['small', 'small-hf']);
});

test('minerva verify passes sound models and lists what is wrong with broken ones, exit 1', { skip }, async () => {
  assert.match((await cli(['verify', path.join(models, 'small.gguf')])).stdout, /: OK \(\d+ tensors/);
  assert.match((await cli(['verify', path.join(models, 'small-hf')])).stdout, /: OK/);
  const fails = async (target: string, pattern: RegExp) => {
    await assert.rejects(cli(['verify', target]), (e: { code: number; stdout: string; stderr: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stdout + e.stderr, pattern);
      return true;
    });
  };
  // A NaN written into the F32 data of the last shard.
  const broken = path.join(dir, 'broken-hf');
  await run('cp', ['-r', path.join(models, 'small-hf'), broken]);
  const index = JSON.parse(await readFile(path.join(broken, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
  const shard = path.join(broken, Object.values(index.weight_map).sort().at(-1)!);
  const bytes = await readFile(shard);
  bytes.writeFloatLE(NaN, bytes.length - 8);
  await writeFile(shard, bytes);
  await copyFile(shard, path.join(broken, 'model-stray.safetensors'));
  await fails(broken, /model-stray\.safetensors: a \.safetensors file that model\.safetensors\.index\.json does not name \(extra\)\nblk\.0\.ffn_down\.weight: 1 NaN or infinite values\n/);
  // A truncated GGUF.
  const gguf = await readFile(path.join(models, 'small.gguf'));
  await writeFile(path.join(dir, 'cut.gguf'), gguf.subarray(0, gguf.length - 100));
  await fails(path.join(dir, 'cut.gguf'), /cut\.gguf/);
});

test('minerva rm removes a model; an unknown name is one line, exit 1', { skip }, async () => {
  await copyFile(path.join(models, 'small.gguf'), path.join(models, 'spare.gguf'));
  assert.match((await cli(['rm', 'spare', '--models-dir', models])).stdout, /^removed spare /);
  assert.doesNotMatch((await cli(['list', '--models-dir', models])).stdout, /spare/);
  await assert.rejects(cli(['rm', 'spare', '--models-dir', models]), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 1);
    assert.match(e.stderr, /^minerva: no model "spare" in .* \(minerva list shows them\)\n$/);
    return true;
  });
});
