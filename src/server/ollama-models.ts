// Ollama's model-management API over the models folder: pull (from the Hugging Face Hub, see
// src/hub/), delete, copy, blobs (upload and check) and create (from an existing model, or from
// uploaded files). New models appear in the listing at
// once (it reads the folder on each request); changing one model never touches the others.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ServerContext } from './generation.js';
import { BadRequest, objectBody, optBool, optObject, optString, requireString } from './params.js';
import { checkParameters, writeModelDefaults } from './model-defaults.js';
import { blobPath, checkDigest, checkNewName, hasBlob, linkOrCopy, saveBlob } from './model-files.js';
import { mkdir } from 'node:fs/promises';
import { convertModel } from '../convert/convert.js';
import { CONVERT_TYPES, isConvertType } from '../convert/file-types.js';
import { pull } from '../hub/pull.js';
import { openStream } from './streaming.js';
import { parseRepoRef } from '../hub/repo-ref.js';
import { HubError } from '../hub/hub-errors.js';
import { ollamaPullStatus, type OllamaPullStatus, type PullEvent } from '../hub/pull-events.js';
import path from 'node:path';
import { redactPaths } from './exposure.js';
import { ShuttingDownError } from './drain.js';

/** The largest blob upload accepted (a GGUF of a 70B model at 8 bits is ~75 GB). */
const MAX_BLOB_BYTES = 2 ** 40;

/** File names a created SafeTensors model may hold (plain names: they become paths in a new folder). */
const MODEL_FILE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

export function registerOllamaModels(app: FastifyInstance, ctx: ServerContext, modelsDir: string): void {
  app.delete('/api/delete', async (req, reply) => {
    const body = objectBody(req.body);
    const name = optString(body, 'model') ?? requireString(body, 'name');
    await ctx.registry.remove(name);
    return reply.code(200).send();
  });

  app.post('/api/copy', async (req, reply) => {
    const body = objectBody(req.body);
    await ctx.registry.copy(requireString(body, 'source'), requireString(body, 'destination'));
    return reply.code(200).send();
  });

  // Blob bodies are raw bytes of any size: this route takes the request stream as it is, in a
  // context of its own without the JSON body parser.
  void app.register(async (blobs) => {
    blobs.removeAllContentTypeParsers();
    blobs.addContentTypeParser('*', (_req, _payload, done) => done(null));
    blobs.head('/api/blobs/:digest', async (req: FastifyRequest<{ Params: { digest: string } }>, reply) => {
      const hex = checkDigest(req.params.digest);
      return reply.code(await hasBlob(modelsDir, hex) ? 200 : 404).send();
    });
    blobs.post('/api/blobs/:digest', { bodyLimit: MAX_BLOB_BYTES }, async (req: FastifyRequest<{ Params: { digest: string } }>, reply) => {
      const hex = checkDigest(req.params.digest);
      const length = Number(req.headers['content-length'] ?? NaN);
      if (length > MAX_BLOB_BYTES) throw new BadRequest(`a blob may be at most ${MAX_BLOB_BYTES} bytes`);
      if (await hasBlob(modelsDir, hex)) {
        req.raw.resume(); // (already have it: drain the body)
        return reply.code(200).send();
      }
      await saveBlob(modelsDir, hex, req.raw);
      return reply.code(201).send();
    });
  });

  app.post('/api/pull', async (req, reply) => {
    const body = objectBody(req.body);
    const name = optString(body, 'model') ?? requireString(body, 'name');
    const stream = optBool(body, 'stream') ?? true;
    const hint = 'Minerva pulls from the Hugging Face Hub: org/name[:QUANT], e.g. hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M';
    let ref;
    try {
      ref = parseRepoRef(name.replace(/:latest$/, ''));
    } catch (e) {
      throw new BadRequest(`${(e as Error).message} (${hint})`, 'model');
    }
    // (An Ollama library name such as "llama3.2" has no organisation: it is not a Hub repo.)
    if (!ref.repo.includes('/')) throw new BadRequest(`"${name}" is not a Hugging Face repo (${hint})`, 'model');
    // Progress lines at most every 100 ms per file (the download reports far more often).
    const lastSent = new Map<string, number>();
    const statusOf = (e: PullEvent): OllamaPullStatus | undefined => {
      if (e.type === 'file-progress' && e.completed < e.total) {
        const now = Date.now();
        if (now - (lastSent.get(e.file.path) ?? 0) < 100) return undefined;
        lastSent.set(e.file.path, now);
      }
      return ollamaPullStatus(e);
    };
    // A drain that reaches its deadline stops the pull: the partial download stays (as
    // *.incomplete in the cache) for the next pull to resume, and no model link is made.
    const controller = new AbortController();
    const unregister = ctx.drain.register({
      stop: () => controller.abort(new ShuttingDownError('the server is shutting down: the pull was stopped (pull again to resume it)')),
    });
    if (!stream) {
      try {
        await pull(ref, { modelsDir, signal: controller.signal }).catch((e: unknown) => { throw pullError(e); });
      } finally {
        unregister();
      }
      return { status: 'success' };
    }
    const out = openStream(req, reply, 'application/x-ndjson', () => controller.abort());
    try {
      await pull(ref, {
        modelsDir, signal: controller.signal,
        onEvent: (e) => { const st = statusOf(e); if (st) out.write(JSON.stringify(st) + '\n'); },
      });
    } catch (e) {
      out.write(JSON.stringify({ error: redactPaths((e as Error).message, modelsDir) }) + '\n');
    } finally {
      unregister();
    }
    out.end();
  });

  app.post('/api/create', async (req, reply) => {
    const body = objectBody(req.body);
    const name = checkNewName(optString(body, 'model') ?? requireString(body, 'name'), 'model');
    const stream = optBool(body, 'stream') ?? true;
    // (Ollama's templates are Go templates; Minerva renders the model's own Jinja chat template.)
    for (const key of ['template', 'messages', 'adapters', 'license', 'modelfile']) {
      if (body[key] !== undefined && body[key] !== null) throw new BadRequest(`${key} is not supported by /api/create`, key);
    }
    const system = optString(body, 'system');
    const parameters = optObject(body, 'parameters');
    if (parameters) checkParameters(parameters);
    const quantize = optString(body, 'quantize')?.toLowerCase();
    if (quantize !== undefined && !isConvertType(quantize)) {
      throw new BadRequest(`quantize must be one of ${Object.keys(CONVERT_TYPES).join(', ')} (any case), got "${quantize}"`, 'quantize');
    }
    const from = optString(body, 'from');
    const files = optObject(body, 'files');
    if ((from === undefined) === (files === undefined)) throw new BadRequest('give either "from" (an existing model) or "files" (uploaded blobs)', from ? 'files' : 'from');
    if (quantize !== undefined && from === undefined) throw new BadRequest('quantize goes with "from" (create the model from files first)', 'quantize');
    const statuses: string[] = [];
    if (from !== undefined && quantize !== undefined) {
      // A GGUF of the requested type, written by minerva convert (llama.cpp's type mix).
      const source = await ctx.registry.find(from);
      await ctx.registry.replace(name, 'gguf', async (temp) => {
        await convertModel(source.path, temp, { type: quantize, name }).catch((e: unknown) => {
          throw new BadRequest(`quantize: ${(e as Error).message}`, 'quantize');
        });
      });
      statuses.push(`quantizing ${source.quantization} model to ${quantize.toUpperCase()}`);
    } else if (from !== undefined) {
      await ctx.registry.copy(from, name);
      statuses.push(`using model ${from}`);
    } else {
      const entries = Object.entries(files!).map(([file, digest]) => {
        if (!MODEL_FILE.test(file) || file.includes('..')) throw new BadRequest(`files: "${file}" is not a plain file name`, 'files');
        if (typeof digest !== 'string') throw new BadRequest(`files["${file}"] must be a digest string`, 'files');
        return { file, hex: checkDigest(digest, `files["${file}"]`) };
      });
      if (entries.length === 0) throw new BadRequest('files is empty', 'files');
      for (const e of entries) {
        if (!(await hasBlob(modelsDir, e.hex))) {
          throw new BadRequest(`files["${e.file}"]: blob sha256:${e.hex} was not uploaded (POST /api/blobs/sha256:${e.hex} first)`, 'files');
        }
        statuses.push(`using existing layer sha256:${e.hex}`);
      }
      const ggufs = entries.filter((e) => e.file.endsWith('.gguf'));
      if (ggufs.length > 1) throw new BadRequest(`files holds ${ggufs.length} .gguf files; a model is one GGUF (or a SafeTensors folder)`, 'files');
      if (ggufs.length === 1) {
        await ctx.registry.replace(name, 'gguf', (temp) => linkOrCopy(blobPath(modelsDir, ggufs[0]!.hex), temp));
      } else {
        await ctx.registry.replace(name, 'folder', async (temp) => {
          await mkdir(temp);
          for (const e of entries) await linkOrCopy(blobPath(modelsDir, e.hex), path.join(temp, e.file));
        });
      }
    }
    // The model's defaults: given ones, else (from a model) the source's.
    const base = from !== undefined ? (await ctx.registry.find(from)).defaults : undefined;
    await writeModelDefaults(modelsDir, name, { system: system ?? base?.system, parameters: parameters ?? base?.parameters });
    statuses.push('writing manifest', 'success');
    if (!stream) return { status: 'success' };
    reply.type('application/x-ndjson');
    return statuses.map((status) => JSON.stringify({ status })).join('\n') + '\n';
  });
}

/** A failed pull as an HTTP error: what the Hub said (401, 404) passed on, the rest as 502 or 400. */
function pullError(e: unknown): Error {
  if (!(e instanceof HubError)) return e as Error;
  const status = { 'bad-input': 400, 'no-match': 404, 'not-found': 404, unauthorized: 401, conflict: 409, 'disk-full': 507, offline: 503 }[e.kind as string] ?? 502;
  return Object.assign(new Error(e.message), { statusCode: status });
}
