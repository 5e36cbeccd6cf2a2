// A Tokenizer from the vocabulary a GGUF file carries in its metadata (tokenizer.ggml.*):
// SentencePiece BPE ("llama") or byte-level BPE ("gpt2"), synthesized as tokenizer.json.
import { FormatError } from '../formats/tensor.js';
import { byteLevelTokenizerJSON } from './byte-level-json.js';
import { HFTokenizer } from './hf-tokenizer.js';
import { preTokenizerRule, supportedPreTokenizers } from './pre-tokenizers.js';
import { spmTokenizerJSON } from './spm-json.js';
import { TokenType, isBytePiece } from './token-types.js';
import type { Tokenizer } from './tokenizer.js';

/** Reads typed values out of GGUF metadata; every failure names the file and the key. */
class MetadataReader {
  constructor(private readonly meta: ReadonlyMap<string, unknown>, private readonly source: string) {}

  fail(key: string, problem: string): never {
    // "[3] must be …" attaches to the key: tokenizer.ggml.tokens[3].
    throw new FormatError(this.source, `${key}${problem.startsWith('[') ? '' : ' '}${problem}`);
  }

  has(key: string): boolean {
    return this.meta.has(key);
  }

  string(key: string): string | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') this.fail(key, `must be a string, got ${describe(v)}`);
    return v;
  }

  bool(key: string): boolean | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(key, `must be a boolean, got ${describe(v)}`);
    return v;
  }

  /** A token id: an integer in 0..count-1. */
  id(key: string, count: number): number | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) this.fail(key, `must be an integer, got ${describe(v)}`);
    if (n < 0 || n >= count) this.fail(key, `is ${n}, outside the vocabulary (0..${count - 1})`);
    return n;
  }

  strings(key: string): string[] | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) this.fail(key, `must be an array of strings, got ${describe(v)}`);
    for (let i = 0; i < v.length; i++) {
      if (typeof v[i] !== 'string') this.fail(key, `[${i}] must be a string, got ${describe(v[i])}`);
    }
    return v as string[];
  }

  /** A numeric array of exactly `length` finite numbers (plain array or typed array). */
  numbers(key: string, length: number): ArrayLike<number> | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    let values: ArrayLike<number>;
    if (Array.isArray(v)) {
      values = v as number[];
    } else if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      values = v instanceof BigInt64Array || v instanceof BigUint64Array
        ? Array.from(v, Number)
        : v as unknown as ArrayLike<number>;
    } else {
      this.fail(key, `must be a numeric array, got ${describe(v)}`);
    }
    if (values.length !== length) this.fail(key, `has ${values.length} entries but there are ${length} tokens`);
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== 'number' || !Number.isFinite(values[i])) {
        this.fail(key, `[${i}] must be a finite number, got ${describe(values[i])}`);
      }
    }
    return values;
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'string') return `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"`;
  return typeof v === 'object' && v !== null ? v.constructor.name : String(v);
}

/**
 * Builds the tokenizer a GGUF file's metadata describes. `meta` maps keys to values: strings,
 * numbers (or bigints), booleans, string arrays as string[], numeric arrays as number[] or typed
 * arrays. `source` names the file in error messages.
 */
export function tokenizerFromGGUF(meta: ReadonlyMap<string, unknown>, source: string): Tokenizer {
  // Typed explicitly so that g.fail() (returning never) narrows what follows it.
  const g: MetadataReader = new MetadataReader(meta, source);
  const model = g.string('tokenizer.ggml.model');
  if (model === undefined) g.fail('tokenizer.ggml.model', 'is missing: the file carries no vocabulary');
  const tokens = g.strings('tokenizer.ggml.tokens');
  if (tokens === undefined) g.fail('tokenizer.ggml.tokens', 'is missing');
  const n = tokens.length;
  if (n === 0) g.fail('tokenizer.ggml.tokens', 'is empty');

  const storedTypes = g.numbers('tokenizer.ggml.token_type', n);
  // Without token types llama.cpp treats every token as normal; byte pieces are still recognisable.
  const types = storedTypes ?? Int32Array.from(tokens, (t) => (isBytePiece(t) ? TokenType.byte : TokenType.normal));

  const isSpm = model === 'llama';
  if (!isSpm && model !== 'gpt2') {
    g.fail('tokenizer.ggml.model', `is "${model}": only "llama" (SentencePiece) and "gpt2" (byte-level BPE) are supported`);
  }
  // llama.cpp's defaults where the file does not say.
  const bosId = g.id('tokenizer.ggml.bos_token_id', n) ?? (isSpm ? 1 : undefined);
  const eosId = g.id('tokenizer.ggml.eos_token_id', n) ?? (isSpm ? 2 : undefined);
  const unkId = g.id('tokenizer.ggml.unknown_token_id', n) ?? (isSpm ? 0 : undefined);
  g.id('tokenizer.ggml.padding_token_id', n);
  const eosIds = [eosId, g.id('tokenizer.ggml.eot_token_id', n), g.id('tokenizer.ggml.eom_token_id', n)]
    .filter((id): id is number => id !== undefined);
  const chatTemplate = g.string('tokenizer.chat_template');
  // llama.cpp's converter writes a named template as tokenizer.chat_template.<name>.
  const toolUseTemplate = g.string('tokenizer.chat_template.tool_use');
  const addEos = g.bool('tokenizer.ggml.add_eos_token') ?? false;

  if (isSpm) {
    const scores = g.numbers('tokenizer.ggml.scores', n) ?? new Float32Array(n);
    const json = spmTokenizerJSON({
      pieces: tokens, scores, types, unkId,
      addSpacePrefix: g.bool('tokenizer.ggml.add_space_prefix') ?? true,
    });
    return new HFTokenizer({
      json, source, kind: 'gguf', bosId, eosIds, chatTemplate, toolUseTemplate, pieces: tokens,
      addBos: g.bool('tokenizer.ggml.add_bos_token') ?? true, addEos,
    });
  }

  const merges = g.strings('tokenizer.ggml.merges');
  if (merges === undefined) g.fail('tokenizer.ggml.merges', 'is missing (a "gpt2" vocabulary needs its merges)');
  const preName = g.string('tokenizer.ggml.pre');
  const rule = preTokenizerRule(preName);
  if (!rule) {
    g.fail('tokenizer.ggml.pre', `is "${preName}", a pre-tokenizer this engine does not know (known: ${supportedPreTokenizers().join(', ')})`);
  }
  const json = byteLevelTokenizerJSON({ tokens, types, merges, preTokenizer: rule }, source);
  return new HFTokenizer({
    json, source, kind: 'gguf', bosId, eosIds, chatTemplate, toolUseTemplate, pieces: tokens,
    addBos: g.bool('tokenizer.ggml.add_bos_token') ?? rule.addBos, addEos,
  });
}
