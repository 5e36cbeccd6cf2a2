// The soak test's clients: what each request asks (API, prompt, sampling, length, when to hang
// up), and one streamed HTTP attempt read to its end, checked frame by frame for the shape a
// finished stream must have (OpenAI: a finish_reason, the usage, then "data: [DONE]"; Ollama: a
// last line with done: true, a done_reason and eval_count).

/** The four streaming generation routes a client may use. */
export const APIS = ['openai-chat', 'openai-completion', 'ollama-chat', 'ollama-generate'] as const;
export type Api = (typeof APIS)[number];

const ROUTES: Record<Api, string> = {
  'openai-chat': '/v1/chat/completions', 'openai-completion': '/v1/completions', 'ollama-chat': '/api/chat', 'ollama-generate': '/api/generate',
};

/** A small fixed set, so that each greedy (API, prompt, length) has one reference text. TinyStories-like, for the demo model. */
export const PROMPTS = [
  'Once upon a time', 'Lily and Ben went to the park', 'The little dog was sad because', 'Tom had a big red ball',
  'One day, a cat named Tim', 'The sun was shining and', 'Sara wanted to bake a cake', 'There was a tall tree in the garden',
] as const;

/** The seed every greedy request sends (temperature 0 makes it irrelevant; a server must not let it matter). */
export const GREEDY_SEED = 42;

export interface SoakRequest {
  api: Api;
  /** Index into PROMPTS. */
  prompt: number;
  /** Temperature 0 (compared with its solo run) or 0.8 with `seed`. */
  greedy: boolean;
  seed: number;
  /** max_tokens / num_predict. */
  maxTokens: number;
  /** maxTokens is beyond the server's context: the stream must end with "length" at the context's end (or stop earlier). */
  overContext: boolean;
  /** Hang up after this many text chunks (undefined: read to the end). */
  abortAfter?: number;
  /** Hang up this many ms after sending, wherever the request is then (waiting in the queue, reading its prompt, streaming). */
  abortAfterMs?: number;
}

/** The key under which a greedy request's solo reference is kept. */
export function referenceKey(r: SoakRequest): string {
  return `${r.api}|${r.prompt}|${r.maxTokens}`;
}

/** The JSON body a request sends, in its API's words. */
export function requestBody(model: string, r: SoakRequest): object {
  const prompt = PROMPTS[r.prompt]!;
  const temperature = r.greedy ? 0 : 0.8;
  const seed = r.greedy ? GREEDY_SEED : r.seed;
  const messages = [{ role: 'user', content: prompt }];
  switch (r.api) {
    case 'openai-chat':
      return { model, messages, stream: true, stream_options: { include_usage: true }, max_tokens: r.maxTokens, temperature, seed };
    case 'openai-completion':
      return { model, prompt, stream: true, stream_options: { include_usage: true }, max_tokens: r.maxTokens, temperature, seed };
    case 'ollama-chat':
      return { model, messages, stream: true, options: { num_predict: r.maxTokens, temperature, seed } };
    case 'ollama-generate':
      return { model, prompt, stream: true, options: { num_predict: r.maxTokens, temperature, seed } };
  }
}

/** How one HTTP attempt ended. */
export type AttemptOutcome =
  /** The stream ended as a finished stream must (`problem` says otherwise). */
  | { kind: 'completed'; text: string; finish: string; tokens: number; ttftMs: number | undefined; totalMs: number; problem?: string }
  /** The client hung up as planned; `beforeHeaders`: before the response's status came (so it may have been a 429 unseen). */
  | { kind: 'aborted'; chunks: number; ttftMs: number | undefined; beforeHeaders: boolean }
  /** 429: `retryAfter` is the header's value (null when missing). */
  | { kind: 'rejected'; retryAfter: string | null; body: string }
  /** Anything else: another status, a network error, a stream that stalled. */
  | { kind: 'error'; message: string };

/**
 * One streamed attempt of `r` against `base`; `stallMs` without progress ends it as an error (a
 * hang). Every wait races the abort itself: a body read is not trusted to settle when its fetch is
 * aborted, so neither a planned hang-up nor a stall can leave the client waiting forever.
 */
export async function attempt(base: string, model: string, r: SoakRequest, stallMs: number): Promise<AttemptOutcome> {
  const controller = new AbortController();
  let phase = 'waiting for the response headers';
  let stalled = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => { stalled = true; controller.abort(); }, stallMs);
  };
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
  });
  aborted.catch(() => {});
  const start = performance.now();
  let hungUp = false, headers = false, chunks = 0, ttftMs: number | undefined;
  let body: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const hangUp = r.abortAfterMs === undefined ? undefined : setTimeout(() => { hungUp = true; controller.abort(); }, r.abortAfterMs);
  arm();
  try {
    const res = await Promise.race([fetch(base + ROUTES[r.api], {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(requestBody(model, r)), signal: controller.signal,
    }), aborted]);
    phase = `reading the ${res.status} response`;
    headers = true;
    // A 429 is one even if the client hangs up while reading its body: the server counted it.
    if (res.status === 429) return { kind: 'rejected', retryAfter: res.headers.get('retry-after'), body: await Promise.race([res.text(), aborted]).catch(() => '') };
    if (res.status !== 200 || !res.body) return { kind: 'error', message: `HTTP ${res.status} ${(await Promise.race([res.text(), aborted])).slice(0, 300)}` };
    const reader = streamReader(r.api);
    const decoder = new TextDecoder();
    body = res.body.getReader();
    while (true) {
      const { done, value } = await Promise.race([body.read(), aborted]);
      if (done) break;
      arm();
      for (const text of reader.push(decoder.decode(value, { stream: true }))) {
        if (text === '') continue;
        ttftMs ??= performance.now() - start;
        if (++chunks === r.abortAfter) { hungUp = true; controller.abort(); }
      }
      phase = `reading the stream after ${chunks} text chunks`;
      if (hungUp) return { kind: 'aborted', chunks, ttftMs, beforeHeaders: false };
    }
    reader.push(decoder.decode());
    const end = reader.end();
    return { kind: 'completed', text: reader.text, finish: reader.finish ?? '', tokens: reader.tokens ?? 0, ttftMs, totalMs: performance.now() - start, ...(end ? { problem: end } : {}) };
  } catch (e) {
    if (hungUp) return { kind: 'aborted', chunks, ttftMs, beforeHeaders: !headers };
    if (stalled) return { kind: 'error', message: `stalled: nothing for ${stallMs} ms while ${phase}` };
    return { kind: 'error', message: `${phase}: ${(e as Error).message}${(e as Error).cause ? ` (${String((e as Error).cause)})` : ''}` };
  } finally {
    clearTimeout(timer);
    clearTimeout(hangUp);
    // A stream left unread holds its socket: cancel it (a hang-up, a stall, an error).
    body?.cancel().catch(() => {});
  }
}

function streamReader(api: Api): StreamReader {
  return api.startsWith('openai') ? new SseReader(api === 'openai-chat') : new NdjsonReader(api === 'ollama-chat');
}

/** A whole response body of `api` read as the soak reads a stream: its text, its finish, and what is wrong with it (undefined: nothing). */
export function readStreamBody(api: Api, body: string): { text: string; finish: string | undefined; problem: string | undefined } {
  const reader = streamReader(api);
  reader.push(body);
  const problem = reader.end();
  return { text: reader.text, finish: reader.finish, problem };
}

/** A stream's text and end as it arrives; push() returns the text pieces of the complete frames so far. */
abstract class StreamReader {
  text = '';
  finish: string | undefined;
  tokens: number | undefined;
  protected buffer = '';
  /** The first thing wrong with the stream's shape. */
  protected problem: string | undefined;

  constructor(private readonly separator: string) {}

  push(data: string): string[] {
    this.buffer += data;
    const pieces: string[] = [];
    let at: number;
    while ((at = this.buffer.indexOf(this.separator)) >= 0) {
      const frame = this.buffer.slice(0, at);
      this.buffer = this.buffer.slice(at + this.separator.length);
      if (frame.trim() === '') continue;
      const piece = this.frame(frame);
      if (piece !== undefined) { this.text += piece; pieces.push(piece); }
    }
    return pieces;
  }

  /** Why the finished stream is incomplete or malformed, or undefined when it ended as it must. */
  end(): string | undefined {
    if (this.buffer.trim() !== '') this.fail(`a partial frame at the end: ${JSON.stringify(this.buffer.slice(0, 200))}`);
    return this.problem ?? this.missing();
  }

  protected fail(why: string): void { this.problem ??= why; }
  protected abstract frame(frame: string): string | undefined;
  protected abstract missing(): string | undefined;

  protected json(text: string): Record<string, unknown> | undefined {
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch { /* reported below */ }
    this.fail(`not a JSON object: ${JSON.stringify(text.slice(0, 200))}`);
    return undefined;
  }
}

const FINISHES = new Set(['stop', 'length']);

/** OpenAI server-sent events: chunks, one finish_reason, the usage frame, then "data: [DONE]" last. */
class SseReader extends StreamReader {
  private done = false;
  constructor(private readonly chat: boolean) { super('\n\n'); }

  protected frame(frame: string): string | undefined {
    const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
    if (this.done) { this.fail(`a frame after [DONE]: ${JSON.stringify(frame.slice(0, 200))}`); return undefined; }
    if (data === '[DONE]') { this.done = true; return undefined; }
    const event = this.json(data);
    if (!event) return undefined;
    if (event.error !== undefined) { this.fail(`an error frame: ${data.slice(0, 300)}`); return undefined; }
    const usage = event.usage as { completion_tokens?: unknown } | undefined;
    if (usage) {
      if (this.finish === undefined) this.fail('the usage frame came before the finish_reason');
      if (typeof usage.completion_tokens === 'number') this.tokens = usage.completion_tokens;
    }
    const choices = event.choices as { delta?: { content?: unknown }; text?: unknown; finish_reason?: unknown }[] | undefined;
    const c = choices?.[0];
    if (!c) return undefined;
    const piece = this.chat ? c.delta?.content : c.text;
    if (piece !== undefined && piece !== null && typeof piece !== 'string') this.fail(`a text that is not a string: ${data.slice(0, 200)}`);
    if (this.finish !== undefined && typeof piece === 'string' && piece !== '') this.fail('text after the finish_reason');
    if (c.finish_reason !== null && c.finish_reason !== undefined) {
      if (this.finish !== undefined) this.fail('a second finish_reason');
      this.finish = String(c.finish_reason);
      if (!FINISHES.has(this.finish)) this.fail(`finish_reason "${this.finish}"`);
    }
    return typeof piece === 'string' ? piece : undefined;
  }

  protected missing(): string | undefined {
    if (this.finish === undefined) return 'no finish_reason';
    if (this.tokens === undefined) return 'no usage frame (stream_options.include_usage was asked)';
    if (!this.done) return 'no "data: [DONE]" at the end';
    return undefined;
  }
}

/** Ollama NDJSON: lines with done: false, the last with done: true, done_reason and eval_count. */
class NdjsonReader extends StreamReader {
  private done = false;
  constructor(private readonly chat: boolean) { super('\n'); }

  protected frame(line: string): string | undefined {
    if (this.done) { this.fail(`a line after done: true: ${JSON.stringify(line.slice(0, 200))}`); return undefined; }
    const event = this.json(line);
    if (!event) return undefined;
    if (event.error !== undefined) { this.fail(`an error line: ${line.slice(0, 300)}`); return undefined; }
    const piece = this.chat ? (event.message as { content?: unknown } | undefined)?.content : event.response;
    if (typeof piece !== 'string') this.fail(`a line without its text: ${line.slice(0, 200)}`);
    if (event.done === true) {
      this.done = true;
      this.finish = String(event.done_reason);
      if (!FINISHES.has(this.finish)) this.fail(`done_reason "${this.finish}"`);
      if (typeof event.eval_count === 'number') this.tokens = event.eval_count;
    } else if (event.done !== false) this.fail(`a line whose done is neither true nor false: ${line.slice(0, 200)}`);
    return typeof piece === 'string' ? piece : undefined;
  }

  protected missing(): string | undefined {
    if (!this.done) return 'no last line with done: true';
    if (this.tokens === undefined) return 'no eval_count on the last line';
    return undefined;
  }
}
