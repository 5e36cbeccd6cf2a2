// Removing a pulled model: its link in the models folder, its pull record, and — in the Hugging
// Face cache — the files of its snapshot whose blobs nothing else uses. A blob is still in use
// when another pull record lists the same content, or another snapshot of the repo links to it
// (another revision, or the same files fetched by Python tools); those stay.
import { lstat, readdir, readlink, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pullRecordPath, readPullRecord, type PullRecord } from './pull-record.js';

export interface RemovedPull {
  /** Blobs deleted from the cache, and the bytes they held. */
  blobs: number;
  bytes: number;
}

/** The pull record of the models-folder entry `linkName`, if it was pulled. */
export async function pullRecordOf(modelsDir: string, linkName: string): Promise<PullRecord | undefined> {
  const file = pullRecordPath(modelsDir, linkName);
  if (!(await lstat(file).catch(() => undefined))) return undefined;
  return readPullRecord(file);
}

/** Deletes the cache files of `record` that nothing else uses, then the record; the link is the caller's. */
export async function removePulled(modelsDir: string, linkName: string, record: PullRecord): Promise<RemovedPull> {
  const others = await otherRecords(modelsDir, linkName);
  const usedOids = new Set(others.flatMap((r) => r.files.map((f) => f.oid).filter((o): o is string => o !== undefined)));
  const repoDir = path.dirname(path.dirname(record.snapshot)); // models--org--name
  const blobsDir = path.join(repoDir, 'blobs');
  const linkedElsewhere = await blobsLinkedFromOtherSnapshots(repoDir, record.snapshot);
  const out: RemovedPull = { blobs: 0, bytes: 0 };
  for (const f of record.files) {
    const file = path.join(record.snapshot, ...f.path.split('/'));
    const st = await lstat(file).catch(() => undefined);
    if (!st) continue;
    const blob = st.isSymbolicLink() ? path.resolve(path.dirname(file), await readlink(file)) : undefined;
    const shared = (f.oid !== undefined && usedOids.has(f.oid)) || (blob !== undefined && linkedElsewhere.has(blob))
      || others.some((r) => r.snapshot === record.snapshot && r.files.some((g) => g.path === f.path));
    if (shared) continue;
    await unlink(file);
    if (blob && path.dirname(blob) === blobsDir) {
      const size = (await lstat(blob).catch(() => undefined))?.size;
      if (size !== undefined) {
        await unlink(blob);
        out.blobs++;
        out.bytes += size;
      }
    }
  }
  await removeEmptyDirs(record.snapshot);
  await rm(pullRecordPath(modelsDir, linkName), { force: true });
  return out;
}

async function otherRecords(modelsDir: string, linkName: string): Promise<PullRecord[]> {
  const dir = path.join(modelsDir, '.pulls');
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: PullRecord[] = [];
  for (const n of names) {
    if (!n.endsWith('.json') || n === `${linkName}.json`) continue;
    const r = await readPullRecord(path.join(dir, n)).catch(() => undefined);
    if (r) out.push(r);
  }
  return out;
}

/** Blob paths that snapshots other than `except` link to. */
async function blobsLinkedFromOtherSnapshots(repoDir: string, except: string): Promise<Set<string>> {
  const out = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const full = path.join(dir, d.name);
      if (d.isDirectory()) await walk(full);
      else if (d.isSymbolicLink()) out.add(path.resolve(dir, await readlink(full)));
    }
  };
  const snapshots = path.join(repoDir, 'snapshots');
  for (const s of await readdir(snapshots).catch(() => [] as string[])) {
    if (path.join(snapshots, s) !== path.resolve(except)) await walk(path.join(snapshots, s));
  }
  return out;
}

/** Removes `dir` and its parents up to the snapshot's if they are empty. */
async function removeEmptyDirs(dir: string): Promise<void> {
  const walk = async (d: string): Promise<boolean> => {
    let empty = true;
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory() && !e.isSymbolicLink()) empty = (await walk(path.join(d, e.name))) && empty;
      else empty = false;
    }
    if (empty) await rmdir(d).catch(() => undefined);
    return empty;
  };
  await walk(dir);
}
