// Streams text out of generated token ids, one token at a time.
//
// Decoding token by token and concatenating is wrong twice over: a character can be split across
// byte tokens (<0xF0><0x9F><0xA6><0x99> is one emoji), and SentencePiece decoders drop the
// leading space of whatever they decode first. So, as transformers / text-generation-inference
// do, each step decodes a short window — a prefix of tokens already emitted plus the new ones —
// and emits what the new tokens added to the prefix's text. Text ending in U+FFFD (an incomplete
// UTF-8 sequence) is held back until the character completes. The window restarts after each
// emission, so the cost per token does not grow with the length of the sequence.
import type { Tokenizer } from './tokenizer.js';

const REPLACEMENT = '\uFFFD';
/**
 * Tokens to hold back at most while the text ends in U+FFFD: a UTF-8 character is at most 4
 * bytes, so a longer run cannot complete and is emitted as it decodes (invalid bytes stay U+FFFD).
 */
const MAX_HELD_TOKENS = 4;
/** Prompt tokens used as the first prefix: enough to cover a character split over byte tokens. */
const CONTEXT_TOKENS = 4;

export interface IncrementalDecoderOptions {
  /** Leave out special tokens, as decode() does by default. Default true. */
  skipSpecial?: boolean;
  /**
   * Ids that precede the streamed ones (the prompt). The emitted text then continues that text:
   * a SentencePiece "▁Paris" after "…is" comes out as " Paris", not "Paris".
   */
  context?: readonly number[];
  /**
   * Special tokens whose text is written into the stream all the same: the markers of a tool call
   * (Mistral's [TOOL_CALLS], Llama's <|python_tag|>) are special tokens, and the tool-call parser
   * must see them.
   */
  keepSpecial?: readonly number[];
}

export class IncrementalDecoder {
  private readonly skipSpecial: boolean;
  private readonly keepSpecial: ReadonlySet<number>;
  /** The window: prefix ids (already emitted) followed by ids not yet emitted. */
  private window: number[] = [];
  private prefixLength = 0;
  /** decode(window[0 .. prefixLength)). */
  private prefixText = '';

  constructor(private readonly tokenizer: Tokenizer, options: IncrementalDecoderOptions = {}) {
    this.skipSpecial = options.skipSpecial ?? true;
    this.keepSpecial = new Set(options.keepSpecial ?? []);
    if (options.context) {
      const visible = options.context.filter((id) => !this.skips(id));
      this.window = visible.slice(-CONTEXT_TOKENS);
      this.prefixLength = this.window.length;
      this.prefixText = this.decodeWindow(this.prefixLength);
    }
  }

  /** Adds one generated id; returns the text it completes (often "", sometimes several chars). */
  push(id: number): string {
    // Checked before it joins the window, where a bad id would fail every later decode.
    if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.tokenizer.vocabSize - 1})`);
    }
    // Skipped ids never enter the window: decode() leaves them out before decoding, so the text
    // is the same, and a window never starts at an invisible token.
    if (this.skips(id)) return '';
    this.window.push(id);
    const text = this.decodeWindow(this.window.length);
    const pending = this.window.length - this.prefixLength;
    if (text.endsWith(REPLACEMENT) && pending < MAX_HELD_TOKENS) return '';
    return this.emit(text);
  }

  /** Returns whatever is still held back (an incomplete character decodes as U+FFFD). */
  flush(): string {
    if (this.window.length === this.prefixLength) return '';
    return this.emit(this.decodeWindow(this.window.length));
  }

  private emit(text: string): string {
    const added = text.slice(this.prefixText.length);
    // The ids just emitted become the next prefix.
    this.window = this.window.slice(this.prefixLength);
    this.prefixLength = this.window.length;
    this.prefixText = this.decodeWindow(this.prefixLength);
    return added;
  }

  private decodeWindow(end: number): string {
    if (end === 0) return '';
    return this.tokenizer.decode(this.window.slice(0, end), { skipSpecial: false });
  }

  private skips(id: number): boolean {
    return this.skipSpecial && this.tokenizer.isSpecial(id) && !this.keepSpecial.has(id);
  }
}
