// Getting models end to end, against a local Hub (test/helpers/local-hub.ts) on loopback: the real
// `ollama` client pulls through /api/pull (streamed and not) and chats with what it pulled; from
// the command line `minerva pull` → `list` → `verify` (hashes recorded at pull time, a corrupted
// blob caught) → `rm` (the blobs nothing else uses freed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ollama } from 'ollama';
import { LocalHub } from './helpers/local-hub.js';
import { startServer } from './helpers/server.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from '../src/model/random-model.js';
import { syntheticSpmVocab, syntheticVocabGGUF, syntheticVocabHF } from '../src/tokenizer/synthetic-vocab.js';
import type { MinervaServer } from '../src/server/server.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
let hub: LocalHub, root: string, server: MinervaServer, url: string, models: string;

before(async () => {
  hub = await LocalHub.start();
  root = await mkdtemp(path.join(os.tmpdir(), 'minerva-pull-server-'));
  const spec = randomSpec({ arch: 'llama', dim: 32, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 64, tied: true, vocabSize: 300 });
  const weights = randomWeights(spec, 11);
  const vocab = syntheticSpmVocab(300);
  const src = path.join(root, 'src');
  await mkdir(src);
  await writeGGUFModel(path.join(src, 'q8.gguf'), spec, weights, { dtype: 'Q8_0', vocab: syntheticVocabGGUF(vocab) });
  await writeGGUFModel(path.join(src, 'f16.gguf'), spec, weights, { dtype: 'F16', vocab: syntheticVocabGGUF(vocab) });
  await writeHFModel(path.join(src, 'hf'), spec, weights, { dtype: 'F16', tokenizer: syntheticVocabHF(vocab) });
  const hfFiles: Record<string, Buffer> = {};
  for (const f of await readdir(path.join(src, 'hf'))) hfFiles[f] = await readFile(path.join(src, 'hf', f));
  hub.addRepo({ id: 'acme/Tiny-GGUF', files: { 'tiny-Q8_0.gguf': await readFile(path.join(src, 'q8.gguf')), 'tiny-F16.gguf': await readFile(path.join(src, 'f16.gguf')) } });
  hub.addRepo({ id: 'acme/tiny-hf', files: hfFiles });
  // The server pulls with this process's environment.
  Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: path.join(root, 'cache'), HF_HOME: path.join(root, 'hf-home') });
  models = path.join(root, 'models');
  await mkdir(models);
  ({ server, url } = await startServer(models, { backend: 'cpu' }));
});
after(async () => {
  await server?.close();
  await hub?.close();
  await rm(root, { recursive: true, force: true });
});

test('the ollama client pulls through /api/pull, streamed and not, and chats with the model', async () => {
  const ollama = new Ollama({ host: url });
  const statuses: { status: string; digest?: string; total?: number; completed?: number }[] = [];
  for await (const s of await ollama.pull({ model: 'hf.co/acme/Tiny-GGUF:Q8_0', stream: true })) statuses.push(s);
  assert.equal(statuses[0]!.status, 'pulling manifest');
  const file = statuses.find((s) => s.digest?.startsWith('sha256:'));
  assert.ok(file && file.total! > 0, 'a per-file line with digest and total');
  assert.equal(statuses.at(-1)!.status, 'success');
  assert.ok(statuses.some((s) => s.status === 'verifying sha256 digest'));

  const whole = await ollama.pull({ model: 'acme/tiny-hf', stream: false });
  assert.equal(whole.status, 'success');
  const names = (await ollama.list()).models.map((m) => m.name).sort();
  assert.deepEqual(names, ['Tiny-Q8_0:latest', 'tiny-hf:latest']);
  const reply = await ollama.generate({ model: 'Tiny-Q8_0', prompt: 'hello', raw: true, options: { temperature: 0, num_predict: 5 } });
  assert.equal(reply.eval_count, 5);

  await assert.rejects(ollama.pull({ model: 'acme/nothing-here', stream: false }), /not found/i);
  await assert.rejects(ollama.pull({ model: 'llama3.2', stream: false }), /Hugging Face Hub: org\/name\[:QUANT\]/);
  // A failure after the stream started comes as an {"error"} line, which the client throws.
  await assert.rejects(async () => {
    for await (const s of await ollama.pull({ model: 'acme/Tiny-GGUF:Q2_K', stream: true })) void s;
  }, /no \.gguf file in acme\/Tiny-GGUF@main matches ":Q2_K"; it has: tiny-F16\.gguf, tiny-Q8_0\.gguf/);
});

test('minerva pull, list, verify and rm from the command line', async () => {
  const dir = path.join(root, 'cli');
  const env = { ...process.env, HF_HUB_CACHE: path.join(dir, 'cache'), MINERVA_MODELS: path.join(dir, 'models') };
  const cli = (args: string[]) => run(process.execPath, [CLI, ...args], { timeout: 60_000, env });
  const pulled = await cli(['pull', 'acme/Tiny-GGUF:F16']);
  assert.match(pulled.stdout.trim(), /Tiny-F16\.gguf$/);
  await cli(['pull', 'acme/Tiny-GGUF:Q8_0']);
  assert.match((await cli(['list'])).stdout, /Tiny-F16\s+llama.*acme\/Tiny-GGUF\s+main@[0-9a-f]{12}[\s\S]*Tiny-Q8_0\s+llama/);
  assert.match((await cli(['verify', 'Tiny-F16'])).stdout, /Tiny-F16: OK \(.* 1 files match the hashes recorded when acme\/Tiny-GGUF@[0-9a-f]{12} was pulled\)/);

  // A corrupted byte in the cached blob is caught, named, exit 1.
  const blob = await realpath(path.join(dir, 'models', 'Tiny-F16.gguf'));
  const bytes = await readFile(blob);
  bytes[bytes.length - 1] ^= 0xff;
  await writeFile(blob, bytes);
  await assert.rejects(cli(['verify', 'Tiny-F16']), (e: { code: number; stdout: string }) => {
    assert.equal(e.code, 1);
    assert.match(e.stdout, /tiny-F16\.gguf: hash mismatch: expected [0-9a-f]{64}, got [0-9a-f]{64}/);
    return true;
  });

  // rm: the link, the record and the blob only it used; the other pull's blob stays.
  assert.match((await cli(['rm', 'Tiny-F16'])).stdout, /removed Tiny-F16 .*; 1 cached files freed/);
  const blobs = await readdir(path.join(dir, 'cache', 'models--acme--Tiny-GGUF', 'blobs'));
  assert.equal(blobs.length, 1, `blobs left: ${blobs.join(', ')}`);
  assert.match((await cli(['verify', 'Tiny-Q8_0'])).stdout, /OK/);
  assert.doesNotMatch((await cli(['list'])).stdout, /Tiny-F16/);
});
