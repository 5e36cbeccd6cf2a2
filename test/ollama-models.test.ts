// Ollama's model management against a live server with the real `ollama` client: copy, delete,
// blobs and create (from a model, from an uploaded GGUF, from uploaded SafeTensors files); new
// models appear without a restart, and requests to other models keep being served meanwhile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Ollama } from 'ollama';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';
import type { MinervaServer } from '../src/server/server.js';

let dir: string, models: string;
let server: MinervaServer;
let url: string;
let ollama: Ollama;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-ollama-models-'));
  if (skip) return;
  models = path.join(dir, 'models');
  await mkdir(models);
  await writeModels(models);
  ({ server, url } = await startServer(models, { backend: 'cpu' }));
  ollama = new Ollama({ host: url });
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const names = async () => (await ollama.list()).models.map((m) => m.name).sort();
const greedy = async (model: string) => (await ollama.generate({ model, prompt: 'Once upon a time', raw: true, options: { temperature: 0, num_predict: 8 } })).response;
const digestOf = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const upload = (digest: string, bytes: Uint8Array, method = 'POST') => fetch(`${url}/api/blobs/${digest}`, { method, body: method === 'POST' ? bytes : undefined });

test('copy and delete: the copy answers as the original, deleting it leaves the original, unknown names are 404', { skip }, async () => {
  const original = await greedy('tiny-gguf');
  // A request to another model runs while the folder changes.
  const other = greedy('tiny');
  await ollama.copy({ source: 'tiny-gguf', destination: 'copied:v1' });
  assert.deepEqual(await names(), ['copied:v1:latest', 'tiny-gguf:latest', 'tiny:latest']);
  assert.equal(await greedy('copied:v1'), original);
  await ollama.delete({ model: 'copied:v1' });
  assert.deepEqual(await names(), ['tiny-gguf:latest', 'tiny:latest']);
  assert.equal(await greedy('tiny-gguf'), original);
  assert.ok((await other).length > 0);
  await assert.rejects(ollama.delete({ model: 'copied:v1' }), /not found/);
  await assert.rejects(ollama.copy({ source: 'nope', destination: 'x' }), /not found/);
  await assert.rejects(ollama.copy({ source: 'tiny', destination: '../escape' }), /not a valid model name/);
  assert.ok(!(await readdir(dir)).includes('escape'));
});

test('blobs: HEAD says whether it is there, POST checks the digest while it streams', { skip }, async () => {
  const bytes = new TextEncoder().encode('{"hello": "blob"}');
  const digest = digestOf(bytes);
  assert.equal((await upload(digest, bytes, 'HEAD')).status, 404);
  const wrong = digestOf(new TextEncoder().encode('something else'));
  const refused = await upload(wrong, bytes);
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { error: string }).error, /digest mismatch: the body's SHA-256 is sha256:[0-9a-f]{64}, the URL says sha256:/);
  assert.equal((await upload(wrong, bytes, 'HEAD')).status, 404, 'nothing kept of a refused upload');
  assert.equal((await upload(digest, bytes)).status, 201);
  assert.equal((await upload(digest, bytes, 'HEAD')).status, 200);
  assert.equal((await fetch(`${url}/api/blobs/sha256:xyz`, { method: 'HEAD' })).status, 400);
  assert.deepEqual((await readdir(path.join(models, '.blobs'))).filter((f) => !f.startsWith('sha256-')), [], 'no partial files left');
});

test('create: from an existing model, from an uploaded GGUF, from uploaded SafeTensors files', { skip }, async () => {
  const expected = await greedy('tiny-gguf');
  const fromModel = await ollama.create({ model: 'made-from', from: 'tiny-gguf', stream: true });
  const statuses: string[] = [];
  for await (const s of fromModel) statuses.push(s.status);
  assert.equal(statuses.at(-1), 'success');
  assert.equal(await greedy('made-from'), expected);

  const gguf = await readFile(path.join(models, 'tiny-gguf.gguf'));
  assert.equal((await upload(digestOf(gguf), gguf)).status, 201);
  const whole = await ollama.create({ model: 'uploaded', files: { 'model.gguf': digestOf(gguf) } } as never) as unknown as { status: string };
  assert.equal(whole.status, 'success');
  assert.equal(await greedy('uploaded'), expected);

  const files: Record<string, string> = {};
  for (const f of await readdir(path.join(models, 'tiny'))) {
    const bytes = await readFile(path.join(models, 'tiny', f));
    assert.ok((await upload(digestOf(bytes), bytes)).status < 300);
    files[f] = digestOf(bytes);
  }
  await ollama.create({ model: 'uploaded-hf', files } as never);
  assert.equal(await greedy('uploaded-hf'), await greedy('tiny'));

  // quantize: the source written as a GGUF of that type (minerva convert's llama.cpp mix).
  // (Q8_0: the random model's rows of 64 are not whole Q4_K super-blocks, which llama.cpp's mix would write as Q5_0.)
  const quantized = await ollama.create({ model: 'tiny-q8', from: 'tiny', quantize: 'Q8_0', stream: false }) as unknown as { status: string };
  assert.equal(quantized.status, 'success');
  assert.equal((await ollama.list()).models.find((m) => m.name === 'tiny-q8:latest')?.details.quantization_level, 'Q8_0');
  assert.equal(await greedy('tiny-q8'), await greedy('tiny-gguf'), 'the same blocks as the Q8_0 GGUF of the same weights');
  await assert.rejects(ollama.create({ model: 'bad', from: 'tiny', quantize: 'q3_K_S' }), /quantize must be one of f32, f16, bf16, q8_0, q4_0, q4_k_m, q6_k/);
  await assert.rejects(ollama.create({ model: 'bad', from: 'tiny-gguf', quantize: 'q4_0' }), /quantize: .*requantiz|quantize: .*quantized/i);

  // system and parameters become the model's defaults; what a request sets wins.
  await ollama.create({ model: 'storyteller', from: 'tiny', system: 'You tell stories.', parameters: { temperature: 0, num_predict: 6 } });
  const messages = [{ role: 'user', content: 'Tell me one' }];
  const withDefaults = await ollama.chat({ model: 'storyteller', messages });
  assert.equal(withDefaults.eval_count, 6);
  const explicit = await ollama.chat({ model: 'tiny', messages: [{ role: 'system', content: 'You tell stories.' }, ...messages], options: { temperature: 0, num_predict: 6 } });
  assert.equal(withDefaults.message.content, explicit.message.content);
  assert.equal((await ollama.chat({ model: 'storyteller', messages, options: { num_predict: 3 } })).eval_count, 3, 'the request wins');
  const shown = await ollama.show({ model: 'storyteller' });
  assert.equal(shown.system, 'You tell stories.');
  assert.match(shown.parameters, /temperature 0\nnum_predict 6/);

  // Refusals name what is wrong, and leave nothing behind.
  await assert.rejects(ollama.create({ model: 'bad', files: { 'model.gguf': `sha256:${'0'.repeat(64)}` } } as never), /was not uploaded/);
  const notAModel = new TextEncoder().encode('not a model');
  await upload(digestOf(notAModel), notAModel);
  await assert.rejects(ollama.create({ model: 'bad', files: { 'x.gguf': digestOf(notAModel) } } as never), /model "bad": .*bad\.gguf/);
  await assert.rejects(ollama.create({ model: 'bad', files: { '../x.gguf': digestOf(notAModel) } } as never), /not a plain file name/);
  await assert.rejects(ollama.create({ model: 'bad', from: 'tiny', template: '{{ .Prompt }}' } as never), /template is not supported/);
  await assert.rejects(ollama.create({ model: 'bad', from: 'tiny', parameters: { temperature: 'hot' } } as never), /parameters\.temperature must be a number/);
  await assert.rejects(ollama.create({ model: 'bad', from: 'tiny', parameters: { mirostat: 1 } } as never), /parameters\.mirostat is not a parameter Minerva knows/);
  assert.ok(!(await names()).includes('bad:latest'));
  assert.deepEqual((await readdir(models)).filter((f) => f.includes('tmp')), []);
});
