// The webgpu backend from the command line: `minerva devices`, `run --backend webgpu`, and the one
// line a user gets where there is no GPU adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { FIXTURES, fixturesSkip } from './helpers/fixtures.js';
import { webgpuSkip } from './helpers/webgpu.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
const STORIES = path.join(FIXTURES, 'llama2c/stories260K.bin');
const TOK512 = path.join(FIXTURES, 'llama2c/tok512.bin');
const skip = await webgpuSkip();
const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) => run(process.execPath, [CLI, ...args], { timeout: 120_000, env });

test('minerva devices lists the adapters with features and limits, and what auto picks', { skip }, async () => {
  const { stdout } = await cli(['devices', '--json']);
  const out = JSON.parse(stdout) as { adapters: { description: string; software: boolean; features: string[]; limits: Record<string, number> }[]; auto: string };
  assert.ok(out.adapters.length >= 1);
  for (const a of out.adapters) assert.ok(a.description.length > 0 && a.limits.maxStorageBufferBindingSize! > 0);
  // auto takes a GPU only when a hardware adapter is there: software ones are used by name only.
  assert.equal(out.auto, out.adapters.some((a) => !a.software) ? 'webgpu' : 'cpu');
  const text = (await cli(['devices'])).stdout;
  assert.match(text, /--backend auto picks: (webgpu|cpu)/);
  // And which kernel build the cpu backend runs here (relaxed SIMD only where its self-test passed).
  assert.ok(['plain', 'relaxed'].includes((JSON.parse(stdout) as { cpuKernels: { set: string } }).cpuKernels.set));
  assert.match(text, /^cpu backend kernels: (plain SIMD \(.+\)|relaxed SIMD \(.*self-test passed.*\))$/m);
});

test('minerva run --backend webgpu writes stories260K\'s greedy text', { skip: fixturesSkip || skip }, async () => {
  const { stdout } = await cli(['run', STORIES, 'Zoo', '--tokenizer', TOK512, '--temperature', '0', '-n', '12', '--backend', 'webgpu']);
  assert.equal(stdout, ' was a little girl named Lily. She loved\n');
});

test('--backend webgpu with no Vulkan driver: one line saying so, exit 1; auto falls back to cpu', {
  skip: fixturesSkip || (process.platform !== 'linux' && 'the Vulkan loader\'s VK_ICD_FILENAMES is how a missing driver is staged'),
}, async () => {
  const env = { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' };
  await assert.rejects(cli(['run', STORIES, 'Zoo', '--tokenizer', TOK512, '-n', '2', '--backend', 'webgpu'], env), (e: { code: number; stderr: string }) => {
    assert.equal(e.code, 1);
    const ours = e.stderr.split('\n').filter((l) => l.startsWith('minerva:'));
    assert.equal(ours.length, 1, e.stderr);
    assert.match(ours[0]!, /^minerva: webgpu: no GPU adapter \(Dawn needs a Vulkan driver/);
    return true;
  });
  const { stdout } = await cli(['run', STORIES, 'Zoo', '--tokenizer', TOK512, '--temperature', '0', '-n', '12'], env);
  assert.equal(stdout, ' was a little girl named Lily. She loved\n');
});
