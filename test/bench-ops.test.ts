// `minerva bench ops`: the CLI runs a tiny op set on the cpu and reference backends and writes a
// table, JSON (checked against a JSON schema by Ajv), CSV and a well-formed SVG chart; bad flags
// fail naming the flag; `minerva bench <model>` still parses beside the subcommand; the read
// bandwidth the cpu backend measures is a real, positive figure. Speeds are never asserted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ajv } from 'ajv';
import { CpuBackend } from '../src/backends/cpu/cpu-backend.js';
import { CSV_COLUMNS } from '../src/bench/ops-report.js';

const run = promisify(execFile);
const CLI = new URL('../src/cli/main.js', import.meta.url).pathname;
let dir: string;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'minerva-bench-ops-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const DTYPES = ['F32', 'Q8_0', 'Q4_K'];
const SIZES = [256, 512];
const BATCHES = [1, 4];
const ELEMENTWISE = ['add', 'siluMul', 'geluMul', 'softcap', 'rmsNorm', 'rope'];

const positive = { type: 'number', exclusiveMinimum: 0 };
const REPORT_SCHEMA = {
  type: 'object',
  required: ['version', 'machine', 'plan', 'bandwidth', 'results', 'loading', 'notes'],
  properties: {
    version: { const: 1 },
    machine: {
      type: 'object', required: ['cpu', 'logicalCpus', 'platform', 'arch', 'node'],
      properties: { cpu: { type: 'string', minLength: 1 }, logicalCpus: { type: 'integer', minimum: 1 } },
    },
    plan: {
      type: 'object', required: ['backends', 'ops', 'dtypes', 'sizes', 'batches', 'contexts', 'threads'],
      properties: { backends: { type: 'array', minItems: 1 }, sizes: { type: 'array', items: { type: 'integer', minimum: 1 } } },
    },
    bandwidth: {
      type: 'array', minItems: 1,
      items: { type: 'object', required: ['threads', 'bytes', 'gbps'], properties: { threads: { type: 'integer', minimum: 1 }, bytes: positive, gbps: positive } },
    },
    results: {
      type: 'array', minItems: 1,
      items: {
        type: 'object', required: ['backend', 'threads', 'op', 'msPerCall', 'msMin', 'calls'],
        properties: {
          backend: { enum: ['cpu', 'reference', 'webgpu'] },
          threads: { type: ['integer', 'null'] },
          op: { enum: ['matmul', 'attention', ...ELEMENTWISE] },
          dtype: { enum: DTYPES },
          msPerCall: positive, msMin: positive, calls: { type: 'integer', minimum: 1 },
          gflops: positive, gbps: positive, bandwidthFraction: positive,
          mode: { enum: ['decode', 'batch'] },
        },
      },
    },
    loading: {
      type: 'array', minItems: 2, maxItems: 2,
      items: { type: 'object', required: ['format', 'tensorBytes', 'fileBytes', 'msMedian', 'mbps'], properties: { format: { enum: ['safetensors', 'json'] }, mbps: positive } },
    },
    notes: { type: 'array', items: { type: 'string' } },
  },
};

/** Tags opened and closed in order (no XML library in the project: a stack is enough for what we write). */
function assertWellFormed(svg: string): void {
  const body = svg.replace(/^<\?xml[^>]*\?>\s*/, '');
  assert.match(body, /^<svg\s[^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"/, 'the root element is <svg>');
  const stack: string[] = [];
  for (const m of body.matchAll(/<(\/?)([a-zA-Z]+)\b[^>]*?(\/?)>/g)) {
    const [, close, name, selfClose] = m;
    if (selfClose) continue;
    if (close) assert.equal(stack.pop(), name, `</${name}> closes the element open`);
    else stack.push(name!);
  }
  assert.deepEqual(stack, [], 'every element is closed');
  assert.ok(!/&(?!amp;|lt;|gt;|quot;)/.test(body), 'no bare ampersands');
}

test('a tiny op set on cpu (1 and 2 threads) and reference: table, JSON, CSV and SVG', async () => {
  const json = path.join(dir, 'ops.json'), csv = path.join(dir, 'ops.csv');
  const { stdout } = await run(process.execPath, [
    CLI, 'bench', 'ops', '--backend', 'cpu,reference', '--dtypes', 'f32,q8_0,Q4_K', '--sizes', SIZES.join(','), '--batches', BATCHES.join(','),
    '--contexts', '64', '--threads', '1,2', '--repeat', '1', '--min-time', '0', '--bandwidth-mib', '2', '--load-mib', '1',
    '--json', json, '--csv', csv,
  ], { timeout: 120_000 });

  const report = JSON.parse(await readFile(json, 'utf8'));
  const ajv = new Ajv({ allErrors: true });
  assert.ok(ajv.validate(REPORT_SCHEMA, report), ajv.errorsText());
  assert.ok(stdout.includes(`CPU: ${report.machine.cpu}`), 'the table names the CPU');
  for (const label of ['matmul — cpu, 1 thread', 'matmul — cpu, 2 threads', 'matmul — reference', 'attention', 'tensor loading']) {
    assert.ok(stdout.includes(label), `the table has "${label}"`);
  }
  assert.match(stdout, /softmax/, 'the output says why softmax is not measured');

  // Every case ran once: per config (cpu×1, cpu×2, reference) every dtype × size × batch of matmul, every op × size × batch, attention decode and batch.
  const configs = [['cpu', 1], ['cpu', 2], ['reference', null]] as const;
  for (const [backend, threads] of configs) {
    const mine = report.results.filter((r: { backend: string; threads: number | null }) => r.backend === backend && r.threads === threads);
    for (const dtype of DTYPES) {
      for (const n of SIZES) {
        for (const batch of BATCHES) {
          const r = mine.find((x: Record<string, unknown>) => x.op === 'matmul' && x.dtype === dtype && x.n === n && x.k === n && x.batch === batch);
          assert.ok(r, `${backend}/${threads}: matmul ${dtype} ${n} × ${batch}`);
          assert.ok(Number.isFinite(r.gflops) && r.gflops > 0);
          if (batch === 1) assert.ok(r.gbps > 0 && r.bandwidthFraction > 0, 'batch 1 has GB/s held against the read bandwidth');
        }
      }
    }
    for (const op of ELEMENTWISE) assert.equal(mine.filter((x: { op: string }) => x.op === op).length, SIZES.length * BATCHES.length, `${backend}: ${op}`);
    assert.deepEqual(mine.filter((x: { op: string }) => x.op === 'attention').map((x: { mode: string }) => x.mode).sort(), ['batch', 'decode']);
  }
  assert.deepEqual(report.bandwidth.map((b: { threads: number }) => b.threads).sort(), [1, 2]);
  assert.deepEqual(report.loading.map((l: { format: string }) => l.format), ['safetensors', 'json']);
  assert.ok(report.loading.every((l: { tensorBytes: number }) => l.tensorBytes === 2 ** 20));

  const lines = (await readFile(csv, 'utf8')).trimEnd().split('\n');
  assert.equal(lines[0], CSV_COLUMNS.join(','));
  assert.equal(lines.length - 1, report.bandwidth.length + report.results.length + report.loading.length);
  for (const l of lines) assert.equal(l.split(',').length, CSV_COLUMNS.length, l);
  const matmulRow = lines.find((l) => l.startsWith('cpu,1,matmul,Q4_K,256,256,1,'));
  assert.ok(matmulRow, 'a matmul row');

  // The chart, written beside --json: per config a GFLOP/s panel per batch and a GB/s panel, one line per dtype in each.
  const svg = await readFile(path.join(dir, 'ops.svg'), 'utf8');
  assertWellFormed(svg);
  const panels = svg.split('<g class="panel"').slice(1);
  assert.equal(panels.length, configs.length * (BATCHES.length + 1));
  for (const p of panels) {
    const series = [...p.matchAll(/<polyline class="series" data-series="([^"]+)" points="([^"]+)"/g)];
    assert.deepEqual(series.map((s) => s[1]), DTYPES, 'one polyline per weight type');
    for (const s of series) assert.equal(s[2]!.trim().split(/\s+/).length, SIZES.length, 'a point per size');
    const isBandwidthPanel = p.includes('GB/s');
    assert.equal(/<line class="read-bandwidth"/.test(p), isBandwidthPanel, 'the read-bandwidth line is drawn in the GB/s panel only');
  }
});

test('bad flags fail with a message naming the flag', async () => {
  const fails = async (args: string[], flag: string, what: RegExp) => {
    await assert.rejects(run(process.execPath, [CLI, 'bench', 'ops', ...args]), (e: { code: number; stderr: string }) => {
      assert.notEqual(e.code, 0);
      assert.ok(e.stderr.includes(flag), `stderr names ${flag}: ${e.stderr}`);
      assert.match(e.stderr, what);
      return true;
    });
  };
  // (each is a process start, about half a second: run side by side)
  await Promise.all([
    fails(['--dtypes', 'f32,q9_9'], '--dtypes', /unknown weight type "q9_9"/),
    fails(['--sizes', '0'], '--sizes', /"0" is not a positive integer/),
    fails(['--sizes', '256,abc'], '--sizes', /"abc" is not a positive integer/),
    fails(['--batches', '1.5'], '--batches', /"1\.5" is not a positive integer/),
    fails(['--sizes', '-4'], '--sizes', /not a positive integer/),
    fails(['--contexts', ''], '--contexts', /empty list/),
    fails(['--threads', ','], '--threads', /empty list/),
    fails(['--batches', '1,,4'], '--batches', /empty item/),
    fails(['--ops', 'softmax'], '--ops', /unknown op "softmax"/),
    fails(['--backend', 'cuda'], '--backend', /unknown backend "cuda"/),
  ]);
});

test('minerva bench <model> and --synthetic still parse beside the ops subcommand', async () => {
  // A model path reaches the model bench (which fails on the missing file, not on parsing).
  await assert.rejects(run(process.execPath, [CLI, 'bench', path.join(dir, 'missing.gguf'), '--threads', '2', '-r', '1', '--json', path.join(dir, 'x.json')]),
    (e: { stderr: string }) => /missing\.gguf: no such file/.test(e.stderr));
  await assert.rejects(run(process.execPath, [CLI, 'bench', '--synthetic', 'no-such-preset']),
    (e: { stderr: string }) => /--synthetic <preset>.*Allowed choices are tinyllama-1\.1b/s.test(e.stderr));
  await assert.rejects(run(process.execPath, [CLI, 'bench', '--dtype', 'q4_0', path.join(dir, 'm.gguf')]),
    (e: { stderr: string }) => /--dtype chooses the weight type of a --synthetic model/.test(e.stderr));
  await assert.rejects(run(process.execPath, [CLI, 'bench', '--threads', '2', 'ops', '--ops', 'load']),
    (e: { stderr: string }) => /--threads before "ops" belong to minerva bench <model>/.test(e.stderr));
  const { stdout } = await run(process.execPath, [CLI, 'bench', '--help']);
  assert.match(stdout, /ops \[options\]/);
  assert.match(stdout, /--vs <engine>/);
});

test('the cpu backend measures a positive, finite read bandwidth over every byte', async () => {
  for (const threads of [1, 2]) {
    const cpu = await CpuBackend.create(threads);
    try {
      const m = cpu.measureReadBandwidth(3 * 2 ** 20 + 1, 2);
      assert.equal(m.bytes, 4 * 2 ** 20, 'rounded up to whole 1 MiB chunks');
      assert.equal(m.checksum, m.bytes / 4, 'the sum of the ones read back: every f32 was read once');
      assert.ok(Number.isFinite(m.bytesPerSecond) && m.bytesPerSecond > 0, String(m.bytesPerSecond));
      assert.throws(() => cpu.measureReadBandwidth(0), /bytes must be a positive integer/);
    } finally {
      cpu.dispose();
    }
  }
});
