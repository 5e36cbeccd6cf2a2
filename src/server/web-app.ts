// Serves the web app (src/web/, built by Vite into build/web/ by `npm run build`): index.html and
// the files under assets/, read once at start. Only the files the build wrote are served, by
// exact name, so no request path ever reaches the file system.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';

export const WEB_APP_DIR = new URL('../../../build/web/', import.meta.url);

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2', '.png': 'image/png', '.json': 'application/json',
};

/** Routes `mount` (e.g. "/") to index.html and `mount`assets/<file> to the built assets. */
export function registerWebApp(app: FastifyInstance, mount: string, dir: URL = WEB_APP_DIR): void {
  let index: Buffer;
  try {
    index = readFileSync(new URL('index.html', dir));
  } catch (e) {
    throw new Error(`the web app is not built (${(e as NodeJS.ErrnoException).code ?? (e as Error).message} reading build/web/index.html): run npm run build`, { cause: e });
  }
  // Asset names carry a content hash: they may be cached for good; index.html never.
  app.get(mount, async (_req, reply) => reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(index));
  for (const file of readdirSync(new URL('assets/', dir))) {
    const type = TYPES[path.extname(file)];
    if (!type) continue;
    const body = readFileSync(new URL(`assets/${file}`, dir));
    app.get(`${mount}assets/${file}`, async (_req, reply) => reply.type(type).header('cache-control', 'public, max-age=31536000, immutable').send(body));
  }
}
