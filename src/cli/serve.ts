// minerva serve: the HTTP server (OpenAI /v1, Ollama /api, metrics, web chat) over the models folder.
import { mkdir } from 'node:fs/promises';
import { createServer, DEFAULTS, type ServeOptions } from '../server/server.js';
import { exposureWarning } from '../server/exposure.js';
import type { BackendName } from '../index.js';
import { readChatTemplateArg } from '../chat/chat-template-choice.js';

export interface ServeCommandOptions {
  host: string; port: number; modelsDir: string; apiKey?: string; corsOrigin?: string; parallel: number;
  maxQueue: number; maxMemory: number; maxGpuMemory?: number; keepAlive: number; ctxSize?: number; threads?: number; backend: BackendName;
  requestTimeout: number; quiet?: boolean; chatTemplate?: string;
}

export async function serveCommand(o: ServeCommandOptions): Promise<void> {
  await mkdir(o.modelsDir, { recursive: true });
  const options: ServeOptions = {
    host: o.host, port: o.port, modelsDir: o.modelsDir, apiKey: o.apiKey ?? process.env.MINERVA_API_KEY, corsOrigin: o.corsOrigin,
    parallel: o.parallel, maxQueue: o.maxQueue, maxMemory: o.maxMemory, maxGpuMemory: o.maxGpuMemory, keepAliveMs: o.keepAlive, contextLength: o.ctxSize,
    threads: o.threads, backend: o.backend, requestTimeoutMs: o.requestTimeout, bodyLimit: DEFAULTS.bodyLimit,
    logger: o.quiet ? false : { level: 'info' },
    chatTemplate: o.chatTemplate === undefined ? undefined : await readChatTemplateArg(o.chatTemplate),
  };
  const server = await createServer(options);
  const address = await server.listen();
  const warning = exposureWarning(o.host, options.apiKey);
  if (warning) process.stderr.write(warning);
  const models = await server.registry.list();
  const backend = await server.registry.resolvedBackend();
  process.stderr.write(`minerva: serving ${models.length} model${models.length === 1 ? '' : 's'} from ${o.modelsDir} at ${address} on the ${backend} backend`
    + ` (web chat: ${address}/, OpenAI: ${address}/v1, Ollama: ${address}/api)\n`);
  const stop = () => { void server.close().then(() => process.exit(0)); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
