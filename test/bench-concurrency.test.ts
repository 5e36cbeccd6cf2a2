// minerva bench --concurrency: N streams at once, in-process and against a live server. Speeds are
// not asserted (they are measurements); what is: every level runs its streams to the end and
// counts their tokens right, the CLI prints a row per level, and bad lists are refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { benchConcurrencyInProcess, benchConcurrencyServer, parseConcurrencyList } from '../src/bench/concurrency.js';
import { fixturesSkip as skip } from './helpers/fixtures.js';
import { startServer, writeModels } from './helpers/server.js';
import type { MinervaServer } from '../src/server/server.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
let dir: string;
let server: MinervaServer | undefined;
let url: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-bench-conc-'));
  if (skip) return;
  await mkdir(path.join(dir, 'models'));
  await writeModels(path.join(dir, 'models'));
  ({ server, url } = await startServer(path.join(dir, 'models')));
});
after(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

test('in-process: each level runs its streams together to the end', { skip }, async () => {
  const levels = [1, 3, 2];
  const seen: number[] = [];
  const results = await benchConcurrencyInProcess({
    model: path.join(dir, 'models', 'tiny'), backend: 'cpu', threads: 2, promptTokens: 8, genTokens: 6, levels,
  }, (n) => seen.push(n));
  assert.deepEqual(seen, levels);
  assert.deepEqual(results.map((r) => r.concurrency), levels);
  for (const r of results) {
    assert.equal(r.tokens, r.concurrency * 6);
    assert.ok(r.aggregateTps > 0 && r.streamTps > 0 && r.ttftMedianMs > 0 && r.ttftP95Ms >= r.ttftMedianMs);
  }
});

test('against a live server: streamed completions, tokens counted from usage', { skip }, async () => {
  const { model, results } = await benchConcurrencyServer({ url, promptTokens: 10, genTokens: 5, levels: [1, 4] });
  assert.equal(model, 'tiny', 'the first model the server lists');
  assert.deepEqual(results.map((r) => [r.concurrency, r.tokens]), [[1, 5], [4, 20]]);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /minerva_active_sequences\{model="tiny"\} 0/);
});

test('the CLI prints one row per level, with the speed-up over one stream', { skip }, async () => {
  const { stdout } = await run(process.execPath, [CLI, 'bench', '--url', url, '--model-name', 'tiny-gguf', '--concurrency', '1,2', '-p', '6', '-n', '4']);
  const rows = stdout.trim().split('\n');
  assert.match(rows[0]!, /model tiny-gguf at http/);
  assert.match(rows[1]!, /streams\s+aggregate tok\/s\s+per stream tok\/s/);
  assert.match(rows[2]!, /^1\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+1\.00×$/);
  assert.match(rows[3]!, /^2\s+[\d.]+/);
});

test('bad --concurrency lists and option mixes are refused with a clear message', async () => {
  assert.deepEqual(parseConcurrencyList('1,4,8,16'), [1, 4, 8, 16]);
  for (const bad of ['', '0', '1,,2', '-1', '2.5', 'a', '1,300']) {
    assert.throws(() => parseConcurrencyList(bad), /comma-separated list of integers in 1\.\.256/, bad);
  }
  const fail = (args: string[]) => run(process.execPath, [CLI, 'bench', ...args]).then(() => assert.fail('should fail'), (e: { stderr: string }) => e.stderr);
  assert.match(await fail(['--concurrency', '1,x', '--synthetic', 'stories-110m']), /--concurrency.*invalid/);
  assert.match(await fail(['--url', 'http://127.0.0.1:1', 'm.gguf']), /go with --concurrency/);
  assert.match(await fail(['--url', 'ftp://x', '--concurrency', '1']), /http or https URL/);
  assert.match(await fail(['--url', 'http://127.0.0.1:1', '--concurrency', '1', 'm.gguf']), /give no model path/);
});
