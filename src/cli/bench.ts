// minerva bench <model>: prompt and decode speed of Minerva, and with --vs llamacpp of llama.cpp on
// the same file in the same run, reported as medians, ranges and Minerva/llama.cpp ratios.
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { benchLlamaCpp, benchMinerva, median, type BenchCase, type EngineResult } from '../bench/measure.js';
import type { BackendName } from '../engine/model.js';

export interface BenchOptions {
  backend: BackendName;
  threads?: number;
  promptTokens: number;
  genTokens: number;
  repeat: number;
  vs?: string;
  tokenizer?: string;
  json?: string;
  csv?: string;
}

const METRICS = [
  ['promptTps', 'prompt tok/s'], ['decodeTps', 'decode tok/s'], ['ttftMs', 'first token ms'],
  ['p50Ms', 'token p50 ms'], ['p95Ms', 'token p95 ms'],
] as const;

export async function benchCommand(modelPath: string, o: BenchOptions): Promise<void> {
  if (o.vs !== undefined && o.vs !== 'llamacpp') throw new Error(`--vs ${o.vs}: only "llamacpp" is supported`);
  const c: BenchCase = {
    model: modelPath, promptTokens: o.promptTokens, genTokens: o.genTokens, repeat: o.repeat,
    threads: o.threads ?? availableParallelism(), tokenizer: o.tokenizer,
  };
  const status = (engine: string) => (i: number) => {
    if (process.stderr.isTTY) process.stderr.write(`\r${engine}: run ${i + 1}/${c.repeat}…   `);
  };
  const minerva = await benchMinerva(c, o.backend, status(`minerva-${o.backend}`));
  const results: EngineResult[] = [minerva];
  if (o.vs === 'llamacpp') results.push(await benchLlamaCpp(c, minerva.prompt, status('llama.cpp')));
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');

  process.stdout.write(`model ${modelPath}, ${c.threads} threads, ${c.promptTokens}-token prompt, `
    + `${c.genTokens} greedy tokens, ${c.repeat} runs (median [min–max])\n`);
  const rows = results.map((r) => [r.engine, `${r.loadMs.toFixed(0)} ms`, ...METRICS.map(([key]) => {
    const xs = r.runs.map((x) => x[key]);
    return `${fmt(median(xs))} [${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}]`;
  }), `${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`]);
  const header = ['engine', 'load', ...METRICS.map(([, label]) => label), 'peak RSS (process)'];
  printTable([header, ...rows]);
  const ratios: Record<string, number> = {};
  if (results.length === 2) {
    const [m, l] = results as [EngineResult, EngineResult];
    for (const key of ['promptTps', 'decodeTps'] as const) {
      ratios[key] = median(m.runs.map((x) => x[key])) / median(l.runs.map((x) => x[key]));
    }
    process.stdout.write(`\nMinerva / llama.cpp: prompt ${ratios.promptTps!.toFixed(2)}×, decode ${ratios.decodeTps!.toFixed(2)}×\n`);
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
