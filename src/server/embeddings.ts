// Embeddings over both APIs: OpenAI's POST /v1/embeddings, Ollama's POST /api/embed and its
// legacy POST /api/embeddings. Each input is a sequence of its own in the model's scheduler,
// batched with whatever else the model runs (Model.embed).
//
// Normalisation: /v1/embeddings and /api/embeddings give the vectors as the model declares them
// (embeddingPooling); /api/embed always scales them to unit length, as Ollama does. `dimensions`
// (Matryoshka: keep the first N, normalise again) is taken only for models whose files declare an
// embedding pooling.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { EmbedInputError, type EmbedInput, type EmbedOptions, type EmbedResult, type LoadModelOptions } from '../index.js';
import { QueueFullError } from '../engine/scheduler.js';
import type { ServerContext } from './generation.js';
import { ShuttingDownError } from './drain.js';
import type { LoadedModel } from './registry.js';
import { keepAlive } from './ollama.js';
import { ollamaOptions } from './ollama-options.js';
import { BadRequest, objectBody, optBool, optInt, optObject, optString, requireString } from './params.js';

const STOPPED_EMBEDDING = 'the server is shutting down: the embedding was stopped before it finished (the drain deadline passed)';

/** OpenAI's limit on inputs per request. */
const MAX_INPUTS = 2048;

export function registerEmbeddings(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/embeddings', async (req, reply) => {
    const body = objectBody(req.body);
    const model = requireString(body, 'model');
    const input = openaiInput(body.input);
    const format = optString(body, 'encoding_format') ?? 'float';
    if (format !== 'float' && format !== 'base64') throw new BadRequest(`encoding_format must be "float" or "base64", got ${JSON.stringify(format)}`, 'encoding_format');
    const dimensions = optInt(body, 'dimensions', 1, 1 << 20);
    optString(body, 'user');
    const r = await embed(ctx, reply, { model, input, options: { dimensions } });
    if (!r) return reply;
    return {
      object: 'list',
      data: r.result.embeddings.map((e, index) => ({ object: 'embedding', index, embedding: format === 'base64' ? base64(e) : floats(e) })),
      model: r.loaded.entry.name,
      usage: { prompt_tokens: r.result.promptTokens, total_tokens: r.result.promptTokens },
    };
  });

  app.post('/api/embed', async (req, reply) => {
    const body = objectBody(req.body);
    const model = requireString(body, 'model');
    const input = ollamaInput(body.input);
    const dimensions = optInt(body, 'dimensions', 0, 1 << 20); // 0: all, as Ollama's omitted int
    const truncate = optBool(body, 'truncate') ?? true;
    const { load } = ollamaOptions(optObject(body, 'options') ?? {}, 'options');
    const keepAliveMs = keepAlive(body.keep_alive);
    const r = await embed(ctx, reply, {
      model, input, keepAliveMs, load, options: { dimensions: dimensions || undefined, truncate, normalize: true },
    });
    if (!r) return reply;
    const ns = (ms: number) => Math.round(ms * 1e6);
    return {
      model: r.loaded.entry.name, embeddings: r.result.embeddings.map(floats),
      total_duration: ns(performance.now() - r.started), load_duration: ns(r.loadMs), prompt_eval_count: r.result.promptTokens,
    };
  });

  app.post('/api/embeddings', async (req, reply) => {
    const body = objectBody(req.body);
    const model = requireString(body, 'model');
    const prompt = optString(body, 'prompt') ?? '';
    const { load } = ollamaOptions(optObject(body, 'options') ?? {}, 'options');
    const keepAliveMs = keepAlive(body.keep_alive);
    const r = await embed(ctx, reply, { model, input: prompt === '' ? [] : prompt, keepAliveMs, load, options: {} });
    if (!r) return reply;
    return { embedding: r.result.embeddings.length > 0 ? floats(r.result.embeddings[0]!) : [] };
  });
}

interface EmbedJob {
  model: string;
  input: EmbedInput;
  options: Omit<EmbedOptions, 'signal'>;
  keepAliveMs?: number;
  load?: LoadModelOptions;
}

/**
 * Takes the model from the registry (loading it if needed) and embeds the inputs; no inputs only
 * loads it (as Ollama answers an empty input). Undefined when the client went away first.
 */
async function embed(ctx: ServerContext, reply: FastifyReply, job: EmbedJob): Promise<{
  loaded: LoadedModel; result: EmbedResult; started: number; loadMs: number;
} | undefined> {
  const started = performance.now();
  // A created model's parameters are its defaults; what the request sets wins.
  const defaults = (await ctx.registry.find(job.model)).defaults;
  const load = { ...(defaults?.load ?? {}), ...(job.load ?? {}) };
  const { loaded, release } = await ctx.registry.acquire(job.model, job.keepAliveMs, load);
  const loadMs = performance.now() - started;
  const controller = new AbortController();
  const timeout = setTimeout(() => controller.abort(), ctx.requestTimeoutMs);
  timeout.unref();
  const onClose = () => { if (!reply.raw.writableEnded) controller.abort(); };
  reply.raw.on('close', onClose);
  // A drain that reaches its deadline ends the embedding with a 503 that says so.
  let shutdown = false;
  let unregister = () => {};
  try {
    unregister = ctx.drain.register({ stop: () => { shutdown = true; controller.abort(); } });
    const result = await loaded.model.embed(job.input, { ...job.options, signal: controller.signal });
    ctx.metrics.promptTokens.inc({ model: loaded.entry.name }, result.promptTokens);
    return { loaded, result, started, loadMs };
  } catch (e) {
    if (shutdown) throw new ShuttingDownError(STOPPED_EMBEDDING);
    ctx.registry.failed(loaded, e); // (a model whose backend broke is dropped, to load afresh)
    if (e instanceof EmbedInputError) throw new BadRequest(e.message, e.field.startsWith('input') ? 'input' : e.field);
    if (e instanceof QueueFullError) ctx.metrics.rejected.inc({ model: loaded.entry.name });
    if (e instanceof Error && e.name === 'AbortError') {
      if (reply.raw.destroyed) return undefined;
      throw Object.assign(new Error(`the embedding did not finish within the request timeout (${ctx.requestTimeoutMs} ms)`), { statusCode: 503 });
    }
    throw e;
  } finally {
    reply.raw.off('close', onClose);
    clearTimeout(timeout);
    unregister();
    release();
  }
}

/** OpenAI's `input`: a string, strings, token ids, or arrays of token ids; none of them empty. */
function openaiInput(v: unknown): EmbedInput {
  const bad = () => new BadRequest('input must be a non-empty string, an array of strings, an array of token ids or an array of arrays of token ids', 'input');
  if (typeof v === 'string') {
    if (v === '') throw new BadRequest('input must not be an empty string', 'input');
    return v;
  }
  if (!Array.isArray(v)) throw bad();
  if (v.length === 0) throw new BadRequest('input must not be an empty array', 'input');
  if (v.length > MAX_INPUTS) throw new BadRequest(`input holds ${v.length} items; at most ${MAX_INPUTS} per request`, 'input');
  const tokenIds = (a: unknown[]) => a.every((t) => Number.isInteger(t) && (t as number) >= 0);
  if (v.every((x) => typeof x === 'string')) {
    const empty = v.findIndex((x) => x === '');
    if (empty >= 0) throw new BadRequest(`input[${empty}] must not be an empty string`, 'input');
    return v as string[];
  }
  if (v.every((x) => typeof x === 'number')) {
    if (!tokenIds(v)) throw new BadRequest('input: token ids must be integers >= 0', 'input');
    return v as number[];
  }
  if (v.every((x) => Array.isArray(x))) {
    v.forEach((x: unknown[], i) => {
      if (x.length === 0 || !tokenIds(x)) throw new BadRequest(`input[${i}] must be a non-empty array of token ids (integers >= 0)`, 'input');
    });
    return v as number[][];
  }
  throw bad();
}

/** Ollama's `input`: a string or strings; absent or "" is no input (the model is only loaded). */
function ollamaInput(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new BadRequest('input must be a string or an array of strings', 'input');
}

/**
 * A vector as JSON numbers, each written with 9 significant digits: enough to give back the
 * exact f32, at about half the length of the f64 that holds it.
 */
function floats(v: Float32Array): number[] {
  return Array.from(v, (x) => Number(x.toPrecision(9)));
}

/** A vector as OpenAI sends it with encoding_format "base64": little-endian f32 bytes. */
function base64(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString('base64');
}
