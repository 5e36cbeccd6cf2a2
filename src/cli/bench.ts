// minerva bench <model>: prompt and decode speed of Minerva, and with --vs llamacpp of llama.cpp on
// the same file in the same run, reported as medians, ranges and Minerva/llama.cpp ratios.
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { benchLlamaCpp, benchMinerva, median, type BenchCase, type EngineResult } from '../bench/measure.js';
import path from 'node:path';
import type { BackendName } from '../engine/model.js';
import { syntheticModel, SYNTHETIC_PRESETS, type SyntheticDType, type SyntheticPreset } from '../bench/synthetic.js';
import type { LoadQuant } from '../quant/quantize-on-load.js';
import { progressBar } from './progress.js';
import { benchConcurrencyInProcess, benchConcurrencyServer, type LevelResult } from '../bench/concurrency.js';

export interface BenchOptions {
  synthetic?: SyntheticPreset;
  dtype?: SyntheticDType;
  quant?: LoadQuant;
  backend: BackendName;
  threads?: number;
  promptTokens: number;
  genTokens: number;
  repeat: number;
  vs?: string;
  tokenizer?: string;
  json?: string;
  csv?: string;
  /** --concurrency 1,4,8,16: streams at once per level, instead of the single-stream comparison. */
  concurrency?: number[];
  /** --url: measure a live server instead of loading the model here. */
  url?: string;
  modelName?: string;
  apiKey?: string;
}

const METRICS = [
  ['promptTps', 'prompt tok/s'], ['decodeTps', 'decode tok/s'], ['ttftMs', 'first token ms'],
  ['p50Ms', 'token p50 ms'], ['p95Ms', 'token p95 ms'],
] as const;

export async function benchCommand(modelArg: string | undefined, o: BenchOptions): Promise<void> {
  if (o.vs !== undefined && o.vs !== 'llamacpp') throw new Error(`--vs ${o.vs}: only "llamacpp" is supported`);
  if (o.url !== undefined || o.modelName !== undefined || o.apiKey !== undefined) {
    if (o.concurrency === undefined) throw new Error('--url, --model-name and --api-key go with --concurrency');
  }
  if (o.concurrency !== undefined) {
    if (o.vs !== undefined) throw new Error('--concurrency measures Minerva alone; leave out --vs');
    if (o.url !== undefined) {
      if (modelArg !== undefined || o.synthetic !== undefined) throw new Error('with --url the server\'s model is measured: give no model path or --synthetic (use --model-name)');
      return concurrencyCommand(undefined, o);
    }
  }
  const { modelPath, llamaPath, label } = await resolveModel(modelArg, o);
  if (o.concurrency !== undefined) return concurrencyCommand({ modelPath, label }, o);
  const c: BenchCase = {
    model: modelPath, llamaModel: llamaPath, quant: o.quant, promptTokens: o.promptTokens, genTokens: o.genTokens,
    repeat: o.repeat, threads: o.threads ?? availableParallelism(), tokenizer: o.tokenizer,
  };
  const status = (engine: string) => (i: number) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${engine}: run ${i + 1}/${c.repeat}…   `);
  };
  const minerva = await benchMinerva(c, o.backend, status(`minerva-${o.backend}`));
  const results: EngineResult[] = [minerva];
  const onGpu = minerva.engine === 'minerva-webgpu';
  if (o.vs === 'llamacpp') results.push(await benchLlamaCpp(c, minerva.prompt, status('llama.cpp'), onGpu));
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');

  process.stdout.write(`model ${label}${o.quant ? ` --quant ${o.quant}` : ''}, ${c.threads} threads, ${c.promptTokens}-token prompt, `
    + `${c.genTokens} greedy tokens, ${c.repeat} runs (median [min–max])\n`);
  const rows = results.map((r) => [r.engine, `${r.loadMs.toFixed(0)} ms`, ...METRICS.map(([key]) => {
    const xs = r.runs.map((x) => x[key]);
    return `${fmt(median(xs))} [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`;
  }), `${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`]);
  const header = ['engine', 'load', ...METRICS.map(([, label]) => label), 'peak RSS (process)'];
  printTable([header, ...rows]);
  const perToken = minerva.runs.map((r) => r.perToken).filter((p) => p !== undefined);
  if (perToken.length > 0) {
    const m = (k: string) => median(perToken.map((p) => p[k] ?? NaN));
    const gpu = m('gpuMs') > 0 ? `GPU ${fmt(m('gpuMs'))} ms (timestamp queries${m('untimedPasses') > 0 ? `; ${fmt(m('untimedPasses'))} passes per token untimed` : ''})`
      : 'GPU time not measured (no timestamp-query)';
    process.stdout.write(`\nminerva-webgpu per decoded token (median): ${fmt(1000 / median(minerva.runs.map((r) => r.decodeTps)))} ms = ${gpu}, `
      + `JS recording ${fmt(m('encodeMs'))} ms; ${fmt(m('dispatches'))} dispatches, ${fmt(m('submits'))} submits\n`);
  }
  const ratios: Record<string, number> = {};
  if (results.length === 2) {
    const [m, l] = results as [EngineResult, EngineResult];
    for (const key of ['promptTps', 'decodeTps'] as const) {
      ratios[key] = median(m.runs.map((x) => x[key])) / median(l.runs.map((x) => x[key]));
    }
    process.stdout.write(`\nMinerva / ${l.engine}: prompt ${ratios.promptTps!.toFixed(2)}×, decode ${ratios.decodeTps!.toFixed(2)}×\n`);
  }
  if (o.json) await writeFile(o.json, JSON.stringify({ case: c, results, ratios }, null, 2));
  if (o.csv) {
    const lines = ['engine,run,' + METRICS.map(([k]) => k).join(',') + ',loadMs,peakRssBytes'];
    for (const r of results) {
      r.runs.forEach((x, i) => lines.push([r.engine, i, ...METRICS.map(([k]) => x[k]), r.loadMs, r.peakRssBytes].join(',')));
    }
    await writeFile(o.csv, lines.join('\n') + '\n');
  }
}

function fmt(x: number): string {
  return Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(2)) : '–';
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
}

/** The model to run: a path as given, or a --synthetic model (generated once, then cached). */
async function resolveModel(modelArg: string | undefined, o: BenchOptions): Promise<{ modelPath: string; llamaPath?: string; label: string }> {
  if ((modelArg === undefined) === (o.synthetic === undefined)) throw new Error('give a model path or --synthetic <preset>, not both');
  if (o.dtype !== undefined && o.synthetic === undefined) throw new Error('--dtype chooses the weight type of a --synthetic model');
  let modelPath = modelArg!, llamaPath: string | undefined, label = modelArg!;
  if (o.synthetic !== undefined) {
    const dtype = o.dtype ?? 'f16';
    const bar = progressBar(`generating ${o.synthetic} ${dtype}`);
    const files = await syntheticModel(o.synthetic, SYNTHETIC_PRESETS[o.synthetic], dtype, { onProgress: bar.update });
    bar.stop();
    // Minerva runs the SafeTensors folder when there is one (running it directly is the point);
    // llama.cpp always the GGUF of the same weights.
    modelPath = files.hf ?? files.gguf;
    llamaPath = files.gguf;
    label = `synthetic ${o.synthetic} ${dtype} (${files.hf ? 'Minerva: SafeTensors, llama.cpp: GGUF' : 'GGUF'}; ${path.dirname(files.gguf)})`;
  }
  return { modelPath, llamaPath, label };
}

/** --concurrency: each level's streams at once, in-process or against --url. */
async function concurrencyCommand(local: { modelPath: string; label: string } | undefined, o: BenchOptions): Promise<void> {
  const levels = o.concurrency!;
  const status = (n: number) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${n} concurrent stream${n === 1 ? '' : 's'}…   `);
  };
  let results: LevelResult[], label: string;
  const threads = o.threads ?? availableParallelism();
  if (local) {
    results = await benchConcurrencyInProcess({
      model: local.modelPath, backend: o.backend, threads, quant: o.quant, tokenizer: o.tokenizer,
      promptTokens: o.promptTokens, genTokens: o.genTokens, levels,
    }, status);
    label = `model ${local.label}${o.quant ? ` --quant ${o.quant}` : ''}, in-process, ${o.backend} backend, ${threads} threads`;
  } else {
    const r = await benchConcurrencyServer({
      url: o.url!, model: o.modelName, apiKey: o.apiKey, promptTokens: o.promptTokens, genTokens: o.genTokens, levels,
    }, status);
    results = r.results;
    label = `model ${r.model} at ${o.url}`;
  }
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
  process.stdout.write(`${label}, ${o.promptTokens}-token prompt, ${o.genTokens} greedy tokens per stream\n`);
  const single = results.find((r) => r.concurrency === 1)?.aggregateTps;
  const header = ['streams', 'aggregate tok/s', 'per stream tok/s', 'first token ms (median)', 'first token ms (p95)', ...(single ? ['× 1 stream'] : [])];
  printTable([header, ...results.map((r) => [
    String(r.concurrency), fmt(r.aggregateTps), fmt(r.streamTps), fmt(r.ttftMedianMs), fmt(r.ttftP95Ms),
    ...(single ? [`${(r.aggregateTps / single).toFixed(2)}×`] : []),
  ])]);
  if (o.json) await writeFile(o.json, JSON.stringify({ label, promptTokens: o.promptTokens, genTokens: o.genTokens, results }, null, 2));
  if (o.csv) {
    const keys = ['concurrency', 'tokens', 'wallMs', 'aggregateTps', 'streamTps', 'ttftMedianMs', 'ttftP95Ms'] as const;
    await writeFile(o.csv, [keys.join(','), ...results.map((r) => keys.map((k) => r[k]).join(','))].join('\n') + '\n');
  }
}
