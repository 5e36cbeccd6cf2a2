// A vocabulary as GGUF stores it (tokenizer.ggml.*), whatever it was read from, and its metadata
// entries in the order and with the stored types llama.cpp's converter writes.
import type { GGUFMetadataEntry } from '../formats/gguf.js';
import { TokenType } from '../tokenizer/token-types.js';

export interface GGUFVocab {
  /** "llama" (SentencePiece BPE, scores) or "gpt2" (byte-level BPE, merges). */
  model: 'llama' | 'gpt2';
  /** tokenizer.ggml.pre: "default" for SentencePiece, the pre-tokenizer's name for byte-level BPE. */
  pre: string;
  tokens: string[];
  /** Per token (llama only): higher merges first. */
  scores?: number[];
  /** Per token: TokenType codes. */
  types: number[];
  /** gpt2 only: "left right", best first. */
  merges?: string[];
  bosId?: number;
  eosId?: number;
  unkId?: number;
  padId?: number;
  /** Further end-of-generation ids (end of turn, end of message). */
  eotId?: number;
  eomId?: number;
  addBos?: boolean;
  addEos?: boolean;
  /** llama only: SentencePiece's dummy prefix (llama.cpp assumes true when absent). */
  addSpacePrefix?: boolean;
  chatTemplate?: string;
  /** Other tokenizer.* entries carried over unchanged from a GGUF source (FIM ids and the like). */
  extra?: GGUFMetadataEntry[];
}

/**
 * Pads the vocabulary to the embedding's `vocabSize` rows, as convert_hf_to_gguf.py does ("[PADn]"
 * tokens of type UNUSED), so the file's token count is the model's vocabulary size.
 */
export function padVocab(v: GGUFVocab, vocabSize: number, source: string): GGUFVocab {
  if (v.tokens.length > vocabSize) {
    throw new Error(`${source}: the tokenizer has ${v.tokens.length} tokens but the model's embedding only ${vocabSize}`);
  }
  for (const [what, id] of [['BOS', v.bosId], ['EOS', v.eosId], ['UNK', v.unkId], ['PAD', v.padId], ['EOT', v.eotId], ['EOM', v.eomId]] as const) {
    if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= v.tokens.length)) {
      throw new Error(`${source}: the ${what} token id ${id} is outside the vocabulary (0..${v.tokens.length - 1})`);
    }
  }
  if (v.tokens.length === vocabSize) return v;
  const tokens = [...v.tokens], types = [...v.types], scores = v.scores ? [...v.scores] : undefined;
  for (let id = v.tokens.length; id < vocabSize; id++) {
    tokens.push(`[PAD${id}]`);
    types.push(TokenType.unused);
    scores?.push(-10000);
  }
  return { ...v, tokens, types, scores };
}

/** The tokenizer.* metadata entries of a vocabulary (token ids as u32, flags as bool). */
export function vocabEntries(v: GGUFVocab): GGUFMetadataEntry[] {
  const out: GGUFMetadataEntry[] = [
    { key: 'tokenizer.ggml.model', type: 'string', value: v.model },
    { key: 'tokenizer.ggml.pre', type: 'string', value: v.pre },
    { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: v.tokens },
  ];
  if (v.scores) out.push({ key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: v.scores });
  out.push({ key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: v.types });
  if (v.merges) out.push({ key: 'tokenizer.ggml.merges', type: 'array', itemType: 'string', value: v.merges });
  const id = (name: string, value: number | undefined) => {
    if (value !== undefined) out.push({ key: `tokenizer.ggml.${name}`, type: 'u32', value });
  };
  id('bos_token_id', v.bosId);
  id('eos_token_id', v.eosId);
  id('unknown_token_id', v.unkId);
  id('padding_token_id', v.padId);
  id('eot_token_id', v.eotId);
  id('eom_token_id', v.eomId);
  const flag = (name: string, value: boolean | undefined) => {
    if (value !== undefined) out.push({ key: `tokenizer.ggml.${name}`, type: 'bool', value });
  };
  flag('add_bos_token', v.addBos);
  flag('add_eos_token', v.addEos);
  flag('add_space_prefix', v.addSpacePrefix);
  out.push(...(v.extra ?? []));
  if (v.chatTemplate !== undefined) out.push({ key: 'tokenizer.chat_template', type: 'string', value: v.chatTemplate });
  return out;
}
