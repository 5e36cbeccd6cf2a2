// OpenAI's API (/v1): models, chat completions and completions, streamed (server-sent events
// ending with "data: [DONE]") or not, with usage, stop strings, seeds, penalties and logprobs;
// chat with tools (tool_calls in the reply, finish_reason "tool_calls") and reasoning_content.
// Errors use OpenAI's shape: {"error": {"message", "type", "param", "code"}}.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GenerateOptions, GenerationChunk, Model, TokenLogprob } from '../index.js';
import type { FinishReason } from '../engine/scheduler.js';
import { startGeneration, withSystem, type GenerationJob, type ServerContext } from './generation.js';
import {
  BadRequest, objectBody, optBool, optInt, optNumber, optObject, optStops, requireString,
} from './params.js';
import { openStream } from './streaming.js';
import { chatMessages, templateVariables, toolRequest } from './chat-request.js';
import { joinPieces, planChat, type ChatPlan, type ReplyPiece } from './chat-reply.js';
import type { ToolCall } from '../chat/tool-types.js';
import { openaiResponseFormat } from './structured-output.js';

const MAX_TOKENS_LIMIT = 1 << 20;

export function registerOpenAI(app: FastifyInstance, ctx: ServerContext): void {
  app.get('/v1/models', async () => ({
    object: 'list',
    data: (await ctx.registry.list()).map((e) => modelObject(e.name, e.modified)),
  }));

  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    const e = await ctx.registry.find(req.params.id);
    return modelObject(e.name, e.modified);
  });

  app.post('/v1/chat/completions', async (req, reply) => {
    const body = objectBody(req.body);
    const model = requireString(body, 'model');
    const messages = chatMessages(body, 'openai');
    const tools = toolRequest(body, 'openai');
    const variables = templateVariables(body);
    const o = commonOptions(body);
    const separateReasoning = reasoningFormat(body);
    if (o.options.grammar && tools && tools.choice !== 'auto') {
      throw new BadRequest('response_format cannot be combined with tool_choice "required" or a named function (the call has its own format)', 'response_format');
    }
    const top = logprobsOption(body, 'logprobs', 'top_logprobs');
    let plan: ChatPlan | undefined;
    const job = await startGeneration(ctx, {
      model, options: { ...o.options, logprobs: top },
      prompt: (m, defaults) => {
        plan = planChat(m, { messages: withSystem(messages, defaults), tools, variables, think: undefined, separateReasoning });
        return { prompt: plan.prompt, options: plan.options };
      },
    });
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const name = job.loaded.entry.name;
    const tokenizer = job.loaded.model;
    const reader = plan!.reader();
    if (!o.stream) {
      const r = await collect(job, reply);
      if (!r) return reply;
      const read = joinPieces(reader.push(r.text), reader.flush());
      const message: Record<string, unknown> = { role: 'assistant', content: read.content === '' && read.calls.length > 0 ? null : read.content };
      if (read.reasoning !== '') message.reasoning_content = read.reasoning;
      if (read.calls.length > 0) message.tool_calls = read.calls.map((c) => openaiToolCall(c));
      return {
        id, object: 'chat.completion', created, model: name, system_fingerprint: FINGERPRINT,
        choices: [{
          index: 0, message,
          logprobs: top === undefined ? null : { content: r.logprobs.map((l) => logprobEntry(tokenizer, l)) },
          finish_reason: chatFinishReason(r.finish, read.calls.length > 0),
        }],
        usage: usage(r.promptTokens, r.completionTokens),
      };
    }
    const sse = openStream(req, reply, 'text/event-stream', () => job.abort());
    const frame = (choices: unknown[], extra: object = {}) =>
      sse.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: name, system_fingerprint: FINGERPRINT, choices, ...extra })}\n\n`);
    frame([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    /** Streams what a piece of the reply holds: reasoning, content, then each completed call as one delta. */
    const send = (piece: ReplyPiece, logprobs: unknown) => {
      if (piece.reasoning) frame([{ index: 0, delta: { reasoning_content: piece.reasoning }, logprobs: null, finish_reason: null }]);
      if (piece.content || logprobs) frame([{ index: 0, delta: { content: piece.content }, logprobs, finish_reason: null }]);
      for (const call of piece.calls) {
        const index = reader.calls.indexOf(call);
        frame([{ index: 0, delta: { tool_calls: [{ index, ...openaiToolCall(call) }] }, logprobs: null, finish_reason: null }]);
      }
    };
    try {
      for await (const c of job.chunks) {
        if (sse.closed) { job.abort(); continue; }
        const logprobs = c.logprobs ? { content: c.logprobs.map((l) => logprobEntry(tokenizer, l)) } : null;
        if (c.finishReason) {
          send(joinPieces(reader.push(c.text), reader.flush()), null);
          frame([{ index: 0, delta: {}, logprobs: null, finish_reason: chatFinishReason(c.finishReason, reader.calls.length > 0) }]);
          if (o.includeUsage) frame([], { usage: usage(c.usage!.promptTokens, c.usage!.completionTokens) });
        } else if (c.text || c.logprobs) {
          send(reader.push(c.text), logprobs);
        }
      }
    } finally {
      job.close();
    }
    sse.end('data: [DONE]\n\n');
    return reply;
  });

  app.post('/v1/completions', async (req, reply) => {
    const body = objectBody(req.body);
    const model = requireString(body, 'model');
    const prompt = completionPrompt(body);
    if (optBool(body, 'echo')) throw new BadRequest('echo is not supported', 'echo');
    if (body.suffix !== undefined && body.suffix !== null) throw new BadRequest('suffix is not supported', 'suffix');
    const o = commonOptions(body);
    const top = optInt(body, 'logprobs', 0, 20);
    const job = await startGeneration(ctx, {
      model, prompt: (m) => (typeof prompt === 'string' ? m.promptTokens(prompt) : prompt), options: { ...o.options, logprobs: top },
    });
    const id = `cmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    const name = job.loaded.entry.name;
    const m = job.loaded.model;
    const legacyLogprobs = (ls: TokenLogprob[]) => ({
      tokens: ls.map((l) => m.detokenize([l.token])),
      token_logprobs: ls.map((l) => l.logprob),
      top_logprobs: ls.map((l) => Object.fromEntries(l.top.map((t) => [m.detokenize([t.token]), t.logprob]))),
      text_offset: [] as number[],
    });
    if (!o.stream) {
      const r = await collect(job, reply);
      if (!r) return reply;
      return {
        id, object: 'text_completion', created, model: name, system_fingerprint: FINGERPRINT,
        choices: [{ index: 0, text: r.text, logprobs: top === undefined ? null : legacyLogprobs(r.logprobs), finish_reason: finishReason(r.finish) }],
        usage: usage(r.promptTokens, r.completionTokens),
      };
    }
    const sse = openStream(req, reply, 'text/event-stream', () => job.abort());
    const frame = (choices: unknown[], extra: object = {}) =>
      sse.write(`data: ${JSON.stringify({ id, object: 'text_completion', created, model: name, system_fingerprint: FINGERPRINT, choices, ...extra })}\n\n`);
    try {
      for await (const c of job.chunks) {
        if (sse.closed) { job.abort(); continue; }
        if (c.text || c.finishReason || c.logprobs) {
          frame([{
            index: 0, text: c.text, logprobs: c.logprobs ? legacyLogprobs(c.logprobs) : null,
            finish_reason: c.finishReason ? finishReason(c.finishReason) : null,
          }]);
        }
        if (c.finishReason && o.includeUsage) frame([], { usage: usage(c.usage!.promptTokens, c.usage!.completionTokens) });
      }
    } finally {
      job.close();
    }
    sse.end('data: [DONE]\n\n');
    return reply;
  });
}

const FINGERPRINT = 'minerva';

function modelObject(id: string, modified: Date) {
  return { id, object: 'model', created: Math.floor(modified.getTime() / 1000), owned_by: 'minerva' };
}

function usage(prompt: number, completion: number) {
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}

/** A generation cut short (timeout) reports "length": the output is incomplete, as when max_tokens runs out. */
function finishReason(r: FinishReason): 'stop' | 'length' {
  return r === 'stop' ? 'stop' : 'length';
}

/** A chat reply that ended by itself after making calls reports "tool_calls", as OpenAI does. */
function chatFinishReason(r: FinishReason, called: boolean): 'stop' | 'length' | 'tool_calls' {
  return r === 'stop' && called ? 'tool_calls' : finishReason(r);
}

/** A call as OpenAI writes it: the arguments as JSON text. */
function openaiToolCall(c: ToolCall) {
  return { id: c.id, type: 'function', function: { name: c.name, arguments: JSON.stringify(c.arguments) } };
}

/**
 * reasoning_format (llama-server's field): "auto" or "deepseek" (the default) report a thinking
 * model's reasoning as reasoning_content; "none" leaves it in the content.
 */
function reasoningFormat(body: Record<string, unknown>): boolean {
  const v = body.reasoning_format;
  if (v === undefined || v === null || v === 'auto' || v === 'deepseek') return true;
  if (v === 'none') return false;
  throw new BadRequest('reasoning_format must be "auto", "deepseek" or "none"', 'reasoning_format');
}

/** Sampling and length options shared by both endpoints, checked. */
function commonOptions(body: Record<string, unknown>): { options: GenerateOptions; stream: boolean; includeUsage: boolean } {
  const n = optInt(body, 'n', 1, 128);
  if (n !== undefined && n !== 1) throw new BadRequest('n must be 1 (one choice per request)', 'n');
  const grammar = openaiResponseFormat(optObject(body, 'response_format'));
  const maxTokens = optInt(body, 'max_completion_tokens', 0, MAX_TOKENS_LIMIT) ?? optInt(body, 'max_tokens', 0, MAX_TOKENS_LIMIT);
  const seed = optInt(body, 'seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const topP = optNumber(body, 'top_p', 0, 1);
  const stream = optBool(body, 'stream') ?? false;
  const streamOptions = optObject(body, 'stream_options');
  if (streamOptions && !stream) throw new BadRequest('stream_options is only allowed with stream: true', 'stream_options');
  return {
    stream,
    includeUsage: streamOptions ? optBool(streamOptions, 'include_usage') ?? false : false,
    options: {
      maxTokens,
      temperature: optNumber(body, 'temperature', 0, 2),
      topP: topP === 0 ? Number.MIN_VALUE : topP, // OpenAI allows 0: only the top token remains
      topK: optInt(body, 'top_k', 0, 1 << 20),
      minP: optNumber(body, 'min_p', 0, 1),
      presencePenalty: optNumber(body, 'presence_penalty', -2, 2),
      frequencyPenalty: optNumber(body, 'frequency_penalty', -2, 2),
      repeatPenalty: optNumber(body, 'repeat_penalty', Number.MIN_VALUE, 10),
      seed: seed === undefined ? undefined : ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32,
      stop: optStops(body, 'stop'),
      grammar,
    },
  };
}

/** Chat's `logprobs: true` with `top_logprobs: k` → k alternatives (undefined: none asked for). */
function logprobsOption(body: Record<string, unknown>, flag: string, count: string): number | undefined {
  const want = optBool(body, flag) ?? false;
  const top = optInt(body, count, 0, 20);
  if (top !== undefined && !want) throw new BadRequest(`${count} needs ${flag}: true`, count);
  return want ? top ?? 0 : undefined;
}

function completionPrompt(body: Record<string, unknown>): string | number[] {
  const p = body.prompt;
  if (typeof p === 'string') return p;
  if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') return p[0];
  if (Array.isArray(p) && p.length > 0 && p.every((t) => Number.isInteger(t))) return p as number[];
  if (Array.isArray(p) && p.length > 1 && p.every((t) => typeof t === 'string')) {
    throw new BadRequest('prompt: one prompt per request (send several requests instead)', 'prompt');
  }
  throw new BadRequest('prompt must be a string or an array of token ids', 'prompt');
}

function logprobEntry(m: Model, l: TokenLogprob) {
  const entry = (token: number, logprob: number) => {
    const text = m.detokenize([token]);
    return { token: text, logprob, bytes: [...Buffer.from(text, 'utf8')] };
  };
  return { ...entry(l.token, l.logprob), top_logprobs: l.top.map((t) => entry(t.token, t.logprob)) };
}

/** Reads a whole generation for a non-streaming answer; undefined if the client went away. */
async function collect(job: GenerationJob, reply: FastifyReply): Promise<{
  text: string; finish: FinishReason; promptTokens: number; completionTokens: number; logprobs: TokenLogprob[];
} | undefined> {
  const onClose = () => { if (!reply.raw.writableEnded) job.abort(); };
  reply.raw.on('close', onClose);
  let text = '', last: GenerationChunk | undefined;
  const logprobs: TokenLogprob[] = [];
  try {
    for await (const c of job.chunks) {
      text += c.text;
      if (c.logprobs) logprobs.push(...c.logprobs);
      last = c;
    }
  } finally {
    reply.raw.off('close', onClose);
    job.close();
  }
  if (reply.raw.destroyed) return undefined;
  return { text, finish: last!.finishReason!, promptTokens: last!.usage!.promptTokens, completionTokens: last!.usage!.completionTokens, logprobs };
}
