// Random-weight Llama-family models: a shape → a ModelSpec, deterministic random weights scaled
// as a trained model's (activations O(1), peaked logits), written as a Hugging Face folder
// (config.json + SafeTensors + tokenizer) and as GGUF, the way transformers and llama.cpp's
// convert_hf_to_gguf.py lay them out. Tests use them for shape, format and engine-agreement
// checks; `minerva bench --synthetic` for real model dimensions without downloading a model.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '../engine/rng.js';
import { writeSafeTensorsSharded, type TensorToWrite } from '../formats/safetensors.js';
import { writeGGUF, type GGUFMetadataEntry, type GGUFTensorToWrite } from '../formats/gguf.js';
import { quantize } from '../quant/dequantize.js';
import { byteSize, type DType } from '../quant/dtype.js';
import { archManifest } from './arch/index.js';
import { ROPE_FACTORS_LONG, ROPE_FACTORS_SHORT } from './arch/phi3.js';
import { ropeLayersByInterval, SMOLLM3_GGUF_NO_ROPE_INTERVAL } from './arch/smollm3.js';
import { hfNameFromGGUF } from './tensor-names.js';
import { gemmaHFConfig, hfNormsAreOffset, isGemma, isOffsetNorm } from './arch/gemma.js';
import { specFromHFConfig } from './hf-config.js';
import { ggufModelMetadata, LLAMA_FTYPE } from './gguf-metadata.js';
import { llama3RopeFactors, permuteForGGUF } from './rope-layout.js';
import type { ArchName, ModelSpec, Pooling, RopeScaling } from './spec.js';

export { permuteForGGUF };

export interface RandomModelShape {
  arch: ArchName;
  dim: number;
  nLayers: number;
  nHeads: number;
  nKVHeads: number;
  /** Default dim / nHeads; Qwen3 models set their own (config.json head_dim). */
  headDim?: number;
  ffnDim: number;
  tied: boolean;
  /** Default 32000 (the Llama-2 vocabulary size). */
  vocabSize?: number;
  contextLength?: number;
  ropeTheta?: number;
  /** Llama 3.1-style RoPE scaling. */
  llama3Rope?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContextLength: number };
  /** An embedding model's pooling: written as sentence-transformers modules (HF) and <arch>.pooling_type (GGUF). */
  pooling?: Pooling;
  /** Gemma 2/3: the window of the sliding layers (Gemma 2: even layers; Gemma 3: five of six). */
  slidingWindow?: number;
  /** Gemma 2: attention and final logit soft-caps. */
  attnSoftcap?: number;
  finalSoftcap?: number;
  /** Gemma 3: linear RoPE scaling of the global layers. */
  linearRope?: number;
  /** Phi-3: the fraction of each head RoPE rotates (partial_rotary_factor). */
  partialRotary?: number;
  /**
   * Phi-3 LongRoPE: divisors per rotated pair and the original context; the attention factor is
   * derived from contextLength / originalContextLength as transformers and llama.cpp derive it.
   */
  longRope?: { short: number[]; long: number[]; originalContextLength: number };
}

/** The spec as the HF loader will read it back (halves RoPE layout). */
export function randomSpec(s: RandomModelShape): ModelSpec {
  if (isGemma(s.arch)) return randomGemmaSpec(s);
  const headDim = s.headDim ?? s.dim / s.nHeads, contextLength = s.contextLength ?? 512;
  const dims = s.partialRotary !== undefined ? Math.floor(headDim * s.partialRotary) : headDim;
  let scaling: RopeScaling = s.llama3Rope ? { type: 'llama3', ...s.llama3Rope } : { type: 'none' };
  if (s.longRope) {
    const orig = s.longRope.originalContextLength, ratio = contextLength / orig;
    scaling = {
      type: 'longrope', short: Float32Array.from(s.longRope.short), long: Float32Array.from(s.longRope.long),
      originalContextLength: orig, attnFactor: ratio > 1 ? Math.sqrt(1 + Math.log(ratio) / Math.log(orig)) : 1,
    };
  }
  return {
    arch: s.arch, modelType: s.arch, vocabSize: s.vocabSize ?? 32000, dim: s.dim, nLayers: s.nLayers,
    nHeads: s.nHeads, nKVHeads: s.nKVHeads, headDim, ffnDim: s.ffnDim,
    contextLength, normEps: 1e-5,
    rope: { theta: s.ropeTheta ?? 10000, style: 'halves', scaling, ...(dims !== headDim ? { dims } : {}) },
    tiedEmbeddings: s.tied, qkvBias: s.arch === 'qwen2', qkNorm: s.arch === 'qwen3', slidingWindow: undefined,
    ...(s.arch === 'smollm3' ? { ropeLayers: ropeLayersByInterval(s.nLayers, SMOLLM3_GGUF_NO_ROPE_INTERVAL) } : {}),
    ...(s.pooling ? { pooling: { ...s.pooling } } : {}),
  };
}

/**
 * A Gemma spec, read from the config.json its shape gives (so it is what the HF loader reads back),
 * with llama.cpp's fixed choices: local layers by the family's pattern, Gemma 3's local RoPE base
 * 10000, the query scaled by head_dim^-½.
 */
function randomGemmaSpec(s: RandomModelShape): ModelSpec {
  const pattern = s.arch === 'gemma2' ? 2 : 6;
  const headDim = s.headDim ?? s.dim / s.nHeads;
  const config = {
    model_type: s.arch === 'gemma3' ? 'gemma3_text' : s.arch, hidden_size: s.dim, intermediate_size: s.ffnDim,
    num_hidden_layers: s.nLayers, num_attention_heads: s.nHeads, num_key_value_heads: s.nKVHeads, head_dim: headDim,
    max_position_embeddings: s.contextLength ?? 512, rms_norm_eps: 1e-6, vocab_size: s.vocabSize ?? 32000,
    rope_theta: s.ropeTheta ?? 10000, tie_word_embeddings: true, query_pre_attn_scalar: headDim,
    ...(s.linearRope ? { rope_scaling: { rope_type: 'linear', factor: s.linearRope } } : {}),
    ...(s.arch !== 'gemma' ? {
      sliding_window: s.slidingWindow ?? 4096,
      attn_logit_softcapping: s.attnSoftcap ?? null, final_logit_softcapping: s.finalSoftcap ?? null,
      layer_types: Array.from({ length: s.nLayers }, (_, l) => ((l + 1) % pattern !== 0 ? 'sliding_attention' : 'full_attention')),
    } : {}),
  };
  return specFromHFConfig(config, `random ${s.arch} model`);
}

/** Weights by GGUF name, in Hugging Face row order; data may be produced on demand. */
export type RandomWeights = Map<string, { shape: number[]; data: Float32Array | (() => Float32Array) }>;

/**
 * Standard deviation and mean of a tensor's values: norms near 1, matrices 1/√fan-in. A model that
 * scales its embeddings (Gemma, by √dim) gets a table that scaling brings to std 2, as trained
 * Gemma tables are small: at std 1 the scaled embedding would outweigh every block.
 */
function scaleOf(name: string, shape: readonly number[], spec: ModelSpec): { scale: number; offset: number } {
  if (name.endsWith('norm.weight')) return { scale: 0.1, offset: 1 };
  if (name.endsWith('.bias')) return { scale: 0.2, offset: 0 };
  if (name === 'token_embd.weight') return { scale: spec.embedScale ? 2 / spec.embedScale : 1, offset: 0 };
  if (name === 'output.weight') return { scale: 4 / Math.sqrt(shape[1]!), offset: 0 };
  return { scale: 1 / Math.sqrt(shape[1]!), offset: 0 };
}

/**
 * With per-head Q/K norms (Qwen3), the heads of Wq and Wk at scales ¼, 1 and 4 in turn, and norm
 * weights that vary as trained ones do: the norm then changes what attention sees (per head, not
 * per row), so a model run without it, or with the whole row normalised, parts from llama.cpp.
 */
function qkNormShaping(spec: ModelSpec, name: string, data: Float32Array): void {
  if (!spec.qkNorm) return;
  if (/\.attn_[qk]\.weight$/.test(name)) {
    const rowsPerHead = spec.headDim * spec.dim;
    for (let i = 0; i < data.length; i++) data[i]! *= 4 ** ((Math.floor(i / rowsPerHead) % 3) - 1);
  } else if (/\.attn_[qk]_norm\.weight$/.test(name)) {
    for (let i = 0; i < data.length; i++) data[i] = 1 + 5 * (data[i]! - 1); // std 0.5 around 1
  }
}

/**
 * Every tensor of the spec's manifest, computed now from one normally distributed stream (tests:
 * the exact values are part of what their expectations were checked against).
 */
export function randomWeights(spec: ModelSpec, seed: number): RandomWeights {
  const rng = new Rng(seed);
  const normal = () => {
    const u = Math.max(rng.next(), 1e-12), v = rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const out: RandomWeights = new Map();
  for (const e of archManifest(spec)) {
    if (e.optional) continue; // output.weight of a tied model
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const { scale, offset } = scaleOf(e.name, e.shape, spec);
    for (let i = 0; i < n; i++) data[i] = offset + scale * normal();
    qkNormShaping(spec, e.name, data);
    out.set(e.name, { shape: e.shape, data });
  }
  return out;
}

/**
 * The same scales, each tensor produced only when asked for, from its own stream (seeded by the
 * seed and the tensor's position), uniform with the normal's variance: fast enough for a billion
 * values, and a model larger than memory is written one tensor at a time.
 */
export function lazyRandomWeights(spec: ModelSpec, seed: number): RandomWeights {
  const out: RandomWeights = new Map();
  archManifest(spec).filter((e) => !e.optional).forEach((e, index) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const { scale, offset } = scaleOf(e.name, e.shape, spec);
    out.set(e.name, {
      shape: e.shape,
      data: () => {
        const rng = new Rng((seed * 1_000_003 + index) >>> 0);
        const data = new Float32Array(n);
        const width = 2 * Math.sqrt(3) * scale; // uniform on [-√3σ, √3σ] has variance σ²
        for (let i = 0; i < n; i++) data[i] = offset + (rng.next() - 0.5) * width;
        qkNormShaping(spec, e.name, data);
        return data;
      },
    });
  });
  return out;
}

const values = (w: { data: Float32Array | (() => Float32Array) }) => (typeof w.data === 'function' ? w.data() : w.data);

/** Stores values as `dtype`; 1-D tensors stay F32, as convert_hf_to_gguf.py keeps norms and biases. */
function storedType(dtype: DType, shape: readonly number[]): DType {
  return shape.length === 1 ? 'F32' : dtype;
}

/** A tensor's bytes in `dtype`, encoded when the writer reaches it. */
function lazyBytes(dtype: DType, shape: readonly number[], produce: () => Float32Array): { byteLength: number; bytes(): Uint8Array } {
  return { byteLength: byteSize(dtype, shape.reduce((a, b) => a * b, 1)), bytes: () => quantize(dtype, produce()) };
}

/** config.json "architectures" (the transformers class) of each graph family. */
const HF_ARCHITECTURES: Readonly<Record<ModelSpec['arch'], string>> = {
  llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', phi3: 'Phi3ForCausalLM',
  smollm3: 'SmolLM3ForCausalLM', gemma: 'GemmaForCausalLM', gemma2: 'Gemma2ForCausalLM', gemma3: 'Gemma3ForCausalLM',
};

/** config.json entries particular to an architecture, as its checkpoints state them. */
function archConfig(spec: ModelSpec): Record<string, unknown> {
  const s = spec.rope.scaling;
  if (spec.arch === 'phi3') {
    return {
      original_max_position_embeddings: s.type === 'longrope' ? s.originalContextLength : spec.contextLength,
      ...(spec.rope.dims !== undefined ? { partial_rotary_factor: spec.rope.dims / spec.headDim } : {}),
      ...(s.type === 'longrope' ? { rope_scaling: { type: 'longrope', short_factor: [...s.short], long_factor: [...s.long] } } : {}),
    };
  }
  if (spec.arch === 'smollm3') {
    return {
      no_rope_layers: (spec.ropeLayers ?? []).map((r) => (r ? 1 : 0)), no_rope_layer_interval: SMOLLM3_GGUF_NO_ROPE_INTERVAL,
      use_sliding_window: false, attention_bias: false, mlp_bias: false,
    };
  }
  return {};
}

const TORCH_DTYPES: Partial<Record<DType, string>> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };

export interface HFTokenizerFiles {
  tokenizerJSON: string;
  tokenizerConfigJSON: string;
}

/** Writes config.json, SafeTensors (sharded when maxShardBytes is small) and the tokenizer files. */
export async function writeHFModel(
  dir: string, spec: ModelSpec, weights: RandomWeights,
  opts: { dtype?: DType; maxShardBytes?: number; tokenizer: HFTokenizerFiles },
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const config = isGemma(spec.arch) ? { ...gemmaHFConfig(spec), bos_token_id: 1, eos_token_id: 2, torch_dtype: TORCH_DTYPES[opts.dtype ?? 'F32'] ?? 'float32' } : {
    architectures: [HF_ARCHITECTURES[spec.arch as 'llama' | 'qwen2' | 'qwen3']],
    model_type: spec.arch, hidden_size: spec.dim, intermediate_size: spec.ffnDim,
    num_attention_heads: spec.nHeads, num_key_value_heads: spec.nKVHeads, num_hidden_layers: spec.nLayers,
    max_position_embeddings: spec.contextLength, rms_norm_eps: spec.normEps, rope_theta: spec.rope.theta,
    tie_word_embeddings: spec.tiedEmbeddings, vocab_size: spec.vocabSize, hidden_act: 'silu',
    bos_token_id: 1, eos_token_id: 2, torch_dtype: TORCH_DTYPES[opts.dtype ?? 'F32'] ?? 'float32',
    // Qwen3's config.json always states its head size (often not hidden_size / heads) and bias.
    ...(spec.arch === 'qwen3' ? { head_dim: spec.headDim, attention_bias: false } : {}),
    ...(spec.rope.scaling.type === 'llama3' ? {
      rope_scaling: {
        rope_type: 'llama3', factor: spec.rope.scaling.factor, low_freq_factor: spec.rope.scaling.lowFreqFactor,
        high_freq_factor: spec.rope.scaling.highFreqFactor,
        original_max_position_embeddings: spec.rope.scaling.originalContextLength,
      },
    } : {}),
    ...archConfig(spec),
  };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const tensors: TensorToWrite[] = [];
  for (const [name, w] of weights) {
    const hf = hfNameFromGGUF(name, spec.arch);
    if (!hf) throw new Error(`no HF name for ${name}`);
    const dtype = storedType(opts.dtype ?? 'F32', w.shape);
    // Gemma's HF norms hold w of x̂·(1 + w); the weights here are the GGUF form 1 + w (arch/gemma.ts).
    const offset = hfNormsAreOffset(spec) && isOffsetNorm(name);
    const produce = offset ? () => values(w).map((v) => v - 1) : () => values(w);
    tensors.push({ name: hf, shape: w.shape, dtype, data: lazyBytes(dtype, w.shape, produce) });
  }
  await writeSafeTensorsSharded(dir, tensors, opts.maxShardBytes ?? Number.MAX_SAFE_INTEGER, { format: 'pt' });
  if (spec.pooling) await writeSentenceTransformersModules(dir, spec);
  await writeFile(path.join(dir, 'tokenizer.json'), opts.tokenizer.tokenizerJSON);
  await writeFile(path.join(dir, 'tokenizer_config.json'), opts.tokenizer.tokenizerConfigJSON);
}

/** modules.json, 1_Pooling/config.json and (when normalising) 2_Normalize/, as sentence-transformers saves a model. */
async function writeSentenceTransformersModules(dir: string, spec: ModelSpec): Promise<void> {
  const pooling = spec.pooling!;
  const modules = [
    { idx: 0, name: '0', path: '', type: 'sentence_transformers.models.Transformer' },
    { idx: 1, name: '1', path: '1_Pooling', type: 'sentence_transformers.models.Pooling' },
    ...(pooling.normalize ? [{ idx: 2, name: '2', path: '2_Normalize', type: 'sentence_transformers.models.Normalize' }] : []),
  ];
  await writeFile(path.join(dir, 'modules.json'), JSON.stringify(modules, null, 2));
  await mkdir(path.join(dir, '1_Pooling'), { recursive: true });
  await writeFile(path.join(dir, '1_Pooling', 'config.json'), JSON.stringify({
    word_embedding_dimension: spec.dim,
    pooling_mode_cls_token: pooling.type === 'cls',
    pooling_mode_mean_tokens: pooling.type === 'mean',
    pooling_mode_max_tokens: false,
    pooling_mode_mean_sqrt_len_tokens: false,
    pooling_mode_weightedmean_tokens: false,
    pooling_mode_lasttoken: pooling.type === 'last',
    include_prompt: true,
  }, null, 2));
  if (pooling.normalize) await mkdir(path.join(dir, '2_Normalize'), { recursive: true });
}

/** general.file_type of a file whose matrices are all `dtype` (llama.cpp's LLAMA_FTYPE). */
const FILE_TYPES: Partial<Record<DType, number>> = {
  F32: LLAMA_FTYPE.ALL_F32, F16: LLAMA_FTYPE.MOSTLY_F16, BF16: LLAMA_FTYPE.MOSTLY_BF16, Q8_0: LLAMA_FTYPE.MOSTLY_Q8_0,
  Q4_0: LLAMA_FTYPE.MOSTLY_Q4_0, Q4_K: LLAMA_FTYPE.MOSTLY_Q4_K_M, Q6_K: LLAMA_FTYPE.MOSTLY_Q6_K,
  IQ4_XS: LLAMA_FTYPE.MOSTLY_IQ4_XS,
  MXFP4: LLAMA_FTYPE.MOSTLY_MXFP4_MOE,
  Q5_K: LLAMA_FTYPE.MOSTLY_Q5_K_S, Q3_K: LLAMA_FTYPE.MOSTLY_Q3_K_S, Q2_K: LLAMA_FTYPE.MOSTLY_Q2_K,
  Q4_1: LLAMA_FTYPE.MOSTLY_Q4_1, Q5_0: LLAMA_FTYPE.MOSTLY_Q5_0, Q5_1: LLAMA_FTYPE.MOSTLY_Q5_1, IQ4_NL: LLAMA_FTYPE.MOSTLY_IQ4_NL,
};

/**
 * Writes the same weights as a GGUF file, as convert_hf_to_gguf.py would: GGUF tensor names,
 * Llama's Q/K rows permuted for interleaved RoPE, 1-D tensors in F32, and `vocab` (tokenizer.*
 * metadata entries). Every matrix is `dtype` (no llama-quantize mix: see src/convert for that),
 * or what `typeOf` names for it (files mixing types, for tests).
 */
export async function writeGGUFModel(
  file: string, spec: ModelSpec, weights: RandomWeights,
  opts: { dtype?: DType; vocab: readonly GGUFMetadataEntry[]; name?: string; typeOf?: (tensor: string) => DType | undefined },
): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const metadata = ggufModelMetadata(spec, { name: opts.name ?? 'minerva-random-test', fileType: FILE_TYPES[dtype] ?? 0, vocab: opts.vocab });
  const tensors: GGUFTensorToWrite[] = [];
  for (const [name, w] of weights) {
    let produce = () => values(w);
    const permuted = spec.arch === 'llama' || spec.arch === 'smollm3';
    if (permuted && /\.attn_q\.weight$/.test(name)) produce = () => permuteForGGUF(values(w), w.shape, spec.nHeads);
    if (permuted && /\.attn_k\.weight$/.test(name)) produce = () => permuteForGGUF(values(w), w.shape, spec.nKVHeads);
    const stored = storedType(opts.typeOf?.(name) ?? dtype, w.shape);
    tensors.push({ name, shape: w.shape, dtype: stored, data: lazyBytes(stored, w.shape, produce) });
  }
  if (spec.rope.scaling.type === 'llama3') {
    const factors = llama3RopeFactors(spec.headDim, spec.rope.theta, spec.rope.scaling);
    tensors.push({ name: 'rope_freqs.weight', dtype: 'F32', shape: [factors.length], data: new Uint8Array(factors.buffer) });
  }
  const s = spec.rope.scaling;
  if (s.type === 'longrope') {
    // As convert_hf_to_gguf.py yields them, before the model's tensors.
    tensors.unshift(...([[ROPE_FACTORS_LONG, s.long], [ROPE_FACTORS_SHORT, s.short]] as const).map(([name, f]) => (
      { name, dtype: 'F32' as const, shape: [f.length], data: new Uint8Array(Float32Array.from(f).buffer) })));
  }
  await writeGGUF(file, { metadata, tensors });
}
