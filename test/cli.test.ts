// The command line, as a user runs it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES, fixturesSkip as skip } from './helpers/fixtures.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from './helpers/random-model.js';
import { loadModel } from '../src/index.js';
import { startServer } from './helpers/server.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
const STORIES = path.join(FIXTURES, 'llama2c/stories260K.bin');
const TOK512 = path.join(FIXTURES, 'llama2c/tok512.bin');
// A Zephyr-style template, as TinyLlama-Chat ships.
const TEMPLATE = "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
  + "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-cli-'));
  if (skip) return;
  const spec = randomSpec({ arch: 'llama', dim: 32, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 64, tied: true });
  const weights = randomWeights(spec, 3);
  await writeHFModel(path.join(dir, 'hf'), spec, weights, { dtype: 'F16' });
  await writeGGUFModel(path.join(dir, 'm.gguf'), spec, weights, { dtype: 'Q8_0' });
  const configFile = path.join(dir, 'hf', 'tokenizer_config.json');
  const config = JSON.parse(await readFile(configFile, 'utf8'));
  await writeFile(configFile, JSON.stringify({ ...config, chat_template: TEMPLATE }));
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

const cli = (args: string[]) => run(process.execPath, [CLI, ...args], { timeout: 120_000 });

test('minerva run streams the greedy continuation of a llama2.c model', { skip }, async () => {
  const { stdout } = await cli(['run', STORIES, 'Zoo', '--tokenizer', TOK512, '--temperature', '0', '-n', '12']);
  assert.equal(stdout, ' was a little girl named Lily. She loved\n');
});

test('minerva run --seed reproduces a sample', { skip }, async () => {
  const args = ['run', STORIES, 'Once', '--tokenizer', TOK512, '--seed', '11', '-n', '30'];
  const a = await cli(args), b = await cli(args);
  assert.equal(a.stdout, b.stdout);
  assert.ok(a.stdout.length > 30);
});

test('minerva run --format: a trained model writes JSON valid against a schema file; a bad schema is refused', { skip }, async () => {
  const schema = {
    type: 'object',
    properties: { name: { type: 'string', maxLength: 12 }, friends: { type: 'array', items: { enum: ['Lily', 'Tom', 'Ben'] }, maxItems: 3 } },
    required: ['name', 'friends'],
  };
  const file = path.join(dir, 'schema.json');
  await writeFile(file, JSON.stringify(schema));
  const { stdout } = await cli(['run', STORIES, 'Once upon a time', '--tokenizer', TOK512, '--temperature', '0', '-n', '200', '--format', file]);
  const value = JSON.parse(stdout) as { name: string; friends: string[] };
  assert.ok(typeof value.name === 'string' && value.name.length <= 12 && Array.isArray(value.friends), stdout);
  assert.ok(value.friends.every((f) => ['Lily', 'Tom', 'Ben'].includes(f)) && value.friends.length <= 3, stdout);
  const any = await cli(['run', STORIES, 'Once', '--tokenizer', TOK512, '--seed', '3', '-n', '300', '--format', 'json']);
  assert.ok(any.stdout.startsWith('{'), any.stdout);

  await writeFile(file, JSON.stringify({ type: 'string', pattern: '^a' }));
  await assert.rejects(cli(['run', STORIES, 'x', '--tokenizer', TOK512, '--format', file]), (e: { stderr: string; code: number }) => {
    assert.equal(e.code, 1);
    assert.match(e.stderr, /--format.*"pattern" is not supported/);
    return true;
  });
});

test('minerva info reports a GGUF and a Hugging Face model from their headers', { skip }, async () => {
  const gguf = JSON.parse((await cli(['info', path.join(dir, 'm.gguf'), '--json'])).stdout);
  assert.equal(gguf.format, 'gguf');
  assert.equal(gguf.architecture, 'llama');
  assert.equal(gguf.layers, 1);
  assert.equal(gguf.vocabSize, 32000);
  assert.equal(gguf.tokenizer, 'gguf');
  assert.deepEqual(gguf.dtypes, { Q8_0: 8, F32: 3 });
  assert.equal(gguf.parameters, 32000 * 32 + (2 * 32 * 32 + 2 * 32 * 16 + 3 * 32 * 64 + 2 * 32) + 32);
  const hf = JSON.parse((await cli(['info', path.join(dir, 'hf'), '--json'])).stdout);
  assert.equal(hf.format, 'safetensors');
  assert.equal(hf.chatTemplate, true);
  assert.equal(hf.tokenizerVocab, 32000);
  assert.deepEqual(hf.dtypes, { F16: 8, F32: 3 });
  const text = (await cli(['info', STORIES])).stdout;
  assert.match(text, /architecture\s+llama2\.c/);
  assert.match(text, /tokenizer\s+none \(pass --tokenizer\)/);
});

test('a Qwen3 model: minerva info and Ollama\'s /api/show name its architecture qwen3 and its own head size', { skip }, async () => {
  const models = path.join(dir, 'qwen3-models');
  const spec = randomSpec({ arch: 'qwen3', dim: 32, nLayers: 1, nHeads: 4, nKVHeads: 2, headDim: 16, ffnDim: 64, tied: true, vocabSize: 32000 });
  const weights = randomWeights(spec, 7);
  await writeHFModel(path.join(models, 'qwen3-hf'), spec, weights);
  await writeGGUFModel(path.join(models, 'qwen3.gguf'), spec, weights, { dtype: 'F16' });
  // Per layer: q [64, 32], k and v [32, 32], o [32, 64], gate/up/down [64, 32], two norms of 32, q_norm and k_norm of 16.
  const parameters = 32000 * 32 + (64 * 32 + 2 * 32 * 32 + 32 * 64 + 3 * 64 * 32 + 2 * 32 + 2 * 16) + 32;
  for (const model of ['qwen3-hf', 'qwen3.gguf']) {
    const info = JSON.parse((await cli(['info', path.join(models, model), '--json'])).stdout);
    assert.equal(info.architecture, 'qwen3', model);
    assert.equal(info.headDim, 16, model);
    assert.equal(info.parameters, parameters, model);
  }
  const text = (await cli(['info', path.join(models, 'qwen3.gguf')])).stdout;
  assert.match(text, /architecture\s+qwen3\n/);
  assert.match(text, /heads \/ kv heads\s+4 \/ 2 \(head dim 16\)/);
  const { server, url } = await startServer(models);
  try {
    for (const name of ['qwen3-hf', 'qwen3']) {
      const res = await fetch(`${url}/api/show`, { method: 'POST', body: JSON.stringify({ model: name }), headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 200, name);
      const show = await res.json() as { details: { family: string; families: string[] }; model_info: Record<string, unknown> };
      assert.equal(show.details.family, 'qwen3', name);
      assert.deepEqual(show.details.families, ['qwen3'], name);
      assert.equal(show.model_info['general.architecture'], 'qwen3', name);
      assert.equal(show.model_info['general.parameter_count'], parameters, name);
      assert.equal(show.model_info['qwen3.context_length'], spec.contextLength, name);
    }
  } finally {
    await server.close();
  }
});

test('chat applies the model\'s template; minerva chat answers each line on stdin', { skip }, async () => {
  const model = await loadModel(path.join(dir, 'hf'), { contextLength: 256 });
  try {
    const ids = model.chatPromptTokens([{ role: 'user', content: 'Hi there' }]);
    assert.deepEqual(ids, model.tokenize('<|user|>\nHi there</s>\n<|assistant|>\n'), 'BOS added, </s> parsed as EOS');
    assert.equal(ids.filter((t) => t === 2).length, 1);
  } finally {
    model.dispose();
  }
  const child = spawn(process.execPath, [CLI, 'chat', path.join(dir, 'hf'), '-n', '5', '--seed', '1'], { stdio: 'pipe' });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stdin.end('Hello\nHow are you?\n/exit\n');
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0);
  assert.equal((out.match(/> /g) ?? []).length, 3, 'a prompt for each of the three lines');
});

test('minerva bench measures Minerva and llama.cpp on the same GGUF and writes JSON and CSV', { skip }, async () => {
  const json = path.join(dir, 'bench.json'), csv = path.join(dir, 'bench.csv');
  const { stdout } = await cli(['bench', path.join(dir, 'm.gguf'), '--vs', 'llamacpp', '--threads', '1',
    '-p', '8', '-n', '4', '-r', '2', '--json', json, '--csv', csv]);
  assert.match(stdout, /minerva-cpu/);
  assert.match(stdout, /llama\.cpp/);
  assert.match(stdout, /Minerva \/ llama\.cpp: prompt [\d.]+×, decode [\d.]+×/);
  const report = JSON.parse(await readFile(json, 'utf8'));
  assert.deepEqual(report.results.map((r: { engine: string }) => r.engine), ['minerva-cpu', 'llama.cpp']);
  for (const r of report.results) {
    assert.equal(r.runs.length, 2);
    for (const run of r.runs) assert.ok(run.promptTps > 0 && run.decodeTps > 0, JSON.stringify(run));
  }
  assert.ok(report.ratios.decodeTps > 0);
  assert.equal((await readFile(csv, 'utf8')).trim().split('\n').length, 1 + 4);
});

test('--chat-template: a built-in name or a file replaces the template; a model without one chats through ChatML and says so', { skip }, async () => {
  // m.gguf has no template: run --chat notes the fallback on stderr, and info says what chats use.
  const fallback = await cli(['run', path.join(dir, 'm.gguf'), 'Hi', '--chat', '-n', '3', '--temperature', '0']);
  assert.match(fallback.stderr, /has no chat template; using chatml \(choose another with --chat-template\)/);
  assert.match((await cli(['info', path.join(dir, 'm.gguf')])).stdout, /chat template\s+none; chats use chatml/);
  const model = await loadModel(path.join(dir, 'm.gguf'), { contextLength: 256 });
  try {
    assert.equal(model.chatTemplate.origin, 'default');
    assert.deepEqual(model.chatPromptTokens([{ role: 'user', content: 'Hi' }]), model.tokenize('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n'));
  } finally {
    model.dispose();
  }
  // A file given to the HF model (which has its own) wins, with no note.
  const file = path.join(dir, 'plain.jinja');
  await writeFile(file, '{% for m in messages %}{{ m.content }}{% endfor %}');
  const chosen = await cli(['run', path.join(dir, 'hf'), 'Hi', '--chat', '--chat-template', file, '-n', '3', '--temperature', '0']);
  assert.doesNotMatch(chosen.stderr, /no chat template/);
  const builtin = await cli(['run', path.join(dir, 'm.gguf'), 'Hi', '--chat', '--chat-template', 'llama3', '-n', '3', '--temperature', '0']);
  assert.doesNotMatch(builtin.stderr, /no chat template/);
  await assert.rejects(cli(['run', path.join(dir, 'm.gguf'), 'Hi', '--chat', '--chat-template', 'nope']), /neither a file nor a built-in template/);
});
