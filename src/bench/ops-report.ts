// minerva bench ops: what the run was on (the machine), and its results as a text table, JSON and CSV.
import { execFile } from 'node:child_process';
import { arch, availableParallelism, cpus, platform, totalmem } from 'node:os';
import { promisify } from 'node:util';
import type { OpsPlan } from './ops-cases.js';
import type { OpResult, RunOutput } from './ops-runner.js';

export interface MachineInfo {
  /** lscpu's "Model name", else os.cpus()[0].model. */
  cpu: string;
  /** lscpu's CPU family / Model / Stepping (x86), where it reports them. */
  family?: string;
  model?: string;
  stepping?: string;
  /** Logical CPUs this process may use. */
  logicalCpus: number;
  memoryBytes: number;
  platform: string;
  arch: string;
  node: string;
  /** The GPU adapter, when the webgpu backend ran. */
  gpu?: string;
}

/** The JSON a run writes (--json). */
export interface OpsReport {
  version: 1;
  machine: MachineInfo;
  plan: OpsPlan;
  bandwidth: RunOutput['bandwidth'];
  results: OpResult[];
  loading: RunOutput['loading'];
  notes: string[];
}

/** This machine, named as lscpu names it where lscpu exists (Linux), else as Node does. */
export async function machineInfo(): Promise<MachineInfo> {
  const info: MachineInfo = {
    cpu: cpus()[0]?.model.trim() || 'unknown CPU', logicalCpus: availableParallelism(), memoryBytes: totalmem(),
    platform: platform(), arch: arch(), node: process.version,
  };
  try {
    const { stdout } = await promisify(execFile)('lscpu', [], { timeout: 5000, env: { ...process.env, LC_ALL: 'C' } });
    const field = (name: string) => new RegExp(`^${name}:\\s*(.+)$`, 'm').exec(stdout)?.[1]?.trim();
    info.cpu = field('Model name') ?? info.cpu;
    const family = field('CPU family'), model = field('Model'), stepping = field('Stepping');
    if (family) info.family = family;
    if (model) info.model = model;
    if (stepping) info.stepping = stepping;
  } catch {
    // no lscpu (macOS, Windows): os.cpus() names the CPU
  }
  return info;
}

export function makeReport(machine: MachineInfo, plan: OpsPlan, run: RunOutput): OpsReport {
  return {
    version: 1, machine: { ...machine, ...(run.adapter ? { gpu: run.adapter } : {}) }, plan,
    bandwidth: run.bandwidth, results: run.results, loading: run.loading, notes: run.notes,
  };
}

const fmt = (x: number | undefined, digits = 2): string => {
  if (x === undefined || !Number.isFinite(x)) return '–';
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(digits);
};

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

const configLabel = (backend: string, threads: number | null) => `${backend}${threads === null ? '' : `, ${threads} thread${threads === 1 ? '' : 's'}`}`;

/** The report as text: a header naming the machine, then a table per op family and backend. */
export function formatReport(r: OpsReport): string {
  const m = r.machine;
  const id = [m.family && `family ${m.family}`, m.model && `model ${m.model}`, m.stepping && `stepping ${m.stepping}`].filter(Boolean).join(', ');
  let s = `CPU: ${m.cpu}${id ? ` (${id})` : ''}, ${m.logicalCpus} logical CPUs, ${(m.memoryBytes / 2 ** 30).toFixed(0)} GiB; ${m.platform}-${m.arch}, Node ${m.node}\n`;
  if (m.gpu) s += `GPU: ${m.gpu}\n`;
  s += `backends: ${r.plan.backends.join(', ')}; medians of ≥${r.plan.repeat} calls and ≥${r.plan.minTimeMs} ms per case\n`;
  for (const b of r.bandwidth) s += `read bandwidth (wasm SIMD sum over ${(b.bytes / 2 ** 20).toFixed(0)} MiB), ${b.threads} thread${b.threads === 1 ? '' : 's'}: ${fmt(b.gbps)} GB/s\n`;

  const configs = [...new Map(r.results.map((x) => [configLabel(x.backend, x.threads), x])).entries()];
  for (const [label, first] of configs) {
    const mine = r.results.filter((x) => x.backend === first.backend && x.threads === first.threads);
    const mm = mine.filter((x) => x.op === 'matmul');
    if (mm.length > 0) {
      const batches = [...new Set(mm.map((x) => x.batch!))].sort((a, b) => a - b);
      const rows = [['dtype', 'n=k', ...batches.map((b) => `GFLOP/s t=${b}`), 'GB/s t=1', '% read BW']];
      for (const key of [...new Set(mm.map((x) => `${x.dtype}|${x.n}`))]) {
        const cases = mm.filter((x) => `${x.dtype}|${x.n}` === key);
        const one = cases.find((x) => x.batch === 1);
        rows.push([cases[0]!.dtype!, String(cases[0]!.n), ...batches.map((b) => fmt(cases.find((x) => x.batch === b)?.gflops)),
          fmt(one?.gbps), one?.bandwidthFraction === undefined ? '–' : `${(one.bandwidthFraction * 100).toFixed(0)}%`]);
      }
      s += `\nmatmul — ${label}\n${table(rows)}`;
    }
    const ew = mine.filter((x) => x.op !== 'matmul' && x.op !== 'attention');
    if (ew.length > 0) {
      const rows = [['op', 'row', 'rows', 'µs/call', 'GB/s']];
      for (const x of ew) rows.push([x.op, String(x.n), String(x.batch), fmt(x.msPerCall * 1000), fmt(x.gbps)]);
      s += `\nelementwise, rmsNorm, rope — ${label}\n${table(rows)}`;
    }
    const at = mine.filter((x) => x.op === 'attention');
    if (at.length > 0) {
      const rows = [['context', 'mode', 'sequences', 'µs/call', 'GFLOP/s', 'KV GB/s']];
      for (const x of at) rows.push([String(x.ctx), x.mode!, String(x.batch), fmt(x.msPerCall * 1000), fmt(x.gflops), fmt(x.gbps)]);
      s += `\nattention (32 query heads, 8 KV heads of 64) — ${label}\n${table(rows)}`;
    }
  }
  if (r.loading.length > 0) {
    const rows = [['format', 'tensor MiB', 'file MiB', 'ms', 'MB/s']];
    for (const l of r.loading) rows.push([l.format, fmt(l.tensorBytes / 2 ** 20), fmt(l.fileBytes / 2 ** 20), fmt(l.msMedian), fmt(l.mbps)]);
    s += `\ntensor loading (f32, page cache warm)\n${table(rows)}`;
  }
  if (r.notes.length > 0) s += `\nnotes:\n${r.notes.map((n) => `- ${n}`).join('\n')}\n`;
  return s;
}

/** CSV columns: every result, read-bandwidth and loading row in one long table. */
export const CSV_COLUMNS = [
  'backend', 'threads', 'op', 'dtype', 'n', 'k', 'batch', 'ctx', 'mode', 'ms_per_call', 'ms_min', 'calls', 'gflops', 'gbps', 'bandwidth_fraction', 'mbps',
] as const;

export function formatCsv(r: OpsReport): string {
  const line = (o: Partial<Record<typeof CSV_COLUMNS[number], string | number | null | undefined>>) =>
    CSV_COLUMNS.map((c) => (o[c] === undefined || o[c] === null ? '' : String(o[c]))).join(',');
  const lines: string[] = [CSV_COLUMNS.join(',')];
  for (const b of r.bandwidth) lines.push(line({ backend: 'cpu', threads: b.threads, op: 'read-bandwidth', n: b.bytes, gbps: b.gbps }));
  for (const x of r.results) {
    lines.push(line({
      backend: x.backend, threads: x.threads, op: x.op, dtype: x.dtype, n: x.n, k: x.k, batch: x.batch, ctx: x.ctx, mode: x.mode,
      ms_per_call: x.msPerCall, ms_min: x.msMin, calls: x.calls, gflops: x.gflops, gbps: x.gbps, bandwidth_fraction: x.bandwidthFraction,
    }));
  }
  for (const l of r.loading) lines.push(line({ op: `load-${l.format}`, n: l.tensorBytes, ms_per_call: l.msMedian, mbps: l.mbps }));
  return lines.join('\n') + '\n';
}
