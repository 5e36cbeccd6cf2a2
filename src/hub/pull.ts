// `minerva pull`: resolve a repo's revision to a commit once, choose its files, bring each into
// the Hugging Face cache (skipping blobs already there, whoever fetched them), link the snapshot,
// then make the model visible in the models folder under a readable name — a symlink, no copy —
// and record the Hub's hashes beside it for a later offline verify.
import { lstat, mkdir, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HubClient, type RepoFile } from './hub-api.js';
import { HubError } from './hub-errors.js';
import { RepoCache, replaceSymlink, type CachedFile } from './hub-cache.js';
import { hubSettings, type HubSettings } from './hub-settings.js';
import { checkRepoPath, checkRevision, parseRepoRef, type RepoRef } from './repo-ref.js';
import { selectFiles, type Selection } from './file-selection.js';
import { acquireLock } from './file-lock.js';
import { downloadBlob } from './download-blob.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';
import { algorithmOf, type HashAlgorithm } from './content-hash.js';
import { PULL_RECORD_FORMAT, pullRecordPath, writePullRecord, type PullRecord } from './pull-record.js';
import type { PullEvent, PullFileInfo } from './pull-events.js';

export interface PullOptions {
  /** Branch, tag or commit. Default: the one the reference names, else "main". */
  revision?: string;
  /** Exactly this file (all parts of it, for a split GGUF). */
  file?: string;
  /** Where the model's link goes; null for none. Default: $MINERVA_MODELS, else ~/.minerva/models. */
  modelsDir?: string | null;
  /** The environment the Hub settings are read from (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HUB_OFFLINE, …). Default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Settings that win over the environment. */
  settings?: Partial<HubSettings>;
  retry?: Partial<RetryPolicy>;
  /** A download that receives nothing for this long (or an API call not answered in it) is dropped and retried. Default 60 s. */
  stallTimeoutMs?: number;
  /** Least time between two progress events of a file. Default 100 ms. */
  progressIntervalMs?: number;
  lock?: { staleMs?: number; pollMs?: number };
  signal?: AbortSignal;
  onEvent?: (e: PullEvent) => void;
}

export interface PulledFile {
  path: string;
  size: number;
  etag: string | undefined;
  algorithm: HashAlgorithm | undefined;
  /** The blob in the cache (or the snapshot file, where the cache holds a copy). */
  blob: string;
  status: 'downloaded' | 'cached';
}

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  kind: 'gguf' | 'safetensors' | 'file';
  quant: string | undefined;
  snapshotDir: string;
  files: PulledFile[];
  /** What to load: the models-folder link, else the snapshot path. */
  modelPath: string;
  link: string | undefined;
  record: string | undefined;
  downloadedBytes: number;
  offline: boolean;
}

/** $MINERVA_MODELS, else ~/.minerva/models (the server's default). */
export function defaultModelsDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env.MINERVA_MODELS || path.join(os.homedir(), '.minerva', 'models');
}

/** The readable name of the link: `{name}-{QUANT}.gguf` for GGUF (a -GGUF suffix dropped), `{name}` for SafeTensors. */
export function linkName(repo: string, sel: Pick<Selection<{ path: string }>, 'kind' | 'quant' | 'entry'>): string | undefined {
  if (sel.entry === undefined) return undefined;
  const name = repo.split('/').at(-1)!;
  if (sel.kind !== 'gguf') return name;
  const base = name.replace(/[-_.]gguf$/i, '') || name;
  return sel.quant && !base.toUpperCase().endsWith(sel.quant) ? `${base}-${sel.quant}.gguf` : `${base}.gguf`;
}

function fileInfo(f: { path: string; size: number; etag?: string; algorithm?: HashAlgorithm }): PullFileInfo {
  const digest = f.etag === undefined ? undefined : `${f.algorithm === 'sha256' ? 'sha256' : 'sha1'}:${f.etag}`;
  return { path: f.path, size: f.size, etag: f.etag, algorithm: f.algorithm, digest };
}

const fmtBytes = (n: number) => (n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`);

/** Refuses before the first byte when the files still missing do not fit on the disk. */
async function checkDiskSpace(cache: RepoCache, files: readonly RepoFile[]): Promise<void> {
  let needed = 0;
  for (const f of files) {
    if ((await cache.blobSize(f.etag)) === f.size) continue;
    const partial = (await lstat(`${cache.blobPath(f.etag)}.incomplete`).catch(() => undefined))?.size ?? 0;
    needed += f.size - Math.min(partial, f.size);
  }
  if (needed === 0) return;
  const fs = await statfs(cache.blobsDir);
  const free = Number(fs.bavail) * Number(fs.bsize);
  if (needed > free) {
    throw new HubError('disk-full', `not enough disk space in ${cache.blobsDir}: the pull needs ${fmtBytes(needed)}, ${fmtBytes(free)} free`);
  }
}

/** The link path in the models folder, refused early if something that is not a link holds the name. */
async function plannedLink(modelsDir: string | null, name: string | undefined): Promise<string | undefined> {
  if (modelsDir === null || name === undefined) return undefined;
  const link = path.join(path.resolve(modelsDir), name);
  const st = await lstat(link).catch(() => undefined);
  if (st && !st.isSymbolicLink()) {
    throw new HubError('conflict', `${link} already exists and is not a link: move it away or pass another --models-dir`);
  }
  return link;
}

/** Pulls `input` (`org/name[:TAG]`, `hf.co/…`, a model URL, or a parsed RepoRef). */
export async function pull(input: string | RepoRef, o: PullOptions = {}): Promise<PullResult> {
  const ref = typeof input === 'string' ? parseRepoRef(input) : input;
  const revision = checkRevision(o.revision ?? ref.revision ?? 'main');
  const file = o.file ?? ref.file;
  if (file !== undefined) checkRepoPath(file);
  const settings = hubSettings(o.env, o.settings);
  const cache = new RepoCache(path.resolve(settings.cacheDir), ref.repo);
  const modelsDir = o.modelsDir === undefined ? defaultModelsDir(o.env) : o.modelsDir;
  const emit = (e: PullEvent) => o.onEvent?.(e);
  emit({ type: 'resolving', repo: ref.repo, revision, offline: settings.offline });
  const request = { tag: ref.tag, file };
  if (settings.offline) return pullFromCache(ref.repo, revision, request, cache, modelsDir, settings, emit);

  const retry = { ...DEFAULT_RETRY, ...o.retry };
  let current: PullFileInfo | undefined;
  const client = new HubClient(settings, {
    retry, signal: o.signal, timeoutMs: o.stallTimeoutMs,
    onRetry: (r) => emit({ type: 'file-retry', file: current, attempt: r.attempt, delayMs: r.delayMs, reason: r.reason }),
  });
  const commit = await client.resolveCommit(ref.repo, revision);
  const tree = await client.listFiles(ref.repo, commit, revision);
  const sel = selectFiles(tree, request, `${ref.repo}@${revision}`);
  const link = await plannedLink(modelsDir, linkName(ref.repo, sel));
  const infos = sel.files.map(fileInfo);
  emit({
    type: 'resolved', repo: ref.repo, revision, commit, kind: sel.kind, files: infos,
    totalBytes: sel.files.reduce((a, f) => a + f.size, 0), offline: false,
  });
  await mkdir(cache.blobsDir, { recursive: true });
  await cache.writeRef(revision, commit);
  await checkDiskSpace(cache, sel.files);

  const pulled: PulledFile[] = [];
  let downloadedBytes = 0;
  for (const [index, f] of sel.files.entries()) {
    const info = infos[index]!;
    current = info;
    const blob = cache.blobPath(f.etag);
    const done = (status: PulledFile['status'], received: number) => {
      pulled.push({ path: f.path, size: f.size, etag: f.etag, algorithm: f.algorithm, blob, status });
      emit({ type: 'file-done', file: info, cached: status === 'cached', received });
    };
    if ((await cache.blobSize(f.etag)) === f.size) {
      emit({ type: 'file-start', file: info, index, count: sel.files.length, cached: true });
      done('cached', 0);
      continue;
    }
    const release = await acquireLock(`${blob}.lock`, { ...o.lock, signal: o.signal, onWait: () => emit({ type: 'file-wait', file: info }) });
    try {
      // Another pull may have brought it while we waited for the lock.
      const cached = (await cache.blobSize(f.etag)) === f.size;
      emit({ type: 'file-start', file: info, index, count: sel.files.length, cached });
      if (cached) { done('cached', 0); continue; }
      const { received } = await downloadBlob({
        client, url: client.fileUrl(ref.repo, commit, f.path), file: f, dest: blob,
        subject: { repo: ref.repo, revision, file: f.path }, retry,
        stallMs: o.stallTimeoutMs ?? 60_000, progressIntervalMs: o.progressIntervalMs ?? 100, signal: o.signal,
        onProgress: (completed, total) => emit({ type: 'file-progress', file: info, completed, total }),
        onRetry: (r) => emit({ type: 'file-retry', file: info, ...r }),
        onVerifying: () => emit({ type: 'file-verifying', file: info }),
      });
      downloadedBytes += received;
      done('downloaded', received);
    } finally {
      await release();
    }
  }
  for (const f of sel.files) await cache.linkSnapshot(commit, f.path, f.etag);
  return finish({
    repo: ref.repo, revision, commit, kind: sel.kind, quant: sel.quant, snapshotDir: cache.snapshotDir(commit),
    files: pulled, downloadedBytes, offline: false,
  }, sel.entry, link, cache, settings, emit);
}

/** HF_HUB_OFFLINE: the revision from refs/, the files from the snapshot, no network. */
async function pullFromCache(
  repo: string, revision: string, request: { tag?: string; file?: string }, cache: RepoCache, modelsDir: string | null,
  settings: HubSettings, emit: (e: PullEvent) => void,
): Promise<PullResult> {
  const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : await cache.readRef(revision);
  const files = commit ? await cache.listSnapshot(commit) : [];
  if (!commit || files.length === 0) {
    throw new HubError('offline', `HF_HUB_OFFLINE is set and the cache has no ${repo}@${revision} (looked in ${cache.root})`);
  }
  let sel: Selection<CachedFile>;
  try {
    sel = selectFiles(files, request, `the cached ${repo}@${revision}`);
  } catch (e) {
    if (e instanceof HubError) throw new HubError('offline', `HF_HUB_OFFLINE is set: ${e.message}`);
    throw e;
  }
  const link = await plannedLink(modelsDir, linkName(repo, sel));
  const withHash = sel.files.map((f) => ({ ...f, algorithm: f.etag ? algorithmOf(f.etag) : undefined }));
  emit({
    type: 'resolved', repo, revision, commit, kind: sel.kind, files: withHash.map(fileInfo),
    totalBytes: sel.files.reduce((a, f) => a + f.size, 0), offline: true,
  });
  const pulled = withHash.map((f, index): PulledFile => {
    const info = fileInfo(f);
    emit({ type: 'file-start', file: info, index, count: withHash.length, cached: true });
    emit({ type: 'file-done', file: info, cached: true, received: 0 });
    const blob = f.etag && f.algorithm ? cache.blobPath(f.etag) : cache.snapshotPath(commit, f.path);
    return { path: f.path, size: f.size, etag: f.algorithm ? f.etag : undefined, algorithm: f.algorithm, blob, status: 'cached' };
  });
  return finish({
    repo, revision, commit, kind: sel.kind, quant: sel.quant, snapshotDir: cache.snapshotDir(commit),
    files: pulled, downloadedBytes: 0, offline: true,
  }, sel.entry, link, cache, settings, emit);
}

/** The models-folder link and its record, then the result. */
async function finish(
  r: Omit<PullResult, 'modelPath' | 'link' | 'record'>, entry: string | undefined, link: string | undefined,
  cache: RepoCache, settings: HubSettings, emit: (e: PullEvent) => void,
): Promise<PullResult> {
  const target = entry === undefined ? undefined : entry === '' ? r.snapshotDir : cache.snapshotPath(r.commit, entry);
  let record: string | undefined;
  if (link && target !== undefined) {
    await replaceSymlink(target, link, entry === '' ? 'dir' : 'file');
    emit({ type: 'linked', link, target });
    record = pullRecordPath(path.dirname(link), path.basename(link));
    const rec: PullRecord = {
      format: PULL_RECORD_FORMAT, repo: r.repo, revision: r.revision, commit: r.commit, endpoint: settings.endpoint,
      kind: r.kind, quant: r.quant ?? null, snapshot: r.snapshotDir, link, target, pulledAt: new Date().toISOString(),
      files: r.files.map((f) => ({ path: f.path, size: f.size, ...(f.etag && f.algorithm ? { algorithm: f.algorithm, oid: f.etag } : {}) })),
    };
    await writePullRecord(record, rec);
  }
  const modelPath = link ?? target ?? (r.files[0] ? cache.snapshotPath(r.commit, r.files[0].path) : r.snapshotDir);
  emit({ type: 'done', modelPath, downloadedBytes: r.downloadedBytes });
  return { ...r, modelPath, link, record };
}
