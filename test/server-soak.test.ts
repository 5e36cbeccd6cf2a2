// The load soak (src/bench/soak.ts, scripts/soak.ts) small: 40 streaming clients, 200 requests,
// against `minerva serve` on the bundled demo model with 4 slots and 8 queue places — mixed OpenAI
// and Ollama, chat and completion, a fifth hanging up midway, some asking beyond the context, and
// 429s retried after their Retry-After. Every check of the full soak must pass (the RSS one
// loosely: 200 requests are mostly warm-up). And the soak's stream reader, on which the
// completeness checks rest, passes real streams and flags them cut short.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runSoak, SOAK_DEFAULTS } from '../src/bench/soak.js';
import { APIS, readStreamBody, requestBody, type Api } from '../src/bench/soak-requests.js';
import { bundledDemoModel } from '../src/server/demo-model.js';
import { startServer } from './helpers/server.js';

const demo = bundledDemoModel();
const skip = demo ? false : 'the bundled demo model (models/demo/stories260K.gguf) is absent';

test('soak: 40 clients × 200 requests — server up, streams complete and equal to their solo runs, 429s with Retry-After, gauges back to zero', { skip, timeout: 180_000 }, async () => {
  const report = await runSoak({
    ...SOAK_DEFAULTS, clients: 40, requests: 200, model: demo!.path, parallel: 4, maxQueue: 8, threads: 1,
    warmup: 50, rssGrowthLimitMiB: 64,
  });
  assert.deepEqual(report.failures, []);
  // The run did what it set out to: hang-ups, refusals, and many greedy streams compared.
  assert.equal(report.completed + report.aborted, 200);
  assert.ok(report.aborted >= 20, `${report.aborted} hang-ups`);
  assert.ok(report.rejected > 0, 'no 429 although 40 clients > 4 slots + 8 queued');
  assert.ok(report.compared >= 100, `${report.compared} greedy streams compared`);
  assert.ok(report.generatedTokens > 0 && report.ttftMs.p50 > 0);
});

test('soak stream reader: real streams of each API read whole; cut short or run on, they are flagged', { skip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-soak-reader-'));
  const { server, url } = await startServer(dir, { threads: 1, contextLength: 64 });
  try {
    const body = async (api: Api, maxTokens: number) => {
      const route = { 'openai-chat': '/v1/chat/completions', 'openai-completion': '/v1/completions', 'ollama-chat': '/api/chat', 'ollama-generate': '/api/generate' }[api];
      const res = await fetch(url + route, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify(requestBody(demo!.name, { api, prompt: 0, greedy: true, seed: 0, maxTokens, overContext: false })),
      });
      assert.equal(res.status, 200);
      return res.text();
    };
    for (const api of APIS) {
      const whole = await body(api, 8);
      const read = readStreamBody(api, whole);
      assert.equal(read.problem, undefined, `${api}: ${read.problem}`);
      assert.equal(read.finish, 'length', api);
      assert.ok(read.text.length > 0, api);
      // Asked beyond the 64-token context: it ends at the context, with "length" (or earlier, by itself).
      const long = readStreamBody(api, await body(api, 1000));
      assert.equal(long.problem, undefined, `${api}: ${long.problem}`);
      assert.ok(long.finish === 'length' || long.finish === 'stop', `${api}: ${long.finish}`);

      const sep = api.startsWith('openai') ? '\n\n' : '\n';
      const frames = whole.split(sep).filter((f) => f !== '');
      const join = (fs: string[]) => fs.map((f) => f + sep).join('');
      // The last frame lost ([DONE] / the done line), the last two, the last cut short, a frame after the end.
      for (const [what, text] of [
        ['without its last frame', join(frames.slice(0, -1))],
        ['without its last two frames', join(frames.slice(0, -2))],
        ['cut 3 characters short', whole.slice(0, -3)],
        ['with a frame after the end', join([...frames, frames[1]!])],
      ] as const) {
        assert.notEqual(readStreamBody(api, text).problem, undefined, `${api} ${what} passed as complete`);
      }
    }
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
});
