// Graceful shutdown of `minerva serve`, as a process: SIGTERM drains (503 on /ready and for new
// work, /health still up), running streams finish or, at --drain-timeout, end with a chunk that
// says the server shut down (OpenAI: finish_reason plus an error object, then [DONE]; Ollama:
// done_reason "shutdown"), and the process exits 0; a second SIGINT stops at once with 130.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomSpec, randomWeights, writeGGUFModel } from './helpers/random-model.js';

const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;

// Big enough that one token takes milliseconds on one thread, so a 3000-token stream runs for
// seconds (past a one-second drain deadline) while loading stays quick.
const SLOW = randomSpec({ arch: 'llama', dim: 384, nLayers: 4, nHeads: 6, nKVHeads: 2, ffnDim: 1024, tied: false, contextLength: 4096 });
/** Llama-2's end-of-sequence id: banned so a greedy stream runs to max_tokens. */
const EOS = 2;

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-shutdown-'));
  await writeGGUFModel(path.join(dir, 'slow.gguf'), SLOW, randomWeights(SLOW, 7), { dtype: 'Q8_0' });
});
after(async () => { await rm(dir, { recursive: true, force: true }); });

interface Served {
  child: ChildProcess;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  stderr: () => string;
}

/** `minerva serve` on a free port over the test's models folder; resolves once it listens. */
async function serve(drainSeconds: number): Promise<Served> {
  const child = spawn(process.execPath, [
    CLI, 'serve', '--port', '0', '--models-dir', dir, '--threads', '1', '--parallel', '4', '--ctx-size', '4096',
    '--drain-timeout', String(drainSeconds), '--quiet',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() }));
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve(m[1]!);
    });
    void exited.then(({ code }) => reject(new Error(`minerva serve exited (${code}) before listening: ${err}`)));
  });
  return { child, url, exited, stderr: () => err };
}

/** A streamed request read line by line; `first` resolves at the first line, `lines` at the end of the body. */
function streamLines(url: string, body: object): { first: Promise<void>; lines: Promise<string[]> } {
  let gotFirst!: () => void;
  const first = new Promise<void>((r) => { gotFirst = r; });
  const lines = (async () => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 200) assert.fail(`${url}: ${res.status} ${await res.text()}`);
    const out: string[] = [];
    let buf = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const p of parts) if (p.trim() !== '') { out.push(p); gotFirst(); }
    }
    if (buf.trim() !== '') out.push(buf);
    return out;
  })();
  lines.catch(() => gotFirst());
  return { first, lines };
}

const longCompletion = { model: 'slow', prompt: 'Once upon a time', max_tokens: 3000, temperature: 0, logit_bias: { [EOS]: -100 }, stream: true };
const longGenerate = { model: 'slow', prompt: 'Once upon a time', raw: true, options: { num_predict: 3000, temperature: 0 } };

test('SIGTERM drains: /ready 503, new work 503, /health up; streams end with a shutdown chunk at the deadline; exit 0', { timeout: 60_000 }, async () => {
  const s = await serve(1);
  try {
    const openai = streamLines(`${s.url}/v1/completions`, longCompletion);
    const ollama = streamLines(`${s.url}/api/generate`, longGenerate);
    await Promise.all([openai.first, ollama.first]);
    // Not streamed: cut short, it must be a 503, not a partial answer posing as a whole one.
    const whole = fetch(`${s.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...longCompletion, stream: false }),
    });
    // SIGTERM only once all three generations run (on a busy machine the third may take a while to arrive).
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      const m = await (await fetch(`${s.url}/metrics`)).text();
      if (/^minerva_active_sequences\{[^}]*\} 3$/m.test(m)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const signalled = performance.now();
    s.child.kill('SIGTERM');
    // Give the signal a moment to arrive, then look while the streams are still running.
    await new Promise((r) => setTimeout(r, 150));
    const ready = await fetch(`${s.url}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(await ready.json(), { status: 'draining' });
    const health = await fetch(`${s.url}/health`);
    assert.equal(health.status, 200);
    const refusedOpenAI = await fetch(`${s.url}/v1/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'slow', prompt: 'Hi', max_tokens: 2 }),
    });
    assert.equal(refusedOpenAI.status, 503);
    const e1 = await refusedOpenAI.json() as { error: { message: string; type: string; code: string } };
    assert.equal(e1.error.code, 'server_shutting_down');
    assert.equal(e1.error.type, 'server_error');
    assert.match(e1.error.message, /shutting down/);
    const refusedOllama = await fetch(`${s.url}/api/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'slow', prompt: 'Hi', stream: false }),
    });
    assert.equal(refusedOllama.status, 503);
    assert.match((await refusedOllama.json() as { error: string }).error, /shutting down/);

    // OpenAI: tokens, then one chunk with finish_reason and the error, then [DONE].
    const sse = await openai.lines;
    const ended = performance.now();
    assert.equal(sse.at(-1), 'data: [DONE]');
    const last = JSON.parse(sse.at(-2)!.slice('data: '.length)) as {
      choices: { finish_reason: string | null; text: string }[]; error?: { code: string; message: string };
    };
    assert.equal(last.choices[0]!.finish_reason, 'length');
    assert.equal(last.error?.code, 'server_shutting_down');
    assert.match(last.error!.message, /shutting down/);
    assert.ok(sse.length > 3, 'tokens streamed before the shutdown');
    for (const line of sse.slice(0, -2)) assert.equal((JSON.parse(line.slice(6)) as { error?: unknown }).error, undefined);
    // Stopped at the deadline (1 s), not at the signal.
    assert.ok(ended - signalled >= 900, `the stream ended ${Math.round(ended - signalled)} ms after SIGTERM`);

    // Ollama: its last line is done, with done_reason "shutdown" and the error its clients raise.
    const nd = (await ollama.lines).map((l) => JSON.parse(l) as { done: boolean; done_reason?: string; error?: string; response: string });
    const final = nd.at(-1)!;
    assert.equal(final.done, true);
    assert.equal(final.done_reason, 'shutdown');
    assert.match(final.error!, /shutting down/);
    assert.ok(nd.slice(0, -1).every((l) => !l.done && l.error === undefined));

    const cut = await whole;
    assert.equal(cut.status, 503);
    const e2 = await cut.json() as { error: { message: string; code: string } };
    assert.equal(e2.error.code, 'server_shutting_down');
    assert.match(e2.error.message, /stopped before it finished/);

    const exit = await s.exited;
    assert.equal(exit.code, 0, s.stderr());
    assert.match(s.stderr(), /3 requests stopped at the drain deadline/);
    assert.ok(exit.at - signalled < 8000, `exited ${Math.round(exit.at - signalled)} ms after SIGTERM`);
    assert.match(s.stderr(), /SIGTERM: shutting down/);
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('a stream that ends before the deadline completes normally, and the server exits as soon as it has', { timeout: 60_000 }, async () => {
  const s = await serve(30);
  try {
    const short = streamLines(`${s.url}/v1/completions`, { ...longCompletion, max_tokens: 40 });
    await short.first;
    const signalled = performance.now();
    s.child.kill('SIGTERM');
    const sse = await short.lines;
    assert.equal(sse.at(-1), 'data: [DONE]');
    const chunks = sse.slice(0, -1).map((l) => JSON.parse(l.slice(6)) as { choices: { finish_reason: string | null }[]; error?: unknown });
    assert.equal(chunks.at(-1)!.choices[0]!.finish_reason, 'length');
    assert.ok(chunks.every((c) => c.error === undefined));
    const exit = await s.exited;
    assert.equal(exit.code, 0, s.stderr());
    // Well before the 30 s deadline: the drain ends when the last request has.
    assert.ok(exit.at - signalled < 10_000, `exited ${Math.round(exit.at - signalled)} ms after SIGTERM`);
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('a second SIGINT during the drain stops at once, with exit code 130', { timeout: 60_000 }, async () => {
  const s = await serve(30);
  try {
    const stream = streamLines(`${s.url}/v1/completions`, longCompletion);
    await stream.first;
    s.child.kill('SIGINT');
    // The drain has begun once /ready says so.
    for (let i = 0; i < 50; i++) {
      if ((await fetch(`${s.url}/ready`)).status === 503) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await fetch(`${s.url}/ready`)).status, 503);
    const again = performance.now();
    s.child.kill('SIGINT');
    const exit = await s.exited;
    assert.equal(exit.code, 130, s.stderr());
    assert.ok(exit.at - again < 3000, `exited ${Math.round(exit.at - again)} ms after the second SIGINT`);
    await stream.lines.catch(() => []); // (cut off: the process is gone)
  } finally {
    s.child.kill('SIGKILL');
  }
});

test('--drain-timeout is checked as an argument: a negative or non-number is refused naming the option', async () => {
  for (const bad of ['-1', 'soon', '']) {
    const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--models-dir', dir, '--drain-timeout', bad], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => { stderr += String(d); });
      child.once('exit', (code) => resolve({ code, stderr }));
    });
    assert.notEqual(r.code, 0, bad);
    assert.match(r.stderr, /--drain-timeout <seconds>.*expected a number in 0\.\.86400/, bad);
  }
});
