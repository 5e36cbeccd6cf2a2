// The one Tokenizer interface the engine sees, whatever it was built from (tokenizer.json,
// GGUF vocab metadata, or a llama2.c tokenizer.bin).

export interface ChatMessage {
  role: string;
  content: string;
}

export interface EncodeOptions {
  /**
   * Add the model's special prefix/suffix tokens (BOS where the model's config asks for it).
   * Default true. Special-token text inside `text` (e.g. "<|im_start|>") is always parsed as the
   * special token, as llama.cpp and transformers do for chat prompts.
   */
  addSpecial?: boolean;
}

export interface DecodeOptions {
  /** Leave out control/special tokens (BOS, EOS, chat markers). Default true. */
  skipSpecial?: boolean;
}

export interface ChatTemplateOptions {
  /** End the prompt with the header of an assistant turn. Default true. */
  addGenerationPrompt?: boolean;
}

export interface Tokenizer {
  /** Number of token ids (the embedding table may be larger: padding). */
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  /** Ids that end a generation (EOS and end-of-turn tokens). */
  readonly eosIds: readonly number[];
  /** Whether encode() with addSpecial prepends BOS. */
  readonly addBos: boolean;
  /** Jinja chat template source, if the model ships one. */
  readonly chatTemplate: string | undefined;
  /** Where this tokenizer came from: "tokenizer.json", "gguf", "llama2c". */
  readonly kind: string;

  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /** The vocabulary entry for one id as stored (e.g. "▁the", "<0x0A>", "Ġthe"). */
  tokenText(id: number): string;
  isSpecial(id: number): boolean;
  /**
   * The bytes token `id` adds to the generated text (a byte token like <0xE2> is one byte, "▁the"
   * is " the"); undefined for special tokens, which write no text. For constrained decoding.
   */
  tokenBytes(id: number): Uint8Array | undefined;
  /** Renders messages with the chat template; throws an Error naming the problem if there is none. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}
