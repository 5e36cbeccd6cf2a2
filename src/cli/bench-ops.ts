// minerva bench ops: per-backend tensor-op throughput (matmul per weight type against the
// machine's read bandwidth, elementwise ops, rmsNorm, rope, attention, SafeTensors vs JSON
// loading), as a table, JSON, CSV and an SVG chart.
import { writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { autoBackend } from '../backends/webgpu/gpu.js';
import {
  makePlan, parseBackendList, parseDTypeList, parseIntList, parseOpList, type OpsBackend, type OpsFlags,
} from '../bench/ops-cases.js';
import { formatCsv, formatReport, machineInfo, makeReport } from '../bench/ops-report.js';
import { kernelChoice } from '../backends/cpu/kernel-module.js';
import { runOps } from '../bench/ops-runner.js';
import { formatSvg } from '../bench/ops-svg.js';
import { stepProgressBar } from './progress.js';

export interface BenchOpsOptions extends OpsFlags {
  json?: string;
  csv?: string;
  svg?: string;
}

/** A commander parser from one of ops-cases' list parsers (their messages start with the flag, which commander names itself). */
function listArg<T>(flag: string, parse: (flag: string, value: string) => T) {
  return (value: string): T => {
    try {
      return parse(flag, value);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

export const benchOpsArgs = {
  backend: listArg('--backend', parseBackendList),
  ops: listArg('--ops', parseOpList),
  dtypes: listArg('--dtypes', parseDTypeList),
  sizes: listArg('--sizes', (f, v) => parseIntList(f, v, 1 << 14)),
  batches: listArg('--batches', (f, v) => parseIntList(f, v, 4096)),
  contexts: listArg('--contexts', (f, v) => parseIntList(f, v, 1 << 17)),
  threads: listArg('--threads', (f, v) => parseIntList(f, v, 256)),
};

/** --svg, or the --json / --csv file's name with .svg. */
export function svgPath(o: BenchOpsOptions): string | undefined {
  if (o.svg) return o.svg;
  const beside = o.json ?? o.csv;
  if (!beside) return undefined;
  const ext = path.extname(beside);
  return (ext ? beside.slice(0, -ext.length) : beside) + '.svg';
}

export async function benchOpsCommand(o: BenchOpsOptions, cmd?: Command): Promise<void> {
  // `minerva bench --threads 2 ops`: the model bench took --threads; say so rather than ignore it.
  const parent = cmd?.parent;
  const early = parent?.options.filter((opt) => parent.getOptionValueSource(opt.attributeName()) === 'cli').map((opt) => opt.long) ?? [];
  if (early.length > 0) throw new Error(`${early.join(', ')} before "ops" belong to minerva bench <model>; put the options of bench ops after "ops"`);
  const backends: OpsBackend[] = o.backend === undefined || o.backend === 'auto' ? [await autoBackend()] : o.backend;
  const plan = makePlan(o, backends, availableParallelism());
  const machine = await machineInfo();
  const bar = stepProgressBar('bench ops');
  let run;
  try {
    run = await runOps(plan, (done, total, what) => bar.update({ done, total, what }));
  } finally {
    bar.stop();
  }
  if (o.threads && !backends.includes('cpu')) run.notes.push('--threads applies to the cpu backend only');
  if (backends.includes('cpu')) run.notes.push(`cpu kernels: ${(await kernelChoice()).description}`);
  const report = makeReport(machine, plan, run);
  process.stdout.write(formatReport(report));
  const written: string[] = [];
  if (o.json) {
    await writeFile(o.json, JSON.stringify(report, null, 2) + '\n');
    written.push(o.json);
  }
  if (o.csv) {
    await writeFile(o.csv, formatCsv(report));
    written.push(o.csv);
  }
  const svgFile = svgPath(o);
  if (svgFile) {
    const svg = formatSvg(report);
    if (svg) {
      await writeFile(svgFile, svg);
      written.push(svgFile);
    } else if (o.svg) {
      process.stderr.write('minerva: no chart written: the chart shows matmul results, and none were measured (--ops)\n');
    }
  }
  if (written.length > 0) process.stdout.write(`\nwrote ${written.join(', ')}\n`);
}
