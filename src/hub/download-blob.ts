// One file from the Hub into the cache's blobs/: written to {blob}.incomplete, resumed with a
// Range request where a previous try stopped (only a 206 continues; a 200 starts over), retried
// with backoff on transient failures, hashed while it streams, and renamed into place only when
// its size and hash are what the Hub announced. A mismatch deletes the partial file.
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import type { Hash } from 'node:crypto';
import { HubError, StallError, TransientError, errorCode, isTransient, isTransientStatus } from './hub-errors.js';
import type { HubClient, RepoFile } from './hub-api.js';
import type { Subject } from './hub-http.js';
import { contentHasher, hashFilePrefix } from './content-hash.js';
import { backoffDelay, sleep, type RetryPolicy } from './retry.js';

export interface BlobDownload {
  client: HubClient;
  url: string;
  file: RepoFile;
  /** The blob's final path; the partial file is `${dest}.incomplete`. */
  dest: string;
  subject: Subject;
  retry: RetryPolicy;
  /** Give up on a response that sends nothing for this long (then retry). */
  stallMs: number;
  /** Least time between two progress reports (the first and last are always reported). */
  progressIntervalMs: number;
  signal?: AbortSignal;
  onProgress?: (completed: number, total: number) => void;
  onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  /** The download is complete and its hash is being compared. */
  onVerifying?: () => void;
}

export interface BlobDownloadResult {
  /** Bytes received over the network (resumed bytes not counted). */
  received: number;
  /** Bytes a previous, interrupted download had left. */
  resumedFrom: number;
}

/** A failed write: a full disk is said as such. */
function writeError(e: unknown, file: string): Error {
  if (errorCode(e) === 'ENOSPC') {
    return new HubError('disk-full', `disk full writing ${file} (the partial download is kept: free some space and pull again to resume)`, { cause: e });
  }
  return e as Error;
}

/** `bytes START-END/TOTAL` of a 206. */
function contentRange(header: string | null): { start: number; total: number | undefined } | undefined {
  const m = /^bytes\s+(\d+)-\d+\/(\d+|\*)$/.exec(header?.trim() ?? '');
  return m ? { start: Number(m[1]), total: m[2] === '*' ? undefined : Number(m[2]) } : undefined;
}

export async function downloadBlob(d: BlobDownload): Promise<BlobDownloadResult> {
  const { file } = d;
  const partial = `${d.dest}.incomplete`;
  let offset = (await stat(partial).catch(() => undefined))?.size ?? 0;
  if (offset > file.size) offset = 0; // not a prefix of this file
  const resumedFrom = offset;
  let hash: Hash = contentHasher(file.algorithm, file.size);
  if (offset > 0) await hashFilePrefix(hash, partial, offset);
  let fh: FileHandle;
  try {
    fh = await open(partial, offset > 0 ? 'r+' : 'w');
  } catch (e) {
    throw writeError(e, partial);
  }
  let received = 0;
  let lastReport = 0;
  const report = (force: boolean) => {
    const now = Date.now();
    if (!force && now - lastReport < d.progressIntervalMs) return;
    lastReport = now;
    d.onProgress?.(offset, file.size);
  };
  const restart = async () => {
    offset = 0;
    hash = contentHasher(file.algorithm, file.size);
    await fh.truncate(0);
    report(true);
  };

  try {
    report(true);
    for (let failures = 0; offset < file.size;) {
      const attempt = new AbortController();
      const signal = d.signal ? AbortSignal.any([d.signal, attempt.signal]) : attempt.signal;
      let stall: NodeJS.Timeout | undefined;
      const armStall = () => {
        clearTimeout(stall);
        stall = setTimeout(() => attempt.abort(new StallError(d.url, d.stallMs)), d.stallMs);
      };
      const before = offset;
      let retryAfter: string | null = null;
      let reason: string;
      try {
        armStall();
        const res = await d.client.get(d.url, offset > 0 ? { range: `bytes=${offset}-` } : {}, signal);
        if (res.status === 206 && offset > 0) {
          const range = contentRange(res.headers.get('content-range'));
          if (range?.total !== undefined && range.total !== file.size) {
            await res.body?.cancel();
            throw new HubError('integrity', `${file.path}: the server has ${range.total} bytes, the Hub announced ${file.size}`);
          }
          if (range?.start !== offset) { await res.body?.cancel(); await restart(); throw new TransientError(`${file.path}: a 206 for the wrong range`); }
        } else if (res.status === 200 || res.status === 206) {
          if (offset > 0) await restart(); // the server ignored Range: the body starts at byte 0
        } else if (res.status === 416 && offset > 0) {
          await res.body?.cancel();
          await restart(); // our partial file is not what the server has
          throw new TransientError(`${file.path}: range ${offset}- not satisfiable`);
        } else {
          await res.body?.cancel();
          if (!isTransientStatus(res.status)) throw d.client.error(res, d.url, { ...d.subject, file: file.path });
          retryAfter = res.headers.get('retry-after');
          throw new TransientError(`HTTP ${res.status}`);
        }
        if (!res.body) throw new TransientError(`${d.url}: an empty body`);
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          armStall();
          if (offset + chunk.byteLength > file.size) {
            throw new HubError('integrity', `${file.path}: the server sent more than the ${file.size} bytes the Hub announced`);
          }
          try {
            await fh.write(chunk, 0, chunk.byteLength, offset);
          } catch (e) {
            throw writeError(e, partial);
          }
          hash.update(chunk);
          offset += chunk.byteLength;
          received += chunk.byteLength;
          report(false);
        }
        if (offset < file.size) throw new TransientError(`${d.url}: the body ended at byte ${offset} of ${file.size}`);
        continue;
      } catch (e) {
        if (d.signal?.aborted) throw d.signal.reason; // the caller stopped: the partial file stays for a resume
        const err = attempt.signal.aborted ? attempt.signal.reason as Error : e;
        if (err instanceof HubError && err.kind === 'integrity') { await fh.close().catch(() => {}); await rm(partial, { force: true }); }
        if (!isTransient(err)) throw err;
        reason = (err as Error).message;
      } finally {
        clearTimeout(stall);
      }
      failures = offset > before ? 1 : failures + 1; // progress made: the count starts again
      if (failures > d.retry.retries) {
        throw new HubError('http', `${file.path}: download failed after ${d.retry.retries} retries: ${reason}`);
      }
      const delayMs = backoffDelay(failures, d.retry, retryAfter);
      d.onRetry?.({ attempt: failures, delayMs, reason });
      await sleep(delayMs, d.signal);
    }
    report(true);
    d.onVerifying?.();
    await fh.close();
    const actual = hash.digest('hex');
    if (actual !== file.etag) {
      await rm(partial, { force: true });
      const name = file.algorithm === 'sha256' ? 'SHA-256' : 'git blob SHA-1';
      throw new HubError('integrity', `${file.path}: ${name} mismatch: expected ${file.etag}, got ${actual} (the download was deleted)`);
    }
    await rename(partial, d.dest);
    return { received, resumedFrom };
  } catch (e) {
    await fh.close().catch(() => {});
    if (offset === 0) await rm(partial, { force: true }); // nothing worth resuming: leave no empty file
    throw e;
  } finally {
    await fh.close().catch(() => {}); // closing twice is harmless here
  }
}
