// The hashes the Hub names files by: SHA-256 of the content for LFS files, and git's blob SHA-1
// — sha1("blob " + size + "\0" + content) — for small files kept in git itself.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';

export type HashAlgorithm = 'sha256' | 'git-sha1';

/** A running hash of a file's content that will be `size` bytes long. */
export function contentHasher(algorithm: HashAlgorithm, size: number): Hash {
  if (algorithm === 'sha256') return createHash('sha256');
  return createHash('sha1').update(`blob ${size}\0`);
}

/** Feeds the first `bytes` bytes of a file (a partial download being resumed) to a hash. */
export async function hashFilePrefix(hash: Hash, file: string, bytes: number): Promise<void> {
  if (bytes === 0) return;
  for await (const chunk of createReadStream(file, { start: 0, end: bytes - 1 })) hash.update(chunk as Buffer);
}

/** The hash of a whole file, as the Hub would name it. */
export async function hashFile(file: string, algorithm: HashAlgorithm, size: number): Promise<string> {
  const hash = contentHasher(algorithm, size);
  await hashFilePrefix(hash, file, size);
  return hash.digest('hex');
}

/** The hash family an etag belongs to, from its length. */
export function algorithmOf(etag: string): HashAlgorithm | undefined {
  if (/^[0-9a-f]{64}$/.test(etag)) return 'sha256';
  if (/^[0-9a-f]{40}$/.test(etag)) return 'git-sha1';
  return undefined;
}
