// GET against the Hub with redirects followed by hand: the Hub sends large files to a CDN on
// another host, and the token must reach only the Hub. fetch's own redirect handling would decide
// that for us; here the rule is explicit — Authorization goes to the endpoint's origin only.
import { HubError, errorCode, isTransient, isUnreachable } from './hub-errors.js';

const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface HubRequest {
  /** The Hub's origin: the only one that sees the token. */
  endpoint: string;
  token: string | undefined;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** The final response after redirects (any status; the caller decides what is an error). */
export async function hubGet(url: string, r: HubRequest): Promise<Response> {
  const hubOrigin = new URL(r.endpoint).origin;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'minerva', ...r.headers };
    if (r.token && current.origin === hubOrigin) headers.authorization = `Bearer ${r.token}`;
    let res: Response;
    try {
      res = await fetch(current, { headers, redirect: 'manual', signal: r.signal });
    } catch (e) {
      if (r.signal?.aborted || isTransient(e)) throw e; // the caller's to stop or retry
      if (isUnreachable(e)) {
        throw new HubError('network', `cannot reach ${current.origin} (${errorCode(e)}): check the network, or set HF_HUB_OFFLINE=1 to use the cache`, { cause: e });
      }
      const cause = (e as { cause?: { message?: unknown } }).cause?.message;
      throw new HubError('network', `cannot fetch ${current.href}: ${typeof cause === 'string' ? cause : (e as Error).message}`, { cause: e });
    }
    const location = res.headers.get('location');
    if (!REDIRECTS.has(res.status) || location === null) return res;
    await res.body?.cancel();
    if (hop >= MAX_REDIRECTS) throw new HubError('http', `${url}: more than ${MAX_REDIRECTS} redirects`);
    current = new URL(location, current); // a relative Location (a renamed repo) stays on the Hub
  }
}

export interface Subject {
  repo: string;
  revision?: string;
  file?: string;
}

/** A one-line HubError for a failed response, from its status and the Hub's X-Error-Code. */
export function httpError(res: Response, url: string, what: Subject, r: { endpoint: string; token: string | undefined }): HubError {
  const code = res.headers.get('x-error-code') ?? '';
  const where = `${what.repo}${what.revision ? `@${what.revision}` : ''}`;
  if (code === 'RepoNotFound') {
    return new HubError('not-found', `repository ${what.repo} not found on ${r.endpoint}`
      + (r.token ? ' (or your HF_TOKEN has no access to it)' : ' (if it is private, set HF_TOKEN)'));
  }
  if (code === 'RevisionNotFound') return new HubError('not-found', `revision "${what.revision}" not found in ${what.repo}`);
  if (code === 'EntryNotFound') return new HubError('not-found', `${what.file ?? url} not found in ${where}`);
  if (res.status === 401 || res.status === 403) {
    return new HubError('unauthorized', `${what.repo}: access denied (HTTP ${res.status}${code ? ` ${code}` : ''}): the model is gated or private; `
      + `accept its licence on ${r.endpoint}/${what.repo} and ${r.token ? 'check that HF_TOKEN has access to it' : 'set HF_TOKEN'}`);
  }
  if (res.status === 404) return new HubError('not-found', `${url}: HTTP 404 Not Found`);
  const message = res.headers.get('x-error-message');
  return new HubError('http', `${url}: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${message ? ` (${message})` : ''}`);
}
