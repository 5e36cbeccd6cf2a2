// minerva list · rm · verify: the models a folder holds, removing one, and checking one.
import { ModelRegistry, UnknownModelError } from '../server/registry.js';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { verifyModel } from '../model/verify.js';
import { pullRecordOf, removePulled } from '../hub/remove-pulled.js';
import { verifyPullRecord } from '../hub/pull-record.js';
import { loadProgressBar } from './progress.js';

export async function listCommand(o: { modelsDir: string; json?: boolean }): Promise<void> {
  const registry = new ModelRegistry({ dir: o.modelsDir, maxMemory: Infinity, keepAliveMs: 0, load: {} });
  const entries = await Promise.all((await registry.list()).map(async (e) => {
    // Where it came from: the Hub repo and revision of a pulled model, else "local".
    const record = await pullRecordOf(o.modelsDir, path.basename(e.path)).catch(() => undefined);
    return { ...e, source: record?.repo ?? 'local', revision: record ? `${record.revision}@${record.commit.slice(0, 12)}` : null };
  }));
  if (o.json) {
    process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
    return;
  }
  if (entries.length === 0) {
    process.stdout.write(`no models in ${o.modelsDir} (put a .gguf file or a Hugging Face folder there)\n`);
    return;
  }
  const rows = [['NAME', 'ARCHITECTURE', 'PARAMETERS', 'WEIGHTS', 'SIZE', 'FORMAT', 'SOURCE', 'REVISION', 'MODIFIED']];
  for (const e of entries) {
    rows.push([e.name, e.architecture, params(e.parameters), e.quantization, size(e.size), e.format, e.source, e.revision ?? '-',
      e.modified.toISOString().slice(0, 10)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
}

export async function rmCommand(model: string, o: { modelsDir: string }): Promise<void> {
  const registry = new ModelRegistry({ dir: o.modelsDir, maxMemory: Infinity, keepAliveMs: 0, load: {} });
  const entry = await registry.find(model).catch((e: unknown) => {
    throw e instanceof UnknownModelError ? new Error(`no model "${model}" in ${o.modelsDir} (minerva list shows them)`) : e;
  });
  const record = await pullRecordOf(o.modelsDir, path.basename(entry.path));
  await registry.remove(model);
  // A pulled model: also the cache files nothing else uses.
  const freed = record ? await removePulled(o.modelsDir, path.basename(entry.path), record) : undefined;
  process.stdout.write(`removed ${entry.name} (${entry.path})${freed ? `; ${freed.blobs} cached files freed ${size(freed.bytes)}` : ''}\n`);
}

export async function verifyCommand(model: string, o: { tokenizer?: string; modelsDir: string }): Promise<void> {
  // A path, or the name of a model in the models folder.
  let target = model;
  if (!(await stat(model).catch(() => undefined))) {
    const registry = new ModelRegistry({ dir: o.modelsDir, maxMemory: Infinity, keepAliveMs: 0, load: {} });
    target = (await registry.find(model).catch(() => undefined))?.path ?? model;
  }
  // A pulled model: its files' hashes against those the Hub gave when it was pulled.
  const record = await pullRecordOf(path.dirname(target), path.basename(target)).catch((e: unknown) => {
    throw new Error(`${model}: ${(e as Error).message}`);
  });
  let hashed = 0;
  const hashProblems: string[] = [];
  if (record) {
    for (const f of await verifyPullRecord(record)) {
      if (f.status === 'unverifiable') continue;
      hashed++;
      if (f.status !== 'ok') hashProblems.push(`${f.path}: ${f.status === 'hash' ? 'hash mismatch' : f.status}: ${f.detail}`);
    }
  }
  const bar = loadProgressBar('verifying');
  const report = await verifyModel(target, { tokenizer: o.tokenizer, onProgress: bar.update });
  bar.stop();
  report.problems.unshift(...hashProblems);
  if (report.problems.length === 0) {
    process.stdout.write(`${model}: OK (${report.tensors} tensors, ${size(report.bytes)} read`
      + `${record ? `; ${hashed} files match the hashes recorded when ${record.repo}@${record.commit.slice(0, 12)} was pulled` : ''})\n`);
    return;
  }
  for (const p of report.problems) process.stdout.write(`${p}\n`);
  throw new Error(`${model}: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} found`);
}

function params(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(0)}M` : `${(n / 1e3).toFixed(0)}K`;
}

function size(bytes: number): string {
  return bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
