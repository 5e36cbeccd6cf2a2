// The three Hub endpoints a pull needs: a revision's commit, the commit's file tree (paged by
// Link headers), and a file's download URL. Answers are validated here; past this point a
// RepoFile's size and hash are trusted as what the Hub promised.
import { HubError, isTransient, isTransientStatus } from './hub-errors.js';
import { hubGet, httpError, type Subject } from './hub-http.js';
import { checkRepoPath } from './repo-ref.js';
import { DEFAULT_RETRY, backoffDelay, sleep, type RetryPolicy } from './retry.js';
import type { HubSettings } from './hub-settings.js';

/** A file of a commit, with the hash its content must have. */
export interface RepoFile {
  path: string;
  size: number;
  /** Blob name in the cache: the LFS sha256, or the git blob sha1 of a small file. */
  etag: string;
  algorithm: 'sha256' | 'git-sha1';
}

export interface HubClientOptions {
  retry?: RetryPolicy;
  signal?: AbortSignal;
  /** An API answer that takes longer than this is dropped and retried. Default 60 s. */
  timeoutMs?: number;
  /** Told before each retry (a server can show it). */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void;
}

const SHA1 = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;

function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** One tree entry checked; undefined for folders. */
function repoFile(entry: unknown, where: string): RepoFile | undefined {
  if (!entry || typeof entry !== 'object') throw new HubError('http', `${where}: expected an object`);
  const e = entry as Record<string, unknown>;
  if (e.type === 'directory') return undefined;
  if (e.type !== 'file') throw new HubError('http', `${where}: "type" must be "file" or "directory", got ${JSON.stringify(e.type)}`);
  if (typeof e.path !== 'string') throw new HubError('http', `${where}: "path" must be a string`);
  const p = checkRepoPath(e.path, `${where}: "path"`);
  if (e.lfs !== undefined && e.lfs !== null) {
    const lfs = e.lfs as Record<string, unknown>;
    if (typeof lfs.oid !== 'string' || !SHA256.test(lfs.oid)) throw new HubError('http', `${where} (${p}): "lfs.oid" must be a sha256 in hex`);
    if (!isSize(lfs.size)) throw new HubError('http', `${where} (${p}): "lfs.size" must be a byte count`);
    return { path: p, size: lfs.size, etag: lfs.oid, algorithm: 'sha256' };
  }
  if (typeof e.oid !== 'string' || !SHA1.test(e.oid)) throw new HubError('http', `${where} (${p}): "oid" must be a git sha1 in hex`);
  if (!isSize(e.size)) throw new HubError('http', `${where} (${p}): "size" must be a byte count`);
  return { path: p, size: e.size, etag: e.oid, algorithm: 'git-sha1' };
}

/** The URL of a Link header's rel="next", if any. */
function nextLink(header: string | null, base: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part.trim());
    if (m && /\brel\s*=\s*"?next"?/.test(m[2]!)) return new URL(m[1]!, base).href;
  }
  return undefined;
}

const encodePath = (p: string) => p.split('/').map(encodeURIComponent).join('/');

export class HubClient {
  private readonly retry: RetryPolicy;

  constructor(readonly settings: HubSettings, private readonly options: HubClientOptions = {}) {
    this.retry = options.retry ?? DEFAULT_RETRY;
  }

  /** Where a file of a commit is downloaded from (the Hub may redirect it elsewhere). */
  fileUrl(repo: string, commit: string, file: string): string {
    return `${this.settings.endpoint}/${repo}/resolve/${commit}/${encodePath(file)}`;
  }

  /** GET with redirects by hand; the token only for the Hub. */
  get(url: string, headers?: Record<string, string>, signal = this.options.signal): Promise<Response> {
    return hubGet(url, { endpoint: this.settings.endpoint, token: this.settings.token, headers, signal });
  }

  /** The failure as a one-line HubError. */
  error(res: Response, url: string, what: Subject): HubError {
    return httpError(res, url, what, this.settings);
  }

  /** JSON from the Hub's API, retried on transient failures; the Link header kept for paging. */
  private async getJSON(url: string, what: Subject): Promise<{ body: unknown; link: string | null }> {
    for (let attempt = 1; ; attempt++) {
      let reason: string;
      let retryAfter: string | null = null;
      try {
        const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 60_000);
        const signal = this.options.signal ? AbortSignal.any([this.options.signal, timeout]) : timeout;
        const res = await this.get(url, { accept: 'application/json' }, signal);
        if (res.ok) {
          const text = await res.text();
          try {
            return { body: JSON.parse(text), link: res.headers.get('link') };
          } catch {
            throw new HubError('http', `${url}: the answer is not JSON (${JSON.stringify(text.slice(0, 80))})`);
          }
        }
        await res.body?.cancel();
        if (!isTransientStatus(res.status) || attempt > this.retry.retries) throw this.error(res, url, what);
        reason = `HTTP ${res.status}`;
        retryAfter = res.headers.get('retry-after');
      } catch (e) {
        const timedOut = (e as Error | undefined)?.name === 'TimeoutError' && !this.options.signal?.aborted;
        if (!(isTransient(e) || timedOut) || attempt > this.retry.retries) throw e;
        reason = timedOut ? `no answer within ${this.options.timeoutMs ?? 60_000} ms` : (e as Error).message;
      }
      const delayMs = backoffDelay(attempt, this.retry, retryAfter);
      this.options.onRetry?.({ url, attempt, delayMs, reason });
      await sleep(delayMs, this.options.signal);
    }
  }

  /** The commit a revision (branch, tag or commit) points at. */
  async resolveCommit(repo: string, revision: string): Promise<string> {
    const url = `${this.settings.endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
    const { body } = await this.getJSON(url, { repo, revision });
    const sha = (body as { sha?: unknown } | null)?.sha;
    if (typeof sha !== 'string' || !SHA1.test(sha)) throw new HubError('http', `${url}: expected JSON with "sha" (a 40-hex commit)`);
    return sha;
  }

  /** Every file of a commit, following Link rel="next" pages. */
  async listFiles(repo: string, commit: string, revision = commit): Promise<RepoFile[]> {
    const files: RepoFile[] = [];
    const hubOrigin = new URL(this.settings.endpoint).origin;
    let url: string | undefined = `${this.settings.endpoint}/api/models/${repo}/tree/${commit}?recursive=true`;
    for (let page = 0; url !== undefined; page++) {
      if (page >= 10_000) throw new HubError('http', `${url}: more than 10000 pages of files`);
      if (new URL(url).origin !== hubOrigin) throw new HubError('http', `${url}: a tree page outside ${hubOrigin}`);
      const { body, link }: { body: unknown; link: string | null } = await this.getJSON(url, { repo, revision });
      if (!Array.isArray(body)) throw new HubError('http', `${url}: expected a JSON array of tree entries`);
      body.forEach((entry, i) => {
        const f = repoFile(entry, `${url}: entry ${i}`);
        if (f) files.push(f);
      });
      url = nextLink(link, url);
    }
    return files;
  }
}
