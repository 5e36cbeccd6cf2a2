// `minerva serve`: a Fastify server with OpenAI's /v1 and Ollama's /api over the models in the
// models folder, /health, /ready, Prometheus /metrics, and the web chat at /.
import { createHash, timingSafeEqual } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import cors from '@fastify/cors';
import type { BackendName } from '../index.js';
import { QueueFullError } from '../engine/scheduler.js';
import { compileKernels } from '../backends/cpu/kernel-module.js';
import { ServerMetrics } from './metrics.js';
import { InsufficientMemoryError, ModelInUseError, ModelRegistry, UnknownModelError } from './registry.js';
import { registerOllamaModels } from './ollama-models.js';
import { bundledDemoModel, type DemoModel } from './demo-model.js';
import { registerOpenAI } from './openai.js';
import { registerOllama } from './ollama.js';
import { registerEmbeddings } from './embeddings.js';
import { BadRequest } from './params.js';
import { redactPaths } from './exposure.js';
import type { ServerContext } from './generation.js';
import { VERSION } from './version.js';
import { registerWebApp } from './web-app.js';
import { Drain, SHUTDOWN_MESSAGE, ShuttingDownError } from './drain.js';
import { describeChatTemplate, type ChatTemplateChoice } from '../chat/chat-template-choice.js';

export interface ServeOptions {
  host: string;
  port: number;
  modelsDir: string;
  /** Requests to /v1, /api and /metrics must carry "Authorization: Bearer <apiKey>". */
  apiKey?: string;
  /** Access-Control-Allow-Origin: "*" or a comma-separated list of origins. */
  corsOrigin?: string;
  /** Sequences per model that generate together. */
  parallel: number;
  /** Requests per model that may wait for a slot before 429. */
  maxQueue: number;
  /** Bytes all loaded models may hold together. */
  maxMemory: number;
  /** Bytes all models on the GPU may hold together (default: no limit; WebGPU does not report a device's memory). */
  maxGpuMemory?: number;
  /** How long an idle model stays loaded, ms (Infinity: forever). */
  keepAliveMs: number;
  /** Context per sequence (default: min(model's, 4096)). */
  contextLength?: number;
  threads?: number;
  backend?: BackendName;
  /** Bytes of memory taken as free when a model loads (default: the system's available memory, read at each load). */
  freeMemory?: number;
  /** Longest a generation may run, ms. */
  requestTimeoutMs: number;
  /** Largest request body, bytes. */
  bodyLimit: number;
  /** Fastify's logger (pino): true, false, or its options. */
  logger: boolean | object;
  /** The chat template for every model (--chat-template; a `<model>.jinja` beside a model wins). */
  chatTemplate?: ChatTemplateChoice;
  /** The model listed while the models folder is empty: default the bundled demo; false for none. */
  demoModel?: DemoModel | false;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 11434,
  modelsDir: process.env.MINERVA_MODELS ?? path.join(os.homedir(), '.minerva', 'models'),
  parallel: 4,
  maxQueue: 32,
  maxMemory: Math.floor(os.totalmem() * 0.75),
  keepAliveMs: 5 * 60_000,
  requestTimeoutMs: 10 * 60_000,
  bodyLimit: 4 << 20,
} as const;

export interface MinervaServer {
  app: FastifyInstance;
  registry: ModelRegistry;
  metrics: ServerMetrics;
  /** Starts listening; resolves to the address. A taken port rejects with PortInUseError. */
  listen(): Promise<string>;
  /**
   * Graceful shutdown: /ready and new work answer 503 at once, running requests may finish for
   * up to `deadlineMs`, then the generations still running are ended (their responses say the
   * server is shutting down) and the server closes. Resolves to how many were ended that way.
   */
  drain(deadlineMs: number): Promise<{ stopped: number }>;
  /** Closes at once: running streams end where they are. */
  close(): Promise<void>;
  /** The shutdown state (requests in flight, draining or not). */
  readonly shutdown: Drain;
}

/** The port is taken by another process: `minerva serve` says so in one line. */
export class PortInUseError extends Error {
  constructor(readonly host: string, readonly port: number) {
    super(`port ${port} on ${host} is already in use (another minerva serve or Ollama?): stop that process, or pass another --port`);
    this.name = 'PortInUseError';
  }
}

export async function createServer(o: ServeOptions): Promise<MinervaServer> {
  const registry = new ModelRegistry({
    dir: o.modelsDir, maxMemory: o.maxMemory, maxGpuMemory: o.maxGpuMemory, keepAliveMs: o.keepAliveMs,
    load: { parallel: o.parallel, maxQueue: o.maxQueue, contextLength: o.contextLength, threads: o.threads, backend: o.backend, freeMemory: o.freeMemory },
    chatTemplate: o.chatTemplate,
    onFault: (message) => app.log.error(message),
    onLoad: (entry, model) => {
      metrics.modelLoads.inc({ model: entry.name });
      if (model.chatTemplate.origin !== 'model') app.log.info(`model "${entry.name}": chat template ${describeChatTemplate(model.chatTemplate)}`);
    },
    demo: o.demoModel === false ? undefined : o.demoModel ?? bundledDemoModel(),
  });
  const metrics = new ServerMetrics(registry);
  const shutdown = new Drain();
  const ctx: ServerContext = {
    registry, metrics, requestTimeoutMs: o.requestTimeoutMs, drain: shutdown, redact: (m) => redactPaths(m, o.modelsDir),
  };
  const app = Fastify({ logger: o.logger, bodyLimit: o.bodyLimit });
  let ready = false;
  // Bodies are JSON whatever the Content-Type says: Ollama's documented `curl -d '{…}'` sends
  // application/x-www-form-urlencoded, and fetch() with a string body sends text/plain (whose
  // built-in parser would hand the routes a string).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, body === '' ? undefined : JSON.parse(body as string));
    } catch (e) {
      done(Object.assign(new Error(`the request body is not valid JSON: ${(e as Error).message}`), { statusCode: 400 }), undefined);
    }
  });

  if (o.corsOrigin) {
    await app.register(cors, { origin: o.corsOrigin === '*' ? true : o.corsOrigin.split(',').map((s) => s.trim()) });
  }

  // The key's digest, computed once: each request hashes only what it sent (see keyMatches).
  const keyDigest = o.apiKey ? sha256(o.apiKey) : undefined;
  app.addHook('onRequest', async (req, reply) => {
    // Counted when the response ends, streamed or not.
    reply.raw.once('finish', () => metrics.requests.inc({
      route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.raw.statusCode),
    }));
    // In flight until its response has ended (or its client left): a drain waits for it.
    reply.raw.once('close', shutdown.requestStarted());
    if (keyDigest && needsKey(req.url) && !keyMatches(req.headers.authorization, keyDigest)) {
      return sendError(req, reply, 401, 'invalid or missing API key (send "Authorization: Bearer <key>")', 'authentication_error', 'invalid_api_key');
    }
    // Draining: nothing new starts (generations, embeddings, pulls, model changes); reads and /health still answer.
    if (shutdown.draining && startsWork(req.method, req.url)) {
      reply.header('connection', 'close');
      return sendError(req, reply, 503, SHUTDOWN_MESSAGE, 'server_error', 'server_shutting_down');
    }
  });

  app.setErrorHandler((err: FastifyError | Error, req, reply) => {
    // The log keeps the whole error; the client is told the model, never the server's paths.
    const said = redactPaths(err.message, o.modelsDir);
    if (err instanceof BadRequest) return sendError(req, reply, 400, said, 'invalid_request_error', null, err.param);
    if (err instanceof UnknownModelError) return sendError(req, reply, 404, said, 'invalid_request_error', 'model_not_found', 'model');
    if (err instanceof QueueFullError) {
      reply.header('retry-after', '1');
      return sendError(req, reply, 429, `${said}; retry shortly`, 'server_busy', 'rate_limit_exceeded');
    }
    if (err instanceof InsufficientMemoryError) return sendError(req, reply, 503, said, 'server_error', 'insufficient_memory');
    if (err instanceof ModelInUseError) return sendError(req, reply, 409, said, 'invalid_request_error', 'model_in_use', 'model');
    if (err instanceof ShuttingDownError) return sendError(req, reply, 503, said, 'server_error', 'server_shutting_down');
    if ('statusCode' in err && err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      const message = err.code === 'FST_ERR_CTP_INVALID_JSON' || err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY'
        ? `the request body is not valid JSON: ${said}` : said;
      return sendError(req, reply, err.statusCode, message, 'invalid_request_error', err.code ?? null);
    }
    req.log.error(err);
    const status = 'statusCode' in err && typeof err.statusCode === 'number' && err.statusCode >= 500 && err.statusCode < 600 ? err.statusCode : 500;
    return sendError(req, reply, status, said || 'internal error', 'server_error', null);
  });
  app.setNotFoundHandler((req, reply) => sendError(req, reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`, 'invalid_request_error', 'not_found'));

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_req, reply) => {
    if (shutdown.draining) return reply.code(503).send({ status: 'draining' });
    return ready ? { status: 'ready' } : reply.code(503).send({ status: 'starting' });
  });
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  // The web app (src/web/, built into build/web/); /ui/config.json tells it what it needs of the server.
  registerWebApp(app, '/');
  app.get('/ui/config.json', async () => ({
    modelsDir: o.modelsDir, version: VERSION, apiKey: Boolean(o.apiKey), demoModel: (await registry.list()).find((e) => e.demo)?.name ?? null,
    // The memory budget (--max-memory), for the models screen's gauge of memory in use.
    maxMemory: o.maxMemory,
  }));

  registerOpenAI(app, ctx);
  registerOllama(app, ctx);
  registerEmbeddings(app, ctx);
  registerOllamaModels(app, ctx, o.modelsDir);

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      registry.dispose();
      await app.close();
    })();
    return closing;
  };
  return {
    app, registry, metrics, shutdown,
    async listen() {
      let address: string;
      try {
        address = await app.listen({ host: o.host, port: o.port });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new PortInUseError(o.host, o.port);
        throw e;
      }
      // Ready once the backend is known (a GPU found or not), the kernels compile and the models folder can be read.
      if (await registry.resolvedBackend() === 'cpu') await compileKernels();
      await registry.list();
      ready = true;
      return address;
    },
    async drain(deadlineMs) {
      const { stopped, unfinished } = await shutdown.drain(deadlineMs);
      if (stopped > 0) app.log.warn(`shutdown: ${stopped} running request${stopped === 1 ? '' : 's'} stopped at the ${deadlineMs} ms drain deadline`);
      if (unfinished > 0) app.log.warn(`shutdown: ${unfinished} request${unfinished === 1 ? '' : 's'} still unfinished; closing anyway`);
      await close();
      return { stopped };
    },
    close,
  };
}

/** Requests that start work (a generation, an embedding, a pull, a change to the models folder): refused while draining. */
function startsWork(method: string, url: string): boolean {
  return method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS' && (url.startsWith('/v1/') || url.startsWith('/api/'));
}

function needsKey(url: string): boolean {
  return url.startsWith('/v1/') || url.startsWith('/api/') || url.startsWith('/metrics');
}

/**
 * Whether the Authorization header carries the key, in time that tells nothing of the key: both
 * sides are hashed to 32 bytes first, so even the length is not compared.
 */
function keyMatches(header: string | undefined, keyDigest: Buffer): boolean {
  return timingSafeEqual(sha256(header?.startsWith('Bearer ') ? header.slice(7) : ''), keyDigest);
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** An error in the shape of the API the request was for: OpenAI's under /v1, Ollama's elsewhere. */
function sendError(
  req: FastifyRequest, reply: FastifyReply, status: number, message: string, type: string, code: string | null, param?: string,
): FastifyReply {
  if (reply.sent || reply.raw.headersSent) {
    reply.raw.end();
    return reply;
  }
  reply.code(status);
  if (req.url.startsWith('/v1/')) return reply.send({ error: { message, type, param: param ?? null, code } });
  return reply.send({ error: message });
}
