// `minerva verify`: everything that can be checked about a model without running it. Opening it
// checks its structure (SafeTensors and GGUF rules, shards against the index, the tensor manifest
// against the architecture, the tokenizer); verify then reads every tensor once, looking for
// values that cannot be right (NaN or infinite weights, non-finite block scales), lists
// .safetensors files the index does not name. All offline. (A pulled model's file hashes are
// checked against its pull record: src/hub/pull-record.ts.)
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { openModel, type LoadProgress } from './load.js';
import { INDEX_FILE } from '../formats/safetensors.js';
import { DTYPE_LAYOUT, type DType } from '../quant/dtype.js';
import { firstNonFiniteBlock } from '../quant/block-checks.js';

export interface VerifyReport {
  path: string;
  /** What is wrong, one line each; empty when the model checks out. */
  problems: string[];
  tensors: number;
  bytes: number;
}

export interface VerifyOptions {
  tokenizer?: string;
  onProgress?: (p: LoadProgress) => void;
}

export async function verifyModel(modelPath: string, o: VerifyOptions = {}): Promise<VerifyReport> {
  const report: VerifyReport = { path: modelPath, problems: [], tensors: 0, bytes: 0 };
  let opened;
  try {
    opened = await openModel(modelPath, { tokenizer: o.tokenizer });
  } catch (e) {
    report.problems.push((e as Error).message);
    return report;
  }
  try {
    report.problems.push(...await unindexedShards(modelPath));
    const totalBytes = [...opened.tensors.values()].reduce((n, t) => n + t.byteLength, 0);
    const buffer = new Uint8Array(Math.max(0, ...[...opened.tensors.values()].map((t) => t.byteLength)));
    for (const [name, info] of opened.tensors) {
      const bytes = await opened.read(name, buffer);
      const bad = nonFinite(info.dtype, bytes);
      if (bad) report.problems.push(`${name}: ${bad}`);
      report.tensors++;
      report.bytes += info.byteLength;
      o.onProgress?.({ loadedBytes: report.bytes, totalBytes });
    }
  } finally {
    await opened.close();
  }
  return report;
}

/** What is non-finite in a tensor's bytes, or undefined. */
function nonFinite(dtype: DType, bytes: Uint8Array): string | undefined {
  if (DTYPE_LAYOUT[dtype].blockSize > 1) {
    const b = firstNonFiniteBlock(dtype, bytes);
    return b >= 0 ? `block ${b} has a non-finite scale (inf or NaN)` : undefined;
  }
  let count = 0;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') for (let i = 0; i + 3 < bytes.length; i += 4) count += Number.isFinite(v.getFloat32(i, true)) ? 0 : 1;
  else if (dtype === 'F16') for (let i = 0; i + 1 < bytes.length; i += 2) count += (v.getUint16(i, true) & 0x7c00) === 0x7c00 ? 1 : 0;
  else if (dtype === 'BF16') for (let i = 0; i + 1 < bytes.length; i += 2) count += (v.getUint16(i, true) & 0x7f80) === 0x7f80 ? 1 : 0;
  return count > 0 ? `${count} NaN or infinite values` : undefined;
}

/** .safetensors files in a sharded folder that its index does not name. */
async function unindexedShards(modelPath: string): Promise<string[]> {
  const st = await stat(modelPath);
  if (!st.isDirectory()) return [];
  const index = path.join(modelPath, INDEX_FILE);
  const text = await readFile(index, 'utf8').catch(() => undefined);
  if (text === undefined) return [];
  const named = new Set(Object.values((JSON.parse(text) as { weight_map: Record<string, string> }).weight_map));
  return (await readdir(modelPath)).filter((f) => f.endsWith('.safetensors') && !named.has(f))
    .map((f) => `${f}: a .safetensors file that ${INDEX_FILE} does not name (extra)`);
}
