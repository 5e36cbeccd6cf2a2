// The models a server offers: GGUF files and Hugging Face folders found in the models folder,
// described from their headers, loaded on first use, kept loaded within a memory budget (least
// recently used unloaded first) and unloaded when their keep-alive runs out.
//
// A model is named by what the folder listing shows (a GGUF file's name without ".gguf", a
// folder's name), and a request's name is only ever looked up among those entries, never joined
// onto a path: a name like "../../etc/passwd" matches nothing.
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { loadModel, type LoadModelOptions, type Model } from '../index.js';
import { formatBytes, modelBytes, NotEnoughMemoryError, resolveBackend } from '../engine/model.js';
import { GpuCapacityError } from '../backends/webgpu/webgpu-backend.js';
import { WorkerThreadError } from '../backends/cpu/worker-pool.js';
import { openModelFiles } from '../model/load.js';
import { UnsupportedTypeError } from '../model/manifest.js';
import { chatTemplateBeside, chooseChatTemplate, type ChatTemplateChoice } from '../chat/chat-template-choice.js';
import { parameterCount } from '../model/spec.js';
import { BadRequest } from './params.js';
import type { DemoModel } from './demo-model.js';
import { readModelDefaults, removeModelDefaults, writeModelDefaults, type ModelDefaults } from './model-defaults.js';
import { checkNewName, copyEntry, entryPath, removeEntry, replaceEntry } from './model-files.js';

export interface ModelEntry {
  /** The name requests use ("tinyllama"; "tinyllama:latest" is accepted too). */
  name: string;
  path: string;
  format: 'gguf' | 'safetensors';
  /** Bytes of weights on disk. */
  size: number;
  modified: Date;
  architecture: string;
  parameters: number;
  /** The most common weight type of its matrices ("Q4_0", "F16", …). */
  quantization: string;
  contextLength: number;
  /** Its files declare an embedding pooling (an embedding model such as Qwen3-Embedding). */
  embedding?: boolean;
  /** The bundled demo model, offered while the models folder has none. */
  demo?: boolean;
  /** A created model's default system prompt and parameters (model-defaults.ts). */
  defaults?: ModelDefaults;
}

export interface LoadedModel {
  entry: ModelEntry;
  model: Model;
  /** Bytes it holds: weights plus KV cache. */
  bytes: number;
  /** Of those, bytes on the GPU (all of them on the webgpu backend, else 0). */
  vram: number;
  /** When it unloads if unused (Infinity: never). */
  expiresAt: number;
  lastUsed: number;
  /** Requests using it now; a model in use is never unloaded. */
  users: number;
  /** Its backend broke (a worker thread died): dropped from the registry, disposed when its last user lets go. */
  broken?: boolean;
}

export class UnknownModelError extends Error {
  constructor(readonly model: string) {
    super(`model "${model}" not found; GET /v1/models or /api/tags lists the models in the models folder`);
    this.name = 'UnknownModelError';
  }
}

export class InsufficientMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InsufficientMemoryError';
  }
}

export class ModelInUseError extends Error {
  constructor(readonly model: string) {
    super(`model "${model}" is in use by a running request; try again when it is idle`);
    this.name = 'ModelInUseError';
  }
}

/** The models folder exists but cannot be read (not a folder, no permission, an I/O error): a 503. */
export class ModelsFolderError extends Error {
  readonly statusCode = 503;
  readonly dir: string;
  constructor(dir: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException).code;
    // (Clients see this message: the folder's path is for the log, which gets it from `dir`.)
    super(`the models folder cannot be read (${code === 'ENOTDIR' ? 'it is not a folder' : code ?? (cause as Error).message}); only models already loaded are served`, { cause });
    this.dir = dir;
    this.name = 'ModelsFolderError';
  }
}

/** A model's files exist but no longer read as a model (truncated, damaged, unreadable): a 500 naming the model. */
export class ModelFileError extends Error {
  readonly statusCode = 500;
  constructor(readonly model: string, cause: unknown) {
    super(`model "${model}" cannot be read from the models folder: ${(cause as Error).message}`, { cause });
    this.name = 'ModelFileError';
  }
}

export interface RegistryOptions {
  /** The models folder. */
  dir: string;
  /** Most bytes (weights + KV caches) of all loaded models together, in RAM. */
  maxMemory: number;
  /** The same for models on the GPU (webgpu backend). Default: no limit (WebGPU does not report a device's memory). */
  maxGpuMemory?: number;
  /** How long a model stays loaded after its last use, in ms (Infinity: forever). */
  keepAliveMs: number;
  /** How models load: backend, threads, parallel sequences, context length, queue. */
  load: LoadModelOptions;
  /** Called each time a model has loaded (metrics, the log). */
  onLoad?: (entry: ModelEntry, model: Model) => void;
  /** Told of faults the server survives (a broken model dropped, a model file gone or damaged), for the log. */
  onFault?: (message: string) => void;
  /** The chat template for every model (--chat-template); a `<model>.jinja` beside a model wins over it. */
  chatTemplate?: ChatTemplateChoice;
  /** A model listed while the folder holds none (the bundled demo). */
  demo?: DemoModel;
}

/** Ollama's "name:latest" names the same model as "name". */
export function baseName(name: string): string {
  return name.endsWith(':latest') ? name.slice(0, -':latest'.length) : name;
}

export class ModelRegistry {
  /** Described entries by path, kept while the file's size and mtime stay the same. */
  private readonly described = new Map<string, { key: string; entry: ModelEntry }>();
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly loading = new Map<string, Promise<LoadedModel>>();
  private timer: NodeJS.Timeout | undefined;
  private clock = 0;
  /** Bytes promised to models still loading, in RAM and on the GPU: two loads at once must not both take the same room. */
  private reserved = { ram: 0, gpu: 0 };
  /** What the load options' backend ("auto" included) resolves to, found once. */
  private backend: Promise<string> | undefined;

  constructor(readonly options: RegistryOptions) {}

  /** The models in the folder, from their headers (each described once until it changes). */
  async list(): Promise<ModelEntry[]> {
    let dirents;
    try {
      dirents = await readdir(this.options.dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new ModelsFolderError(this.options.dir, e);
    }
    const entries: ModelEntry[] = [];
    for (const d of dirents.sort((a, b) => a.name.localeCompare(b.name))) {
      if (d.name.startsWith('.')) continue;
      const full = path.join(this.options.dir, d.name);
      const st = await stat(full).catch(() => undefined);
      if (!st) continue;
      let name: string;
      if (st.isFile() && d.name.endsWith('.gguf')) name = d.name.slice(0, -'.gguf'.length);
      else if (st.isDirectory() && (await stat(path.join(full, 'config.json')).catch(() => undefined))?.isFile()) name = d.name;
      else continue;
      const entry = await this.describe(name, full, st.mtime, st.isDirectory() ? undefined : st.size).catch(() => undefined);
      const defaults = entry && await readModelDefaults(this.options.dir, name);
      if (entry) entries.push(defaults ? { ...entry, defaults } : entry); // unreadable files are left out of the list (asking for one is a 404, as for any unknown name; one with unsupported weight types, a 400 saying so)
    }
    const demo = this.options.demo;
    if (entries.length === 0 && demo) {
      const st = await stat(demo.path).catch(() => undefined);
      const entry = st && await this.describe(demo.name, demo.path, st.mtime, st.size).catch(() => undefined);
      if (entry) entries.push({ ...entry, demo: true });
    }
    return entries;
  }

  /** The entry a request's model name refers to. */
  async find(name: string): Promise<ModelEntry> {
    const wanted = baseName(name);
    let entries;
    try {
      entries = await this.list();
    } catch (e) {
      // The folder cannot be read: a model already loaded keeps serving from memory.
      const loaded = this.loadedNamed(wanted);
      if (e instanceof ModelsFolderError && loaded) return loaded.entry;
      throw e;
    }
    const entry = entries.find((e) => e.name === wanted);
    if (!entry) throw (await this.whyUnlisted(wanted)) ?? this.gone(wanted) ?? new UnknownModelError(name);
    return entry;
  }

  /**
   * A loaded model whose file has left the folder (removed, or no longer readable): dropped (once
   * its requests end), and said in the log. Undefined: `name` was not loaded.
   */
  private gone(name: string): undefined {
    const l = this.loadedNamed(name);
    if (!l) return undefined;
    this.options.onFault?.(`model "${name}": its file ${l.entry.path} is gone from the models folder; unloading it`);
    this.drop(l);
    return undefined;
  }

  /**
   * A generation on `l` failed with `error`. If the model's backend is broken (a cpu worker thread
   * died) it cannot compute again: it leaves the registry now, so the next request loads it afresh,
   * and is disposed once its running requests have ended.
   */
  failed(l: LoadedModel, error: unknown): void {
    if (!(error instanceof WorkerThreadError) || l.broken) return;
    this.options.onFault?.(`model "${l.entry.name}": ${error.message}; unloading it (the next request loads it again)`);
    this.drop(l);
  }

  /** Takes `l` out of the registry at once; disposes it now if idle, else when its last user releases it. */
  private drop(l: LoadedModel): void {
    l.broken = true;
    if (this.loaded.get(l.entry.path) === l) this.loaded.delete(l.entry.path);
    if (l.users === 0) l.model.dispose();
  }

  /**
   * For a name the list leaves out: if the folder holds that model and it opens but uses weight
   * types no backend computes with, the error to answer with (naming the model and the types);
   * else undefined (not there, or unreadable: unknown, as any other name).
   */
  private async whyUnlisted(name: string): Promise<BadRequest | undefined> {
    const present = new Set(await readdir(this.options.dir).catch(() => []));
    for (const file of [`${name}.gguf`, name]) {
      if (!present.has(file)) continue; // (only entries of the folder: a name cannot reach a path outside it)
      const full = path.join(this.options.dir, file);
      try {
        await (await openModelFiles(full)).close();
      } catch (e) {
        if (e instanceof UnsupportedTypeError) return new BadRequest(`model "${name}": ${e.message.replaceAll(full, file)}`, 'model');
        // A model that was in use (loaded) and now fails to open was damaged under the server
        // (truncated, overwritten): a server-side fault, said as such.
        const l = this.loadedNamed(name);
        if (l) {
          this.options.onFault?.(`model "${name}": ${(e as Error).message}; unloading it`);
          this.drop(l);
          return new ModelFileError(name, e);
        }
      }
    }
    return undefined;
  }

  /**
   * The model loaded and counted as in use until `release` is called; loads it first if needed
   * (concurrent requests for a model that is loading wait for the one load). `keepAliveMs`
   * overrides the default for this use (Ollama's keep_alive; 0 = unload when released).
   */
  async acquire(name: string, keepAliveMs = this.options.keepAliveMs, load: LoadModelOptions = {}): Promise<{ loaded: LoadedModel; release: () => void }> {
    const entry = await this.find(name);
    let loaded = this.loaded.get(entry.path);
    if (loaded && loaded.users === 0 && (loaded.entry.modified.getTime() !== entry.modified.getTime() || loaded.entry.size !== entry.size)) {
      this.unload(loaded); // the file changed on disk since it loaded: load what is there now
      loaded = undefined;
    }
    if (loaded && load.contextLength !== undefined && load.contextLength !== loaded.model.contextLength && loaded.users === 0) {
      this.unload(loaded); // another context length was asked for: reload (as Ollama does for num_ctx)
      loaded = undefined;
    }
    if (!loaded) {
      let pending = this.loading.get(entry.path);
      if (!pending) {
        pending = this.load(entry, load).finally(() => this.loading.delete(entry.path));
        this.loading.set(entry.path, pending);
      }
      loaded = await pending;
    }
    const l = loaded;
    l.users++;
    l.lastUsed = ++this.clock;
    l.expiresAt = Infinity;
    let released = false;
    return {
      loaded: l,
      release: () => {
        if (released) return;
        released = true;
        l.users--;
        if (l.broken) {
          if (l.users === 0) l.model.dispose();
          return;
        }
        if (l.users === 0) {
          l.expiresAt = keepAliveMs === Infinity ? Infinity : Date.now() + keepAliveMs;
          if (keepAliveMs <= 0) this.unload(l);
          else this.schedule();
        }
      },
    };
  }

  /** Deletes a model from the models folder (unloading it first; a model in use is refused). */
  async remove(name: string): Promise<ModelEntry> {
    const entry = await this.find(name);
    if (entry.demo) throw new BadRequest(`"${entry.name}" is the built-in demo model (listed while the models folder is empty); it cannot be deleted`, 'model');
    this.unloadIdle(entry);
    await removeEntry(entry.path);
    await removeModelDefaults(this.options.dir, entry.name);
    this.described.delete(entry.path);
    return entry;
  }

  /** Copies a model under a new name (links where possible: no gigabytes copied). */
  async copy(source: string, destination: string): Promise<void> {
    const entry = await this.find(source);
    const name = checkNewName(destination, 'destination');
    if (name === entry.name) return;
    await this.replace(name, entry.format === 'gguf' ? 'gguf' : 'folder', (temp) => copyEntry(entry.path, temp));
    await writeModelDefaults(this.options.dir, name, { system: entry.defaults?.system, parameters: entry.defaults?.parameters });
  }

  /**
   * Makes (or replaces) the model `name` with what `make` writes at a temporary path, then checks
   * it opens as a model; one that does not is removed and the error passed on.
   */
  async replace(name: string, kind: 'gguf' | 'folder', make: (temp: string) => Promise<void>): Promise<void> {
    const dest = entryPath(this.options.dir, name, kind);
    const other = entryPath(this.options.dir, name, kind === 'gguf' ? 'folder' : 'gguf');
    const existing = (await this.list()).find((e) => e.name === name);
    if (existing) this.unloadIdle(existing);
    await mkdir(this.options.dir, { recursive: true });
    await replaceEntry(dest, async (temp) => {
      await make(temp);
      try {
        await (await openModelFiles(temp)).close();
      } catch (e) { // (a FormatError naming the file and what is wrong: said of the name asked for)
        throw new BadRequest(`model "${name}": ${(e as Error).message.replaceAll(temp, path.basename(dest))}`, 'model');
      }
    });
    if (existing && existing.path === other) await removeEntry(other);
    this.described.delete(dest);
  }

  /** Unloads the model at `entry` if loaded; refuses when a request is using it. */
  private unloadIdle(entry: ModelEntry): void {
    const l = this.loaded.get(entry.path);
    if (l && l.users > 0) throw new ModelInUseError(entry.name);
    if (l) this.unload(l);
  }

  /** Loaded models, most recently used first. */
  running(): LoadedModel[] {
    return [...this.loaded.values()].sort((a, b) => b.lastUsed - a.lastUsed);
  }

  /** Bytes held by loaded models. */
  memoryInUse(): number {
    let n = 0;
    for (const l of this.loaded.values()) n += l.bytes;
    return n;
  }

  dispose(): void {
    clearTimeout(this.timer);
    for (const l of [...this.loaded.values()]) this.unload(l);
  }

  /**
   * The chat template a model chats with: the loaded model's, else worked out from its files
   * (its tokenizer's template, a .jinja beside it, --chat-template, or the default).
   */
  async chatTemplate(entry: ModelEntry): Promise<ChatTemplateChoice> {
    const loaded = this.loaded.get(entry.path);
    if (loaded) return loaded.model.chatTemplate;
    const override = (await chatTemplateBeside(entry.path)) ?? this.options.chatTemplate;
    if (override) return override;
    const files = await openModelFiles(entry.path);
    try {
      return chooseChatTemplate(await files.loadTokenizer());
    } finally {
      await files.close();
    }
  }

  /** The backend models load on: "webgpu", "cpu" or "reference" ("auto" resolved). */
  resolvedBackend(): Promise<string> {
    this.backend ??= resolveBackend(this.options.load.backend);
    return this.backend;
  }

  private async load(entry: ModelEntry, overrides: LoadModelOptions): Promise<LoadedModel> {
    const opts = { ...this.options.load, ...overrides };
    // A template file beside the model, else the server's --chat-template, else the model's own.
    // (Read before the memory check: nothing may be awaited between the check and the reservation.)
    const chatTemplate = (await chatTemplateBeside(entry.path)) ?? this.options.chatTemplate;
    if (chatTemplate) opts.chatTemplate = chatTemplate;
    const need = await this.estimateBytes(entry, opts);
    // A model on the GPU is budgeted against --max-gpu-memory, else against --max-memory.
    const pool = (overrides.backend ? await resolveBackend(overrides.backend) : await this.resolvedBackend()) === 'webgpu' ? 'gpu' : 'ram';
    const limit = pool === 'gpu' ? this.options.maxGpuMemory ?? Infinity : this.options.maxMemory;
    const flag = pool === 'gpu' ? '--max-gpu-memory' : '--max-memory';
    if (need > limit) {
      throw new InsufficientMemoryError(`model "${entry.name}" needs ${formatBytes(need)} (weights, KV cache and activations) and the ${pool === 'gpu' ? 'GPU ' : ''}memory limit is ${formatBytes(limit)} (${flag})`);
    }
    // Unload idle models of the same pool, least recently used first, until this one fits.
    const inPool = (l: LoadedModel) => (pool === 'gpu') === (l.vram > 0);
    const taken = () => [...this.loaded.values()].filter(inPool).reduce((n, l) => n + l.bytes, 0) + this.reserved[pool];
    let unloaded = 0;
    for (const l of [...this.loaded.values()].filter(inPool).sort((a, b) => a.lastUsed - b.lastUsed)) {
      if (taken() + need <= limit) break;
      if (l.users === 0) { this.unload(l); unloaded += l.bytes; }
    }
    if (taken() + need > limit) {
      throw new InsufficientMemoryError(`model "${entry.name}" needs ${formatBytes(need)} and the models in use or loading hold ${formatBytes(taken())} of the ${formatBytes(limit)} ${pool === 'gpu' ? 'GPU memory ' : ''}limit; try again when they are idle`);
    }
    this.reserved[pool] += need;
    // The system's free memory, counting what was just unloaded (its wasm memory goes back to the
    // system only when collected): a model that would not fit is refused, not left to the OOM killer.
    if (pool === 'ram') opts.freeMemory = (this.options.load.freeMemory ?? process.availableMemory()) + unloaded;
    let model: Model;
    try {
      model = await loadModel(entry.path, pool === 'gpu' ? { ...opts, gpuFallback: false } : opts);
    } catch (e) {
      if (e instanceof NotEnoughMemoryError) throw new InsufficientMemoryError(`model "${entry.name}": ${e.message}`);
      if (!(pool === 'gpu' && e instanceof GpuCapacityError)) throw e;
      // The GPU could not hold it (WebGPU does not say how much memory it has, so this is found by
      // trying): unload the idle models on it and try again; with --backend auto the cpu is the last resort.
      for (const l of [...this.loaded.values()].filter(inPool)) if (l.users === 0) this.unload(l);
      model = await loadModel(entry.path, opts).catch((e2: unknown) => {
        throw e2 instanceof GpuCapacityError ? new InsufficientMemoryError(`model "${entry.name}" does not fit on the GPU: ${e2.message}`) : e2;
      });
    } finally {
      this.reserved[pool] -= need;
    }
    this.options.onLoad?.(entry, model);
    const vram = model.info().backend === 'webgpu' ? need : 0;
    const loaded: LoadedModel = { entry, model, bytes: need, vram, expiresAt: Infinity, lastUsed: ++this.clock, users: 0 };
    this.loaded.set(entry.path, loaded);
    return loaded;
  }

  /** The loaded model of that name, if any. */
  private loadedNamed(name: string): LoadedModel | undefined {
    for (const l of this.loaded.values()) if (l.entry.name === name) return l;
    return undefined;
  }

  private unload(l: LoadedModel): void {
    if (this.loaded.get(l.entry.path) !== l) return;
    this.loaded.delete(l.entry.path);
    l.model.dispose();
  }

  /** Wakes at the next expiry and unloads what has expired. */
  private schedule(): void {
    clearTimeout(this.timer);
    const next = Math.min(...[...this.loaded.values()].filter((l) => l.users === 0).map((l) => l.expiresAt));
    if (!Number.isFinite(next)) return;
    this.timer = setTimeout(() => {
      const now = Date.now();
      for (const l of [...this.loaded.values()]) if (l.users === 0 && l.expiresAt <= now) this.unload(l);
      this.schedule();
    }, Math.min(MAX_TIMEOUT_MS, Math.max(0, next - Date.now())));
    this.timer.unref();
  }

  /** Weights (as kept after any load-time quantization) plus the KV caches. */
  private async estimateBytes(entry: ModelEntry, opts: LoadModelOptions): Promise<number> {
    const files = await openModelFiles(entry.path);
    try {
      return modelBytes(files, opts);
    } finally {
      await files.close();
    }
  }

  private async describe(name: string, full: string, mtime: Date, fileSize: number | undefined): Promise<ModelEntry> {
    const key = `${mtime.getTime()}:${fileSize ?? 'dir'}`;
    const cached = this.described.get(full);
    if (cached && cached.key === key) return cached.entry;
    const files = await openModelFiles(full);
    try {
      const counts = new Map<string, number>();
      let bytes = 0;
      for (const t of files.tensors.values()) {
        bytes += t.byteLength;
        if (t.shape.length > 1) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + t.byteLength);
      }
      const quantization = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'F32';
      // (The tokenizer is not read: a tokenizer.json alone can take longer to parse than every header.)
      const entry: ModelEntry = {
        name, path: full, format: files.format === 'gguf' ? 'gguf' : 'safetensors', size: fileSize ?? bytes, modified: mtime,
        architecture: files.spec.modelType, parameters: parameterCount(files.spec), quantization,
        contextLength: files.spec.contextLength,
        ...(files.spec.pooling ? { embedding: true } : {}),
      };
      this.described.set(full, { key, entry });
      return entry;
    } finally {
      await files.close();
    }
  }
}

/** setTimeout's longest delay; a longer one fires at once (keep_alive "720h" would spin). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
