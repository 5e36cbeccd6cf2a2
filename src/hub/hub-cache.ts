// The Hugging Face cache layout, shared with huggingface_hub (Python) and llama.cpp so a file one
// of them fetched is never fetched again:
//   {cache}/models--{org}--{name}/blobs/{etag}                 the content, named by its hash
//   {cache}/models--{org}--{name}/snapshots/{commit}/{path}    relative symlink → ../../blobs/{etag}
//   {cache}/models--{org}--{name}/refs/{revision}              the commit the revision pointed at
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, readlink, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** `models--org--name`, as huggingface_hub names a model repo's folder. */
export function repoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** A unique name beside `file` (per process and call), for writing then renaming over it. */
export function tempBeside(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Makes `link` a symlink to `target`, replacing any older link atomically. */
export async function replaceSymlink(target: string, link: string, type?: 'dir' | 'file'): Promise<void> {
  await mkdir(path.dirname(link), { recursive: true });
  const current = await readlink(link).catch(() => undefined);
  if (current === target) return;
  const tmp = tempBeside(link);
  await symlink(target, tmp, type);
  try {
    await rename(tmp, link);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

export interface CachedFile {
  path: string;
  size: number;
  /** The blob's name (its expected hash), when the snapshot entry is a link into blobs/. */
  etag: string | undefined;
}

export class RepoCache {
  readonly root: string;
  readonly blobsDir: string;

  constructor(readonly cacheDir: string, readonly repo: string) {
    this.root = path.join(cacheDir, repoFolderName(repo));
    this.blobsDir = path.join(this.root, 'blobs');
  }

  blobPath(etag: string): string {
    return path.join(this.blobsDir, etag);
  }

  snapshotDir(commit: string): string {
    return path.join(this.root, 'snapshots', commit);
  }

  snapshotPath(commit: string, file: string): string {
    return path.join(this.snapshotDir(commit), ...file.split('/'));
  }

  /** Size of a complete blob, or undefined when there is none. */
  async blobSize(etag: string): Promise<number | undefined> {
    const st = await stat(this.blobPath(etag)).catch(() => undefined);
    return st?.isFile() ? st.size : undefined;
  }

  /** snapshots/{commit}/{file} → ../../blobs/{etag}, with one more ../ per folder in the path. */
  async linkSnapshot(commit: string, file: string, etag: string): Promise<void> {
    const depth = file.split('/').length - 1;
    const target = `${'../'.repeat(2 + depth)}blobs/${etag}`;
    await replaceSymlink(target, this.snapshotPath(commit, file), 'file');
  }

  /** The commit refs/{revision} records, if any. */
  async readRef(revision: string): Promise<string | undefined> {
    const text = await readFile(path.join(this.root, 'refs', ...revision.split('/')), 'utf8').catch(() => undefined);
    const commit = text?.trim();
    return commit && /^[0-9a-f]{40}$/.test(commit) ? commit : undefined;
  }

  /** refs/{revision} ← commit, written whole (huggingface_hub writes no newline). A commit needs no ref. */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const file = path.join(this.root, 'refs', ...revision.split('/'));
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = tempBeside(file);
    await writeFile(tmp, commit);
    await rename(tmp, file);
  }

  /** The files a snapshot has (links whose blob is missing are left out). */
  async listSnapshot(commit: string): Promise<CachedFile[]> {
    const root = this.snapshotDir(commit);
    const out: CachedFile[] = [];
    const walk = async (dir: string, prefix: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const d of entries.sort((a, b) => a.name.localeCompare(b.name))) {
        const full = path.join(dir, d.name);
        const rel = prefix ? `${prefix}/${d.name}` : d.name;
        if (d.isDirectory()) { await walk(full, rel); continue; }
        const st = await stat(full).catch(() => undefined); // follows the link to its blob
        if (!st?.isFile()) continue;
        const isLink = (await lstat(full)).isSymbolicLink();
        const etag = isLink ? path.basename(await readlink(full)) : undefined;
        out.push({ path: rel, size: st.size, etag });
      }
    };
    await walk(root, '');
    return out;
  }
}
