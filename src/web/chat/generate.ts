// One reply's generation, apart from the page: the request a conversation's settings make, the
// stream read into content and reasoning with the phase a person sees (loading the model,
// waiting in the queue, generating at N tokens/s), the measures kept under the reply, and
// server errors turned into what to do about them.
import { ApiError, chatStream, listLoaded, metrics, type ChatRequest } from '../api';
import type { ChatMessage, ChatSettings, ReplyStats } from '../store';

/** What the user sends, unseen, to have a reply cut by its length go on (the API has no prefill). */
export const CONTINUE_PROMPT = 'Continue exactly where your last reply stopped, without repeating any of it.';

/**
 * The chat completion request for a conversation (messages in order, the system prompt first).
 * Throws an Error naming the setting when one is not usable (e.g. a schema that is not JSON).
 */
export function buildRequest(s: ChatSettings, messages: { role: string; content: string }[]): ChatRequest {
  if (!s.model) throw new Error('Pick a model first.');
  const req: ChatRequest = {
    model: s.model,
    messages: [...(s.system.trim() ? [{ role: 'system', content: s.system }] : []), ...messages],
    temperature: s.temperature, top_p: s.topP, max_tokens: s.maxTokens,
  };
  if (s.topK !== null) req.top_k = s.topK;
  if (s.minP !== null) req.min_p = s.minP;
  if (s.seed !== null) req.seed = s.seed;
  if (s.json === 'object') req.response_format = { type: 'json_object' };
  if (s.json === 'schema') {
    let schema: unknown;
    try {
      schema = JSON.parse(s.schema);
    } catch (e) {
      throw new Error(`JSON schema (settings): not valid JSON: ${(e as Error).message}`);
    }
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new Error('JSON schema (settings): must be a JSON object');
    req.response_format = { type: 'json_schema', json_schema: { name: 'reply', schema } };
  }
  return req;
}

/** The messages sent for a conversation's history (reasoning and measures stay in the page). */
export function wireMessages(messages: ChatMessage[]): { role: string; content: string }[] {
  return messages.map((m) => ({ role: m.role, content: m.content }));
}

export type Phase = 'loading' | 'waiting' | 'generating';

export interface Progress {
  phase: Phase;
  content: string;
  reasoning: string;
  /** Pieces streamed so far (about one token each) and their rate since the first. */
  tokens: number;
  tokensPerSecond: number | null;
  /** While waiting: the model's requests waiting for a sequence slot (the server's queue depth), when known. */
  queued: number | null;
}

export interface Outcome {
  content: string;
  reasoning: string;
  stats: ReplyStats;
  /** What went wrong and what to do, when the reply did not end well. */
  error?: string;
}

/**
 * Streams one reply. `onProgress` is called on each piece; the promise resolves (never rejects)
 * with what came, including when `signal` stopped it or the server failed.
 */
export async function generate(req: ChatRequest, signal: AbortSignal, onProgress: (p: Progress) => void): Promise<Outcome> {
  const started = performance.now();
  let first = 0;
  let tokens = 0;
  let content = '';
  let reasoning = '';
  let finish = '';
  let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
  let error: string | undefined;
  // Before the response starts, the server is loading the model (if it is not loaded yet) or
  // holding the request; /api/ps tells which.
  let phase = 'waiting' as Phase;
  let chunks = 0;
  listLoaded().then((loaded) => {
    if (chunks === 0 && !loaded.some((m) => m.name === req.model)) { phase = 'loading'; report(); }
  }, () => {});
  // While waiting for the first token, the server's queue for the model (minerva_queue_depth) tells
  // whether the request is queued or being read.
  let queued: number | null = null;
  const poll = setInterval(() => {
    if (phase !== 'waiting') return;
    metrics().then((m) => {
      queued = m.get('minerva_queue_depth')?.find((x) => x.labels.model === req.model)?.value ?? null;
      if (phase === 'waiting') report();
    }, () => {});
  }, 1000);
  const rate = () => (first && tokens > 1 ? (tokens - 1) / ((performance.now() - first) / 1000) : null);
  const report = () => onProgress({ phase, content, reasoning, tokens, tokensPerSecond: rate(), queued });
  try {
    for await (const chunk of chatStream(req, signal)) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices[0];
      if (!choice) continue;
      const piece = (choice.delta.content ?? '') + (choice.delta.reasoning_content ?? '');
      if (piece) {
        if (!first) first = performance.now();
        tokens++;
        content += choice.delta.content ?? '';
        reasoning += choice.delta.reasoning_content ?? '';
        phase = 'generating';
      } else if (phase === 'loading') {
        // The stream opened: the model is loaded and the request waits its turn.
        phase = 'waiting';
      }
      if (choice.finish_reason) finish = choice.finish_reason;
      report();
    }
  } catch (e) {
    if ((e as Error).name === 'AbortError') finish = 'stopped';
    else {
      finish = 'error';
      error = explain(e, req.model);
    }
  } finally {
    clearInterval(poll);
  }
  const end = performance.now();
  const completion = usage?.completion_tokens ?? (tokens || null);
  return {
    content, reasoning, error,
    stats: {
      ttftMs: first ? first - started : null,
      tokensPerSecond: first && completion && completion > 1 && end > first ? (completion - 1) / ((end - first) / 1000) : null,
      promptTokens: usage?.prompt_tokens ?? null,
      completionTokens: completion,
      finishReason: finish || 'stop',
    },
  };
}

/** A failure as a person can act on it. */
export function explain(e: unknown, model: string): string {
  if (e instanceof ApiError) {
    if (e.status === 429) return `The server is busy: ${e.message}. Wait a moment and retry.`;
    if (e.status === 401) return `${e.message}. Enter the server's API key at the top right.`;
    if (e.status === 404 && /model/i.test(e.message)) return `${e.message}. The model may have been removed: pick another, or see the Models screen.`;
    if (e.status === 503 && /memory/i.test(e.message)) return `Not enough memory for "${model}": ${e.message}. Unload a model on the Models screen, or pick a smaller one.`;
    if (e.status === 503) return `${e.message}. Try again when the server is back.`;
    return `The server could not answer: ${e.message}`;
  }
  if (e instanceof TypeError) return `Cannot reach the server (${e.message}): is minerva serve still running?`;
  return `Something went wrong: ${(e as Error).message ?? String(e)}`;
}

/** "0.21 s to first token · 48.1 tokens/s · 9 prompt + 12 completion tokens · length" */
export function statsLine(s: ReplyStats): string {
  const parts = [s.ttftMs === null ? 'no tokens' : `${(s.ttftMs / 1000).toFixed(2)} s to first token`];
  if (s.tokensPerSecond !== null) parts.push(`${s.tokensPerSecond.toFixed(1)} tokens/s`);
  if (s.promptTokens !== null || s.completionTokens !== null) {
    parts.push(`${s.promptTokens ?? '?'} prompt + ${s.completionTokens ?? '?'} completion tokens`);
  }
  parts.push(s.finishReason);
  return parts.join(' · ');
}
