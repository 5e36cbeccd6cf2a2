// ModelSpec: the normalised hyper-parameters the engine runs on, whatever file they came from.
// Raw config.json / GGUF metadata / llama2.c headers are parsed into this in their own modules
// (hf-config.ts, gguf-spec.ts, llama2c-spec.ts) and never reach the graph.
import type { RopeParams, RopeStyle } from '../backends/backend.js';

/**
 * Graph families. Each has one file in arch/ (Gemma, Phi-3 and SmolLM3 run LlamaGraph with the
 * spec fields below; their files hold what differs: names, fused tensors, config).
 */
export type ArchName = 'llama' | 'qwen2' | 'qwen3' | 'gemma' | 'gemma2' | 'gemma3' | 'phi3' | 'smollm3';

export type RopeScaling =
  | { type: 'none' }
  /** Positions divided by `factor` (HF "linear"). */
  | { type: 'linear'; factor: number }
  /** Llama 3.1+ frequency-dependent scaling. */
  | {
    type: 'llama3';
    factor: number;
    lowFreqFactor: number;
    highFreqFactor: number;
    originalContextLength: number;
  }
  /** Per-pair divisors of the frequency, as GGUF stores Llama 3 scaling (rope_freqs.weight). */
  | { type: 'factors'; factors: Float32Array }
  /**
   * Phi-3's LongRoPE ("longrope", formerly "su"): per-pair divisors, `long` when the context a
   * sequence may use exceeds originalContextLength, else `short` (as llama.cpp picks them, once
   * per context), and cos/sin scaled by attnFactor.
   */
  | { type: 'longrope'; short: Float32Array; long: Float32Array; originalContextLength: number; attnFactor: number };

/** RoPE frequencies: base and scaling. */
export interface RopeFrequencies {
  theta: number;
  scaling: RopeScaling;
}

/** What one layer's attention does where layers differ (Gemma 2/3: sliding-window and global layers). */
export interface LayerAttention {
  /** Attend only to the last `slidingWindow` positions; undefined for full attention. */
  slidingWindow: number | undefined;
  /** This layer's RoPE frequencies (Gemma 3's local layers have their own base); absent: spec.rope's. */
  rope?: RopeFrequencies;
}

/** How one sequence's final hidden states become one embedding: their mean, the first token's (CLS), or the last token's. */
export type PoolingType = 'mean' | 'cls' | 'last';

/** An embedding pooling a model's files declare (pooling-config.ts). */
export interface Pooling {
  type: PoolingType;
  /** Scale the pooled vector to unit L2 length. */
  normalize: boolean;
}

export interface ModelSpec {
  arch: ArchName;
  /** The model_type / general.architecture the spec was read from (llama, mistral, qwen2, qwen3). */
  modelType: string;
  vocabSize: number;
  /** Hidden size (d_model). */
  dim: number;
  nLayers: number;
  nHeads: number;
  nKVHeads: number;
  headDim: number;
  /** Feed-forward inner size. */
  ffnDim: number;
  /** Longest context the model was trained for. */
  contextLength: number;
  normEps: number;
  rope: {
    theta: number;
    style: RopeStyle;
    scaling: RopeScaling;
    /** Rotated dims at the start of each head (Phi-4-mini's partial_rotary_factor); absent = headDim. */
    dims?: number;
  };
  /** Which layers apply RoPE (SmolLM3's no-RoPE layers), [nLayers]; absent = every layer. */
  ropeLayers?: readonly boolean[];
  /** Output projection shares the token embedding matrix. */
  tiedEmbeddings: boolean;
  /** Q, K and V projections carry biases (Qwen2). */
  qkvBias: boolean;
  /** Each head of Q and K is RMS-normalised (weights attn_q_norm / attn_k_norm, [headDim]) before RoPE (Qwen3). */
  qkNorm: boolean;
  /** Mistral sliding-window attention size, if the model uses one. */
  slidingWindow: number | undefined;
  /** Token embeddings are multiplied by this (Gemma: √dim); absent: 1. */
  embedScale?: number;
  /** The gated MLP's activation: silu (absent) or GELU, tanh approximation (Gemma's gelu_pytorch_tanh). */
  activation?: 'silu' | 'gelu';
  /**
   * RMS norms of the attention output and of the MLP output before each is added to the residual
   * stream (weights post_attention_norm / post_ffw_norm, [dim]; Gemma 2/3).
   */
  postNorms?: boolean;
  /** Multiplier of q·k; absent: 1/√headDim (Gemma 2/3: query_pre_attn_scalar^-½). */
  attentionScale?: number;
  /** Attention scores become cap·tanh(score / cap) before the softmax (Gemma 2). */
  attnSoftcap?: number;
  /** Logits become cap·tanh(logit / cap) (Gemma 2). */
  finalSoftcap?: number;
  /** Per-layer attention where layers differ, [nLayers]; absent: every layer uses slidingWindow and rope. */
  layers?: LayerAttention[];
  /**
   * The embedding pooling the files declare (GGUF <arch>.pooling_type, sentence-transformers
   * modules.json); absent for a model that declares none (a generative model).
   */
  pooling?: Pooling;
}

/**
 * RoPE angle per position for each rotated pair, scaling applied: [dims / 2].
 * @param freqs a layer's own base and scaling (LayerAttention.rope); default spec.rope's
 * @param contextLength positions per sequence the model runs with (picks LongRoPE's factors)
 */
export function ropeInvFreq(spec: ModelSpec, freqs: RopeFrequencies = spec.rope, contextLength?: number): Float32Array {
  const dims = spec.rope.dims ?? spec.headDim;
  const half = dims / 2;
  const inv = new Float32Array(half);
  const { theta, scaling } = freqs;
  for (let i = 0; i < half; i++) {
    // Partial rotary: the exponent runs over the rotated dims (HF and llama.cpp alike).
    let f = 1 / Math.pow(theta, (2 * i) / dims);
    if (scaling.type === 'factors') {
      f /= scaling.factors[i]!;
    } else if (scaling.type === 'longrope') {
      f /= longRopeFactors(scaling, contextLength)[i]!;
    } else if (scaling.type === 'linear') {
      f /= scaling.factor;
    } else if (scaling.type === 'llama3') {
      // Long wavelengths are slowed by `factor`, short ones kept, the band between blended.
      const lowFreqWavelen = scaling.originalContextLength / scaling.lowFreqFactor;
      const highFreqWavelen = scaling.originalContextLength / scaling.highFreqFactor;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowFreqWavelen) {
        f /= scaling.factor;
      } else if (wavelen >= highFreqWavelen) {
        const smooth = (scaling.originalContextLength / wavelen - scaling.lowFreqFactor)
          / (scaling.highFreqFactor - scaling.lowFreqFactor);
        f = (1 - smooth) * (f / scaling.factor) + smooth * f;
      }
    }
    inv[i] = f;
  }
  return inv;
}

/** LongRoPE's divisors for a context: long ones past the original context, as llama.cpp chooses. */
export function longRopeFactors(
  s: Extract<RopeScaling, { type: 'longrope' }>, contextLength: number | undefined,
): Float32Array {
  return contextLength !== undefined && contextLength > s.originalContextLength ? s.long : s.short;
}

/**
 * The rope op's parameters for a model run with `contextLength` positions per sequence.
 * @param freqs a layer's own base and scaling (LayerAttention.rope); default spec.rope's
 */
export function ropeParams(spec: ModelSpec, contextLength?: number, freqs: RopeFrequencies = spec.rope): RopeParams {
  const s = freqs.scaling;
  return {
    style: spec.rope.style, invFreq: ropeInvFreq(spec, freqs, contextLength),
    ...(spec.rope.dims !== undefined && spec.rope.dims !== spec.headDim ? { dims: spec.rope.dims } : {}),
    ...(s.type === 'longrope' && s.attnFactor !== 1 ? { scale: s.attnFactor } : {}),
  };
}

/** Parameter count implied by the spec (embedding counted once when tied). */
export function parameterCount(spec: ModelSpec): number {
  const { dim, nLayers, headDim, nHeads, nKVHeads, ffnDim, vocabSize } = spec;
  const q = dim * nHeads * headDim, kv = 2 * dim * nKVHeads * headDim, o = nHeads * headDim * dim;
  const bias = spec.qkvBias ? (nHeads + 2 * nKVHeads) * headDim : 0;
  const qkNorm = spec.qkNorm ? 2 * headDim : 0;
  const postNorms = spec.postNorms ? 2 * dim : 0;
  const perLayer = q + kv + o + bias + qkNorm + 3 * dim * ffnDim + 2 * dim + postNorms;
  return vocabSize * dim * (spec.tiedEmbeddings ? 1 : 2) + nLayers * perLayer + dim;
}

/** Bytes of the KV cache (keys and values, f32) for `slots` sequences of `ctx` positions. */
export function kvCacheBytes(s: ModelSpec, ctx: number, slots: number): number {
  return 2 * s.nLayers * slots * ctx * s.nKVHeads * s.headDim * 4;
}

/** Tokens one forward pass takes at most: the batch the graph's activations are sized for. */
export function graphBatchTokens(batchSize: number | undefined, ctx: number, slots: number): number {
  return Math.max(Math.min(batchSize ?? 512, ctx * slots), slots);
}

/**
 * Bytes of the graph's activations (f32): per batch token the residual stream, its norm, Q, K, V,
 * the attention output, a projection and the two FFN rows; per output row the last hidden state,
 * its norm and the logits. Matches the buffers LlamaGraph allocates.
 */
export function activationBytes(s: ModelSpec, batchTokens: number, outputs: number): number {
  const qDim = s.nHeads * s.headDim, kvDim = s.nKVHeads * s.headDim;
  const perToken = 3 * s.dim + 2 * qDim + 2 * kvDim + 2 * s.ffnDim + (s.qkNorm ? qDim + kvDim : 0);
  return 4 * (batchTokens * perToken + outputs * (2 * s.dim + s.vocabSize));
}
