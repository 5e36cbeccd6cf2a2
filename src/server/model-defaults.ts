// What a model made with POST /api/create carries besides its weights: a default system prompt
// and default parameters (Ollama's Modelfile SYSTEM and PARAMETER), kept in
// <models>/.settings/<name>.json and applied to every request that does not set them itself.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { GenerateOptions } from '../index.js';
import { ollamaOptions, type GenerateLoad } from './ollama-options.js';
import { BadRequest } from './params.js';

export interface ModelDefaults {
  system?: string;
  /** As given (shown by /api/show). */
  parameters?: Record<string, unknown>;
  options: GenerateOptions;
  load: GenerateLoad;
}

const SETTINGS_DIR = '.settings';

/** Checks `parameters` as Ollama options (a bad one is a BadRequest naming it); unknown names are refused. */
export function checkParameters(parameters: Record<string, unknown>): void {
  const known = new Set(['num_predict', 'num_ctx', 'seed', 'temperature', 'top_k', 'top_p', 'min_p', 'stop', 'repeat_penalty',
    'repeat_last_n', 'presence_penalty', 'frequency_penalty']);
  for (const k of Object.keys(parameters)) {
    if (!known.has(k)) throw new BadRequest(`parameters.${k} is not a parameter Minerva knows (${[...known].join(', ')})`, 'parameters');
  }
  ollamaOptions(parameters, 'parameters');
}

export async function writeModelDefaults(modelsDir: string, name: string, d: { system?: string; parameters?: Record<string, unknown> }): Promise<void> {
  const file = path.join(modelsDir, SETTINGS_DIR, `${name}.json`);
  if (d.system === undefined && d.parameters === undefined) {
    await rm(file, { force: true });
    return;
  }
  await mkdir(path.dirname(file), { recursive: true });
  // Written beside and renamed over: a stop midway leaves the old file or the new, never half of one.
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, JSON.stringify({ system: d.system, parameters: d.parameters }, null, 2) + '\n');
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
}

export async function removeModelDefaults(modelsDir: string, name: string): Promise<void> {
  await rm(path.join(modelsDir, SETTINGS_DIR, `${name}.json`), { force: true });
}

/** The defaults of model `name`, or undefined (none, or a settings file that no longer parses: ignored). */
export async function readModelDefaults(modelsDir: string, name: string): Promise<ModelDefaults | undefined> {
  const text = await readFile(path.join(modelsDir, SETTINGS_DIR, `${name}.json`), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as { system?: unknown; parameters?: unknown };
    const parameters = typeof v.parameters === 'object' && v.parameters !== null ? v.parameters as Record<string, unknown> : undefined;
    const { options, load } = ollamaOptions(parameters ?? {}, 'parameters');
    return { system: typeof v.system === 'string' ? v.system : undefined, parameters, options, load };
  } catch {
    return undefined;
  }
}
