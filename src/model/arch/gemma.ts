// The Gemma family: Gemma 1 (gemma), Gemma 2 (gemma2), Gemma 3 text (gemma3_text, and the text part
// of gemma3). The graph is LlamaGraph's, with the spec fields it honours:
//
//   x = embed(tokens) · √dim                                   (embedScale)
//   for each layer l:
//     q, k = rope_l(qn(Wq·norm(x))), rope_l(kn(Wk·norm(x)))    (qn, kn: Gemma 3's per-head norms)
//     a = attention_l(q, k, Wv·norm(x)), scores · query_pre_attn_scalar^-½, cap·tanh(s/cap) (Gemma 2)
//     h = x + postNorm(Wo · a)                                  (postNorms: Gemma 2/3)
//     x = h + postNorm(Wdown · (gelu_tanh(Wgate·norm(h)) * Wup·norm(h)))
//   logits = cap·tanh(Wembed · norm(x) / cap)                   (finalSoftcap: Gemma 2)
//
// where attention_l is windowed on the sliding layers (Gemma 2: every other layer from the first;
// Gemma 3: five of every six) and rope_l uses the layer's own base (Gemma 3: local layers 10000
// unscaled, global layers rope_theta with rope_scaling).
//
// Norm weights: transformers' Gemma RMSNorm computes x̂·(1 + w) and stores w; llama.cpp's converter
// stores w + 1 in the GGUF and runs a plain x̂·w. Minerva runs the GGUF form: a Hugging Face
// folder's norm weights get +1 at load (gemmaNormShift), so both files load to the same numbers.
import type { ConfigReader } from '../config-reader.js';
import type { ArchName, LayerAttention, ModelSpec, RopeFrequencies, RopeScaling } from '../spec.js';

export type GemmaArch = 'gemma' | 'gemma2' | 'gemma3';

export function isGemma(arch: ArchName): arch is GemmaArch {
  return arch === 'gemma' || arch === 'gemma2' || arch === 'gemma3';
}

/** model_type values of the family and the graph each runs. */
export const GEMMA_HF_MODEL_TYPES: Readonly<Record<string, GemmaArch>> = {
  gemma: 'gemma',
  gemma2: 'gemma2',
  gemma3_text: 'gemma3',
  gemma3: 'gemma3',
};

/** Gemma 3's local (sliding-window) layers: their RoPE base, unscaled (transformers' rope_local_base_freq default; llama.cpp's fixed value). */
const GEMMA3_LOCAL_ROPE_BASE = 10000;
/** llama.cpp's fixed layer patterns: a layer is local unless (l + 1) % pattern === 0. */
const GGUF_SLIDING_PATTERN: Readonly<Record<GemmaArch, number | undefined>> = { gemma: undefined, gemma2: 2, gemma3: 6 };

/**
 * transformers' defaults for keys Gemma configs leave out (Gemma3TextConfig and Gemma2Config):
 * Gemma 3's published config.json files state little beyond the sizes.
 */
const HF_DEFAULTS: Readonly<Record<GemmaArch, {
  vocabSize: number; heads: number; kvHeads: number; headDim: number; contextLength: number;
  ropeTheta: number; slidingWindow: number; queryPreAttnScalar: number;
  attnSoftcap?: number; finalSoftcap?: number;
}>> = {
  gemma: { vocabSize: 256000, heads: 16, kvHeads: 16, headDim: 256, contextLength: 8192, ropeTheta: 10000, slidingWindow: 0, queryPreAttnScalar: 256 },
  gemma2: {
    vocabSize: 256000, heads: 8, kvHeads: 4, headDim: 256, contextLength: 8192, ropeTheta: 10000, slidingWindow: 4096,
    queryPreAttnScalar: 256, attnSoftcap: 50, finalSoftcap: 30,
  },
  gemma3: { vocabSize: 262208, heads: 8, kvHeads: 4, headDim: 256, contextLength: 131072, ropeTheta: 1e6, slidingWindow: 4096, queryPreAttnScalar: 256 },
};

/**
 * config.json of a Gemma model → ModelSpec. `gemma3` (the multimodal model) is read from its
 * text_config; its vision weights are skipped at load (tensor-names.ts).
 * @param ropeScaling reads a rope_scaling object (hf-config.ts)
 */
export function specFromGemmaHFConfig(
  root: ConfigReader, modelType: string, ropeScaling: (c: ConfigReader) => RopeScaling,
): ModelSpec {
  const arch = GEMMA_HF_MODEL_TYPES[modelType]!;
  let c = root;
  if (modelType === 'gemma3') {
    const text = root.object('text_config');
    if (!text) root.fail('model_type "gemma3" needs "text_config" (the language model\'s settings)');
    c = text;
  }
  const d = HF_DEFAULTS[arch];
  // transformers runs every Gemma with the tanh approximation (Gemma 1's configs say "gelu" and
  // are overridden by hidden_activation's default).
  const actKey = c.has('hidden_activation') ? 'hidden_activation' : 'hidden_act';
  const act = c.string(actKey, 'gelu_pytorch_tanh');
  if (act !== 'gelu_pytorch_tanh' && !(act === 'gelu' && arch === 'gemma')) {
    c.fail(`${actKey} "${act}" is not supported for ${modelType} (only gelu_pytorch_tanh)`);
  }
  if (c.boolean('attention_bias', false)) c.fail('"attention_bias": true is not supported');
  if (c.boolean('use_bidirectional_attention', false)) c.fail('"use_bidirectional_attention": true (an embedding Gemma) is not supported');

  const dim = c.count('hidden_size');
  const nLayers = c.count('num_hidden_layers');
  const nHeads = c.count('num_attention_heads', d.heads);
  const nKVHeads = c.count('num_key_value_heads', d.kvHeads);
  if (nHeads % nKVHeads !== 0) c.fail(`num_attention_heads (${nHeads}) is not a multiple of num_key_value_heads (${nKVHeads})`);
  const headDim = c.count('head_dim', d.headDim);
  if (headDim % 2 !== 0) c.fail(`head dimension ${headDim} must be even for RoPE`);

  const rope: RopeFrequencies = { theta: c.number('rope_theta', d.ropeTheta, { positive: true }), scaling: ropeScaling(c) };
  const spec: ModelSpec = {
    arch,
    modelType,
    vocabSize: c.count('vocab_size', d.vocabSize),
    dim,
    nLayers,
    nHeads,
    nKVHeads,
    headDim,
    ffnDim: c.count('intermediate_size'),
    contextLength: c.count('max_position_embeddings', d.contextLength),
    normEps: c.number('rms_norm_eps', 1e-6, { positive: true }),
    rope: { ...rope, style: 'halves' },
    tiedEmbeddings: root.boolean('tie_word_embeddings', c.boolean('tie_word_embeddings', true)),
    qkvBias: false,
    qkNorm: arch === 'gemma3',
    slidingWindow: undefined,
    embedScale: Math.sqrt(dim),
    activation: 'gelu',
  };
  if (arch === 'gemma') return spec;

  const scalar = c.number('query_pre_attn_scalar', d.queryPreAttnScalar, { positive: true });
  const attnSoftcap = c.has('attn_logit_softcapping') ? c.number('attn_logit_softcapping', undefined, { positive: true }) : d.attnSoftcap;
  const finalSoftcap = c.has('final_logit_softcapping') ? c.number('final_logit_softcapping', undefined, { positive: true }) : d.finalSoftcap;
  // Gemma2Config's defaults apply only when the key is absent; a null in config.json turns capping off.
  const explicitNull = (key: string) => c.raw(key) === null;
  const window = c.count('sliding_window', d.slidingWindow);
  const sliding = slidingLayers(c, arch, nLayers);
  const localRope: RopeFrequencies | undefined = arch === 'gemma3'
    ? { theta: c.number('rope_local_base_freq', GEMMA3_LOCAL_ROPE_BASE, { positive: true }), scaling: { type: 'none' } }
    : undefined;
  return {
    ...spec,
    slidingWindow: window,
    postNorms: true,
    attentionScale: 1 / Math.sqrt(scalar),
    ...(attnSoftcap !== undefined && !explicitNull('attn_logit_softcapping') ? { attnSoftcap } : {}),
    ...(finalSoftcap !== undefined && !explicitNull('final_logit_softcapping') ? { finalSoftcap } : {}),
    layers: sliding.map((isSliding): LayerAttention => (isSliding
      ? { slidingWindow: window, ...(localRope ? { rope: localRope } : {}) }
      : { slidingWindow: undefined })),
  };
}

/** Which layers attend through the window: layer_types when given, else the family's pattern. */
function slidingLayers(c: ConfigReader, arch: 'gemma2' | 'gemma3', nLayers: number): boolean[] {
  const types = c.raw('layer_types');
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== nLayers) c.fail(`"layer_types" must be an array of ${nLayers} strings`);
    return types.map((t, i) => {
      if (t === 'sliding_attention') return true;
      if (t === 'full_attention') return false;
      return c.fail(`"layer_types"[${i}] is ${JSON.stringify(t)}; expected "sliding_attention" or "full_attention"`);
    });
  }
  const pattern = arch === 'gemma2' ? 2 : c.count('sliding_window_pattern', 6);
  return Array.from({ length: nLayers }, (_, l) => (l + 1) % pattern !== 0);
}

/**
 * The query scale llama.cpp gives a Gemma 2/3 GGUF (it stores no query_pre_attn_scalar): 1/√(dim /
 * heads) for the 27B models, which it knows by their layer count, else 1/√headDim.
 */
function ggufAttentionScale(arch: GemmaArch, s: ModelSpec): number {
  const is27B = (arch === 'gemma2' && s.nLayers === 46) || (arch === 'gemma3' && s.nLayers === 62);
  return 1 / Math.sqrt(is27B ? Math.floor(s.dim / s.nHeads) : s.headDim);
}

/** The layers llama.cpp runs for a Gemma 2/3 GGUF with this window: its fixed pattern, Gemma 3's local base. */
function ggufLayers(a: 'gemma2' | 'gemma3', nLayers: number, window: number): LayerAttention[] {
  const pattern = GGUF_SLIDING_PATTERN[a]!;
  const localRope: RopeFrequencies | undefined = a === 'gemma3' ? { theta: GEMMA3_LOCAL_ROPE_BASE, scaling: { type: 'none' } } : undefined;
  return Array.from({ length: nLayers }, (_, l): LayerAttention => ((l + 1) % pattern !== 0
    ? { slidingWindow: window, ...(localRope ? { rope: localRope } : {}) }
    : { slidingWindow: undefined }));
}

/**
 * GGUF metadata of a Gemma model → the Gemma fields of its spec, read as llama.cpp reads them;
 * `base` holds what every architecture has (gguf-spec.ts).
 */
export function gemmaSpecFromGGUF(g: ConfigReader, a: GemmaArch, base: ModelSpec): ModelSpec {
  const spec: ModelSpec = {
    ...base, qkNorm: a === 'gemma3', embedScale: Math.sqrt(base.dim), activation: 'gelu', slidingWindow: undefined,
  };
  if (a === 'gemma') return spec;
  // llama.cpp: Gemma 2's window defaults to 4096; Gemma 3 without one attends fully everywhere.
  const window = g.has(`${a}.attention.sliding_window`) ? g.count(`${a}.attention.sliding_window`) : a === 'gemma2' ? 4096 : undefined;
  const out: ModelSpec = { ...spec, postNorms: true, attentionScale: ggufAttentionScale(a, base) };
  if (a === 'gemma2') {
    out.attnSoftcap = g.number(`${a}.attn_logit_softcapping`, 50, { positive: true });
    out.finalSoftcap = g.number(`${a}.final_logit_softcapping`, 30, { positive: true });
  }
  if (window !== undefined) {
    out.slidingWindow = window;
    out.layers = ggufLayers(a, base.nLayers, window);
  }
  return out;
}

/**
 * GGUF metadata entries llama.cpp reads for a Gemma model beyond the Llama ones (gguf-metadata.ts
 * writes those), after checking that llama.cpp would run the spec as it is: it fixes the layer
 * pattern, Gemma 3's local RoPE base and the query scale, and reads soft-caps only for Gemma 2.
 */
export function gemmaGGUFMetadata(spec: ModelSpec): { key: string; value: number }[] {
  const a = spec.arch as GemmaArch;
  const problems: string[] = [];
  if (a !== 'gemma') {
    const scale = ggufAttentionScale(a, spec);
    if (Math.abs((spec.attentionScale ?? 0) - scale) > 1e-6 * scale) {
      problems.push(`query scale ${spec.attentionScale} (llama.cpp uses ${scale} for this shape)`);
    }
    const expected = spec.slidingWindow === undefined ? undefined : ggufLayers(a, spec.nLayers, spec.slidingWindow);
    if (JSON.stringify(spec.layers) !== JSON.stringify(expected)) {
      problems.push(`the sliding-window layers or their RoPE bases differ from the pattern llama.cpp fixes for ${a}`);
    }
  }
  if (a !== 'gemma2' && (spec.attnSoftcap !== undefined || spec.finalSoftcap !== undefined)) problems.push(`soft-capping (llama.cpp's ${a} has none)`);
  if (a === 'gemma2' && (spec.attnSoftcap === undefined || spec.finalSoftcap === undefined)) problems.push('no soft-capping (llama.cpp always caps Gemma 2)');
  if (problems.length > 0) {
    throw new Error(`${spec.modelType} model: cannot be written as a GGUF that llama.cpp runs the same way: ${problems.join('; ')}`);
  }
  const out: { key: string; value: number }[] = [];
  if (spec.attnSoftcap !== undefined) out.push({ key: `${a}.attn_logit_softcapping`, value: spec.attnSoftcap });
  if (spec.finalSoftcap !== undefined) out.push({ key: `${a}.final_logit_softcapping`, value: spec.finalSoftcap });
  return out;
}

/** Whether a Hugging Face folder of this spec stores its norm weights as w in x̂·(1 + w). */
export function hfNormsAreOffset(spec: ModelSpec): boolean {
  return isGemma(spec.arch);
}

/** Norm weights of an offset-norm model (every 1-D *norm.weight tensor, including Gemma 3's q/k norms). */
export function isOffsetNorm(ggufName: string): boolean {
  return ggufName.endsWith('norm.weight');
}

/**
 * The config.json transformers would write for a Gemma spec (the inverse of specFromGemmaHFConfig,
 * for random-weight test models and `minerva bench --synthetic`).
 */
export function gemmaHFConfig(spec: ModelSpec): Record<string, unknown> {
  const a = spec.arch as GemmaArch;
  const scaling = spec.rope.scaling;
  const config: Record<string, unknown> = {
    architectures: [{ gemma: 'GemmaForCausalLM', gemma2: 'Gemma2ForCausalLM', gemma3: 'Gemma3ForCausalLM' }[a]],
    model_type: a === 'gemma3' ? 'gemma3_text' : a,
    hidden_size: spec.dim, intermediate_size: spec.ffnDim, num_hidden_layers: spec.nLayers,
    num_attention_heads: spec.nHeads, num_key_value_heads: spec.nKVHeads, head_dim: spec.headDim,
    max_position_embeddings: spec.contextLength, rms_norm_eps: spec.normEps, rope_theta: spec.rope.theta,
    vocab_size: spec.vocabSize, tie_word_embeddings: spec.tiedEmbeddings, hidden_activation: 'gelu_pytorch_tanh',
    attention_bias: false,
    ...(scaling.type === 'linear' ? { rope_scaling: { rope_type: 'linear', factor: scaling.factor } } : {}),
  };
  if (a === 'gemma') return config;
  const local = spec.layers?.find((l) => l.slidingWindow !== undefined);
  return {
    ...config,
    query_pre_attn_scalar: Math.round(1e6 / (spec.attentionScale ?? 1 / Math.sqrt(spec.headDim)) ** 2) / 1e6,
    attn_logit_softcapping: spec.attnSoftcap ?? null,
    final_logit_softcapping: spec.finalSoftcap ?? null,
    sliding_window: spec.slidingWindow ?? null,
    layer_types: (spec.layers ?? []).map((l) => (l.slidingWindow !== undefined ? 'sliding_attention' : 'full_attention')),
    ...(a === 'gemma3' ? { rope_local_base_freq: local?.rope?.theta ?? GEMMA3_LOCAL_ROPE_BASE } : {}),
  };
}
