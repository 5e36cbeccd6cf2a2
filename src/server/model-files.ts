// Changing what the models folder holds, for Ollama's model-management API: copying and deleting
// entries, and the blob store that `POST /api/blobs` fills and `POST /api/create` builds models
// from. Names that come from requests are checked here before any path is made from them.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, cp, link, lstat, mkdir, readlink, rename, rm, stat, symlink, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { BadRequest } from './params.js';

/** Folder of uploaded blobs inside the models folder (hidden: the listing skips dot-names). */
export const BLOBS_DIR = '.blobs';

/** A model name a request may create: letters, digits, `._-`, an optional `:tag`; no path, no dot first. */
export function checkNewName(name: string, field: string): string {
  const base = name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}(:[A-Za-z0-9][A-Za-z0-9._-]{0,63})?$/.test(base) || base.includes('..')) {
    throw new BadRequest(`${field} "${name}" is not a valid model name (letters, digits, ".", "_", "-", an optional ":tag"; at most 128 characters)`, field);
  }
  if (process.platform === 'win32' && base.includes(':')) throw new BadRequest(`${field} "${name}": a ":tag" cannot be a file name on Windows`, field);
  return base;
}

/** `sha256:<64 hex>` (Ollama's digest form), as the hex. */
export function checkDigest(digest: string, field = 'digest'): string {
  const m = /^sha256[:-]([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new BadRequest(`${field} must be "sha256:" and 64 lowercase hex digits, got ${JSON.stringify(digest.slice(0, 80))}`, field);
  return m[1]!;
}

export function blobPath(modelsDir: string, hex: string): string {
  return path.join(modelsDir, BLOBS_DIR, `sha256-${hex}`);
}

export async function hasBlob(modelsDir: string, hex: string): Promise<boolean> {
  return (await stat(blobPath(modelsDir, hex)).catch(() => undefined))?.isFile() ?? false;
}

/**
 * Stores a request body as the blob `hex`, hashing while it streams; a body whose SHA-256 is not
 * `hex` is deleted and refused with both digests.
 */
export async function saveBlob(modelsDir: string, hex: string, body: Readable): Promise<void> {
  const dir = path.join(modelsDir, BLOBS_DIR);
  await mkdir(dir, { recursive: true });
  const partial = path.join(dir, `sha256-${hex}.${process.pid}.${Date.now()}.partial`);
  const hash = createHash('sha256');
  try {
    await pipeline(body, async function* (source) {
      for await (const chunk of source) {
        hash.update(chunk as Buffer);
        yield chunk;
      }
    }, createWriteStream(partial));
    const actual = hash.digest('hex');
    if (actual !== hex) throw new BadRequest(`digest mismatch: the body's SHA-256 is sha256:${actual}, the URL says sha256:${hex}`, 'digest');
    await rename(partial, blobPath(modelsDir, hex));
  } finally {
    await rm(partial, { force: true });
  }
}

/** Where a model named `name` would live: `<dir>/<name>.gguf` for a GGUF, `<dir>/<name>/` for a folder. */
export function entryPath(modelsDir: string, name: string, kind: 'gguf' | 'folder'): string {
  return path.join(modelsDir, kind === 'gguf' ? `${name}.gguf` : name);
}

/** Removes a models-folder entry: a file, a folder, or a link (only the link: what it points at stays). */
export async function removeEntry(full: string): Promise<void> {
  const st = await lstat(full);
  if (st.isSymbolicLink() || st.isFile()) await unlink(full);
  else await rm(full, { recursive: true, force: true });
}

/**
 * Copies a models-folder entry to `dest`: a link is copied as a link to the same target, a file
 * as a hard link where the file system allows (else a copy), a folder file by file the same way.
 */
export async function copyEntry(src: string, dest: string): Promise<void> {
  const st = await lstat(src);
  if (st.isSymbolicLink()) {
    const target = await readlink(src);
    await symlink(path.isAbsolute(target) ? target : path.resolve(path.dirname(src), target), dest);
  } else if (st.isFile()) {
    await linkOrCopy(src, dest);
  } else {
    await cp(src, dest, { recursive: true, verbatimSymlinks: true });
  }
}

/** A hard link of `src` at `dest`, or a copy where links are not possible (another file system). */
export async function linkOrCopy(src: string, dest: string): Promise<void> {
  try {
    await link(src, dest);
  } catch {
    await copyFile(src, dest);
  }
}

/** Replaces `dest` (if it exists) by what `make(temp)` creates, so a reader never sees half an entry. */
export async function replaceEntry(dest: string, make: (temp: string) => Promise<void>): Promise<void> {
  const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.${process.pid}.${Date.now()}.tmp`);
  try {
    await make(temp);
    if (await lstat(dest).catch(() => undefined)) await removeEntry(dest);
    await rename(temp, dest);
  } finally {
    if (await lstat(temp).catch(() => undefined)) await removeEntry(temp);
  }
}
