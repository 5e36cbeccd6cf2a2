// minerva serve --backend webgpu against the real clients (openai SDK, ollama), with the GPU budget
// (--max-gpu-memory) counted in the registry and reported in /api/ps and /metrics. Skips, saying
// why, where no WebGPU adapter can be had.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';
import { fixturesSkip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';
import { webgpuSkip } from './helpers/webgpu.js';
import type { MinervaServer } from '../src/server/server.js';

const skip = fixturesSkip || await webgpuSkip();
let dir: string;
let server: MinervaServer;
let url: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-webgpu-server-'));
  if (skip) return;
  await mkdir(path.join(dir, 'models'));
  await writeModels(path.join(dir, 'models'));
  ({ server, url } = await startServer(path.join(dir, 'models'), { backend: 'webgpu', maxGpuMemory: 2 ** 30 }));
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test('OpenAI SDK and Ollama client on the webgpu backend: chat streamed and whole, GPU memory in /api/ps and /metrics', { skip }, async () => {
  const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const ollama = new Ollama({ host: url });
  const messages = [{ role: 'user' as const, content: 'Tell me a story' }];
  const whole = await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 10, temperature: 0 });
  assert.equal(whole.usage!.completion_tokens, 10);
  let streamed = '';
  for await (const chunk of await openai.chat.completions.create({ model: 'tiny', messages, max_tokens: 10, temperature: 0, stream: true })) {
    streamed += chunk.choices[0]?.delta.content ?? '';
  }
  assert.equal(streamed, whole.choices[0]!.message.content);

  const generated = await ollama.generate({ model: 'tiny-gguf', prompt: 'Why is the sky blue?', options: { temperature: 0, num_predict: 8 } });
  assert.equal(generated.eval_count, 8);
  // Concurrent requests share the GPU's forward passes and each still gets its own answer.
  const alone = (await ollama.generate({ model: 'tiny-gguf', prompt: 'Hello', options: { temperature: 0, num_predict: 8 } })).response;
  const both = await Promise.all(['Hello', 'Why is the sky blue?'].map((prompt) =>
    ollama.generate({ model: 'tiny-gguf', prompt, options: { temperature: 0, num_predict: 8 } })));
  assert.deepEqual(both.map((r) => r.response), [alone, generated.response]);

  const ps = await ollama.ps();
  assert.deepEqual(ps.models.map((m) => m.name).sort(), ['tiny-gguf:latest', 'tiny:latest'], 'both models are loaded');
  for (const m of ps.models) assert.ok(m.size_vram > 0 && m.size_vram === m.size, `${m.name}: size_vram ${m.size_vram} of ${m.size}`);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /minerva_model_gpu_memory_bytes\{model="tiny"\} [1-9]/);
});

test('--max-gpu-memory: a model larger than the GPU budget is refused with both sizes, and the server keeps serving', { skip }, async () => {
  const small = await startServer(path.join(dir, 'models'), { backend: 'webgpu', maxGpuMemory: 100_000 });
  try {
    const res = await fetch(`${small.url}/api/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'x', stream: false }),
    });
    assert.equal(res.status, 503);
    assert.match(((await res.json()) as { error: string }).error, /needs [\d.]+ MiB .* GPU memory limit is 0\.1 MiB \(--max-gpu-memory\)/);
    assert.equal((await fetch(`${small.url}/health`)).status, 200);
  } finally {
    await small.server.close();
  }
});
