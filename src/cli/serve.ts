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
  /** Seconds running requests may take to finish after SIGTERM/SIGINT. */
  drainTimeout: number;
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
  let address: string;
  try {
    address = await server.listen();
  } catch (e) {
    // (A port in use is one line from main's handler: PortInUseError says which port and what to do.)
    await server.close();
    throw e;
  }
  const warning = exposureWarning(o.host, options.apiKey);
  if (warning) process.stderr.write(warning);
  const models = await server.registry.list();
  const backend = await server.registry.resolvedBackend();
  process.stderr.write(`minerva: serving ${models.length} model${models.length === 1 ? '' : 's'} from ${o.modelsDir} at ${address} on the ${backend} backend`
    + ` (web chat: ${address}/, OpenAI: ${address}/v1, Ollama: ${address}/api)\n`);
  // The first SIGTERM or SIGINT drains (the server does the work; see MinervaServer.drain) and
  // exits 0; a second one during the drain exits at once, as a shell expects of a signal.
  let draining = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (draining) {
      process.stderr.write(`minerva: ${signal} again: stopping now\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    draining = true;
    process.stderr.write(`minerva: ${signal}: shutting down; running requests have ${o.drainTimeout} s to finish (send SIGINT again, or Ctrl-C, to stop at once)\n`);
    server.drain(o.drainTimeout * 1000).then(({ stopped }) => {
      if (stopped > 0) process.stderr.write(`minerva: ${stopped} request${stopped === 1 ? '' : 's'} stopped at the drain deadline\n`);
      process.exit(0);
    }, (e: unknown) => {
      process.stderr.write(`minerva: shutdown failed: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
