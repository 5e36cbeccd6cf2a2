// A byte-level BPE vocabulary (GPT-2 layout: tokens written with the bytes-to-unicode map, "Ġ"
// for a space, plus a ranked merge list), as GGUF "gpt2" stores it, turned into an equivalent
// tokenizer.json document.
import { FormatError } from '../formats/tensor.js';
import type { AddedTokenJSON, TokenizerJSON } from './hf-tokenizer.js';
import type { PreTokenizerRule } from './pre-tokenizers.js';
import { TokenType } from './token-types.js';

export interface ByteLevelVocab {
  readonly tokens: readonly string[];
  /** TokenType per id. */
  readonly types: ArrayLike<number>;
  /** Merges best first, each two tokens joined by one space. */
  readonly merges: readonly string[];
  readonly preTokenizer: PreTokenizerRule;
}

/** Splits "left right" at the first space after the first character, as llama.cpp does. */
export function splitMerge(merge: string): [string, string] | undefined {
  const at = merge.indexOf(' ', 1);
  if (at < 0) return undefined;
  return [merge.slice(0, at), merge.slice(at + 1)];
}

export function byteLevelTokenizerJSON(vocab: ByteLevelVocab, source: string): TokenizerJSON {
  const { tokens, types } = vocab;
  const vocabObject: Record<string, number> = Object.create(null) as Record<string, number>;
  const added: AddedTokenJSON[] = [];
  for (let id = 0; id < tokens.length; id++) {
    vocabObject[tokens[id]] = id;
    const type = types[id];
    if (type === TokenType.control || type === TokenType.unknown) {
      added.push({ id, content: tokens[id], special: true, normalized: false });
    } else if (type === TokenType.userDefined) {
      added.push({ id, content: tokens[id], special: false, normalized: false });
    }
  }
  const merges: [string, string][] = [];
  vocab.merges.forEach((merge, i) => {
    const pair = splitMerge(merge);
    if (!pair) throw new FormatError(source, `tokenizer.ggml.merges[${i}] ("${merge}") is not two tokens joined by a space`);
    merges.push(pair);
  });
  return {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        ...vocab.preTokenizer.regexes.map((regex) => ({
          type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false,
        })),
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: vocab.preTokenizer.ignoreMerges,
      vocab: vocabObject,
      merges,
    },
  };
}
