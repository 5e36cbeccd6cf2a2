// A made-up SentencePiece vocabulary of any size, for random-weight models that must carry a
// tokenizer (`minerva bench --synthetic`): <unk>, <s>, </s>, the 256 byte pieces, then pieces of
// letters ("▁" + words and word parts) until the size is reached. Written as GGUF metadata
// (tokenizer.ggml.*, which llama.cpp reads) and as tokenizer.json for a Hugging Face folder (the
// same conversion Minerva applies to a GGUF vocabulary), so both files tokenize alike.
import type { GGUFMetadataEntry } from '../formats/gguf.js';
import { SPM_SPACE, spmTokenizerJSON, type SpmVocab } from './spm-json.js';
import { TokenType } from './token-types.js';

const LETTERS = 'etaoinshrdlucmfwypvbgkqjxz';

/** Pieces, scores and types of a vocabulary of exactly `size` tokens (size ≥ 300). */
export function syntheticSpmVocab(size: number): SpmVocab {
  if (!Number.isInteger(size) || size < 300) throw new RangeError(`a synthetic vocabulary needs at least 300 tokens, got ${size}`);
  const pieces: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  for (let b = 0; b < 256; b++) {
    pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TokenType.byte);
  }
  // Words of growing length over a small alphabet, each also with the "▁" word start: every piece
  // splits into two shorter pieces of the vocabulary, so merges can build it.
  const seen = new Set<string>();
  const add = (p: string) => {
    if (pieces.length < size && !seen.has(p)) { seen.add(p); pieces.push(p); types.push(TokenType.normal); }
  };
  add(SPM_SPACE);
  for (const c of LETTERS) add(c);
  for (const c of LETTERS) add(SPM_SPACE + c);
  let words = [...LETTERS];
  while (pieces.length < size) {
    const longer: string[] = [];
    for (const w of words) {
      for (const c of LETTERS) {
        longer.push(w + c);
        add(SPM_SPACE + w + c);
        add(w + c);
        if (pieces.length >= size) break;
      }
      if (pieces.length >= size) break;
    }
    words = longer;
  }
  // Shorter pieces merge first, as in a trained vocabulary.
  const scores = Float32Array.from(pieces, (_, id) => -id);
  return { pieces, scores, types, unkId: 0, addSpacePrefix: true };
}

/** The vocabulary as GGUF tokenizer metadata (model "llama", BOS 1, EOS 2). */
export function syntheticVocabGGUF(vocab: SpmVocab): GGUFMetadataEntry[] {
  return [
    { key: 'tokenizer.ggml.model', type: 'string', value: 'llama' },
    { key: 'tokenizer.ggml.tokens', type: 'array', itemType: 'string', value: [...vocab.pieces] },
    { key: 'tokenizer.ggml.scores', type: 'array', itemType: 'f32', value: Array.from(vocab.scores) },
    { key: 'tokenizer.ggml.token_type', type: 'array', itemType: 'i32', value: Array.from(vocab.types) },
    { key: 'tokenizer.ggml.bos_token_id', type: 'u32', value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: 'u32', value: 2 },
    { key: 'tokenizer.ggml.unknown_token_id', type: 'u32', value: 0 },
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
    { key: 'tokenizer.ggml.add_eos_token', type: 'bool', value: false },
  ];
}

/** A SentencePiece-style tokenizer.json whose post-processor adds BOS (<s>, id 1), as Llama's does. */
export function spmTokenizerJSONWithBos(vocab: SpmVocab): Record<string, unknown> {
  return {
    ...spmTokenizerJSON(vocab),
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
  };
}

/** tokenizer.json and tokenizer_config.json for a Hugging Face folder. */
export function syntheticVocabHF(vocab: SpmVocab): { tokenizerJSON: string; tokenizerConfigJSON: string } {
  const withBos = spmTokenizerJSONWithBos(vocab);
  const config = { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, add_eos_token: false, model_max_length: 1_000_000 };
  return { tokenizerJSON: JSON.stringify(withBos), tokenizerConfigJSON: JSON.stringify(config, null, 2) };
}
