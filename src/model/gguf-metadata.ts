// ModelSpec → GGUF metadata, the keys llama.cpp's converter writes for the Llama family (the
// inverse of gguf-spec.ts): general.*, then <arch>.* hyper-parameters, then the vocabulary the
// caller brings, then general.quantization_version, in the order convert_hf_to_gguf.py adds them.
import type { GGUFMetadataEntry } from '../formats/gguf.js';
import { GGUF_POOLING_TYPES } from './pooling-config.js';
import type { ModelSpec } from './spec.js';
import { gemmaGGUFMetadata, isGemma } from './arch/gemma.js';
import { checkSmolLM3GGUFLayers } from './arch/smollm3.js';

/** llama.cpp's file types (llama.h LLAMA_FTYPE_*) of the files Minerva writes: general.file_type. */
export const LLAMA_FTYPE = {
  ALL_F32: 0, MOSTLY_F16: 1, MOSTLY_Q4_0: 2, MOSTLY_Q8_0: 7, MOSTLY_Q4_K_M: 15, MOSTLY_Q6_K: 18, MOSTLY_BF16: 32,
  MOSTLY_IQ4_XS: 30,
  MOSTLY_MXFP4_MOE: 38,
  MOSTLY_Q2_K: 10, MOSTLY_Q3_K_S: 11, MOSTLY_Q3_K_M: 12, MOSTLY_Q5_K_S: 16, MOSTLY_Q5_K_M: 17,
  MOSTLY_Q4_1: 3, MOSTLY_Q5_0: 8, MOSTLY_Q5_1: 9, MOSTLY_IQ4_NL: 25,
} as const;

/** ggml's GGML_QNT_VERSION: the layout version of its quantized blocks. */
export const GGML_QUANTIZATION_VERSION = 2;

export interface ModelMetadataOptions {
  /** general.name. */
  name: string;
  /** general.file_type: one of LLAMA_FTYPE. */
  fileType: number;
  /** tokenizer.* entries. */
  vocab: readonly GGUFMetadataEntry[];
}

/**
 * Every metadata entry of a model file. The architecture is spec.arch (a Mistral or llama2.c model
 * is "llama" to llama.cpp). RoPE scaling: "linear" as rope.scaling.*; Llama 3's goes into the
 * rope_freqs.weight tensor (rope-layout.ts), and per-pair factors read from a GGUF stay one.
 */
export function ggufModelMetadata(spec: ModelSpec, o: ModelMetadataOptions): GGUFMetadataEntry[] {
  const a = spec.arch;
  if (a === 'smollm3') checkSmolLM3GGUFLayers(spec);
  const u32 = (key: string, value: number): GGUFMetadataEntry => ({ key: `${a}.${key}`, type: 'u32', value });
  const f32 = (key: string, value: number): GGUFMetadataEntry => ({ key: `${a}.${key}`, type: 'f32', value });
  const out: GGUFMetadataEntry[] = [
    { key: 'general.architecture', type: 'string', value: a },
    { key: 'general.type', type: 'string', value: 'model' },
    { key: 'general.name', type: 'string', value: o.name },
    u32('block_count', spec.nLayers),
    u32('context_length', spec.contextLength),
    u32('embedding_length', spec.dim),
    u32('feed_forward_length', spec.ffnDim),
    u32('attention.head_count', spec.nHeads),
    u32('attention.head_count_kv', spec.nKVHeads),
    f32('rope.freq_base', spec.rope.theta),
    f32('attention.layer_norm_rms_epsilon', spec.normEps),
  ];
  // Written, as by the converter, only where the head size is not dim / heads (llama.cpp's default).
  if (spec.headDim * spec.nHeads !== spec.dim) out.push(u32('attention.key_length', spec.headDim), u32('attention.value_length', spec.headDim));
  out.push(
    { key: 'general.file_type', type: 'u32', value: o.fileType },
    u32('vocab_size', spec.vocabSize),
    u32('rope.dimension_count', spec.rope.dims ?? spec.headDim),
  );
  // Phi-3's LongRoPE, as convert_hf_to_gguf.py writes it (the divisors go into rope_factors_* tensors).
  const scaling = spec.rope.scaling;
  if (scaling.type === 'longrope') {
    out.push(u32('rope.scaling.original_context_length', scaling.originalContextLength), f32('rope.scaling.attn_factor', scaling.attnFactor));
  }
  if (spec.rope.scaling.type === 'linear') {
    out.push({ key: `${a}.rope.scaling.type`, type: 'string', value: 'linear' }, f32('rope.scaling.factor', spec.rope.scaling.factor));
  }
  // llama.cpp's Llama graph has no sliding window and ignores the key; Minerva reads it back, so a
  // converted Mistral attends as the original does (gguf-spec.ts).
  if (spec.slidingWindow !== undefined) out.push(u32('attention.sliding_window', spec.slidingWindow));
  // An embedding model's pooling, as convert_hf_to_gguf.py reads it from sentence-transformers' files.
  if (spec.pooling) out.push(u32('pooling_type', GGUF_POOLING_TYPES[spec.pooling.type]));
  // Gemma 2's soft-caps (and a refusal where llama.cpp would run the spec differently).
  if (isGemma(spec.arch)) for (const e of gemmaGGUFMetadata(spec)) out.push({ key: e.key, type: 'f32', value: e.value });
  out.push(...o.vocab, { key: 'general.quantization_version', type: 'u32', value: GGML_QUANTIZATION_VERSION });
  return out;
}
