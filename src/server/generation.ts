// One generation request as both APIs run it: take the model from the registry (loading it if
// needed), build the prompt, join the model's scheduler, and stream chunks while recording
// metrics; the model is released (its keep-alive starts) when the stream ends or is abandoned.
import type { GenerateOptions, GenerationChunk, LoadModelOptions, Model } from '../index.js';
import { QueueFullError } from '../engine/scheduler.js';
import type { ServerMetrics } from './metrics.js';
import type { LoadedModel, ModelRegistry } from './registry.js';
import { BadRequest } from './params.js';
import type { ModelDefaults } from './model-defaults.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import { ShuttingDownError, type Drain } from './drain.js';

/** `messages` with the model's default system prompt first, unless they have a system message of their own. */
export function withSystem(messages: readonly ChatMessage[], defaults: ModelDefaults | undefined): readonly ChatMessage[] {
  if (!defaults?.system || messages.some((m) => m.role === 'system')) return messages;
  return [{ role: 'system', content: defaults.system }, ...messages];
}

/** `o` without its undefined fields (so spreading it over defaults keeps them). */
function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface ServerContext {
  registry: ModelRegistry;
  metrics: ServerMetrics;
  /** Longest a generation may run, in ms; then it ends as if aborted. */
  requestTimeoutMs: number;
  /** The server's shutdown state: generations register here, so a drain can end them at its deadline. */
  drain: Drain;
  /** A message for a client: the server's paths (in the models folder or not) left out. */
  redact(message: string): string;
}

export interface GenerationJob {
  loaded: LoadedModel;
  /** Prompt token ids. */
  prompt: number[];
  /** The (first) choice's chunks. */
  chunks: AsyncIterable<GenerationChunk>;
  /** Every choice's chunks (GenerationRequest.n of them; choices[0] is `chunks`). */
  choices: AsyncIterable<GenerationChunk>[];
  /** Ends the generation (a client that went away); the stream then ends with finishReason "abort". */
  abort(): void;
  /** The generation was ended by a server shutdown (its last chunk's finishReason is "abort"): the response must say so. */
  readonly shutdown: boolean;
  /** Frees everything without reading the stream (safe to call more than once). */
  close(): void;
  /** When the model was taken from the registry, and how long loading it took (ms). */
  started: number;
  loadMs: number;
}

export interface GenerationRequest {
  model: string;
  /**
   * The prompt's ids, from the loaded model (its tokenizer, its chat template) and the model's
   * defaults (its system prompt); with options the prompt brings (a grammar that forces a tool
   * call, special tokens to keep), which win over the request's.
   */
  prompt: (m: Model, defaults: ModelDefaults | undefined) => number[] | { prompt: number[]; options: GenerateOptions };
  options: GenerateOptions;
  /** Choices of the prompt to generate (OpenAI's n; the prompt is read once). Default 1. */
  n?: number;
  keepAliveMs?: number;
  load?: LoadModelOptions;
}

/**
 * Starts a generation, or throws before anything is streamed: UnknownModelError,
 * InsufficientMemoryError, QueueFullError, BadRequest (bad prompt, no chat template, bad options).
 */
export async function startGeneration(ctx: ServerContext, req: GenerationRequest): Promise<GenerationJob> {
  const started = performance.now();
  const controller = new AbortController();
  // Registered from the start, so a drain that reaches its deadline while the model loads ends
  // this request too (with a 503, as nothing has been streamed yet).
  let shutdown = false;
  const unregister = ctx.drain.register({ stop: () => { shutdown = true; controller.abort(); } });
  let release: () => void, loaded: LoadedModel, defaults: ModelDefaults | undefined, options: GenerateOptions;
  try {
    // A created model's parameters are its defaults: what the request sets wins.
    defaults = (await ctx.registry.find(req.model)).defaults;
    const load = { ...defined(defaults?.load ?? {}), ...defined(req.load ?? {}) };
    options = { ...defined(defaults?.options ?? {}), ...defined(req.options) };
    ({ loaded, release } = await ctx.registry.acquire(req.model, req.keepAliveMs, load));
  } catch (e) {
    unregister();
    throw e;
  }
  if (shutdown) {
    unregister();
    release();
    throw new ShuttingDownError();
  }
  const loadMs = performance.now() - started;
  const timeout = setTimeout(() => controller.abort(), ctx.requestTimeoutMs);
  timeout.unref();
  let finished = false;
  const done = () => { if (finished) return; finished = true; clearTimeout(timeout); unregister(); release(); };
  let prompt: number[], streams: AsyncIterableIterator<GenerationChunk>[];
  try {
    let extra: GenerateOptions = {};
    try {
      const p = req.prompt(loaded.model, defaults);
      if (Array.isArray(p)) prompt = p;
      else ({ prompt, options: extra } = p);
    } catch (e) {
      throw e instanceof BadRequest ? e : new BadRequest((e as Error).message);
    }
    const o = { ...options, ...defined(extra), signal: controller.signal };
    streams = (req.n ?? 1) === 1 ? [loaded.model.start(prompt, o)] : loaded.model.startChoices(prompt, req.n!, o);
  } catch (e) {
    done();
    if (e instanceof QueueFullError) ctx.metrics.rejected.inc({ model: loaded.entry.name });
    if (e instanceof RangeError) throw new BadRequest(e.message);
    throw e;
  }
  const name = loaded.entry.name;
  ctx.metrics.promptTokens.inc({ model: name }, prompt.length);
  // The model is released when the last choice's stream ends.
  let open = streams.length, firstToken = false;
  async function* measured(stream: AsyncIterableIterator<GenerationChunk>): AsyncGenerator<GenerationChunk> {
    let last = 0;
    try {
      for await (const chunk of stream) {
        if (chunk.tokens.length > 0) {
          const now = performance.now();
          if (!firstToken) { firstToken = true; ctx.metrics.timeToFirstToken.observe({ model: name }, (now - started) / 1000); }
          else if (last !== 0) ctx.metrics.timePerToken.observe({ model: name }, (now - last) / 1000);
          last = now;
          ctx.metrics.generatedTokens.inc({ model: name }, chunk.tokens.length);
        }
        yield chunk;
      }
    } catch (e) {
      // A model whose backend broke (a cpu worker thread died) cannot compute again: the registry
      // drops it, so the next request loads it afresh.
      ctx.registry.failed(loaded, e);
      throw e;
    } finally {
      await stream.return?.();
      if (--open === 0) done();
    }
  }
  const choices = streams.map((s) => measured(s));
  return {
    loaded, prompt, chunks: choices[0]!, choices, abort: () => controller.abort(), started, loadMs,
    get shutdown() { return shutdown; },
    close: () => { for (const s of streams) void s.return?.(); done(); },
  };
}
