// Ollama's API (/api): tags, show, ps, version, generate and chat (with tools and thinking),
// streamed as NDJSON (one JSON object per line) or answered whole, with Ollama's options (temperature, top_k, top_p, min_p,
// num_predict, num_ctx, seed, stop, penalties) and keep_alive. Errors: {"error": "message"}.
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { GenerateOptions, GenerationChunk } from '../index.js';
import { ollamaOptions, type GenerateLoad } from './ollama-options.js';
import { startGeneration, withSystem, type GenerationJob, type ServerContext } from './generation.js';
import type { ModelEntry } from './registry.js';
import { BadRequest, objectBody, optBool, optObject, optString, requireString } from './params.js';
import { openStream } from './streaming.js';
import { chatMessages, toolRequest } from './chat-request.js';
import { describeChatTemplate } from '../chat/chat-template-choice.js';
import { joinPieces, planChat, templateTakesTools, templateThinks, type ChatPlan, type ReplyPiece } from './chat-reply.js';
import { ollamaFormat } from './structured-output.js';
import { VERSION } from './version.js';
import { STOPPED_MESSAGE, ShuttingDownError } from './drain.js';

export function registerOllama(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/api/version', async () => ({ version: VERSION }));

  // context_length is not Ollama's in /api/tags (its /api/ps has one): the web app's models list shows it.
  app.get('/api/tags', async () => ({
    models: (await ctx.registry.list()).map((e) => ({ ...tagFields(e), context_length: e.contextLength, modified_at: e.modified.toISOString() })),
  }));

  app.get('/api/ps', async () => ({
    models: ctx.registry.running().map((l) => ({
      ...tagFields(l.entry), size: l.bytes, size_vram: l.vram, context_length: l.model.contextLength,
      expires_at: new Date(Number.isFinite(l.expiresAt) ? l.expiresAt : Date.UTC(9999, 0)).toISOString(),
    })),
  }));

  app.post('/api/show', async (req) => {
    const body = objectBody(req.body);
    const name = optString(body, 'model') ?? requireString(body, 'name');
    const e = await ctx.registry.find(name);
    const template = await ctx.registry.chatTemplate(e);
    // As Ollama: an embedding model (one that declares its pooling) is for embeddings.
    const capabilities = e.embedding ? ['embedding'] : ['completion'];
    if (!e.embedding && templateTakesTools(template.source)) capabilities.push('tools');
    if (!e.embedding && templateThinks(template.source)) capabilities.push('thinking');
    return {
      modelfile: '', template: template.source,
      parameters: Object.entries(e.defaults?.parameters ?? {}).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join('\n'),
      ...(e.defaults?.system ? { system: e.defaults.system } : {}),
      details: details(e),
      model_info: {
        'general.architecture': e.architecture, 'general.parameter_count': e.parameters,
        [`${e.architecture}.context_length`]: e.contextLength,
        // Not Ollama's: which template chats use, and why (the model's own, an override, or the default).
        'minerva.chat_template': describeChatTemplate(template),
      },
      capabilities,
      modified_at: e.modified.toISOString(),
    };
  });

  app.post('/api/generate', async (req, reply) => {
    const body = objectBody(req.body);
    const model = requireString(body, 'model');
    const prompt = optString(body, 'prompt') ?? '';
    const system = optString(body, 'system');
    const raw = optBool(body, 'raw') ?? false;
    if (optString(body, 'template') !== undefined) throw new BadRequest('template is not supported (the model\'s own chat template is used)', 'template');
    const context = tokenArray(body, 'context');
    const common = commonOptions(body);
    if (prompt === '' && !context) return preload(ctx, model, common.keepAliveMs, common.load, '/api/generate');
    const job = await startGeneration(ctx, {
      model, options: common.options, keepAliveMs: common.keepAliveMs, load: common.load,
      prompt: (m, defaults) => {
        const previous = context ?? [];
        const sys = system ?? defaults?.system;
        // Like Ollama: the model's chat template (or an override) around the prompt, unless raw; a model
        // without a template gets the prompt as it is (Ollama's default template passes it through).
        if (!raw && m.chatTemplate.origin !== 'default' && previous.length === 0) {
          return m.chatPromptTokens([...(sys ? [{ role: 'system', content: sys }] : []), { role: 'user', content: prompt }]);
        }
        return [...previous, ...m.promptTokens(prompt, { addSpecial: previous.length === 0 })];
      },
    });
    const line = (text: string, _last: boolean, extra: object = {}) => ({ model: job.loaded.entry.name, created_at: new Date().toISOString(), response: text, done: false, ...extra });
    return respond(ctx, job, req, reply, common.stream, { line, final: (final, all) => ({ context: [...job.prompt, ...all.tokens], ...final }) });
  });

  app.post('/api/chat', async (req, reply) => {
    const body = objectBody(req.body);
    const model = requireString(body, 'model');
    const common = commonOptions(body);
    if (body.messages === undefined || (Array.isArray(body.messages) && body.messages.length === 0)) {
      return preload(ctx, model, common.keepAliveMs, common.load, '/api/chat');
    }
    const messages = chatMessages(body, 'ollama');
    const tools = toolRequest(body, 'ollama');
    const think = optBool(body, 'think');
    let plan: ChatPlan | undefined;
    const job = await startGeneration(ctx, {
      model, options: common.options, keepAliveMs: common.keepAliveMs, load: common.load,
      prompt: (m, defaults) => {
        // think: false leaves a thinking model's reasoning out; unset or true reports it apart, as "thinking".
        plan = planChat(m, { messages: withSystem(messages, defaults), tools, variables: {}, think, separateReasoning: true }, model);
        return { prompt: plan.prompt, options: plan.options };
      },
    });
    const reader = plan!.reader();
    const line = (piece: ReplyPiece, extra: object = {}) => {
      const message: Record<string, unknown> = { role: 'assistant', content: piece.content };
      if (piece.reasoning) message.thinking = piece.reasoning;
      if (piece.calls.length > 0) message.tool_calls = piece.calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } }));
      return { model: job.loaded.entry.name, created_at: new Date().toISOString(), message, done: false, ...extra };
    };
    const read = (text: string, last: boolean) => (last ? joinPieces(reader.push(text), reader.flush()) : reader.push(text));
    return respond(ctx, job, req, reply, common.stream, {
      line: (text, last, extra) => {
        const piece = read(text, last);
        return last || piece.content || piece.reasoning || piece.calls.length > 0 ? line(piece, extra) : undefined;
      },
      final: (final) => final,
    });
  });
}

interface Lines {
  /**
   * The line for some text; `last` on the final one (which gets `extra`, the stats). Undefined:
   * nothing to send yet (text held back by a reader).
   */
  line(text: string, last: boolean, extra?: object): object | undefined;
  /** The stats of the last line, given every token generated. */
  final(stats: object, all: { tokens: number[] }): object;
}

/** Streams NDJSON lines, or gathers the whole text into one answer; the last line carries the stats. */
async function respond(
  ctx: ServerContext, job: GenerationJob, req: Parameters<typeof openStream>[0], reply: Parameters<typeof openStream>[1], stream: boolean, lines: Lines,
): Promise<unknown> {
  const tokens: number[] = [];
  let text = '';
  const out = stream ? openStream(req, reply, 'application/x-ndjson', () => job.abort()) : undefined;
  const onClose = () => { if (!reply.raw.writableEnded) job.abort(); };
  if (!out) reply.raw.on('close', onClose);
  let last: GenerationChunk | undefined;
  let tail = '';
  try {
    for await (const c of job.chunks) {
      tokens.push(...c.tokens);
      last = c;
      if (out) {
        if (out.closed) { job.abort(); continue; }
        if (c.finishReason) { tail = c.text; continue; }
        const l = c.text ? lines.line(c.text, false) : undefined;
        if (l) out.write(JSON.stringify(l) + '\n');
      } else {
        text += c.text;
      }
    }
  } catch (e) {
    if (!out) throw e;
    // Failed midway (the model's backend broke): Ollama's error line, which its clients raise.
    req.log.error(e);
    out.end(JSON.stringify({ error: ctx.redact(e instanceof Error ? e.message : String(e)) || 'internal error' }) + '\n');
    return reply;
  } finally {
    reply.raw.off('close', onClose);
    job.close();
  }
  // Ended by a server shutdown: streamed, the last line says so (done_reason "shutdown", and the
  // error Ollama's clients raise); whole, a 503 rather than a partial answer.
  const shutdown = job.shutdown && last!.finishReason === 'abort';
  if (shutdown && !out) throw new ShuttingDownError(STOPPED_MESSAGE);
  const t = last!.timings!, ns = (ms: number) => Math.round(ms * 1e6);
  const final = lines.final({
    done: true, done_reason: shutdown ? 'shutdown' : last!.finishReason === 'stop' ? 'stop' : 'length',
    ...(shutdown ? { error: STOPPED_MESSAGE } : {}),
    total_duration: ns(performance.now() - job.started), load_duration: ns(job.loadMs),
    prompt_eval_count: last!.usage!.promptTokens, prompt_eval_duration: ns(t.promptMs),
    eval_count: last!.usage!.completionTokens, eval_duration: ns(t.generateMs),
  }, { tokens });
  if (out) {
    out.end(JSON.stringify(lines.line(tail, true, final)) + '\n');
    return reply;
  }
  return lines.line(text, true, final);
}

/** An empty prompt (or no messages) loads the model and answers at once; keep_alive 0 unloads it. */
async function preload(ctx: ServerContext, model: string, keepAliveMs: number | undefined, load: GenerateLoad, route: string): Promise<object> {
  const { loaded, release } = await ctx.registry.acquire(model, keepAliveMs, load);
  release();
  const base = { model: loaded.entry.name, created_at: new Date().toISOString(), done: true, done_reason: keepAliveMs === 0 ? 'unload' : 'load' };
  return route === '/api/chat' ? { ...base, message: { role: 'assistant', content: '' } } : { ...base, response: '' };
}


function commonOptions(body: Record<string, unknown>): { options: GenerateOptions; stream: boolean; keepAliveMs: number | undefined; load: GenerateLoad } {
  const grammar = ollamaFormat(body.format);
  const { options, load } = ollamaOptions(optObject(body, 'options') ?? {}, 'options');
  return { stream: optBool(body, 'stream') ?? true, keepAliveMs: keepAlive(body.keep_alive), load, options: { ...options, grammar } };
}

/** keep_alive: seconds as a number, or a Go-style duration ("5m", "30s", "1h", "-1"); negative = forever. */
export function keepAlive(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  let ms: number;
  if (typeof v === 'number' && Number.isFinite(v)) ms = v * 1000;
  else if (typeof v === 'string') {
    const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
    if (!m) throw new BadRequest(`keep_alive must be a number of seconds or a duration like "5m", got ${JSON.stringify(v)}`, 'keep_alive');
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
    ms = Number(m[1]) * unit;
  } else throw new BadRequest('keep_alive must be a number of seconds or a duration string', 'keep_alive');
  return ms < 0 ? Infinity : ms;
}

function tokenArray(body: Record<string, unknown>, key: string): number[] | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((t) => Number.isInteger(t) && t >= 0) || v.length > 1 << 20) {
    throw new BadRequest(`${key} must be an array of token ids`, key);
  }
  return v.length === 0 ? undefined : v as number[];
}

function details(e: ModelEntry) {
  return {
    parent_model: '', format: e.format, family: e.architecture, families: [e.architecture],
    parameter_size: parameterSize(e.parameters), quantization_level: e.quantization,
  };
}

function tagFields(e: ModelEntry) {
  return { name: `${e.name}:latest`, model: `${e.name}:latest`, size: e.size, digest: digest(e), details: details(e) };
}

/** "1.1B", "494.0M", "28.4K", as Ollama shows parameter counts. */
function parameterSize(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(1)}B` : n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : `${(n / 1e3).toFixed(1)}K`;
}

/** A stable stand-in for Ollama's content digest: sha256 of path, size and mtime (hashing the content would read every byte). */
function digest(e: ModelEntry): string {
  return createHash('sha256').update(`${e.path}\0${e.size}\0${e.modified.getTime()}`).digest('hex');
}
