// What a tokenizer is, without building it (building a 128K-token BPE takes a second; `minerva
// info` must answer from headers at once).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError } from '../formats/tensor.js';
import type { Tokenizer } from './tokenizer.js';

export interface TokenizerSummary {
  /** "tokenizer.json", "gguf", "llama2c", or "none". */
  kind: string;
  /** e.g. "BPE", "llama", "gpt2". */
  model: string;
  vocabSize: number;
  chatTemplate: boolean;
}

export function summarizeTokenizer(t: Tokenizer): TokenizerSummary {
  return { kind: t.kind, model: t.kind, vocabSize: t.vocabSize, chatTemplate: t.chatTemplate !== undefined };
}

export function describeGGUFTokenizer(meta: ReadonlyMap<string, unknown>): TokenizerSummary {
  const tokens = meta.get('tokenizer.ggml.tokens');
  const model = meta.get('tokenizer.ggml.model');
  return {
    kind: 'gguf',
    model: typeof model === 'string' ? model : 'none',
    vocabSize: Array.isArray(tokens) ? tokens.length : 0,
    chatTemplate: typeof meta.get('tokenizer.chat_template') === 'string',
  };
}

export async function describeHFTokenizer(dir: string): Promise<TokenizerSummary> {
  const file = path.join(dir, 'tokenizer.json');
  let json: { model?: { type?: unknown; vocab?: unknown }; added_tokens?: { id?: unknown }[] };
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new FormatError(file, missing ? `missing: the folder ${dir} has no tokenizer.json` : `not valid JSON: ${(e as Error).message}`);
  }
  let maxId = -1;
  const vocab = json.model?.vocab;
  if (Array.isArray(vocab)) maxId = vocab.length - 1; // Unigram: [piece, score] pairs
  else if (vocab && typeof vocab === 'object') for (const id of Object.values(vocab)) if (typeof id === 'number') maxId = Math.max(maxId, id);
  for (const t of Array.isArray(json.added_tokens) ? json.added_tokens : []) if (typeof t.id === 'number') maxId = Math.max(maxId, t.id);
  let chatTemplate = false;
  try {
    const config = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: unknown };
    chatTemplate = config.chat_template !== undefined && config.chat_template !== null;
  } catch {
    // no or unreadable tokenizer_config.json: loading the model reports it
  }
  if (!chatTemplate) {
    chatTemplate = await readFile(path.join(dir, 'chat_template.jinja')).then(() => true, () => false);
  }
  return { kind: 'tokenizer.json', model: typeof json.model?.type === 'string' ? json.model.type : 'unknown', vocabSize: maxId + 1, chatTemplate };
}
