// A Tokenizer from a Hugging Face model folder: tokenizer.json (required), tokenizer_config.json
// (special tokens, add_bos_token, chat template), generation_config.json (end-of-generation ids)
// and chat_template.jinja (where newer transformers versions keep the template).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError } from '../formats/tensor.js';
import { HFTokenizer, type AddedTokenJSON, type TokenizerJSON } from './hf-tokenizer.js';
import type { Tokenizer } from './tokenizer.js';

type JSONObject = Record<string, unknown>;

function isObject(v: unknown): v is JSONObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The file's text, or undefined if it does not exist. */
async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FormatError(file, `cannot be read: ${(e as Error).message}`);
  }
}

function parseJSONObject(text: string, file: string): JSONObject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FormatError(file, `is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(value)) throw new FormatError(file, 'must hold a JSON object');
  return value;
}

export async function readJSONObject(file: string): Promise<JSONObject | undefined> {
  const text = await readOptional(file);
  return text === undefined ? undefined : parseJSONObject(text, file);
}

/** Tokenizer models @huggingface/tokenizers runs. */
const MODEL_TYPES = ['BPE', 'WordPiece', 'Unigram'];

/** Checks the parts of tokenizer.json this engine relies on; the library checks the rest. */
function checkTokenizerJSON(doc: JSONObject, file: string): TokenizerJSON {
  if (!isObject(doc.model)) throw new FormatError(file, '"model" must be an object');
  const { type, vocab } = doc.model;
  if (type !== undefined && !MODEL_TYPES.includes(type as string)) {
    throw new FormatError(file, `model type ${JSON.stringify(type)} is not supported (${MODEL_TYPES.join(', ')})`);
  }
  if (!isObject(vocab) && !Array.isArray(vocab)) throw new FormatError(file, '"model.vocab" must be an object or an array');
  const addedRaw = doc.added_tokens ?? [];
  if (!Array.isArray(addedRaw)) throw new FormatError(file, '"added_tokens" must be an array');
  const added: AddedTokenJSON[] = addedRaw.map((t: unknown, i) => {
    if (!isObject(t) || !Number.isInteger(t.id) || (t.id as number) < 0 || typeof t.content !== 'string') {
      throw new FormatError(file, `added_tokens[${i}] must have an integer "id" ≥ 0 and a string "content"`);
    }
    return { ...t, id: t.id as number, content: t.content, special: t.special === true };
  });
  const part = (key: string): object | null => {
    const v = doc[key];
    if (v === undefined || v === null) return null;
    if (!isObject(v)) throw new FormatError(file, `"${key}" must be an object or null`);
    return v;
  };
  return {
    ...doc,
    added_tokens: added,
    normalizer: part('normalizer'),
    pre_tokenizer: part('pre_tokenizer'),
    post_processor: part('post_processor'),
    decoder: part('decoder'),
    model: doc.model as TokenizerJSON['model'],
  };
}

/** Looks a token's text up in tokenizer.json (added tokens first, then the model's vocabulary). */
function tokenId(json: TokenizerJSON, text: string): number | undefined {
  const added = json.added_tokens.find((t) => t.content === text);
  if (added) return added.id;
  const vocab = json.model.vocab;
  if (Array.isArray(vocab)) {
    // Unigram: [[piece, score], ...] by id.
    const id = vocab.findIndex((entry) => Array.isArray(entry) && entry[0] === text);
    return id >= 0 ? id : undefined;
  }
  if (isObject(vocab) && Object.hasOwn(vocab, text)) {
    const id = vocab[text];
    return typeof id === 'number' ? id : undefined;
  }
  return undefined;
}

/** bos_token / eos_token: a string, an {content} object (AddedToken), or null. */
export function specialTokenText(config: JSONObject, key: string, file: string): string | undefined {
  const v = config[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  throw new FormatError(file, `"${key}" must be a string or an object with a string "content"`);
}

export function optionalBool(config: JSONObject, key: string, file: string): boolean | undefined {
  const v = config[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new FormatError(file, `"${key}" must be true or false`);
  return v;
}

/**
 * chat_template: a string, or a list of {name, template} of which "default" is the chat one and
 * "tool_use" the one for requests with tools (Hermes 2 Pro, Command R).
 */
function chatTemplatesOf(config: JSONObject, file: string): { chat?: string; toolUse?: string } {
  const v = config.chat_template;
  if (v === undefined || v === null) return {};
  if (typeof v === 'string') return { chat: v };
  if (Array.isArray(v)) {
    const named = new Map<string, string>();
    for (const [i, entry] of v.entries()) {
      if (!isObject(entry) || typeof entry.name !== 'string' || typeof entry.template !== 'string') {
        throw new FormatError(file, `chat_template[${i}] must have a string "name" and "template"`);
      }
      named.set(entry.name, entry.template);
    }
    return { chat: named.get('default'), toolUse: named.get('tool_use') };
  }
  throw new FormatError(file, '"chat_template" must be a string or a list of {name, template}');
}

/** A token id field of generation_config.json: an integer or a list of them. */
function idList(config: JSONObject, key: string, file: string): number[] {
  const v = config[key];
  if (v === undefined || v === null) return [];
  const list = Array.isArray(v) ? v : [v];
  for (const id of list) {
    if (!Number.isInteger(id) || id < 0) throw new FormatError(file, `"${key}" must be a token id or a list of token ids`);
  }
  return list as number[];
}

export async function loadHFTokenizer(dir: string): Promise<Tokenizer> {
  const tokenizerFile = path.join(dir, 'tokenizer.json');
  const tokenizerText = await readOptional(tokenizerFile);
  if (tokenizerText === undefined) {
    throw new FormatError(tokenizerFile, `missing: the folder ${dir} has no tokenizer.json`);
  }
  const json = checkTokenizerJSON(parseJSONObject(tokenizerText, tokenizerFile), tokenizerFile);

  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = (await readJSONObject(configFile)) ?? {};
  const generationFile = path.join(dir, 'generation_config.json');
  const generation = (await readJSONObject(generationFile)) ?? {};
  // transformers falls back on config.json's ids when there is no generation_config.json.
  const modelConfigFile = path.join(dir, 'config.json');
  const modelConfig = (await readJSONObject(modelConfigFile)) ?? {};

  const resolve = (key: string): { text: string; id: number } | undefined => {
    const text = specialTokenText(config, key, configFile);
    if (text === undefined) return undefined;
    const id = tokenId(json, text);
    if (id === undefined) throw new FormatError(configFile, `${key} "${text}" is not in ${tokenizerFile}`);
    return { text, id };
  };
  const bos = resolve('bos_token');
  const eos = resolve('eos_token');
  const bosId = bos?.id ?? idList(generation, 'bos_token_id', generationFile)[0]
    ?? idList(modelConfig, 'bos_token_id', modelConfigFile)[0];
  const eosIds = [...new Set([
    ...(eos ? [eos.id] : []),
    ...idList(generation, 'eos_token_id', generationFile),
    ...idList(modelConfig, 'eos_token_id', modelConfigFile),
  ])];

  const templates = chatTemplatesOf(config, configFile);
  const chatTemplate = templates.chat ?? (await readOptional(path.join(dir, 'chat_template.jinja')));

  return new HFTokenizer({
    json,
    source: dir,
    kind: 'tokenizer.json',
    bosId,
    eosIds,
    addBos: optionalBool(config, 'add_bos_token', configFile),
    addEos: optionalBool(config, 'add_eos_token', configFile),
    chatTemplate,
    toolUseTemplate: templates.toolUse,
    bosText: bos?.text,
    eosText: eos?.text,
  });
}
