// Where a converted model's vocabulary comes from: the tokenizer the user named, else the model's
// own — a Hugging Face folder, the tokenizer.* metadata of a GGUF file, or a llama2.c
// tokenizer.bin — read the way Minerva's loader reads the same path (model/load.ts).
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { metadataEntries, openGGUF, type GGUFFile } from '../formats/gguf.js';
import { FormatError } from '../formats/tensor.js';
import { parseLlama2cVocab } from '../tokenizer/llama2c-tokenizer.js';
import { SPM_SPACE } from '../tokenizer/spm-json.js';
import { TokenType, isBytePiece } from '../tokenizer/token-types.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { GGUFVocab } from './gguf-vocab.js';
import { vocabFromHFFolder } from './vocab-hf.js';

/**
 * The vocabulary at `tokenizerPath`: a folder or its tokenizer.json (Hugging Face), a .gguf file,
 * or a llama2.c tokenizer.bin. `tokenizer` is the same tokenizer as Minerva built it (its special
 * tokens, add-BOS policy and chat template are taken from there for a folder).
 */
export async function readVocab(tokenizerPath: string, tokenizer: Tokenizer, vocabSize: number): Promise<GGUFVocab> {
  let st;
  try {
    st = await stat(tokenizerPath);
  } catch {
    throw new FormatError(tokenizerPath, 'tokenizer: no such file or folder');
  }
  if (st.isDirectory()) return vocabFromHFFolder(tokenizerPath, tokenizer, vocabSize);
  if (path.basename(tokenizerPath) === 'tokenizer.json' || tokenizerPath.endsWith('.safetensors')) {
    return vocabFromHFFolder(path.dirname(tokenizerPath), tokenizer, vocabSize);
  }
  if (await hasGGUFMagic(tokenizerPath)) {
    const file = await openGGUF(tokenizerPath);
    try {
      return vocabFromGGUF(file, tokenizerPath);
    } finally {
      await file.close();
    }
  }
  return vocabFromLlama2c(await readFile(tokenizerPath), tokenizerPath, vocabSize);
}

async function hasGGUFMagic(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await fh.read(magic, 0, 4, 0);
    return bytesRead === 4 && magic.toString('latin1') === 'GGUF';
  } finally {
    await fh.close();
  }
}

/** Keys vocabFromGGUF reads into fields; every other tokenizer.* key is carried over as it is. */
const KNOWN_KEYS = new Set([
  'model', 'pre', 'tokens', 'scores', 'token_type', 'merges', 'bos_token_id', 'eos_token_id', 'unknown_token_id',
  'padding_token_id', 'eot_token_id', 'eom_token_id', 'add_bos_token', 'add_eos_token', 'add_space_prefix',
].map((k) => `tokenizer.ggml.${k}`).concat('tokenizer.chat_template'));

/**
 * A GGUF file's vocabulary, as its metadata holds it (Minerva's loader has checked it when it built
 * the tokenizer from the same file).
 */
export function vocabFromGGUF(file: Pick<GGUFFile, 'metadata' | 'metadataTypes'>, source: string): GGUFVocab {
  const m = file.metadata;
  const get = <T>(key: string, check: (v: unknown) => boolean, what: string): T | undefined => {
    const v = m.get(`tokenizer.${key}`);
    if (v === undefined) return undefined;
    if (!check(v)) throw new FormatError(source, `tokenizer.${key} must be ${what}`);
    return v as T;
  };
  const isString = (v: unknown) => typeof v === 'string';
  const isId = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 0;
  const isBool = (v: unknown) => typeof v === 'boolean';
  const isList = (item: (v: unknown) => boolean) => (v: unknown) => Array.isArray(v) && v.every(item);
  const model = get<string>('ggml.model', isString, 'a string');
  if (model !== 'llama' && model !== 'gpt2') {
    throw new FormatError(source, `tokenizer.ggml.model is ${JSON.stringify(model)}: only "llama" and "gpt2" vocabularies are written`);
  }
  const tokens = get<string[]>('ggml.tokens', isList(isString), 'an array of strings');
  if (!tokens) throw new FormatError(source, 'tokenizer.ggml.tokens is missing');
  const types = get<number[]>('ggml.token_type', isList(isId), 'an array of token types')
    ?? tokens.map((t) => (isBytePiece(t) ? TokenType.byte : TokenType.normal));
  return {
    model,
    pre: get<string>('ggml.pre', isString, 'a string') ?? 'default',
    tokens: [...tokens],
    scores: model === 'llama' ? [...(get<number[]>('ggml.scores', isList((v) => typeof v === 'number'), 'an array of numbers') ?? tokens.map(() => 0))] : undefined,
    types: [...types],
    merges: get<string[]>('ggml.merges', isList(isString), 'an array of strings'),
    bosId: get<number>('ggml.bos_token_id', isId, 'a token id'),
    eosId: get<number>('ggml.eos_token_id', isId, 'a token id'),
    unkId: get<number>('ggml.unknown_token_id', isId, 'a token id'),
    padId: get<number>('ggml.padding_token_id', isId, 'a token id'),
    eotId: get<number>('ggml.eot_token_id', isId, 'a token id'),
    eomId: get<number>('ggml.eom_token_id', isId, 'a token id'),
    addBos: get<boolean>('ggml.add_bos_token', isBool, 'a bool'),
    addEos: get<boolean>('ggml.add_eos_token', isBool, 'a bool'),
    addSpacePrefix: get<boolean>('ggml.add_space_prefix', isBool, 'a bool'),
    chatTemplate: get<string>('chat_template', isString, 'a string'),
    extra: metadataEntries(file, (k) => k.startsWith('tokenizer.') && !KNOWN_KEYS.has(k)),
  };
}

const UNK_ID = 0, BOS_ID = 1, EOS_ID = 2;

/**
 * A llama2.c tokenizer.bin as llama.cpp's convert-llama2c-to-ggml writes it: ids 0, 1, 2 are
 * <unk>, <s>, </s>; byte pieces are BYTE, empty pieces CONTROL, the rest NORMAL with spaces as "▁".
 * BOS is also written as the end-of-turn token: llama2.c models are trained on stories delimited
 * by BOS, run.c stops when it comes out, and so does Minerva on the checkpoint itself.
 */
export function vocabFromLlama2c(bytes: Uint8Array, source: string, vocabSize: number): GGUFVocab {
  const vocab = parseLlama2cVocab(bytes, source, vocabSize);
  const tokens: string[] = [], types: number[] = [];
  vocab.pieces.forEach((piece, id) => {
    if (id === UNK_ID) { tokens.push('<unk>'); types.push(TokenType.unknown); return; }
    if (id === BOS_ID) { tokens.push('<s>'); types.push(TokenType.control); return; }
    if (id === EOS_ID) { tokens.push('</s>'); types.push(TokenType.control); return; }
    tokens.push(piece.replaceAll(' ', SPM_SPACE));
    types.push(piece === '' ? TokenType.control : isBytePiece(piece) ? TokenType.byte : TokenType.normal);
  });
  return {
    model: 'llama', pre: 'default', tokens, scores: Array.from(vocab.scores), types,
    bosId: BOS_ID, eosId: EOS_ID, unkId: UNK_ID, eotId: BOS_ID, addBos: true, addEos: false,
  };
}
