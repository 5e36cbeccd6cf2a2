// The one Tokenizer implementation: a tokenizer.json object (read from a Hugging Face folder, or
// synthesized in memory from GGUF / llama2.c vocabularies) run by @huggingface/tokenizers, plus
// the things tokenizer.json does not say (BOS/EOS ids, add-BOS policy, chat template).
import { Tokenizer as LibTokenizer } from '@huggingface/tokenizers';
import { FormatError } from '../formats/tensor.js';
import { renderChatWithSystem } from './chat-template.js';
import { pieceBytesDecoder } from './token-bytes.js';
import type {
  ChatMessage, ChatTemplateOptions, DecodeOptions, EncodeOptions, Tokenizer,
} from './tokenizer.js';

/** One entry of tokenizer.json's "added_tokens" (the fields this module reads or writes). */
export interface AddedTokenJSON {
  id: number;
  content: string;
  special: boolean;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
}

/** A tokenizer.json document: what @huggingface/tokenizers needs (it checks the detail). */
export interface TokenizerJSON {
  added_tokens: AddedTokenJSON[];
  normalizer: object | null;
  pre_tokenizer: object | null;
  post_processor: object | null;
  decoder: object | null;
  model: { type: string; vocab: unknown; [key: string]: unknown };
  [key: string]: unknown;
}

export interface HFTokenizerOptions {
  /** The tokenizer.json document (parsed or synthesized). */
  json: TokenizerJSON;
  /** File or folder the vocabulary came from, for error messages. */
  source: string;
  /** "tokenizer.json", "gguf" or "llama2c". */
  kind: string;
  bosId?: number;
  eosIds?: readonly number[];
  /**
   * Whether encode() with addSpecial starts with BOS / ends with EOS. Undefined: whatever the
   * tokenizer.json post-processor adds.
   */
  addBos?: boolean;
  addEos?: boolean;
  chatTemplate?: string;
  /** A separate template for requests with tools (tokenizer_config's named "tool_use" template). */
  toolUseTemplate?: string;
  /** Texts the chat template sees as bos_token / eos_token (default: the tokens' texts). */
  bosText?: string;
  eosText?: string;
  /**
   * Vocabulary entries by id as the source stores them, where they differ from what the library
   * holds (duplicate pieces in a GGUF vocab keep only one id in a JSON object).
   */
  pieces?: readonly string[];
}

/** Encoded and decoded once at load: letters, spaces, digits, punctuation, accents, CJK, an emoji. */
const PROBE_TEXT = 'Hello world  12 !?\n\té 中文 🙂';

/** The surface of @huggingface/tokenizers' model this module reaches past the public types for. */
interface LibModel {
  vocab: (string | undefined)[];
}

export class HFTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosIds: readonly number[];
  readonly addBos: boolean;
  readonly chatTemplate: string | undefined;
  readonly toolUseTemplate: string | undefined;
  readonly kind: string;
  readonly source: string;

  private readonly lib: LibTokenizer;
  private readonly special: ReadonlySet<number>;
  /** Ids encode() puts around the text when addSpecial is on. */
  private readonly prefixIds: readonly number[];
  private readonly suffixIds: readonly number[];
  private readonly bosText: string;
  private readonly eosText: string;
  /** Vocabulary entry → bytes, from the decoder; undefined when the decoder is of an unknown kind. */
  private readonly pieceBytes: ((piece: string) => Uint8Array) | undefined;
  /** Added tokens that are not special: their content is plain text, not a vocabulary piece. */
  private readonly addedText: ReadonlyMap<number, string>;

  constructor(options: HFTokenizerOptions) {
    const { json, source } = options;
    this.source = source;
    this.kind = options.kind;
    try {
      // clean_up_tokenization_spaces would rewrite " ." to "." and the like on decode; generated
      // text must come back exactly as the model produced it, so it stays off.
      // Special added tokens are matched in the raw text. The Rust library also finds those marked
      // "normalized" (Llama 2's <s> and </s>) in chat prompts; tokenizers.js does not, so they are
      // handed over unnormalized: a special token's text has nothing a normalizer would change.
      const added = json.added_tokens.map((t) => (t.special ? { ...t, normalized: false } : t));
      this.lib = new LibTokenizer({ ...json, added_tokens: added }, { clean_up_tokenization_spaces: false });
    } catch (e) {
      throw new FormatError(source, `tokenizer is not usable: ${(e as Error).message}`);
    }
    const model = this.lib.model as unknown as LibModel | null;
    if (!model || !Array.isArray(model.vocab)) throw new FormatError(source, 'tokenizer has no vocabulary');
    if (options.pieces) {
      options.pieces.forEach((piece, id) => { model.vocab[id] = piece; });
    }
    this.vocabSize = model.vocab.length;
    // Some tokenizer.json files leave ids unused (added tokens numbered past a gap); such an id
    // decodes to nothing rather than breaking the decoder.
    for (let id = 0; id < this.vocabSize; id++) model.vocab[id] ??= '';
    if (this.vocabSize === 0) throw new FormatError(source, 'tokenizer has an empty vocabulary');

    const special = new Set<number>();
    for (const t of json.added_tokens) if (t.special) special.add(t.id);
    this.special = special;
    this.addedText = new Map(json.added_tokens.filter((t) => !t.special).map((t) => [t.id, t.content]));
    this.pieceBytes = pieceBytesDecoder(json.decoder);

    const checkId = (id: number | undefined, what: string): void => {
      if (id !== undefined && (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)) {
        throw new FormatError(source, `${what} id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
    };
    checkId(options.bosId, 'BOS');
    for (const id of options.eosIds ?? []) checkId(id, 'EOS');
    this.bosId = options.bosId;
    this.eosIds = [...new Set(options.eosIds ?? [])];

    const [prefix, suffix] = this.libraryCall('post_processor', () => this.postProcessorIds());
    this.prefixIds = withEnd(prefix, this.bosId, options.addBos, 'start');
    this.suffixIds = withEnd(suffix, this.eosIds[0], options.addEos, 'end');
    this.addBos = this.bosId !== undefined && this.prefixIds.includes(this.bosId);
    this.chatTemplate = options.chatTemplate;
    this.toolUseTemplate = options.toolUseTemplate;
    this.bosText = options.bosText ?? (this.bosId !== undefined ? this.tokenText(this.bosId) : '');
    this.eosText = options.eosText ?? (this.eosIds.length > 0 ? this.tokenText(this.eosIds[0]) : '');
    // The library checks most of a tokenizer.json only when it runs: a normalizer, pre-tokenizer,
    // model or decoder it cannot run fails here, at load, rather than on a user's request.
    this.decode(this.encode(PROBE_TEXT), { skipSpecial: false });
  }

  /** Runs a library call; its failure is the tokenizer file's fault, named as such. */
  private libraryCall<T>(what: string, call: () => T): T {
    try {
      return call();
    } catch (e) {
      if (e instanceof FormatError) throw e;
      throw new FormatError(this.source, `tokenizer is not usable: the ${what} failed: ${(e as Error)?.message ?? String(e)}`);
    }
  }

  encode(text: string, options?: EncodeOptions): number[] {
    const ids = this.libraryCall('encoding', () => this.lib.encode(text, { add_special_tokens: false }).ids);
    // tokenizers.js gives `undefined` for a piece its model cannot map (no unk_token to fall back on).
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new FormatError(this.source, `tokenizer is not usable: encoding gave ${String(id)}, not a token id (does the model lack an unk_token?)`);
      }
    }
    if (options?.addSpecial === false) return ids;
    return [...this.prefixIds, ...ids, ...this.suffixIds];
  }

  decode(ids: readonly number[], options?: DecodeOptions): string {
    const skip = options?.skipSpecial ?? true;
    const kept: number[] = [];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
      if (!(skip && this.special.has(id))) kept.push(id);
    }
    // The library refuses an empty list.
    if (kept.length === 0) return '';
    return this.libraryCall('decoding', () => this.lib.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false }));
  }

  tokenText(id: number): string {
    const text = this.lib.id_to_token(id);
    if (text === undefined) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    return text;
  }

  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  tokenBytes(id: number): Uint8Array | undefined {
    if (this.special.has(id)) return undefined;
    const added = this.addedText.get(id);
    if (added !== undefined) return new Uint8Array(Buffer.from(added, 'utf8'));
    const piece = this.tokenText(id);
    // A decoder this project does not know: the token decoded alone (right for whole characters).
    if (this.pieceBytes === undefined) return new Uint8Array(Buffer.from(this.decode([id], { skipSpecial: false }), 'utf8'));
    return this.pieceBytes(piece);
  }

  applyChatTemplate(messages: readonly ChatMessage[], options?: ChatTemplateOptions): string {
    // As transformers chooses: a request with tools takes the "tool_use" template where there is one.
    const withTools = (options?.tools?.length ?? 0) > 0;
    const source = options?.template ?? (withTools ? this.toolUseTemplate : undefined) ?? this.chatTemplate;
    if (source === undefined) {
      throw new Error(`${this.source}: the tokenizer has no chat template`);
    }
    return renderChatWithSystem(source, messages, {
      addGenerationPrompt: options?.addGenerationPrompt ?? true,
      bosToken: this.bosText,
      eosToken: this.eosText,
      tools: options?.tools,
      extra: options?.variables,
    });
  }

  /**
   * The ids tokenizer.json's post-processor puts before and after a text (e.g. BOS), found by
   * running it on a single marker token: every post-processor kind is covered without reading
   * its configuration.
   */
  private postProcessorIds(): [number[], number[]] {
    const processor = this.lib.post_processor;
    if (!processor) return [[], []];
    const marker = '\u0000text\u0000';
    const tokens = processor.post_process([marker], null, true).tokens;
    const at = tokens.indexOf(marker);
    if (at < 0) return [[], []];
    const ids = (texts: string[]): number[] => texts.map((text) => {
      const id = this.lib.token_to_id(text);
      if (id === undefined) throw new FormatError(this.source, `post_processor adds "${text}", which is not in the vocabulary`);
      return id;
    });
    return [ids(tokens.slice(0, at)), ids(tokens.slice(at + 1))];
  }
}

/**
 * Applies an explicit add-BOS/add-EOS choice to the ids a post-processor adds: puts the token at
 * that end if asked and missing, removes it if asked not to.
 */
function withEnd(
  ids: number[], token: number | undefined, wanted: boolean | undefined, end: 'start' | 'end',
): number[] {
  if (wanted === undefined || token === undefined) return ids;
  const at = end === 'start' ? 0 : ids.length - 1;
  const present = ids.length > 0 && ids[at] === token;
  if (wanted && !present) return end === 'start' ? [token, ...ids] : [...ids, token];
  if (!wanted && present) return end === 'start' ? ids.slice(1) : ids.slice(0, -1);
  return ids;
}
