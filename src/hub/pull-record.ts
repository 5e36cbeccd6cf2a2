// What a pull brought, kept beside the models folder's link so `minerva verify` can check the
// files offline, long after: {models}/.pulls/{link name}.json. The hashes are the Hub's own
// (LFS sha256 or git blob sha1), so a check needs neither the network nor trust in the cache.
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hashFile, type HashAlgorithm } from './content-hash.js';
import { tempBeside } from './hub-cache.js';

export const PULL_RECORD_FORMAT = 'minerva-pull/1';

export interface PullRecordFile {
  /** Path inside the repo (and the snapshot). */
  path: string;
  size: number;
  /** The Hub's hash of the content; absent where the cache held a plain copy, not a link to a named blob. */
  algorithm?: HashAlgorithm;
  oid?: string;
}

export interface PullRecord {
  format: typeof PULL_RECORD_FORMAT;
  repo: string;
  revision: string;
  commit: string;
  endpoint: string;
  kind: 'gguf' | 'safetensors' | 'file';
  quant: string | null;
  /** The snapshot folder in the Hugging Face cache. */
  snapshot: string;
  /** The link in the models folder, and what it points at. */
  link: string;
  target: string;
  pulledAt: string;
  files: PullRecordFile[];
}

/** Where the record of a models-folder link is kept. */
export function pullRecordPath(modelsDir: string, linkName: string): string {
  return path.join(modelsDir, '.pulls', `${linkName}.json`);
}

export async function writePullRecord(file: string, record: PullRecord): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = tempBeside(file);
  await writeFile(tmp, JSON.stringify(record, null, 2) + '\n');
  await rename(tmp, file);
}

/** A record read back and checked field by field. */
export async function readPullRecord(file: string): Promise<PullRecord> {
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${file}: cannot read a pull record: ${(e as Error).message}`);
  }
  const bad = (what: string) => new Error(`${file}: ${what}`);
  if (v?.format !== PULL_RECORD_FORMAT) throw bad(`"format" must be "${PULL_RECORD_FORMAT}"`);
  for (const k of ['repo', 'revision', 'commit', 'endpoint', 'kind', 'snapshot', 'link', 'target', 'pulledAt']) {
    if (typeof v[k] !== 'string') throw bad(`"${k}" must be a string`);
  }
  if (!Array.isArray(v.files)) throw bad('"files" must be an array');
  v.files.forEach((f: Record<string, unknown>, i) => {
    if (typeof f?.path !== 'string' || f.path.split('/').includes('..')) throw bad(`files[${i}].path must be a path inside the repo`);
    if (typeof f.size !== 'number' || !Number.isSafeInteger(f.size) || f.size < 0) throw bad(`files[${i}].size must be a byte count`);
    if (f.oid !== undefined && !(f.algorithm === 'sha256' ? /^[0-9a-f]{64}$/ : /^[0-9a-f]{40}$/).test(String(f.oid))) {
      throw bad(`files[${i}].oid does not fit its algorithm`);
    }
  });
  return v as unknown as PullRecord;
}

export interface VerifiedFile {
  path: string;
  status: 'ok' | 'missing' | 'size' | 'hash' | 'unverifiable';
  detail?: string;
}

/** Hashes every file of the record's snapshot against the recorded hashes. */
export async function verifyPullRecord(record: PullRecord, onFile?: (path: string) => void): Promise<VerifiedFile[]> {
  const out: VerifiedFile[] = [];
  for (const f of record.files) {
    onFile?.(f.path);
    const file = path.join(record.snapshot, ...f.path.split('/'));
    const st = await stat(file).catch(() => undefined);
    if (!st?.isFile()) { out.push({ path: f.path, status: 'missing', detail: `${file} is missing` }); continue; }
    if (st.size !== f.size) { out.push({ path: f.path, status: 'size', detail: `expected ${f.size} bytes, found ${st.size}` }); continue; }
    if (!f.oid || !f.algorithm) { out.push({ path: f.path, status: 'unverifiable', detail: 'no hash recorded' }); continue; }
    const actual = await hashFile(file, f.algorithm, f.size);
    out.push(actual === f.oid ? { path: f.path, status: 'ok' } : { path: f.path, status: 'hash', detail: `expected ${f.oid}, got ${actual}` });
  }
  return out;
}
