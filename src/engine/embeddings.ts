// Embeddings as the library gives them (Model.embed): which pooling a model's vectors use, the
// inputs checked and fitted to the context, and the pooled vector finished — normalised, cut to
// fewer dimensions. The pooling itself runs in the scheduler (scheduler.ts), batched with
// everything else.
import type { ModelSpec, Pooling } from '../model/spec.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

/** One text, several texts, one input as token ids, or several inputs as token ids. */
export type EmbedInput = string | readonly string[] | readonly number[] | readonly (readonly number[])[];

export interface EmbedOptions {
  /**
   * Keep the first `dimensions` values of each vector, then scale it to unit length again
   * (Matryoshka truncation). Only for models whose files declare an embedding pooling (embedding
   * models); 1..hidden size.
   */
  dimensions?: number;
  /** Cut an input longer than the context to fit (keeping the tokenizer's special start and end tokens) instead of throwing. Default false. */
  truncate?: boolean;
  /** Scale each vector to unit L2 length. Default: as the model declares (see embeddingPooling). */
  normalize?: boolean;
  /** Add the tokenizer's special tokens (BOS, or EOS where the model asks for it) to text inputs. Default true. */
  addSpecial?: boolean;
  /** Stops the computation; embed() then rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface EmbedResult {
  /** One vector per input, in input order. */
  embeddings: Float32Array[];
  /** Tokens each input was embedded from (after truncation). */
  tokenCounts: number[];
  /** All inputs' tokens together. */
  promptTokens: number;
  /** The pooling applied, and whether the vectors were normalised. */
  pooling: Pooling;
}

/** A bad input or option of embed(); `field` names it ("input", "input[2]", "dimensions"). */
export class EmbedInputError extends RangeError {
  constructor(message: string, readonly field: string) {
    super(message);
    this.name = 'EmbedInputError';
  }
}

/**
 * The pooling a model's embeddings use: what its files declare, else the last token's hidden
 * state scaled to unit length. A causal model's last position is the only one that has seen the
 * whole input, and it is what llama.cpp returns for a model without a pooling type
 * (llama_get_embeddings_ith(-1), as node-llama-cpp's getEmbeddingFor and Ollama's llama runner
 * read it), with Ollama's /api/embed normalising it.
 */
export function embeddingPooling(spec: ModelSpec): Pooling {
  return spec.pooling ? { ...spec.pooling } : { type: 'last', normalize: true };
}

/** `dimensions`, checked against the model: undefined when not asked for. */
export function checkDimensions(dimensions: number | undefined, spec: ModelSpec): number | undefined {
  if (dimensions === undefined) return undefined;
  if (!spec.pooling) {
    throw new EmbedInputError('dimensions: this model declares no embedding pooling (it is not an embedding model), '
      + 'so its vectors cannot be shortened', 'dimensions');
  }
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > spec.dim) {
    throw new EmbedInputError(`dimensions must be an integer in 1..${spec.dim}, got ${dimensions}`, 'dimensions');
  }
  return dimensions;
}

/** The inputs of one call, each a text or token ids, checked for shape. */
export function embedInputs(input: EmbedInput): (string | readonly number[])[] {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input)) throw new EmbedInputError('input must be a string, an array of strings, an array of token ids or an array of arrays of token ids', 'input');
  const items = input as readonly unknown[];
  if (items.length === 0) return [];
  if (items.every((x) => typeof x === 'number')) return [items as readonly number[]];
  return items.map((x, i) => {
    if (typeof x === 'string') return x;
    if (Array.isArray(x) && x.every((t) => typeof t === 'number')) return x as readonly number[];
    throw new EmbedInputError(`input[${i}] must be a string or an array of token ids`, `input[${i}]`);
  });
}

/**
 * One input's token ids, fitted to `contextLength`: text is encoded; ids are checked against the
 * vocabulary. Too long: cut when `truncate` (a text keeps its special start and end tokens, as
 * Ollama re-adds them after cutting), else an EmbedInputError.
 */
export function embeddingTokens(
  tokenizer: Tokenizer, vocabSize: number, contextLength: number, input: string | readonly number[], index: number,
  o: Pick<EmbedOptions, 'truncate' | 'addSpecial'>,
): number[] {
  const field = `input[${index}]`;
  let ids: number[];
  if (typeof input === 'string') {
    ids = tokenizer.encode(input, { addSpecial: o.addSpecial ?? true });
    if (ids.length > contextLength && o.truncate) ids = cutText(tokenizer, input, ids, contextLength, o.addSpecial ?? true);
  } else {
    ids = [...input];
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
        throw new EmbedInputError(`${field}: token id ${id} is outside the vocabulary (0..${vocabSize - 1})`, field);
      }
    }
    if (ids.length > contextLength && o.truncate) ids.length = contextLength;
  }
  if (ids.length === 0) throw new EmbedInputError(`${field} is empty (no tokens)`, field);
  if (ids.length > contextLength) {
    throw new EmbedInputError(`${field} has ${ids.length} tokens; the context holds ${contextLength} (truncate to cut it)`, field);
  }
  return ids;
}

/** A text's ids cut to `limit`: the text's own tokens shortened, the special tokens around them kept. */
function cutText(tokenizer: Tokenizer, text: string, ids: number[], limit: number, addSpecial: boolean): number[] {
  if (!addSpecial) return ids.slice(0, limit);
  const bare = tokenizer.encode(text, { addSpecial: false });
  const extra = ids.length - bare.length;
  // Where the text's tokens sit among the special ones (BOS before, EOS after, or both).
  let head = -1;
  for (let p = 0; p <= extra && head < 0; p++) {
    if (bare.every((t, i) => ids[p + i] === t)) head = p;
  }
  if (head < 0 || extra >= limit) return ids.slice(0, limit);
  return [...ids.slice(0, head), ...bare.slice(0, limit - extra), ...ids.slice(head + bare.length)];
}

/**
 * A pooled vector made final: scaled to unit length when `normalize`; when `dimensions` is set,
 * cut to its first `dimensions` values and scaled to unit length again (whatever `normalize`
 * says, as Matryoshka embeddings are compared).
 */
export function finishEmbedding(pooled: Float32Array, normalize: boolean, dimensions: number | undefined): Float32Array {
  for (const v of pooled) if (!Number.isFinite(v)) throw new Error('the embedding has non-finite values (the model\'s weights or input overflowed)');
  let out = pooled;
  if (normalize) out = l2Normalize(out);
  if (dimensions !== undefined && dimensions < out.length) out = l2Normalize(out.slice(0, dimensions));
  return out;
}

/** `v` scaled to unit L2 length, in place (a zero vector stays zero). */
export function l2Normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const scale = 1 / Math.max(Math.sqrt(sum), 1e-12);
  for (let i = 0; i < v.length; i++) v[i] = v[i]! * scale;
  return v;
}
