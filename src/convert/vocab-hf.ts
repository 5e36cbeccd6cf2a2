// The GGUF vocabulary of a Hugging Face folder, as llama.cpp's converter builds it:
//  - tokenizer.model (SentencePiece) when present: its pieces, scores and types, then the added
//    tokens of tokenizer_config.json, padded to the model's vocabulary ("llama");
//  - else tokenizer.json: a BPE with byte fallback (Llama 2's, Mistral's, TinyLlama's) as a
//    SentencePiece vocabulary ("llama"), or a byte-level BPE (Llama 3's, Qwen2's) with its merges
//    and the name of its pre-tokenizer ("gpt2"). Any other kind is refused.
// Special tokens, add-BOS and the chat template are the ones Minerva's own loader reads from the
// folder (the built Tokenizer), so the converted file behaves as the folder does.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FormatError } from '../formats/tensor.js';
import { optionalBool, readJSONObject, specialTokenText } from '../tokenizer/load-hf.js';
import { parseSentencePieceModel } from '../tokenizer/sentencepiece-model.js';
import { SPM_SPACE } from '../tokenizer/spm-json.js';
import { splitMerge } from '../tokenizer/byte-level-json.js';
import { TokenType, isBytePiece } from '../tokenizer/token-types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { GGUFVocab } from './gguf-vocab.js';
import { preTokenizerName } from './pre-tokenizer-name.js';

type JSONObject = Record<string, unknown>;
const isObject = (v: unknown): v is JSONObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** SentencePiece's model_type for BPE: the only kind llama.cpp's "llama" tokenizer runs. */
const SPM_BPE = 2;

/** Added tokens llama.cpp marks CONTROL although the file does not call them special (does_token_look_special). */
export function looksSpecial(text: string): boolean {
  return ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(text)
    || (text.startsWith('<|') && text.endsWith('|>'))
    || (text.startsWith('<｜') && text.endsWith('｜>'))
    || (text.startsWith('<unused') && text.endsWith('>'));
}

interface AddedToken { id: number; content: string; special: boolean }

/** tokenizer.json's added_tokens (already checked by Minerva's loader, which built the model's tokenizer). */
function addedTokens(json: JSONObject): AddedToken[] {
  const list = Array.isArray(json.added_tokens) ? json.added_tokens : [];
  return list.filter(isObject).map((t) => ({ id: t.id as number, content: t.content as string, special: t.special === true }));
}

/** A token's id by its text: added tokens first, then the model's vocabulary. */
function idOf(json: JSONObject, text: string): number | undefined {
  const added = addedTokens(json).find((t) => t.content === text);
  if (added) return added.id;
  const vocab = isObject(json.model) ? json.model.vocab : undefined;
  return isObject(vocab) && typeof vocab[text] === 'number' ? vocab[text] : undefined;
}

export async function vocabFromHFFolder(dir: string, tokenizer: Tokenizer, vocabSize: number): Promise<GGUFVocab> {
  const jsonFile = path.join(dir, 'tokenizer.json');
  const json = await readJSONObject(jsonFile);
  if (!json) throw new FormatError(jsonFile, `missing: the folder ${dir} has no tokenizer.json`);
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = (await readJSONObject(configFile)) ?? {};

  let spm: Buffer | undefined;
  try {
    spm = await readFile(path.join(dir, 'tokenizer.model'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new FormatError(path.join(dir, 'tokenizer.model'), `cannot be read: ${(e as Error).message}`);
  }
  const base = spm ? fromSentencePiece(spm, path.join(dir, 'tokenizer.model'), config, configFile, vocabSize)
    : fromTokenizerJSON(json, jsonFile);

  // Special tokens as Minerva's loader resolved them; unk and pad by their text in tokenizer_config.json.
  const byText = (key: string): number | undefined => {
    const text = specialTokenText(config, key, configFile);
    return text === undefined ? undefined : idOf(json, text);
  };
  const v: GGUFVocab = {
    ...base,
    bosId: tokenizer.bosId,
    eosId: tokenizer.eosIds[0],
    unkId: byText('unk_token') ?? base.unkId,
    padId: byText('pad_token'),
    addBos: tokenizer.addBos,
    addEos: optionalBool(config, 'add_eos_token', configFile) ?? false,
    chatTemplate: tokenizer.chatTemplate,
  };
  // The special ids are control tokens (LlamaHfVocab marks them so; the unknown token stays UNKNOWN).
  for (const id of [v.bosId, v.eosId, v.padId]) {
    if (id !== undefined && id < v.types.length && v.types[id] === TokenType.normal) v.types[id] = TokenType.control;
  }
  return v;
}

/** tokenizer.model's pieces, then tokenizer_config.json's added_tokens_decoder over them (_create_vocab_sentencepiece). */
function fromSentencePiece(bytes: Uint8Array, file: string, config: JSONObject, configFile: string, vocabSize: number): GGUFVocab {
  const sp = parseSentencePieceModel(bytes, file);
  if (sp.modelType !== SPM_BPE) {
    throw new FormatError(file, `SentencePiece model type ${sp.modelType} is not BPE (2): llama.cpp's "llama" vocabulary runs BPE models only`);
  }
  if (sp.pieces.length > vocabSize) {
    throw new FormatError(file, `has ${sp.pieces.length} pieces but the model's embedding only ${vocabSize} rows`);
  }
  // Every id the embedding has: unused padding first, then the model's pieces over it.
  const tokens = Array.from({ length: vocabSize }, (_, id) => `[PAD${id}]`);
  const scores = new Array<number>(vocabSize).fill(-10000);
  const types = new Array<number>(vocabSize).fill(TokenType.unused);
  sp.pieces.forEach((piece, id) => { tokens[id] = piece; scores[id] = sp.scores[id]!; types[id] = sp.types[id]!; });
  const decoder = config.added_tokens_decoder;
  if (decoder !== undefined && decoder !== null) {
    if (!isObject(decoder)) throw new FormatError(configFile, '"added_tokens_decoder" must be an object of id → token');
    for (const [key, t] of Object.entries(decoder)) {
      const id = Number(key);
      if (!Number.isInteger(id) || id < 0 || !isObject(t) || typeof t.content !== 'string') {
        throw new FormatError(configFile, `added_tokens_decoder["${key}"] must map an id to an object with a string "content"`);
      }
      if (id >= vocabSize) throw new FormatError(configFile, `added_tokens_decoder["${key}"] is outside the model's ${vocabSize} tokens`);
      const special = t.special === true || looksSpecial(t.content);
      // User-defined pieces are matched in the raw text, where spaces are still spaces.
      tokens[id] = special ? t.content : t.content.replaceAll(SPM_SPACE, ' ');
      types[id] = special ? TokenType.control : TokenType.userDefined;
      scores[id] = -1000;
    }
  }
  const unkId = sp.types.indexOf(TokenType.unknown);
  return {
    model: 'llama', pre: 'default', tokens, scores, types,
    unkId: unkId >= 0 ? unkId : undefined, addSpacePrefix: sp.addDummyPrefix,
  };
}

/** A merge as "left right", from either of tokenizer.json's forms ("a b" or ["a", "b"]). */
function mergeText(m: unknown, i: number, file: string): string {
  if (typeof m === 'string' && splitMerge(m)) return m;
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return `${m[0]} ${m[1]}`;
  throw new FormatError(file, `model.merges[${i}] is neither "left right" nor ["left", "right"]`);
}

function fromTokenizerJSON(json: JSONObject, file: string): GGUFVocab {
  const model = isObject(json.model) ? json.model : {};
  const vocab = model.vocab;
  if (model.type !== 'BPE' || !isObject(vocab)) {
    throw new FormatError(file, `model type ${JSON.stringify(model.type)} has no GGUF vocabulary form here `
      + '(supported: BPE with byte fallback → "llama", byte-level BPE → "gpt2")');
  }
  const added = addedTokens(json);
  let count = 0;
  for (const id of Object.values(vocab)) if (typeof id === 'number') count = Math.max(count, id + 1);
  for (const t of added) count = Math.max(count, t.id + 1);
  const tokens: string[] = Array.from({ length: count }, (_, id) => `[PAD${id}]`);
  const types: number[] = new Array<number>(count).fill(TokenType.unused);
  for (const [piece, id] of Object.entries(vocab)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) throw new FormatError(file, `model.vocab["${piece}"] is not a token id`);
    tokens[id] = piece;
    types[id] = TokenType.normal;
  }
  const merges = Array.isArray(model.merges) ? model.merges.map((m, i) => mergeText(m, i, file)) : [];
  return model.byte_fallback === true
    ? sentencePieceFromJSON(json, file, tokens, types, added, merges)
    : byteLevelFromJSON(json, file, tokens, types, added, merges);
}

/**
 * A BPE with byte fallback made from a SentencePiece model (transformers' LlamaConverter). Its
 * merges list every split of every piece, ordered by the piece's SentencePiece score, so giving
 * each piece the rank of its best merge as a (negated) score makes llama.cpp's SentencePiece
 * tokenizer (join the best-scoring adjacent pair whose join is a piece) merge as the BPE does.
 * (llama.cpp's own LlamaHfVocab writes -1000 for every piece, which loses that order.)
 */
function sentencePieceFromJSON(
  json: JSONObject, file: string, tokens: string[], types: number[], added: AddedToken[], merges: string[],
): GGUFVocab {
  const addSpacePrefix = spaceHandling(json, file);
  const rank = new Map<string, number>();
  merges.forEach((m, i) => {
    const [left, right] = splitMerge(m)!;
    if (!rank.has(left + right)) rank.set(left + right, i);
  });
  const model = json.model as JSONObject;
  const unkId = typeof model.unk_token === 'string' ? idOf(json, model.unk_token) : undefined;
  for (let id = 0; id < tokens.length; id++) if (types[id] === TokenType.normal && isBytePiece(tokens[id]!)) types[id] = TokenType.byte;
  for (const t of added) {
    tokens[t.id] = t.special || looksSpecial(t.content) ? t.content : t.content.replaceAll(SPM_SPACE, ' ');
    types[t.id] = t.special || looksSpecial(t.content) ? TokenType.control : TokenType.userDefined;
  }
  if (unkId !== undefined) types[unkId] = TokenType.unknown;
  // Pieces no merge makes (single characters) are never joined; they rank below every merge.
  const scores = tokens.map((piece, id) => {
    if (types[id] === TokenType.userDefined || types[id] === TokenType.unused) return -1000;
    if (types[id] !== TokenType.normal) return 0;
    return 0 - (rank.get(piece) ?? merges.length);
  });
  return { model: 'llama', pre: 'default', tokens, scores, types, unkId, addSpacePrefix };
}

/**
 * How a SentencePiece-style tokenizer.json turns spaces into "▁", and whether it prepends one
 * (SentencePiece's dummy prefix, llama.cpp's add_space_prefix). Anything else in the normalizer or
 * pre-tokenizer would make the text differ from what llama.cpp's tokenizer sees, so it is refused.
 */
function spaceHandling(json: JSONObject, file: string): boolean {
  let replaces = false, prepends = false;
  const normalizers = json.normalizer === null || json.normalizer === undefined ? []
    : isObject(json.normalizer) && json.normalizer.type === 'Sequence' && Array.isArray(json.normalizer.normalizers)
      ? json.normalizer.normalizers : [json.normalizer];
  for (const n of normalizers) {
    if (isObject(n) && n.type === 'Prepend' && n.prepend === SPM_SPACE) prepends = true;
    else if (isObject(n) && n.type === 'Replace' && isObject(n.pattern) && n.pattern.String === ' ' && n.content === SPM_SPACE) replaces = true;
    else throw new FormatError(file, `normalizer ${JSON.stringify(isObject(n) ? n.type : n)} is not SentencePiece's (llama.cpp would not apply it)`);
  }
  const pre = json.pre_tokenizer;
  // Minerva's own SentencePiece tokenizer.json (spm-json.ts) splits into words at runs of "▁", which
  // it only does where no piece could merge across them: the same result as not splitting.
  const wordSplit = `${SPM_SPACE}+[^${SPM_SPACE}]*|[^${SPM_SPACE}]+`;
  const splitsWords = isObject(pre) && pre.type === 'Split' && isObject(pre.pattern) && pre.pattern.Regex === wordSplit;
  if (pre !== null && pre !== undefined && !splitsWords) {
    if (!isObject(pre) || pre.type !== 'Metaspace' || pre.replacement !== SPM_SPACE) {
      throw new FormatError(file, `pre-tokenizer ${JSON.stringify(isObject(pre) ? pre.type : pre)} is not SentencePiece's Metaspace`);
    }
    replaces = true;
    const scheme = pre.prepend_scheme ?? (pre.add_prefix_space === false ? 'never' : 'always');
    if (scheme !== 'never') prepends = true;
  }
  if (!replaces) throw new FormatError(file, 'has a byte-fallback BPE that does not write spaces as "▁": not a SentencePiece vocabulary');
  return prepends;
}

/** A byte-level BPE (GPT-2 layout): tokens and merges as they are, and the pre-tokenizer's name. */
function byteLevelFromJSON(
  json: JSONObject, file: string, tokens: string[], types: number[], added: AddedToken[], merges: string[],
): GGUFVocab {
  const decoder = json.decoder;
  if (!isObject(decoder) || decoder.type !== 'ByteLevel') {
    throw new FormatError(file, 'a BPE without byte fallback must decode with ByteLevel to be written as a "gpt2" vocabulary');
  }
  // Qwen2 normalizes to NFC; llama.cpp does not, which only matters for text that is not NFC already.
  const normalizer = json.normalizer;
  if (normalizer !== null && normalizer !== undefined && !(isObject(normalizer) && normalizer.type === 'NFC')) {
    throw new FormatError(file, `normalizer ${JSON.stringify(isObject(normalizer) ? normalizer.type : normalizer)} is not applied by llama.cpp's byte-level BPE`);
  }
  const model = json.model as JSONObject;
  const pre = preTokenizerName(json.pre_tokenizer, model.ignore_merges === true, file);
  for (const t of added) {
    tokens[t.id] = t.content;
    types[t.id] = t.special || looksSpecial(t.content) ? TokenType.control : TokenType.userDefined;
  }
  return { model: 'gpt2', pre, tokens, types, merges };
}
