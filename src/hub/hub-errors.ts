// One error type for everything a pull can refuse or fail at, with a kind a caller (the CLI, a
// server streaming /api/pull) can act on without parsing the message.

export type HubErrorKind =
  | 'bad-input' // a repo name, revision, file or variable that cannot be right
  | 'unauthorized' // 401/403: gated or private
  | 'not-found' // 404: repo, revision or file
  | 'network' // the Hub cannot be reached
  | 'http' // any other HTTP failure, after retries
  | 'no-match' // nothing in the repo fits the request
  | 'integrity' // size or hash differs from what the Hub announced
  | 'disk-full' // not enough room, before or while writing
  | 'offline' // HF_HUB_OFFLINE and the cache lacks what is asked for
  | 'conflict'; // the models folder already holds something else under the link's name

export class HubError extends Error {
  constructor(readonly kind: HubErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HubError';
  }
}

/** Node's error code of a failed fetch or file operation (fetch wraps it in `cause`). */
export function errorCode(e: unknown): string | undefined {
  for (let err = e, depth = 0; err && typeof err === 'object' && depth < 4; err = (err as { cause?: unknown }).cause, depth++) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** Codes of a connection that went away mid-transfer: worth another try. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED',
]);
/** Codes that say there is no way to the host at all: retrying will not help. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH']);

export function isUnreachable(e: unknown): boolean {
  const code = errorCode(e);
  return code !== undefined && UNREACHABLE_CODES.has(code);
}

/** A dropped connection, a stalled body, or fetch's "terminated" (the body ended early). */
export function isTransient(e: unknown): boolean {
  if (e instanceof HubError) return false;
  const code = errorCode(e);
  if (code !== undefined && TRANSIENT_CODES.has(code)) return true;
  if (e instanceof TransientError) return true;
  return e instanceof TypeError && /terminated|other side closed/i.test(e.message);
}

/** HTTP statuses that mean "try again later". */
export function isTransientStatus(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

/** A transfer that failed in a way another try may fix: a stalled or short body. */
export class TransientError extends Error {
  override name = 'TransientError';
}

/** No byte arrived for too long. */
export class StallError extends TransientError {
  override name = 'StallError';
  constructor(readonly url: string, readonly ms: number) {
    super(`no data for ${ms} ms from ${url}`);
  }
}
