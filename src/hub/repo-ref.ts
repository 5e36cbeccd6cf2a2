// What `minerva pull` is given, checked at the border: `org/name[:TAG]`, `hf.co/org/name[:TAG]`
// (Ollama's spelling), or a model page URL, which may also name a revision (/tree/REV) or a file
// (/blob/REV/PATH, /resolve/REV/PATH).
import { HubError } from './hub-errors.js';

export interface RepoRef {
  /** `org/name` (or a legacy `name` without an organisation). */
  repo: string;
  /** A quantization tag (`Q4_K_M`), matched against GGUF file names. */
  tag?: string;
  /** A revision the URL named. */
  revision?: string;
  /** A file the URL named. */
  file?: string;
}

const HUB_HOSTS = new Set(['huggingface.co', 'www.huggingface.co', 'hf.co']);
// The Hub's own rule: letters, digits, '-', '_', '.'; no '--' or '..'; at most 96 characters.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function checkName(part: string, input: string): void {
  if (!NAME.test(part) || part.includes('--') || part.includes('..') || /[.-]$/.test(part)) {
    throw new HubError('bad-input', `"${input}": "${part}" is not a valid Hugging Face repo or organisation name`);
  }
}

/** `org/name`, checked. */
export function checkRepoId(repo: string, input = repo): string {
  const parts = repo.split('/');
  if (parts.length < 1 || parts.length > 2 || parts.some((p) => p === '')) {
    throw new HubError('bad-input', `"${input}": expected a repo as org/name`);
  }
  for (const p of parts) checkName(p, input);
  return repo;
}

/** A revision (branch, tag, commit or refs/pr/N): no traversal, no control characters. */
export function checkRevision(rev: string): string {
  if (rev === '' || rev.length > 255 || rev.includes('\\') || [...rev].some((ch) => ch.charCodeAt(0) < 0x20)
    || rev.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new HubError('bad-input', `--revision: "${rev}" is not a valid revision`);
  }
  return rev;
}

/** A path inside a repo: relative, no '..', no empty segments. */
export function checkRepoPath(p: string, what = '--file'): string {
  if (p === '' || p.startsWith('/') || /[\0\\]/.test(p) || p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new HubError('bad-input', `${what}: "${p}" is not a valid path inside a repo`);
  }
  return p;
}

function splitTag(spec: string, input: string): { repo: string; tag?: string } {
  const colon = spec.lastIndexOf(':');
  if (colon < 0) return { repo: checkRepoId(spec, input) };
  const tag = spec.slice(colon + 1);
  if (!TAG.test(tag)) throw new HubError('bad-input', `"${input}": "${tag}" is not a valid quantization tag`);
  const repo = checkRepoId(spec.slice(0, colon), input);
  // Ollama's default tag means "no preference", as llama.cpp's -hf treats a missing one.
  return tag.toLowerCase() === 'latest' ? { repo } : { repo, tag };
}

function fromUrl(input: string): RepoRef {
  const url = new URL(input);
  if (!HUB_HOSTS.has(url.hostname)) throw new HubError('bad-input', `"${input}": not a Hugging Face URL (expected huggingface.co or hf.co)`);
  let segments: string[];
  try {
    segments = url.pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    throw new HubError('bad-input', `"${input}": the URL's path is not valid percent-encoding`);
  }
  if (segments[0] === 'models') segments.shift();
  const kinds = ['tree', 'blob', 'resolve'];
  const at = segments.findIndex((s) => kinds.includes(s));
  const repoParts = at < 0 ? segments : segments.slice(0, at);
  const ref: RepoRef = splitTag(repoParts.join('/'), input);
  if (at >= 0) {
    const rev = segments[at + 1];
    if (rev === undefined) throw new HubError('bad-input', `"${input}": /${segments[at]}/ without a revision`);
    ref.revision = checkRevision(rev);
    const rest = segments.slice(at + 2).join('/');
    if (segments[at] !== 'tree' && rest !== '') ref.file = checkRepoPath(rest, `"${input}"`);
  }
  return ref;
}

/** Parses `org/name[:TAG]`, `hf.co/org/name[:TAG]` or `https://huggingface.co/org/name[...]`. */
export function parseRepoRef(input: string): RepoRef {
  const s = input.trim();
  if (/^https?:\/\//i.test(s)) return fromUrl(s);
  const bare = s.replace(/^(?:hf\.co|(?:www\.)?huggingface\.co)\//i, '');
  return splitTag(bare, input);
}
