// minerva list · rm · verify: the models a folder holds, removing one, and checking one.
import { ModelRegistry, UnknownModelError } from '../server/registry.js';
import { verifyModel } from '../model/verify.js';
import { loadProgressBar } from './progress.js';

export async function listCommand(o: { modelsDir: string; json?: boolean }): Promise<void> {
  const registry = new ModelRegistry({ dir: o.modelsDir, maxMemory: Infinity, keepAliveMs: 0, load: {} });
  const entries = await registry.list();
  if (o.json) {
    process.stdout.write(JSON.stringify(entries, null, 2) + '\n');
    return;
  }
  if (entries.length === 0) {
    process.stdout.write(`no models in ${o.modelsDir} (put a .gguf file or a Hugging Face folder there)\n`);
    return;
  }
  const rows = [['NAME', 'ARCHITECTURE', 'PARAMETERS', 'WEIGHTS', 'SIZE', 'FORMAT', 'MODIFIED']];
  for (const e of entries) {
    rows.push([e.name, e.architecture, params(e.parameters), e.quantization, size(e.size), e.format, e.modified.toISOString().slice(0, 10)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
}

export async function rmCommand(model: string, o: { modelsDir: string }): Promise<void> {
  const registry = new ModelRegistry({ dir: o.modelsDir, maxMemory: Infinity, keepAliveMs: 0, load: {} });
  const entry = await registry.remove(model).catch((e: unknown) => {
    throw e instanceof UnknownModelError ? new Error(`no model "${model}" in ${o.modelsDir} (minerva list shows them)`) : e;
  });
  process.stdout.write(`removed ${entry.name} (${entry.path})\n`);
}

export async function verifyCommand(model: string, o: { tokenizer?: string }): Promise<void> {
  const bar = loadProgressBar('verifying');
  const report = await verifyModel(model, { tokenizer: o.tokenizer, onProgress: bar.update });
  bar.stop();
  if (report.problems.length === 0) {
    process.stdout.write(`${model}: OK (${report.tensors} tensors, ${size(report.bytes)} read${report.hashed ? `, ${report.hashed} file hashes checked` : ''})\n`);
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
