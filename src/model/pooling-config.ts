// The embedding pooling a model's files declare → ModelSpec.pooling.
//
// GGUF: <arch>.pooling_type, llama.cpp's enum llama_pooling_type (gguf-py PoolingType): 0 none,
// 1 mean, 2 cls, 3 last, 4 rank (a reranker's classification head). llama.cpp's server scales the
// pooled vector to unit length unless asked not to, so a GGUF's pooling normalises.
//
// Hugging Face: sentence-transformers' modules.json lists the pipeline after the transformer —
// a Pooling module (its folder's config.json sets one pooling_mode_* flag) and optionally a
// Normalize module. Modules that change the vector in other ways (Dense projections, …) are
// refused here rather than answered with embeddings the model's authors would not recognise.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, ConfigReader } from './config-reader.js';
import type { Pooling, PoolingType } from './spec.js';

/** llama.cpp's pooling enum values that an embedding is read with. */
export const GGUF_POOLING_TYPES: Readonly<Record<PoolingType, number>> = { mean: 1, cls: 2, last: 3 };
const GGUF_POOLING_NONE = 0;
const GGUF_POOLING_RANK = 4;

/**
 * `<arch>.pooling_type` of a GGUF file. None (0) is what a generative model's file says when it
 * says anything: like an absent key it leaves the choice to the engine. Rank (4) scores a pair of
 * texts with a classification head, not an embedding: also undefined here.
 */
export function poolingFromGGUF(g: ConfigReader, arch: string): Pooling | undefined {
  const key = `${arch}.pooling_type`;
  if (!g.has(key)) return undefined;
  const v = g.number(key, undefined, { integer: true });
  if (v === GGUF_POOLING_NONE || v === GGUF_POOLING_RANK) return undefined;
  const type = (Object.keys(GGUF_POOLING_TYPES) as PoolingType[]).find((t) => GGUF_POOLING_TYPES[t] === v);
  if (!type) g.fail(`"${key}" is ${v}; known values are 0 (none), 1 (mean), 2 (cls), 3 (last), 4 (rank)`);
  return { type, normalize: true };
}

/** sentence-transformers' Pooling config flags, and the pooling each means. */
const ST_MODES: readonly [flag: string, type: PoolingType | undefined][] = [
  ['pooling_mode_mean_tokens', 'mean'],
  ['pooling_mode_cls_token', 'cls'],
  ['pooling_mode_lasttoken', 'last'],
  ['pooling_mode_max_tokens', undefined],
  ['pooling_mode_mean_sqrt_len_tokens', undefined],
  ['pooling_mode_weightedmean_tokens', undefined],
];

/** A module of modules.json, by the last part of its class name. */
type ModuleKind = 'Transformer' | 'Pooling' | 'Normalize';
const MODULE_KINDS: readonly ModuleKind[] = ['Transformer', 'Pooling', 'Normalize'];

/**
 * The pooling declared by sentence-transformers files, parsed.
 * @param modules modules.json's content
 * @param poolingConfig the Pooling module's config.json, read by the caller from the folder modules.json names
 * @returns undefined when modules.json has no Pooling module
 */
export function poolingFromSentenceTransformers(
  modules: unknown, modulesFile: string, poolingConfig: (folder: string) => { raw: unknown; file: string },
): Pooling | undefined {
  if (!Array.isArray(modules)) throw new ConfigError(modulesFile, 'expected a JSON array of modules');
  let pooling: Pooling | undefined;
  for (const [i, m] of modules.entries()) {
    const r = ConfigReader.fromObject(`${modulesFile} [${i}]`, m);
    const type = r.string('type');
    const kind = MODULE_KINDS.find((k) => type === k || type.endsWith(`.${k}`));
    if (!kind) {
      r.fail(`module "${type}" is not supported: an embedding passes only through Transformer, Pooling and Normalize modules here`);
    }
    if (kind === 'Pooling') {
      if (pooling) r.fail('a second Pooling module is not supported');
      const { raw, file } = poolingConfig(r.string('path'));
      pooling = { type: stPoolingType(ConfigReader.fromObject(file, raw)), normalize: false };
    } else if (kind === 'Normalize') {
      if (!pooling) return r.fail('a Normalize module before the Pooling module is not supported');
      pooling.normalize = true;
    } else if (i !== 0) {
      r.fail('the Transformer module must come first');
    }
  }
  return pooling;
}

function stPoolingType(c: ConfigReader): PoolingType {
  const on = ST_MODES.filter(([flag]) => c.boolean(flag, false));
  const string = c.has('pooling_mode') ? c.string('pooling_mode') : undefined;
  if (on.length === 0 && string === undefined) c.fail(`no pooling mode is set (one of ${ST_MODES.map(([f]) => f).join(', ')})`);
  if (on.length > 1) c.fail(`several pooling modes at once (${on.map(([f]) => f).join(', ')}) are not supported`);
  if (on.length === 1) {
    const [flag, type] = on[0]!;
    if (!type) c.fail(`"${flag}" is not supported (supported: mean, cls, lasttoken pooling)`);
    return type;
  }
  const named: Record<string, PoolingType> = { mean: 'mean', cls: 'cls', lasttoken: 'last' };
  const type = named[string!];
  if (!type) c.fail(`"pooling_mode" "${string}" is not supported (supported: mean, cls, lasttoken)`);
  return type;
}

/**
 * Reads a Hugging Face folder's sentence-transformers pooling: undefined when there is no
 * modules.json (a plain transformers model) or it has no Pooling module.
 */
export async function readSentenceTransformersPooling(dir: string, dim: number): Promise<Pooling | undefined> {
  const modulesFile = path.join(dir, 'modules.json');
  const modules = await readJSONIfPresent(modulesFile);
  if (modules === undefined) return undefined;
  // The Pooling module's folder is read before parsing, so the parser stays synchronous.
  const configs = new Map<string, { raw: unknown; file: string }>();
  if (Array.isArray(modules)) {
    for (const m of modules) {
      const { type, path: folder } = (m ?? {}) as { type?: unknown; path?: unknown };
      if (typeof type === 'string' && /(^|\.)Pooling$/.test(type) && typeof folder === 'string') {
        const file = path.join(dir, folder, 'config.json');
        if (path.relative(dir, file).startsWith('..')) throw new ConfigError(modulesFile, `module path "${folder}" leaves the model folder`);
        const raw = await readJSONIfPresent(file);
        if (raw === undefined) throw new ConfigError(file, 'missing (modules.json names this Pooling module\'s folder)');
        configs.set(folder, { raw, file });
      }
    }
  }
  const pooling = poolingFromSentenceTransformers(modules, modulesFile, (folder) => configs.get(folder)!);
  if (pooling) {
    const { raw, file } = [...configs.values()][0]!;
    const c = ConfigReader.fromObject(file, raw);
    if (c.has('word_embedding_dimension') && c.count('word_embedding_dimension') !== dim) {
      c.fail(`"word_embedding_dimension" is ${c.count('word_embedding_dimension')}, but the model's hidden size is ${dim}`);
    }
  }
  return pooling;
}

async function readJSONIfPresent(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(file, `unreadable: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(file, `not valid JSON: ${(e as Error).message}`);
  }
}
