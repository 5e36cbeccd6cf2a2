// The tokenizer layer: one Tokenizer from a Hugging Face folder, GGUF vocabulary metadata or a
// llama2.c tokenizer.bin; chat templates; streaming detokenization.
export type {
  ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, Tokenizer,
} from './tokenizer.js';
export { HFTokenizer, type AddedTokenJSON, type HFTokenizerOptions, type TokenizerJSON } from './hf-tokenizer.js';
export { loadHFTokenizer } from './load-hf.js';
export { tokenizerFromGGUF } from './gguf-vocab.js';
export {
  loadLlama2cTokenizer, parseLlama2cVocab, tokenizerFromLlama2cVocab, type Llama2cVocab,
} from './llama2c-tokenizer.js';
export { ChatTemplateError, renderChatTemplate, renderChatWithSystem, templateShowsSystem, type RenderChatOptions } from './chat-template.js';
export { IncrementalDecoder, type IncrementalDecoderOptions } from './incremental-decoder.js';
export { SPM_SPACE, deriveSpmMerges, spmTokenizerJSON, type SpmVocab } from './spm-json.js';
export { byteLevelTokenizerJSON, splitMerge, type ByteLevelVocab } from './byte-level-json.js';
export { preTokenizerRule, supportedPreTokenizers, type PreTokenizerRule } from './pre-tokenizers.js';
export { TokenType, isBytePiece, type TokenTypeCode } from './token-types.js';
