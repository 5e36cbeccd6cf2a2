// minerva pull against a local Hub (test/helpers/local-hub.ts): file choice, the Hugging Face
// cache layout, resume, retries, integrity, locking, auth and errors, offline use.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { LocalHub } from './helpers/local-hub.js';
import { pull, linkName, type PullOptions } from '../src/hub/pull.js';
import { HubError } from '../src/hub/hub-errors.js';
import { parseRepoRef } from '../src/hub/repo-ref.js';
import { matchesTag, quantOf, selectFiles } from '../src/hub/file-selection.js';
import { ollamaPullStatus, type PullEvent } from '../src/hub/pull-events.js';
import { readPullRecord, verifyPullRecord } from '../src/hub/pull-record.js';
import { hubSettings } from '../src/hub/hub-settings.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from '../src/model/random-model.js';
import { syntheticSpmVocab, syntheticVocabGGUF, syntheticVocabHF } from '../src/tokenizer/synthetic-vocab.js';
import { loadModel } from '../src/index.js';

let hub: LocalHub;
let root: string;
let ggufBytes: Buffer;
let hfFiles: Record<string, Buffer>;
let n = 0;

const bytes = (size: number, seed: string) => {
  const out = Buffer.alloc(size);
  for (let i = 0, block = 0; i < size; block++) {
    const h = createHash('sha256').update(`${seed}:${block}`).digest();
    i += h.copy(out, i);
  }
  return out;
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

before(async () => {
  hub = await LocalHub.start();
  root = await mkdtemp(path.join(os.tmpdir(), 'minerva-pull-'));
  // A real (tiny) model, as GGUF and as a sharded SafeTensors folder, to check that pulled files load.
  const spec = randomSpec({ arch: 'llama', dim: 32, nLayers: 1, nHeads: 2, nKVHeads: 1, ffnDim: 64, tied: true, vocabSize: 300 });
  const weights = randomWeights(spec, 7);
  const vocab = syntheticSpmVocab(300);
  const src = path.join(root, 'src');
  await mkdir(src);
  await writeGGUFModel(path.join(src, 'm.gguf'), spec, weights, { dtype: 'Q8_0', vocab: syntheticVocabGGUF(vocab) });
  ggufBytes = await readFile(path.join(src, 'm.gguf'));
  await writeHFModel(path.join(src, 'hf'), spec, weights, { dtype: 'F16', maxShardBytes: 12_000, tokenizer: syntheticVocabHF(vocab) });
  hfFiles = {};
  for (const f of await readdir(path.join(src, 'hf'))) hfFiles[f] = await readFile(path.join(src, 'hf', f));

  hub.addRepo({
    id: 'acme/Tiny-GGUF',
    files: {
      'README.md': '# Tiny\n',
      'mmproj-tiny-f16.gguf': bytes(3000, 'mmproj'),
      'tiny.imatrix.gguf': bytes(1000, 'imatrix'),
      'tiny-BF16.gguf': bytes(5000, 'bf16'),
      'tiny-Q8_0.gguf': ggufBytes,
      'tiny-Q4_K_M.gguf': bytes(200_000, 'q4km'),
      'big/tiny-Q6_K-00001-of-00003.gguf': bytes(4000, 'p1'),
      'big/tiny-Q6_K-00002-of-00003.gguf': bytes(4000, 'p2'),
      'big/tiny-Q6_K-00003-of-00003.gguf': bytes(2000, 'p3'),
    },
  });
  hub.addRepo({ id: 'acme/projector-first', files: { 'mmproj-x.gguf': bytes(100, 'mm'), 'x-IQ3_XS.gguf': bytes(100, 'iq3'), 'x-F16.gguf': bytes(100, 'f16') } });
  hub.addRepo({
    id: 'acme/tiny-hf',
    files: { ...hfFiles, 'README.md': 'readme', 'consolidated.safetensors': bytes(500, 'mistral'), 'original/params.json': '{}' },
  });
});
after(async () => {
  await hub.close();
  await rm(root, { recursive: true, force: true });
});

/** A fresh cache and models folder, with the environment that points a pull at the local Hub. */
async function fresh(extraEnv: Record<string, string> = {}) {
  const dir = path.join(root, `case-${++n}`);
  await mkdir(dir);
  const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: path.join(dir, 'cache'), HF_HOME: path.join(dir, 'hf-home'), ...extraEnv };
  const events: PullEvent[] = [];
  const options = (o: PullOptions = {}): PullOptions => ({
    env, modelsDir: path.join(dir, 'models'), retry: { baseDelayMs: 5 }, progressIntervalMs: 0, lock: { pollMs: 10 },
    onEvent: (e) => events.push(e), ...o,
  });
  return { dir, env, events, options, cache: path.join(dir, 'cache'), models: path.join(dir, 'models') };
}

/** Every entry under a folder: files as size, links as their target, folders as '/'. */
async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, prefix: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      const full = path.join(d, e.name);
      if (e.isSymbolicLink()) out[rel] = `-> ${await readlink(full)}`;
      else if (e.isDirectory()) { out[rel] = '/'; await walk(full, rel); } else out[rel] = `${(await stat(full)).size} bytes`;
    }
  };
  await walk(dir, '');
  return out;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const requestsSince = (mark: number) => hub.requests.slice(mark);

test('repo references: org/name[:TAG], hf.co/…, model URLs; bad names refused', () => {
  assert.deepEqual(parseRepoRef('acme/Tiny-GGUF'), { repo: 'acme/Tiny-GGUF' });
  assert.deepEqual(parseRepoRef('hf.co/acme/Tiny-GGUF:q8_0'), { repo: 'acme/Tiny-GGUF', tag: 'q8_0' });
  assert.deepEqual(parseRepoRef('huggingface.co/acme/Tiny-GGUF:latest'), { repo: 'acme/Tiny-GGUF' });
  assert.deepEqual(parseRepoRef('https://huggingface.co/acme/Tiny-GGUF'), { repo: 'acme/Tiny-GGUF' });
  assert.deepEqual(parseRepoRef('https://huggingface.co/acme/Tiny-GGUF/tree/dev'), { repo: 'acme/Tiny-GGUF', revision: 'dev' });
  assert.deepEqual(parseRepoRef('https://hf.co/acme/Tiny-GGUF/blob/main/big/a.gguf'), { repo: 'acme/Tiny-GGUF', revision: 'main', file: 'big/a.gguf' });
  assert.deepEqual(parseRepoRef('gpt2'), { repo: 'gpt2' });
  for (const bad of ['acme/../x', 'a/b/c', 'acme/x:', 'acme/x:Q4 K', '/x', 'acme/x--y', 'https://example.com/acme/x']) {
    assert.throws(() => parseRepoRef(bad), (e: HubError) => e.kind === 'bad-input' && e.message.includes(bad.split(':')[0]!.slice(0, 4)), bad);
  }
});

test('file choice: tags as TAG. or TAG- (F16 is not BF16), defaults, splits, projectors skipped, SafeTensors', () => {
  assert.ok(matchesTag('model-Q4_K_M.gguf', 'q4_k_m'));
  assert.ok(matchesTag('model.Q4_K_M-00001-of-00002.gguf', 'Q4_K_M'));
  assert.ok(!matchesTag('model-Q4_K_M.gguf', 'Q4_K'));
  assert.ok(!matchesTag('model-BF16.gguf', 'F16'));
  assert.equal(quantOf('x/tiny.Q5_K_S-00002-of-00004.gguf'), 'Q5_K_S');
  assert.equal(quantOf('Llama-3.2-1B-Instruct-IQ3_XS.gguf'), 'IQ3_XS');
  assert.equal(quantOf('model.gguf'), undefined);
  const files = ['a-Q2_K.gguf', 'a-Q8_0.gguf', 'mmproj-Q4_K_M.gguf', 'a-imatrix-Q4_K_M.gguf'].map((p) => ({ path: p }));
  assert.equal(selectFiles(files, {}, 'r').files[0]!.path, 'a-Q8_0.gguf');
  assert.equal(selectFiles(files.slice(0, 1), {}, 'r').files[0]!.path, 'a-Q2_K.gguf');
  assert.throws(() => selectFiles([{ path: 'a-00001-of-00002.gguf' }], {}, 'acme/r@main'), /part a-00002-of-00002\.gguf is missing from acme\/r@main/);
  assert.throws(() => selectFiles([{ path: 'model.safetensors' }], {}, 'r'), /no config\.json/);
  assert.throws(() => selectFiles([{ path: 'config.json' }], { tag: 'Q4_0' }, 'r'), /no \.gguf files/);
  assert.equal(linkName('acme/Tiny-GGUF', { kind: 'gguf', quant: 'Q8_0', entry: 'x' }), 'Tiny-Q8_0.gguf');
  assert.equal(linkName('acme/tiny-hf', { kind: 'safetensors', quant: undefined, entry: '' }), 'tiny-hf');
  assert.equal(linkName('acme/x', { kind: 'file', quant: undefined, entry: undefined }), undefined);
});

test('hub settings: HF_ENDPOINT, HF_TOKEN else the token file, HF_HUB_CACHE else HF_HOME/hub, HF_HUB_OFFLINE', async () => {
  const home = path.join(root, 'settings-home');
  await mkdir(home, { recursive: true });
  await writeFile(path.join(home, 'token'), 'hf_file\n');
  assert.deepEqual(hubSettings({ HF_HOME: home }), { endpoint: 'https://huggingface.co', token: 'hf_file', cacheDir: path.join(home, 'hub'), offline: false });
  const s = hubSettings({ HF_HOME: home, HF_TOKEN: 'hf_env', HF_HUB_CACHE: '/c', HF_ENDPOINT: 'http://mirror:8080/', HF_HUB_OFFLINE: 'true' });
  assert.deepEqual(s, { endpoint: 'http://mirror:8080', token: 'hf_env', cacheDir: '/c', offline: true });
  assert.throws(() => hubSettings({ HF_ENDPOINT: 'ftp://x' }), /HF_ENDPOINT: expected an http\(s\) URL, got "ftp:\/\/x"/);
});

test('a GGUF pull for :Q8_0 picks that file, lays out the HF cache exactly, links it, and the model loads', async () => {
  const c = await fresh();
  const repo = hub.repos.get('acme/Tiny-GGUF')!;
  const r = await pull('hf.co/acme/Tiny-GGUF:Q8_0', c.options());
  assert.deepEqual(r.files.map((f) => [f.path, f.status]), [['tiny-Q8_0.gguf', 'downloaded']]);
  assert.equal(r.commit, repo.commit);
  assert.equal(r.quant, 'Q8_0');
  const q8 = repo.files.get('tiny-Q8_0.gguf')!;
  assert.equal(q8.etag, sha256(ggufBytes));
  assert.deepEqual(await tree(c.cache), {
    'models--acme--Tiny-GGUF': '/',
    'models--acme--Tiny-GGUF/blobs': '/',
    [`models--acme--Tiny-GGUF/blobs/${q8.etag}`]: `${ggufBytes.length} bytes`,
    'models--acme--Tiny-GGUF/refs': '/',
    'models--acme--Tiny-GGUF/refs/main': '40 bytes',
    'models--acme--Tiny-GGUF/snapshots': '/',
    [`models--acme--Tiny-GGUF/snapshots/${repo.commit}`]: '/',
    [`models--acme--Tiny-GGUF/snapshots/${repo.commit}/tiny-Q8_0.gguf`]: `-> ../../blobs/${q8.etag}`,
  });
  assert.equal(await readFile(path.join(c.cache, 'models--acme--Tiny-GGUF/refs/main'), 'utf8'), repo.commit);
  const link = path.join(c.models, 'Tiny-Q8_0.gguf');
  assert.equal(r.modelPath, link);
  assert.equal(await readlink(link), path.join(c.cache, 'models--acme--Tiny-GGUF/snapshots', repo.commit, 'tiny-Q8_0.gguf'));
  assert.deepEqual(await readFile(link), ggufBytes);

  const model = await loadModel(link, { backend: 'reference' });
  try {
    assert.equal(model.info().format, 'gguf');
    assert.equal((await model.logits(model.tokenize('hello'))).length, 300);
  } finally {
    model.dispose();
  }
});

test('without a tag Q4_K_M is chosen; else Q8_0; else the first GGUF that is not a projector or imatrix', async () => {
  const c = await fresh();
  const r = await pull('acme/Tiny-GGUF', c.options());
  assert.deepEqual(r.files.map((f) => f.path), ['tiny-Q4_K_M.gguf']);
  assert.equal(path.basename(r.modelPath), 'Tiny-Q4_K_M.gguf');
  const p = await pull('acme/projector-first', c.options());
  assert.deepEqual(p.files.map((f) => f.path), ['x-F16.gguf']); // the tree's first after mmproj-x.gguf
  assert.equal(path.basename(p.modelPath), 'projector-first-F16.gguf');
});

test('a split model brings all its parts (nested paths link with ../ per level) and links the first', async () => {
  const c = await fresh();
  const repo = hub.repos.get('acme/Tiny-GGUF')!;
  const r = await pull('acme/Tiny-GGUF:q6_k', c.options());
  const parts = [1, 2, 3].map((i) => `big/tiny-Q6_K-0000${i}-of-00003.gguf`);
  assert.deepEqual(r.files.map((f) => f.path), parts);
  const snap = path.join(c.cache, 'models--acme--Tiny-GGUF/snapshots', repo.commit);
  for (const p of parts) {
    assert.equal(await readlink(path.join(snap, p)), `../../../blobs/${repo.files.get(p)!.etag}`);
    assert.deepEqual(await readFile(path.join(snap, p)), repo.files.get(p)!.content);
  }
  assert.equal(await readlink(r.modelPath), path.join(snap, parts[0]!));
  assert.equal(path.basename(r.modelPath), 'Tiny-Q6_K.gguf');
});

test('no file for the tag: the error lists the GGUF files the repo has', async () => {
  const c = await fresh();
  await assert.rejects(pull('acme/Tiny-GGUF:Q3_K_L', c.options()), (e: HubError) => {
    assert.equal(e.kind, 'no-match');
    assert.match(e.message, /no \.gguf file in acme\/Tiny-GGUF@main matches ":Q3_K_L"; it has: big\/tiny-Q6_K-00001-of-00003\.gguf, .*tiny-BF16\.gguf, tiny-Q4_K_M\.gguf, tiny-Q8_0\.gguf$/);
    assert.doesNotMatch(e.message, /mmproj|imatrix/);
    return true;
  });
});

test('a SafeTensors pull brings config, tokenizer and every shard (and nothing else), links the folder, and it loads', async () => {
  const c = await fresh();
  const repo = hub.repos.get('acme/tiny-hf')!;
  const r = await pull('https://huggingface.co/acme/tiny-hf', c.options());
  const shards = Object.keys(hfFiles).filter((f) => f.endsWith('.safetensors')).sort();
  assert.ok(shards.length >= 2, `expected a sharded model, got ${shards.join(', ')}`);
  assert.deepEqual(r.files.map((f) => f.path).sort(),
    ['config.json', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json', ...shards].sort());
  const snap = path.join(c.cache, 'models--acme--tiny-hf/snapshots', repo.commit);
  assert.equal(r.modelPath, path.join(c.models, 'tiny-hf'));
  assert.equal(await readlink(r.modelPath), snap);
  // Small files are named by their git blob sha1, LFS files by their sha256.
  const config = repo.files.get('config.json')!;
  assert.equal(config.sha256, undefined);
  assert.equal(await readlink(path.join(snap, 'config.json')), `../../blobs/${config.oid}`);
  assert.equal(await readlink(path.join(snap, shards[0]!)), `../../blobs/${repo.files.get(shards[0]!)!.sha256}`);
  const model = await loadModel(r.modelPath, { backend: 'reference' });
  try {
    assert.equal(model.info().format, 'safetensors');
    assert.equal(model.info().spec.vocabSize, 300);
  } finally {
    model.dispose();
  }
});

test('a second pull downloads nothing, and blobs fetched by another tool (same cache) are reused', async () => {
  const c = await fresh();
  await pull('acme/tiny-hf', c.options());
  const mark = hub.requests.length;
  const again = await pull('acme/tiny-hf', c.options());
  assert.ok(again.files.every((f) => f.status === 'cached'));
  assert.equal(again.downloadedBytes, 0);
  assert.deepEqual(requestsSince(mark).filter((q) => q.file !== undefined), []);
  // The same blob under another revision name: nothing is fetched either.
  hub.repos.get('acme/tiny-hf')!.branches.push('v1');
  const mark2 = hub.requests.length;
  const v1 = await pull('acme/tiny-hf', c.options({ revision: 'v1' }));
  assert.equal(v1.downloadedBytes, 0);
  assert.deepEqual(requestsSince(mark2).filter((q) => q.file !== undefined), []);
  assert.equal(await readFile(path.join(c.cache, 'models--acme--tiny-hf/refs/v1'), 'utf8'), v1.commit);
});

test('a connection cut mid-body resumes with a Range request for exactly the missing bytes', async () => {
  const c = await fresh();
  const file = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q4_K_M.gguf')!;
  hub.fault('acme/Tiny-GGUF', 'tiny-Q4_K_M.gguf', { kind: 'cut', afterBytes: 70_000 });
  const mark = hub.requests.length;
  const r = await pull('acme/Tiny-GGUF:Q4_K_M', c.options());
  const cdn = requestsSince(mark).filter((q) => q.server === 'cdn');
  // fetch may drop the last chunks it had buffered when the connection broke: the resume starts
  // where what reached the disk ends, at or before the cut.
  const got = /^bytes=(\d+)-$/.exec(String(cdn[1]?.headers.range));
  assert.ok(got && Number(got[1]) > 0 && Number(got[1]) <= 70_000, String(cdn[1]?.headers.range));
  assert.deepEqual(cdn.map((q) => [q.headers.range, q.status]), [[undefined, 200], [`bytes=${got[1]}-`, 206]]);
  assert.deepEqual(await readFile(r.modelPath), file.content);
  assert.equal(r.downloadedBytes, file.size); // every byte received once: the first part, then the rest
  assert.ok(c.events.some((e) => e.type === 'file-retry'));
});

test('an interrupted pull leaves a partial file that the next pull resumes', async () => {
  const c = await fresh();
  const file = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q4_K_M.gguf')!;
  hub.fault('acme/Tiny-GGUF', 'tiny-Q4_K_M.gguf', { kind: 'cut', afterBytes: 50_000 });
  await assert.rejects(pull('acme/Tiny-GGUF', c.options({ retry: { retries: 0 } })), /tiny-Q4_K_M\.gguf: download failed after 0 retries/);
  const blobs = path.join(c.cache, 'models--acme--Tiny-GGUF/blobs');
  assert.deepEqual(await readdir(blobs), [`${file.etag}.incomplete`]);
  const kept = (await stat(path.join(blobs, `${file.etag}.incomplete`))).size;
  assert.ok(kept > 0 && kept <= 50_000, `${kept}`);
  const mark = hub.requests.length;
  const r = await pull('acme/Tiny-GGUF', c.options());
  assert.deepEqual(requestsSince(mark).filter((q) => q.server === 'cdn').map((q) => q.headers.range), [`bytes=${kept}-`]);
  assert.equal(r.downloadedBytes, file.size - kept);
  assert.deepEqual(await readFile(r.modelPath), file.content);
  assert.deepEqual(await readdir(blobs), [file.etag]);
});

test('a server that ignores Range (answers 200) makes the download start over, with a correct result', async () => {
  const c = await fresh();
  const file = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q4_K_M.gguf')!;
  hub.fault('acme/Tiny-GGUF', 'tiny-Q4_K_M.gguf', { kind: 'cut', afterBytes: 30_000 }, { kind: 'ignore-range' });
  const mark = hub.requests.length;
  const r = await pull('acme/Tiny-GGUF', c.options());
  assert.deepEqual(requestsSince(mark).filter((q) => q.server === 'cdn').map((q) => [q.headers.range, q.status]),
    [[undefined, 200], ['bytes=30000-', 200]]);
  assert.deepEqual(await readFile(r.modelPath), file.content);
});

test('transient failures are retried with backoff: 503, 429 and no answer from the API, 500 and a stalled body on a download', async () => {
  const c = await fresh();
  const file = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q8_0.gguf')!;
  hub.failApi(503, 'hang', 429);
  hub.fault('acme/Tiny-GGUF', 'tiny-Q8_0.gguf', { kind: 'status', status: 500 }, { kind: 'stall', afterBytes: 1000, ms: 1000 });
  const mark = hub.requests.length;
  const r = await pull('acme/Tiny-GGUF:Q8_0', c.options({ stallTimeoutMs: 150 }));
  assert.deepEqual(await readFile(r.modelPath), file.content);
  assert.deepEqual(requestsSince(mark).filter((q) => q.server === 'cdn').map((q) => [q.headers.range, q.status]),
    [[undefined, 500], [undefined, 200], ['bytes=1000-', 206]]);
  assert.deepEqual(c.events.flatMap((e) => (e.type === 'file-retry' ? [e.reason] : [])),
    ['HTTP 503', 'no answer within 150 ms', 'HTTP 429', 'HTTP 500', `no data for 150 ms from ${hub.endpoint}/acme/Tiny-GGUF/resolve/${r.commit}/tiny-Q8_0.gguf`]);
});

test('a corrupted byte: the error names the file and both hashes, and nothing is left behind', async () => {
  const c = await fresh();
  const file = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q4_K_M.gguf')!;
  const corrupted = Buffer.from(file.content);
  corrupted[1234] ^= 0xff;
  hub.fault('acme/Tiny-GGUF', 'tiny-Q4_K_M.gguf', { kind: 'corrupt', at: 1234 });
  await assert.rejects(pull('acme/Tiny-GGUF', c.options()), (e: HubError) => {
    assert.equal(e.kind, 'integrity');
    assert.equal(e.message, `tiny-Q4_K_M.gguf: SHA-256 mismatch: expected ${file.etag}, got ${sha256(corrupted)} (the download was deleted)`);
    return true;
  });
  assert.deepEqual(await readdir(path.join(c.cache, 'models--acme--Tiny-GGUF/blobs')), []);
  await assert.rejects(lstat(path.join(c.models, 'Tiny-Q4_K_M.gguf')), { code: 'ENOENT' });
});

test('a corrupted small file fails its git blob SHA-1', async () => {
  const c = await fresh();
  const config = hub.repos.get('acme/tiny-hf')!.files.get('config.json')!;
  hub.fault('acme/tiny-hf', 'config.json', { kind: 'corrupt', at: 0 });
  await assert.rejects(pull('acme/tiny-hf', c.options()), new RegExp(`^HubError: config\\.json: git blob SHA-1 mismatch: expected ${config.oid}, got [0-9a-f]{40}`));
});

test('two concurrent pulls of one file download it once (the second waits on the lock, then reuses the blob)', async () => {
  const c = await fresh();
  const file = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q4_K_M.gguf')!;
  hub.fault('acme/Tiny-GGUF', 'tiny-Q4_K_M.gguf', { kind: 'slow', chunkBytes: 40_000, delayMs: 30 });
  const mark = hub.requests.length;
  const [a, b] = await Promise.all([pull('acme/Tiny-GGUF', c.options()), pull('acme/Tiny-GGUF', c.options())]);
  assert.deepEqual(requestsSince(mark).filter((q) => q.server === 'cdn').length, 1);
  assert.deepEqual([a.files[0]!.status, b.files[0]!.status].sort(), ['cached', 'downloaded']);
  assert.ok(c.events.some((e) => e.type === 'file-wait'));
  assert.deepEqual(await readFile(a.modelPath), file.content);
  assert.deepEqual(await readdir(path.join(c.cache, 'models--acme--Tiny-GGUF/blobs')), [file.etag]);
});

test('a lock left by a dead process is taken over', async () => {
  const c = await fresh();
  const file = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q8_0.gguf')!;
  const blobs = path.join(c.cache, 'models--acme--Tiny-GGUF/blobs');
  await mkdir(blobs, { recursive: true });
  await writeFile(path.join(blobs, `${file.etag}.lock`), JSON.stringify({ pid: 2 ** 22 + 12345, host: os.hostname(), nonce: 'x' }));
  const r = await pull('acme/Tiny-GGUF:Q8_0', c.options());
  assert.equal(r.files[0]!.status, 'downloaded');
  assert.deepEqual(await readdir(blobs), [file.etag]);
});

test('the token goes to the Hub and never to the redirect host; HF_HOME/token is read when HF_TOKEN is unset', async () => {
  hub.addRepo({ id: 'acme/gated', token: 'hf_secret', files: { 'g-Q8_0.gguf': bytes(3000, 'gated'), 'config.json': '{}' } });
  for (const env of [{ HF_TOKEN: 'hf_secret' }, {}] as Record<string, string>[]) {
    const c = await fresh(env);
    if (!('HF_TOKEN' in env)) {
      await mkdir(c.env.HF_HOME, { recursive: true });
      await writeFile(path.join(c.env.HF_HOME, 'token'), 'hf_secret\n');
    }
    const mark = hub.requests.length;
    await pull('acme/gated', c.options());
    const seen = requestsSince(mark);
    assert.ok(seen.some((q) => q.server === 'cdn'));
    for (const q of seen) assert.equal(q.headers.authorization, q.server === 'hub' ? 'Bearer hf_secret' : undefined, `${q.server} ${q.url}`);
  }
});

test('401: a gated model says to accept its licence and set HF_TOKEN; a private one says it may need HF_TOKEN', async () => {
  hub.addRepo({ id: 'acme/licensed', token: 'hf_secret', gated: true, files: { 'l-Q8_0.gguf': bytes(3000, 'licensed') } });
  const c = await fresh();
  await assert.rejects(pull('acme/licensed', c.options()), (e: HubError) => {
    assert.equal(e.kind, 'unauthorized');
    assert.equal(e.message, `acme/licensed: access denied (HTTP 401 GatedRepo): the model is gated or private; accept its licence on ${hub.endpoint}/acme/licensed and set HF_TOKEN`);
    return true;
  });
  assert.deepEqual(await readdir(path.join(c.cache, 'models--acme--licensed/blobs')), []);
  const wrong = await fresh({ HF_TOKEN: 'hf_wrong' });
  await assert.rejects(pull('acme/licensed', wrong.options()), /check that HF_TOKEN has access to it$/);
  // A private repo answers as if it did not exist (the Hub's RepoNotFound on a 401).
  await assert.rejects(pull('acme/gated', c.options()), (e: HubError) =>
    e.kind === 'not-found' && e.message === `repository acme/gated not found on ${hub.endpoint} (if it is private, set HF_TOKEN)`);
});

test('404s name what is missing: the repo, the revision, the file', async () => {
  const c = await fresh();
  await assert.rejects(pull('acme/nope', c.options()), (e: HubError) =>
    e.kind === 'not-found' && e.message === `repository acme/nope not found on ${hub.endpoint} (if it is private, set HF_TOKEN)`);
  await assert.rejects(pull('acme/Tiny-GGUF', c.options({ revision: 'v9' })), { message: 'revision "v9" not found in acme/Tiny-GGUF' });
  await assert.rejects(pull('acme/Tiny-GGUF', c.options({ file: 'nope.gguf' })), { message: 'nope.gguf not found in acme/Tiny-GGUF@main' });
  hub.fault('acme/Tiny-GGUF', 'tiny-BF16.gguf', { kind: 'status', status: 404, headers: { 'x-error-code': 'EntryNotFound' } });
  await assert.rejects(pull('acme/Tiny-GGUF', c.options({ file: 'tiny-BF16.gguf' })), { message: 'tiny-BF16.gguf not found in acme/Tiny-GGUF@main' });
});

test('--file takes exactly that file; a non-GGUF file gets no link', async () => {
  const c = await fresh();
  const r = await pull('acme/Tiny-GGUF', c.options({ file: 'tiny-BF16.gguf' }));
  assert.deepEqual(r.files.map((f) => f.path), ['tiny-BF16.gguf']);
  assert.equal(path.basename(r.modelPath), 'Tiny-BF16.gguf');
  const readme = await pull('acme/Tiny-GGUF', c.options({ file: 'README.md' }));
  assert.equal(readme.link, undefined);
  assert.equal(await readFile(readme.modelPath, 'utf8'), '# Tiny\n');
});

test('HF_HUB_OFFLINE uses what the cache has, without a request; fails saying so when the cache lacks it', async () => {
  const c = await fresh();
  const online = await pull('acme/tiny-hf', c.options());
  await rm(c.models, { recursive: true });
  const mark = hub.requests.length;
  const offline = await pull('acme/tiny-hf', c.options({ env: { ...c.env, HF_HUB_OFFLINE: '1', HF_ENDPOINT: `http://127.0.0.1:${await closedPort()}` } }));
  assert.equal(hub.requests.length, mark);
  assert.equal(offline.offline, true);
  assert.equal(offline.commit, online.commit);
  assert.deepEqual(offline.files.map((f) => [f.path, f.etag]).sort(), online.files.map((f) => [f.path, f.etag]).sort());
  assert.equal(await readlink(offline.modelPath), online.snapshotDir);
  await assert.rejects(pull('acme/Tiny-GGUF', c.options({ env: { ...c.env, HF_HUB_OFFLINE: '1' } })), (e: HubError) =>
    e.kind === 'offline' && e.message.startsWith('HF_HUB_OFFLINE is set and the cache has no acme/Tiny-GGUF@main'));
});

test('no network: a one-line error that says the Hub cannot be reached', async () => {
  const dead = await closedPort();
  const c = await fresh({ HF_ENDPOINT: `http://127.0.0.1:${dead}` });
  await assert.rejects(pull('acme/Tiny-GGUF', c.options()), (e: HubError) =>
    e.kind === 'network' && e.message === `cannot reach http://127.0.0.1:${dead} (ECONNREFUSED): check the network, or set HF_HUB_OFFLINE=1 to use the cache`);
});

test('not enough disk space is refused before the first byte, with the sizes', async () => {
  const c = await fresh();
  hub.addRepo({ id: 'acme/huge', files: { 'h-Q4_K_M.gguf': bytes(100, 'huge') } });
  hub.repos.get('acme/huge')!.files.get('h-Q4_K_M.gguf')!.size = 2 ** 52; // the tree announces 4 PiB
  const mark = hub.requests.length;
  await assert.rejects(pull('acme/huge', c.options()), (e: HubError) =>
    e.kind === 'disk-full' && /^not enough disk space in .*blobs: the pull needs 4194304\.0 GiB, [\d.]+ GiB free$/.test(e.message));
  assert.deepEqual(requestsSince(mark).filter((q) => q.file !== undefined), []);
});

test('tree pages are followed through Link headers', async () => {
  const c = await fresh();
  hub.pageSize = 2;
  try {
    const mark = hub.requests.length;
    const r = await pull('acme/tiny-hf', c.options());
    assert.ok(requestsSince(mark).filter((q) => q.url.includes('/tree/')).length > 3);
    assert.ok(r.files.some((f) => f.path === 'tokenizer_config.json'));
  } finally {
    hub.pageSize = 1000;
  }
});

test('progress events map onto Ollama /api/pull statuses', async () => {
  const c = await fresh();
  await pull('acme/Tiny-GGUF:Q8_0', c.options());
  const statuses = c.events.map(ollamaPullStatus).filter((s) => s !== undefined);
  const etag = hub.repos.get('acme/Tiny-GGUF')!.files.get('tiny-Q8_0.gguf')!.etag;
  assert.deepEqual(statuses[0], { status: 'pulling manifest' });
  assert.deepEqual(statuses.at(-1), { status: 'success' });
  const pulling = statuses.filter((s) => s.status.startsWith('pulling ') && s.status !== 'pulling manifest');
  assert.ok(pulling.length >= 2);
  for (const s of pulling) assert.deepEqual({ ...s, completed: 0 }, { status: `pulling ${etag.slice(0, 12)}`, digest: `sha256:${etag}`, total: ggufBytes.length, completed: 0 });
  assert.equal(pulling.at(-1)!.completed, ggufBytes.length);
  assert.ok(statuses.some((s) => s.status === 'verifying sha256 digest'));
});

test('the pull record holds repo, revision, commit and each hash; verify finds a changed byte offline', async () => {
  const c = await fresh();
  const r = await pull('acme/tiny-hf', c.options());
  assert.equal(r.record, path.join(c.models, '.pulls', 'tiny-hf.json'));
  const rec = await readPullRecord(r.record!);
  assert.equal(rec.repo, 'acme/tiny-hf');
  assert.equal(rec.revision, 'main');
  assert.equal(rec.commit, r.commit);
  const config = hub.repos.get('acme/tiny-hf')!.files.get('config.json')!;
  assert.deepEqual(rec.files.find((f) => f.path === 'config.json'), { path: 'config.json', size: config.size, algorithm: 'git-sha1', oid: config.oid });
  assert.ok((await verifyPullRecord(rec)).every((v) => v.status === 'ok'));
  const shard = r.files.find((f) => f.path.endsWith('.safetensors'))!;
  const data = await readFile(shard.blob);
  data[100] ^= 1;
  await writeFile(shard.blob, data);
  const bad = (await verifyPullRecord(rec)).filter((v) => v.status !== 'ok');
  assert.deepEqual(bad.map((v) => [v.path, v.status]), [[shard.path, 'hash']]);
});

test('a file in the models folder under the link name is not overwritten', async () => {
  const c = await fresh();
  await mkdir(c.models, { recursive: true });
  await writeFile(path.join(c.models, 'Tiny-Q8_0.gguf'), 'mine');
  await assert.rejects(pull('acme/Tiny-GGUF:Q8_0', c.options()), (e: HubError) => e.kind === 'conflict' && /Tiny-Q8_0\.gguf already exists and is not a link/.test(e.message));
  assert.equal(await readFile(path.join(c.models, 'Tiny-Q8_0.gguf'), 'utf8'), 'mine');
});

test('pullCommand prints a line per file off a TTY and the model path on stdout', async () => {
  const c = await fresh();
  const script = `import { pullCommand } from ${JSON.stringify(new URL('../src/cli/pull.js', import.meta.url).href)};
await pullCommand(process.argv[1], { modelsDir: process.argv[2] });`;
  const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script, 'acme/Tiny-GGUF:Q8_0', c.models],
    { env: { ...process.env, ...c.env, HF_TOKEN: '' }, timeout: 30_000 });
  assert.equal(stdout, `${path.join(c.models, 'Tiny-Q8_0.gguf')}\n`);
  assert.match(stderr, /^pulling acme\/Tiny-GGUF@main\n/);
  assert.match(stderr, /\ntiny-Q8_0\.gguf: [\d.]+ MiB in [\d.]+ s \([\d.]+ MiB\/s\), verified\n/);
  assert.match(stderr, /\npulled acme\/Tiny-GGUF@main \([0-9a-f]{10}\): 1 file, [\d.]+ MiB downloaded\n$/);
});

