// A Hugging Face Hub on 127.0.0.1 for tests, serving repos from memory: the revision and tree
// APIs (the tree paged by Link headers), /resolve/ for small files, and a 302 from /resolve/ to a
// second server (the "CDN", another origin) for LFS files. Faults on demand, one per request of a
// file: a connection cut mid-body, Range ignored, a corrupted byte, slow or stalled bodies, any
// status. Every request is recorded with its headers for the tests to assert on.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { kind: 'cut'; afterBytes: number }
  | { kind: 'ignore-range' }
  | { kind: 'corrupt'; at?: number }
  | { kind: 'slow'; chunkBytes: number; delayMs: number }
  | { kind: 'stall'; afterBytes: number; ms: number }
  | { kind: 'status'; status: number; headers?: Record<string, string> };

export interface RepoSpec {
  id: string;
  files: Record<string, Buffer | string>;
  /** Branch names that point at the commit. Default ['main']. */
  branches?: string[];
  /** Bearer token the repo requires (a gated or private repo). */
  token?: string;
  /** Gated as on the Hub: the API is public, only downloads need the token. Default false (private: everything does). */
  gated?: boolean;
  /** Which files are LFS. Default: .gguf, .safetensors, .bin. */
  lfs?: (path: string) => boolean;
}

export interface HubFile {
  path: string;
  content: Buffer;
  size: number;
  /** Git blob sha1 of the content (small files) or of the LFS pointer (LFS files). */
  oid: string;
  /** The LFS sha256, for LFS files. */
  sha256: string | undefined;
  /** What the cache names the blob: sha256 for LFS, else the git sha1. */
  etag: string;
}

export interface HubRepo {
  id: string;
  commit: string;
  branches: string[];
  token: string | undefined;
  gated: boolean;
  files: Map<string, HubFile>;
}

export interface RecordedRequest {
  server: 'hub' | 'cdn';
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The repo file whose body the request asked for. */
  file?: string;
  status?: number;
}

const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const defaultLfs = (p: string) => /\.(gguf|safetensors|bin)$/.test(p);

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

export class LocalHub {
  readonly requests: RecordedRequest[] = [];
  readonly repos = new Map<string, HubRepo>();
  /** Entries per tree page. */
  pageSize = 1000;
  private readonly faults = new Map<string, Fault[]>();
  private readonly apiFaults: (number | 'hang')[] = [];
  private endpointUrl = '';
  private cdnUrl = '';

  private constructor(private readonly hub: http.Server, private readonly cdn: http.Server) {}

  static async start(): Promise<LocalHub> {
    const h = new LocalHub(http.createServer(), http.createServer());
    h.hub.on('request', (req, res) => h.onHub(req, res));
    h.cdn.on('request', (req, res) => h.onCdn(req, res));
    h.endpointUrl = await listen(h.hub);
    h.cdnUrl = await listen(h.cdn);
    return h;
  }

  get endpoint(): string { return this.endpointUrl; }
  get cdnOrigin(): string { return this.cdnUrl; }

  addRepo(spec: RepoSpec): HubRepo {
    const lfs = spec.lfs ?? defaultLfs;
    const files = new Map<string, HubFile>();
    for (const [p, value] of Object.entries(spec.files).sort(([a], [b]) => a.localeCompare(b))) {
      const content = Buffer.isBuffer(value) ? value : Buffer.from(value);
      const isLfs = lfs(p);
      const sha = isLfs ? sha256(content) : undefined;
      const pointer = Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${content.length}\n`);
      const oid = isLfs ? gitSha1(pointer) : gitSha1(content);
      files.set(p, { path: p, content, size: content.length, oid, sha256: sha, etag: sha ?? oid });
    }
    const commit = createHash('sha1').update(spec.id).update([...files.values()].map((f) => `${f.path}:${f.oid}`).join('\n')).digest('hex');
    const repo: HubRepo = { id: spec.id, commit, branches: spec.branches ?? ['main'], token: spec.token, gated: spec.gated ?? false, files };
    this.repos.set(spec.id, repo);
    return repo;
  }

  /** The next requests for a file's body meet these faults, one each, in order. */
  fault(repo: string, path: string, ...faults: Fault[]): void {
    const key = `${repo}/${path}`;
    this.faults.set(key, [...(this.faults.get(key) ?? []), ...faults]);
  }

  /** The next API requests (revision, tree) answer these statuses, or never answer ('hang'), one each. */
  failApi(...statuses: (number | 'hang')[]): void {
    this.apiFaults.push(...statuses);
  }

  /** Requests that asked for a file's body (at the Hub for small files, at the CDN for LFS ones). */
  bodyRequests(path?: string): RecordedRequest[] {
    return this.requests.filter((r) => r.file !== undefined && (path === undefined || r.file === path)
      && (r.server === 'cdn' || !this.isLfs(r)));
  }

  private isLfs(r: RecordedRequest): boolean {
    for (const repo of this.repos.values()) if (repo.files.get(r.file!)?.sha256) return true;
    return false;
  }

  async close(): Promise<void> {
    for (const s of [this.hub, this.cdn]) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  }

  private findRepo(segments: string[]): { repo: HubRepo | undefined; id: string; rest: string[] } {
    // org/name or a legacy single name: take the longest known id.
    for (const n of [2, 1]) {
      const id = segments.slice(0, n).join('/');
      const repo = this.repos.get(id);
      if (repo) return { repo, id, rest: segments.slice(n) };
    }
    return { repo: undefined, id: segments.slice(0, 2).join('/'), rest: segments.slice(2) };
  }

  private commitOf(repo: HubRepo, rev: string): string | undefined {
    return rev === repo.commit || repo.branches.includes(rev) ? repo.commit : undefined;
  }

  private onHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url!, this.endpointUrl);
    const record: RecordedRequest = { server: 'hub', url: req.url!, headers: req.headers };
    this.requests.push(record);
    const fail = (status: number, code?: string) => {
      record.status = status;
      res.writeHead(status, code ? { 'x-error-code': code, 'content-type': 'application/json' } : {});
      res.end(JSON.stringify({ error: code ?? `HTTP ${status}` }));
    };
    const segments = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
    const api = segments[0] === 'api' && segments[1] === 'models';
    const apiFault = api ? this.apiFaults.shift() : undefined;
    if (apiFault === 'hang') return; // the request stays open until the client gives up
    if (apiFault !== undefined) { fail(apiFault); return; }
    const { repo, rest } = this.findRepo(api ? segments.slice(2) : segments);
    if (!repo) { fail(404, 'RepoNotFound'); return; }
    const [kind, rev, ...pathParts] = rest;
    const needsToken = repo.token !== undefined && (!repo.gated || kind === 'resolve');
    if (needsToken && req.headers.authorization !== `Bearer ${repo.token}`) {
      fail(401, repo.gated ? 'GatedRepo' : 'RepoNotFound');
      return;
    }
    const commit = rev === undefined ? undefined : this.commitOf(repo, rev);
    if (!commit) { fail(404, 'RevisionNotFound'); return; }

    if (api && kind === 'revision') {
      record.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: repo.id, sha: commit, siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })) }));
      return;
    }
    if (api && kind === 'tree') {
      const entries = this.treeEntries(repo);
      const cursor = Number(url.searchParams.get('cursor') ?? 0);
      const page = entries.slice(cursor, cursor + this.pageSize);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (cursor + this.pageSize < entries.length) {
        headers.link = `<${this.endpointUrl}/api/models/${repo.id}/tree/${commit}?recursive=true&cursor=${cursor + this.pageSize}>; rel="next"`;
      }
      record.status = 200;
      res.writeHead(200, headers);
      res.end(JSON.stringify(page));
      return;
    }
    if (!api && kind === 'resolve') {
      const p = pathParts.join('/');
      const file = repo.files.get(p);
      record.file = p;
      if (!file) { fail(404, 'EntryNotFound'); return; }
      const common = { 'x-repo-commit': commit, etag: `"${file.etag}"` };
      if (file.sha256) {
        record.status = 302;
        res.writeHead(302, { ...common, location: `${this.cdnUrl}/lfs/${repo.id}/${file.sha256}?signature=test` });
        res.end();
        return;
      }
      this.serveBody(req, res, record, repo, file, common);
      return;
    }
    fail(404);
  }

  private onCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    const record: RecordedRequest = { server: 'cdn', url: req.url!, headers: req.headers };
    this.requests.push(record);
    const m = /^\/lfs\/(.+)\/([0-9a-f]{64})(?:\?|$)/.exec(req.url!);
    const repo = m ? this.repos.get(m[1]!) : undefined;
    const file = repo && [...repo.files.values()].find((f) => f.sha256 === m![2]);
    if (!repo || !file) { record.status = 404; res.writeHead(404); res.end(); return; }
    record.file = file.path;
    this.serveBody(req, res, record, repo, file, {});
  }

  /** The file's content, honouring `Range: bytes=N-` unless a fault says otherwise. */
  private serveBody(
    req: http.IncomingMessage, res: http.ServerResponse, record: RecordedRequest, repo: HubRepo, file: HubFile,
    headers: Record<string, string>,
  ): void {
    const fault = this.faults.get(`${repo.id}/${file.path}`)?.shift();
    if (fault?.kind === 'status') {
      record.status = fault.status;
      res.writeHead(fault.status, fault.headers ?? {});
      res.end();
      return;
    }
    let content = file.content;
    if (fault?.kind === 'corrupt') {
      content = Buffer.from(content);
      const at = fault.at ?? content.length >> 1;
      content[at] = content[at]! ^ 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range && fault?.kind !== 'ignore-range') {
      start = Number(range[1]);
      if (start >= content.length) {
        record.status = 416;
        res.writeHead(416, { 'content-range': `bytes */${content.length}` });
        res.end();
        return;
      }
      record.status = 206;
      res.writeHead(206, { ...headers, 'content-length': content.length - start, 'content-range': `bytes ${start}-${content.length - 1}/${content.length}` });
    } else {
      record.status = 200;
      res.writeHead(200, { ...headers, 'content-length': content.length });
    }
    const body = content.subarray(start);
    if (fault?.kind === 'cut') {
      // Hand the first bytes to the kernel, then drop the connection: the client sees a short body.
      res.write(body.subarray(0, fault.afterBytes), () => res.destroy());
      return;
    }
    if (fault?.kind === 'slow' || fault?.kind === 'stall') {
      const chunk = fault.kind === 'slow' ? fault.chunkBytes : fault.afterBytes;
      let sent = 0;
      let closed = false;
      res.on('close', () => { closed = true; });
      const next = () => {
        if (closed) return;
        const part = body.subarray(sent, sent + (fault.kind === 'stall' && sent > 0 ? body.length : chunk));
        sent += part.length;
        if (sent >= body.length) { res.end(part); return; }
        res.write(part);
        setTimeout(next, fault.kind === 'slow' ? fault.delayMs : fault.ms);
      };
      next();
      return;
    }
    res.end(body);
  }

  private treeEntries(repo: HubRepo): unknown[] {
    const dirs = new Set<string>();
    const entries: { path: string; value: unknown }[] = [];
    for (const f of repo.files.values()) {
      const parts = f.path.split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (!dirs.has(dir)) {
          dirs.add(dir);
          entries.push({ path: dir, value: { type: 'directory', oid: gitSha1(Buffer.from(dir)), size: 0, path: dir } });
        }
      }
      const value: Record<string, unknown> = { type: 'file', oid: f.oid, size: f.sha256 ? 134 : f.size, path: f.path };
      if (f.sha256) value.lfs = { oid: f.sha256, size: f.size, pointerSize: 134 };
      entries.push({ path: f.path, value });
    }
    return entries.sort((a, b) => a.path.localeCompare(b.path)).map((e) => e.value);
  }
}
