// The op interface. An architecture's forward graph (src/model/arch/) is written once against
// these ops; a backend implements them and never knows which model it runs.
//
// Conventions:
// - Activations are row-major f32 matrices [rows, cols]; row r belongs to the r-th token of the
//   batch. Ops may be queued (GPU command encoders, worker pools): results are only guaranteed
//   visible to the host through read().
// - A weight matrix of a linear layer is [n, k] (n outputs, k inputs), in any weight dtype.
// - Buffers are created once per session at their largest size; a forward pass over fewer tokens
//   works on rowsView()s of them, so nothing is allocated per token.
import type { TensorInfo } from '../formats/tensor.js';

/** A weight tensor uploaded to the backend (opaque). */
export interface Weight {
  readonly name: string;
  /** Outermost first, as in TensorInfo. */
  readonly shape: readonly number[];
}

/** An f32 activation matrix owned by the backend (opaque). */
export interface Activations {
  readonly rows: number;
  readonly cols: number;
}

export interface KVCacheShape {
  nLayers: number;
  nKVHeads: number;
  headDim: number;
  /** Number of sequence slots (concurrent sequences). */
  maxSeqs: number;
  /** Positions per slot. */
  ctxLen: number;
}

export interface KVCache {
  readonly shape: KVCacheShape;
}

/** Where each token of one forward call goes. */
export interface BatchLayout {
  /** [nTokens] position of each token within its sequence. */
  positions: Int32Array;
  /** [nTokens] KV-cache slot of each token's sequence. */
  seqs: Int32Array;
}

export type RopeStyle =
  /** Rotate pairs (2i, 2i+1): Meta's original layout, llama2.c, llama.cpp's LLAMA GGUF weights. */
  | 'interleaved'
  /** Rotate pairs (i, i + d/2): Hugging Face's rotate_half (GPT-NeoX style). */
  | 'halves';

export interface RopeParams {
  style: RopeStyle;
  /** [dims / 2] angle per position for each rotated pair (scaling already applied). */
  invFreq: Float32Array;
  /**
   * How many dimensions at the start of each head are rotated (partial rotary, Phi-4-mini: 96 of
   * 128); the rest pass through unchanged. Pairs are formed within these dims: (2i, 2i+1) when
   * interleaved, (i, i + dims/2) in halves. Default headDim; always 2·invFreq.length.
   */
  dims?: number;
  /**
   * Multiplier of cos and sin, so rotated values are scaled by it (LongRoPE's attention factor,
   * applied to the rotated dims only, as llama.cpp's and Hugging Face's RoPE do). Default 1.
   */
  scale?: number;
}

/** The rotated dims of `p` for heads of headDim, checked against invFreq. */
export function ropeDims(p: RopeParams, headDim: number): number {
  const dims = p.dims ?? headDim;
  if (dims % 2 !== 0 || dims > headDim || p.invFreq.length !== dims / 2) {
    throw new RangeError(`rope: ${dims} rotated dims with ${p.invFreq.length} frequencies in heads of ${headDim}`);
  }
  return dims;
}

export interface AttentionParams {
  nHeads: number;
  nKVHeads: number;
  headDim: number;
  /** Multiplier of q·k, usually 1/sqrt(headDim). */
  scale: number;
  /** Attend only to the last `slidingWindow` positions (Mistral); undefined for full attention. */
  slidingWindow?: number;
  /** Scores (q·k·scale) become softcap·tanh(score / softcap) before the softmax (Gemma 2); undefined: none. */
  softcap?: number;
}

export interface Backend {
  readonly name: string;

  /** Uploads one weight (any dtype in WEIGHT_DTYPES). Must not keep `data`: the caller reuses its buffer. */
  loadWeight(info: TensorInfo, data: Uint8Array): Weight;
  createActivations(rows: number, cols: number): Activations;
  /** The first `rows` rows of `a`, sharing its storage. */
  rowsView(a: Activations, rows: number): Activations;
  createKVCache(shape: KVCacheShape): KVCache;

  /** out[t, :] = table[tokens[t], :] · scale (scale default 1; Gemma scales by √dim) */
  embed(out: Activations, table: Weight, tokens: Int32Array, scale?: number): void;
  /**
   * out[t, :] = x[t, :] / rms(x[t, :]) * weight. A weight shorter than the row, of a length g that
   * divides it, normalises each group of g columns on its own: out[t, j·g:(j+1)·g] =
   * x[t, j·g:(j+1)·g] / rms(x[t, j·g:(j+1)·g]) * weight (Qwen3's per-head norm of Q and K, whose
   * rows are heads·headDim and whose weight is [headDim]).
   */
  rmsNorm(out: Activations, x: Activations, weight: Weight, eps: number): void;
  /** out[t, n] = Σ_k x[t, k] · w[n, k] (+ bias[n]) */
  matmul(out: Activations, x: Activations, w: Weight, bias?: Weight): void;
  /**
   * Rotates each head of x ([t, nHeads·headDim]) in place by its token's position: the first
   * rope.dims of each head (all by default), cos and sin scaled by rope.scale.
   */
  rope(x: Activations, batch: BatchLayout, nHeads: number, headDim: number, rope: RopeParams): void;
  /**
   * Writes k and v ([t, nKVHeads·headDim]) into the cache at each token's (slot, position), then
   * computes causal attention of q ([t, nHeads·headDim]) over each token's own sequence up to and
   * including its position. Grouped-query: query head h reads KV head h / (nHeads / nKVHeads).
   */
  attention(
    out: Activations, q: Activations, k: Activations, v: Activations,
    cache: KVCache, layer: number, batch: BatchLayout, params: AttentionParams,
  ): void;
  /** out = silu(gate) * up, elementwise */
  siluMul(out: Activations, gate: Activations, up: Activations): void;
  /**
   * out = gelu(gate) * up, elementwise, with GELU's tanh approximation (PyTorch's
   * gelu(approximate='tanh'), transformers' gelu_pytorch_tanh): gelu(x) = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
   * out may alias gate.
   */
  geluMul(out: Activations, gate: Activations, up: Activations): void;
  /** x = cap · tanh(x / cap), elementwise, in place (Gemma 2's final logit soft-capping). */
  softcap(x: Activations, cap: number): void;
  /** out = a + b, elementwise (out may alias a) */
  add(out: Activations, a: Activations, b: Activations): void;
  /**
   * sum = a + b, then normed = rmsNorm(sum, weight, eps) (as rmsNorm above): a residual add and the
   * next block's norm, fused where a backend can do both in one pass over the rows. Optional:
   * without it a graph calls add then rmsNorm, which is its definition. sum may alias a, normed
   * may alias b.
   */
  addRmsNorm?(sum: Activations, normed: Activations, a: Activations, b: Activations, weight: Weight, eps: number): void;
  /** out[i, :] = x[rows[i], :] */
  gatherRows(out: Activations, x: Activations, rows: Int32Array): void;
  /** Copies slot `from`'s first `count` positions into slot `to` (prefix sharing). */
  copyKV(cache: KVCache, from: number, to: number, count: number): void;

  /**
   * Waits for queued work and copies the activations out: into `into` when given (at least
   * rows·cols long; returned as a view of that length), else into a new array.
   */
  read(a: Activations, into?: Float32Array): Promise<Float32Array>;
  /** Counters a backend keeps about its own work (GPU dispatches, times), for benchmarks; optional. */
  profile?(): Promise<Record<string, number>>;
  dispose(): void;
}
