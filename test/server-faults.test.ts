// Faults the server survives, each a clear error in the log and a 5xx for the requests it
// touches only, while other models keep serving: a cpu worker thread that dies, a model file
// removed or truncated while loaded or while loading, the models folder unreadable, the port taken.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Writable } from 'node:stream';
import { mkdir, mkdtemp, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { truncateSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import os from 'node:os';
import path from 'node:path';
import { startServer, writeModels } from './helpers/server.js';
import { randomSpec, randomWeights, writeGGUFModel } from './helpers/random-model.js';
import { WorkerPool, WorkerThreadError } from '../src/backends/cpu/worker-pool.js';
import { createKernelMemory } from '../src/backends/cpu/kernel-module.js';
import { ModelRegistry } from '../src/server/registry.js';
import type { MinervaServer } from '../src/server/server.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;

let root: string;
before(async () => { root = await mkdtemp(path.join(os.tmpdir(), 'minerva-faults-')); });
after(async () => { await rm(root, { recursive: true, force: true }); });

/** A fresh models folder with "tiny" (HF) and "tiny-gguf" (Q8_0 GGUF). */
async function models(name: string): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(dir);
  await writeModels(dir);
  return dir;
}

/** The server's log (pino JSON lines), kept for assertions. */
function logSink(): { logger: object; lines: () => { level: number; msg: string; err?: { message: string } }[] } {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, done) { text += String(chunk); done(); } });
  return {
    logger: { level: 'warn', stream },
    lines: () => text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } }),
  };
}

const post = (url: string, body: object) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const complete = (url: string, model: string, extra: object = {}) => post(`${url}/v1/completions`, { model, prompt: 'Hello', max_tokens: 4, temperature: 0, ...extra });

/** The worker threads of a loaded model's cpu pool (private: reached into, to kill one as a crash would). */
function poolWorkers(server: MinervaServer, model: string): Worker[] {
  const loaded = server.registry.running().find((l) => l.entry.name === model);
  assert.ok(loaded, `${model} is loaded`);
  const pool = (loaded.model as unknown as { backend: { pool: WorkerPool } }).backend.pool;
  return (pool as unknown as { workers: Worker[] }).workers;
}

test('a worker pool whose thread exits fails every job with WorkerThreadError instead of waiting for it', { timeout: 30_000 }, async () => {
  const memory = createKernelMemory(64);
  for (const how of ['terminated', 'exited'] as const) {
    const pool = await WorkerPool.create(3, memory);
    try {
      // Rows enough that the job is split over the workers: [16, 4096] f32 weights (zeros) times a vector.
      const job = () => pool.run('matmulF32', [0, 1 << 20, 2 << 20, 16, 4096, 1], 4096);
      job();
      const workers = (pool as unknown as { workers: Worker[] }).workers;
      workers[1]!.ref(); // (the pool unrefs its threads: keep the test alive until this one has gone)
      const gone = new Promise((r) => workers[1]!.once('exit', r));
      if (how === 'terminated') {
        await workers[1]!.terminate(); // as an abrupt kill: the thread runs nothing more
      } else {
        // The thread ends by itself (as after an uncaught error): the pool's exit request to it alone.
        const control = (pool as unknown as { controls: Int32Array[] }).controls[1]!;
        Atomics.store(control, 0, -1);
        Atomics.notify(control, 0);
      }
      await gone;
      const started = performance.now();
      assert.throws(job, (e: unknown) => e instanceof WorkerThreadError && /cpu worker thread exited.*worker 2/.test(e.message));
      assert.throws(job, WorkerThreadError, 'and every job after');
      assert.throws(() => pool.broadcast('setScratch', [0, 0]), WorkerThreadError);
      assert.ok(performance.now() - started < 1000);
      assert.match(pool.failure ?? '', /worker 2/);
    } finally {
      await pool.dispose();
    }
  }
});

test('a dead worker thread: that model\'s requests get a 500 (and a clear log line), other models keep serving, the next request reloads it', { timeout: 60_000 }, async () => {
  const dir = await models('worker');
  const log = logSink();
  const { server, url } = await startServer(dir, { threads: 2, logger: log.logger });
  try {
    assert.equal((await complete(url, 'tiny-gguf')).status, 200);
    assert.equal((await complete(url, 'tiny')).status, 200);
    const [worker] = poolWorkers(server, 'tiny-gguf');
    worker!.ref();
    const gone = new Promise((r) => worker!.once('exit', r));
    await worker!.terminate();
    await gone;

    const failed = await complete(url, 'tiny-gguf');
    assert.equal(failed.status, 500);
    const e = (await failed.json() as { error: { message: string; type: string } }).error;
    assert.match(e.message, /cpu worker thread exited/);
    assert.equal(e.type, 'server_error');
    assert.ok(log.lines().some((l) => l.level >= 50 && /model "tiny-gguf": a cpu worker thread exited.*unloading it/.test(l.msg)), 'logged');
    assert.ok(!server.registry.running().some((l) => l.entry.name === 'tiny-gguf'), 'the broken model was unloaded');

    // The other model was never touched; the broken one loads afresh and answers as before.
    assert.equal((await complete(url, 'tiny')).status, 200);
    const again = await complete(url, 'tiny-gguf');
    assert.equal(again.status, 200, await again.clone().text());
  } finally {
    await server.close();
  }
});

test('a dead worker thread during a stream: the stream ends with an error event, not a hang', { timeout: 60_000 }, async () => {
  const dir = await models('worker-stream');
  const { server, url } = await startServer(dir, { threads: 2 });
  try {
    assert.equal((await complete(url, 'tiny-gguf')).status, 200);
    const [worker] = poolWorkers(server, 'tiny-gguf');
    await worker!.terminate();
    await new Promise((r) => setImmediate(r));
    const res = await complete(url, 'tiny-gguf', { stream: true, max_tokens: 50 });
    assert.equal(res.status, 200); // (the headers go out before the first step runs)
    const events = (await res.text()).split('\n\n').filter((e) => e.trim() !== '');
    assert.equal(events.at(-1), 'data: [DONE]');
    const last = JSON.parse(events.at(-2)!.slice('data: '.length)) as { error?: { message: string; type: string } };
    assert.match(last.error?.message ?? '', /cpu worker thread exited/);
    assert.equal(last.error?.type, 'server_error');
  } finally {
    await server.close();
  }
});

test('a model file removed while loaded: running streams finish from memory, later requests get a 404 and the model is unloaded', { timeout: 60_000 }, async () => {
  const dir = await models('removed');
  const log = logSink();
  const { server, url } = await startServer(dir, { logger: log.logger });
  try {
    const res = await complete(url, 'tiny-gguf', { stream: true, max_tokens: 200, logit_bias: { 2: -100 } });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    await rm(path.join(dir, 'tiny-gguf.gguf'));
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    assert.match(text, /"finish_reason":"length"/);
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    assert.ok(!text.includes('"error"'));

    const gone = await complete(url, 'tiny-gguf');
    assert.equal(gone.status, 404);
    assert.ok(log.lines().some((l) => /model "tiny-gguf": its file .* is gone from the models folder; unloading it/.test(l.msg)));
    assert.ok(!server.registry.running().some((l) => l.entry.name === 'tiny-gguf'));
    assert.equal((await complete(url, 'tiny')).status, 200);
  } finally {
    await server.close();
  }
});

test('a model file truncated while loaded: its next request is a 500 naming the model, not a path; other models keep serving', { timeout: 60_000 }, async () => {
  const dir = await models('truncated');
  const log = logSink();
  const { server, url } = await startServer(dir, { logger: log.logger });
  try {
    assert.equal((await complete(url, 'tiny-gguf')).status, 200);
    assert.equal((await complete(url, 'tiny')).status, 200);
    const file = path.join(dir, 'tiny-gguf.gguf');
    const bytes = await readFile(file);
    await truncate(file, Math.floor(bytes.length / 2));

    const res = await complete(url, 'tiny-gguf');
    assert.equal(res.status, 500);
    const message = (await res.json() as { error: { message: string } }).error.message;
    assert.match(message, /^model "tiny-gguf" cannot be read from the models folder: tiny-gguf\.gguf: .*(ends|past the end|truncated)/);
    assert.ok(!message.includes(dir), 'no server path in the answer');
    assert.ok(log.lines().some((l) => l.level >= 50 && /model "tiny-gguf":.*unloading it/.test(l.msg)));
    assert.ok(!server.registry.running().some((l) => l.entry.name === 'tiny-gguf'));
    assert.equal((await complete(url, 'tiny')).status, 200);

    // Put back whole, it serves again.
    await writeFile(file, bytes);
    assert.equal((await complete(url, 'tiny-gguf')).status, 200);
  } finally {
    await server.close();
  }
});

test('a model file truncated while it loads: the load fails with an error naming the file, and nothing half-loaded stays', { timeout: 60_000 }, async () => {
  const dir = path.join(root, 'loading');
  await mkdir(dir);
  const spec = randomSpec({ arch: 'llama', dim: 128, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 256, tied: false });
  await writeGGUFModel(path.join(dir, 'a.gguf'), spec, randomWeights(spec, 1), { dtype: 'F32' });
  await writeGGUFModel(path.join(dir, 'b.gguf'), spec, randomWeights(spec, 2), { dtype: 'F32' });
  const file = path.join(dir, 'a.gguf');
  const size = (await readFile(file)).length;
  let cut = false;
  const registry = new ModelRegistry({
    dir, maxMemory: 2 ** 31, keepAliveMs: 60_000,
    load: {
      threads: 1, parallel: 1, contextLength: 64,
      // The first progress report comes after the first tensor is read: cut the file there.
      onProgress: () => { if (!cut) { cut = true; truncateSync(file, Math.floor(size * 0.6)); } },
    },
  });
  try {
    await assert.rejects(registry.acquire('a'), (e: Error) => e.message.includes(file) && /file ends at byte|bytes short/.test(e.message));
    assert.ok(cut);
    assert.deepEqual(registry.running(), []);
    const { loaded, release } = await registry.acquire('b');
    assert.equal(loaded.entry.name, 'b');
    release();
  } finally {
    registry.dispose();
  }
});

test('the models folder unreadable (a file in its place): listings are a 503, loaded models keep serving, others a 503; back when it is', { timeout: 60_000 }, async () => {
  const dir = await models('folder');
  const log = logSink();
  const { server, url } = await startServer(dir, { logger: log.logger });
  try {
    assert.equal((await complete(url, 'tiny')).status, 200);
    await rename(dir, `${dir}.moved`);
    await writeFile(dir, 'not a folder');

    const tags = await fetch(`${url}/api/tags`);
    assert.equal(tags.status, 503);
    const said = (await tags.json() as { error: string }).error;
    assert.match(said, /the models folder cannot be read \(it is not a folder\)/);
    assert.ok(!said.includes(dir));
    assert.ok(log.lines().some((l) => l.level >= 50 && /the models folder cannot be read/.test(l.err?.message ?? l.msg)));
    assert.equal((await fetch(`${url}/v1/models`)).status, 503);
    // Loaded: served from memory. Not loaded: a 503 saying why.
    assert.equal((await complete(url, 'tiny')).status, 200);
    const other = await complete(url, 'tiny-gguf');
    assert.equal(other.status, 503);
    assert.match((await other.json() as { error: { message: string } }).error.message, /models folder cannot be read/);
    assert.equal((await fetch(`${url}/health`)).status, 200);

    await rm(dir);
    await rename(`${dir}.moved`, dir);
    assert.equal((await fetch(`${url}/api/tags`)).status, 200);
    assert.equal((await complete(url, 'tiny-gguf')).status, 200);
  } finally {
    await server.close();
  }
});

test('minerva serve on a port in use: one line saying so and what to do, exit code 1, no stack trace', { timeout: 60_000 }, async () => {
  const dir = await models('port');
  const { server, url } = await startServer(dir);
  try {
    const port = new URL(url).port;
    const r = await run(process.execPath, [CLI, 'serve', '--port', port, '--models-dir', dir]).then(
      () => assert.fail('serve should fail'), (e: { code: number; stderr: string }) => e,
    );
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, new RegExp(`^minerva: port ${port} on 127\\.0\\.0\\.1 is already in use .*pass another --port`));
    assert.ok(!/\n\s+at /.test(r.stderr));
  } finally {
    await server.close();
  }
});
