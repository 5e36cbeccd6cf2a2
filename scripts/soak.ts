// The load soak of issue 17, from the command line (the logic is src/bench/soak.ts, which the
// test suite runs small):
//   node dist/scripts/soak.js --clients 200 --requests 10000 [--model <file.gguf|hf-folder>] [--port <n>] [--json <file>]
// Exits 1 naming each failed check, 2 on bad arguments.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { stepProgressBar } from '../src/cli/progress.js';
import { formatSoakReport, runSoak, SOAK_DEFAULTS, type SoakOptions } from '../src/bench/soak.js';
import { bundledDemoModel } from '../src/server/demo-model.js';

const HELP = `usage: node dist/scripts/soak.js [options]
  --clients <n>          clients streaming at once (default ${SOAK_DEFAULTS.clients})
  --requests <n>         requests in all (default ${SOAK_DEFAULTS.requests})
  --model <path>         a .gguf file or Hugging Face folder (default: the bundled demo, stories260K)
  --port <n>             server port (default: a free one)
  --parallel <n>         server --parallel (default ${SOAK_DEFAULTS.parallel})
  --max-queue <n>        server --max-queue (default ${SOAK_DEFAULTS.maxQueue})
  --ctx-size <n>         server --ctx-size (default ${SOAK_DEFAULTS.ctxSize}); over-context requests ask twice this
  --threads <n>          server --threads (default: all cores)
  --backend <name>       server --backend
  --max-tokens <n>       max_tokens of an ordinary request (default ${SOAK_DEFAULTS.maxTokens})
  --abort-share <x>      share of clients hanging up midway (default ${SOAK_DEFAULTS.abortShare})
  --over-context-share <x>  share asking beyond the context (default ${SOAK_DEFAULTS.overContextShare})
  --sampled-share <x>    share sampling at temperature 0.8, not compared (default ${SOAK_DEFAULTS.sampledShare})
  --warmup <n>           requests before the RSS baseline (default: min(1000, requests / 10))
  --rss-limit <MiB>      RSS growth allowed from warm-up to the end (default ${SOAK_DEFAULTS.rssGrowthLimitMiB})
  --seed <n>             seed of the request mix (default ${SOAK_DEFAULTS.seed})
  --json <file>          write the report as JSON
`;

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n${HELP}`);
  process.exit(2);
}

function int(name: string, v: string | undefined, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) fail(`--${name}: expected an integer in ${min}..${max}, got "${v}"`);
  return Number(v);
}

function share(name: string, v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < 0 || x > 1) fail(`--${name}: expected a number in 0..1, got "${v}"`);
  return x;
}

const STRINGS = ['clients', 'requests', 'model', 'port', 'parallel', 'max-queue', 'ctx-size', 'threads', 'backend', 'max-tokens',
  'abort-share', 'over-context-share', 'sampled-share', 'warmup', 'rss-limit', 'seed', 'json'] as const;
let values: Partial<Record<(typeof STRINGS)[number] | 'help', string | boolean>>;
try {
  ({ values } = parseArgs({
    options: { ...Object.fromEntries(STRINGS.map((k) => [k, { type: 'string' as const }])), help: { type: 'boolean' as const } },
    allowPositionals: false,
  }));
} catch (e) {
  fail((e as Error).message);
}
if (values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const s = (k: (typeof STRINGS)[number]) => values[k] as string | undefined;

const requests = int('requests', s('requests'), 1, 10_000_000, SOAK_DEFAULTS.requests);
const model = s('model') ?? bundledDemoModel()?.path;
if (!model) fail('--model: no model given and the bundled demo model (models/demo/stories260K.gguf) is missing');
if (!existsSync(model)) fail(`--model: no such file or folder: ${model}`);
const options: SoakOptions = {
  clients: int('clients', s('clients'), 1, 10_000, SOAK_DEFAULTS.clients),
  requests,
  model,
  port: int('port', s('port'), 0, 65535, SOAK_DEFAULTS.port),
  parallel: int('parallel', s('parallel'), 1, 256, SOAK_DEFAULTS.parallel),
  maxQueue: int('max-queue', s('max-queue'), 0, 1 << 20, SOAK_DEFAULTS.maxQueue),
  ctxSize: int('ctx-size', s('ctx-size'), 16, 1 << 20, SOAK_DEFAULTS.ctxSize),
  threads: s('threads') === undefined ? undefined : int('threads', s('threads'), 1, 256, 1),
  backend: s('backend'),
  maxTokens: int('max-tokens', s('max-tokens'), 1, 1 << 20, SOAK_DEFAULTS.maxTokens),
  abortShare: share('abort-share', s('abort-share'), SOAK_DEFAULTS.abortShare),
  overContextShare: share('over-context-share', s('over-context-share'), SOAK_DEFAULTS.overContextShare),
  sampledShare: share('sampled-share', s('sampled-share'), SOAK_DEFAULTS.sampledShare),
  warmup: int('warmup', s('warmup'), 0, requests - 1, Math.min(1000, Math.floor(requests / 10))),
  rssGrowthLimitMiB: int('rss-limit', s('rss-limit'), 0, 1 << 20, SOAK_DEFAULTS.rssGrowthLimitMiB),
  stallMs: SOAK_DEFAULTS.stallMs,
  seed: int('seed', s('seed'), 0, 2 ** 32 - 1, SOAK_DEFAULTS.seed),
};

// Stopped by a signal: exit, so that the server child is killed on the way out (soak-server.ts).
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
const bar = stepProgressBar('soak');
const report = await runSoak(options, (p) => bar.update({
  done: p.done, total: p.total, what: `${p.completed} completed, ${p.aborted} aborted, ${p.rejected} × 429, ${p.errors} failed`,
}));
bar.stop();
process.stdout.write(formatSoakReport(report));
const json = s('json');
if (json) await writeFile(json, JSON.stringify(report, null, 2) + '\n');
if (report.failures.length > 0) {
  process.stderr.write(`soak: ${report.failures.length} check${report.failures.length === 1 ? '' : 's'} failed: ${report.failures.map((f) => f.split(':')[0]).join(', ')}\n`);
  process.exit(1);
}
