// The one Tokenizer interface the engine sees, whatever it was built from (tokenizer.json,
// GGUF vocab metadata, or a llama2.c tokenizer.bin).

import type { ToolCall, ToolFunction } from '../chat/tool-types.js';

/**
 * One message of a conversation. Roles: system, user, assistant, tool. An assistant message may
 * carry the tool calls it made; a tool message answers one of them.
 */
export interface ChatMessage {
  role: string;
  content: string;
  /** assistant: the calls it made (templates see OpenAI/transformers' {id, type, function: {name, arguments}}). */
  toolCalls?: readonly ToolCall[];
  /** tool: the id of the call this is the result of. */
  toolCallId?: string;
  /** tool: the name of the function that was called. */
  name?: string;
  /** assistant: its reasoning before the answer (Qwen3's reasoning_content), where the template shows it. */
  reasoning?: string;
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
  /** Functions the model may call; the template lists them (as `tools`) in its own way. */
  tools?: readonly ToolFunction[];
  /** More template variables (e.g. Qwen3's enable_thinking); they cannot replace the standard ones. */
  variables?: Readonly<Record<string, unknown>>;
  /** Jinja source to render instead of the tokenizer's own template (--chat-template, the ChatML fallback). */
  template?: string;
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
  /** The model's separate template for requests with tools (a "tool_use" named template), if it has one. */
  readonly toolUseTemplate?: string;
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
  /**
   * Renders messages with the chat template (or options.template), with this tokenizer's BOS and
   * EOS texts; throws an Error naming the problem if there is no template.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string;
}
