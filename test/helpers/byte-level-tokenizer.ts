// Small byte-level BPE tokenizers in the two tokenizer.json layouts published models use —
// Llama 3's (its Split regex, ignore_merges, BOS added by the post-processor) and Qwen2's (its
// regex, NFC, no BOS) — cut from the Llama 3.2 vocabulary fixture: its first `size` tokens (the 256
// byte symbols first), the merges among them, and a few special tokens after them. Small enough
// that a random model's embedding and every tokenizer build stay cheap.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FIXTURES } from './fixtures.js';
import type { HFTokenizerFiles } from '../../src/model/random-model.js';

const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const LLAMA3_CHAT_TEMPLATE = "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}";

export interface ByteLevelTokenizer extends HFTokenizerFiles {
  vocabSize: number;
  /** Special token ids by text. */
  specials: Record<string, number>;
  bosId: number | undefined;
  eosId: number;
}

/** The first `size` tokens of the Llama 3.2 fixture and the merges among them. */
async function cutVocabulary(size: number): Promise<{ vocab: Record<string, number>; merges: string[] }> {
  const dir = path.join(FIXTURES, 'bpe/llama3.2');
  const encoder = JSON.parse(await readFile(path.join(dir, 'encoder.json'), 'utf8')) as Record<string, number>;
  const vocab: Record<string, number> = {};
  for (const [text, id] of Object.entries(encoder)) if (id < size) vocab[text] = id;
  const merges = (await readFile(path.join(dir, 'vocab.bpe'), 'utf8')).split('\n').filter((line) => {
    const [a, b] = line.split(' ');
    return a !== undefined && b !== undefined && a + b in vocab && a in vocab && b in vocab;
  });
  return { vocab, merges };
}

export async function byteLevelTokenizer(style: 'llama3' | 'qwen2', size = 3000): Promise<ByteLevelTokenizer> {
  const { vocab, merges } = await cutVocabulary(size);
  const names = style === 'llama3'
    ? ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>', '<|reserved_special_token_0|>']
    : ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const specials = Object.fromEntries(names.map((n, i) => [n, size + i]));
  const added = names.map((content, i) => ({
    id: size + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: style === 'llama3', use_regex: false };
  const split = { type: 'Split', pattern: { Regex: style === 'llama3' ? LLAMA3_REGEX : QWEN2_REGEX }, behavior: 'Isolated', invert: false };
  const bos = '<|begin_of_text|>';
  const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: added,
    normalizer: style === 'qwen2' ? { type: 'NFC' } : null,
    pre_tokenizer: { type: 'Sequence', pretokenizers: [split, byteLevel] },
    post_processor: style === 'llama3'
      ? {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { [bos]: { id: bos, ids: [specials[bos]!], tokens: [bos] } },
      }
      : { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: style === 'llama3', vocab, merges,
    },
  };
  const config = style === 'llama3'
    ? { bos_token: bos, eos_token: '<|eot_id|>', chat_template: LLAMA3_CHAT_TEMPLATE, model_max_length: 131072 }
    : { bos_token: null, eos_token: '<|endoftext|>', pad_token: '<|endoftext|>', add_bos_token: false, model_max_length: 32768 };
  return {
    tokenizerJSON: JSON.stringify(json), tokenizerConfigJSON: JSON.stringify(config, null, 2),
    vocabSize: size + names.length, specials,
    bosId: style === 'llama3' ? specials[bos] : undefined,
    eosId: style === 'llama3' ? specials['<|eot_id|>']! : specials['<|endoftext|>']!,
  };
}
