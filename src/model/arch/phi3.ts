// Phi-3 / Phi-3.5 / Phi-4-mini (HF model_type "phi3", GGUF "phi3"): the Llama graph (LlamaGraph)
// with three differences, all handled here and in spec fields LlamaGraph honours:
// - Q, K and V are one fused weight (HF self_attn.qkv_proj, GGUF attn_qkv: rows Q, then K, then V),
//   and gate and up another (HF mlp.gate_up_proj, GGUF ffn_up with 2·ffnDim rows: gate, then up —
//   llama.cpp runs it fused, its SwiGLU taking silu of the first half times the second). Files keep
//   them fused (llama.cpp's converter does, and its loader expects them so); they are split into
//   the graph's attn_q/k/v and ffn_gate/up at load, by whole rows, so quantized blocks stay whole.
// - LongRoPE ("longrope", formerly "su"): per-pair frequency divisors, long or short by the
//   context (spec.ts), and cos/sin scaled by an attention factor. GGUF stores the divisors as the
//   rope_factors_long/short.weight tensors and the factor as phi3.rope.scaling.attn_factor.
// - Partial rotary (Phi-4-mini, partial_rotary_factor 0.75): RoPE over the first dims of a head.
// Phi-3 has no biases; Phi-4-mini ties its embeddings. Phi-3-small ("phi3small": block-sparse
// attention, GeGLU) and the MoE variants are other graphs and are refused by name.
import type { ConfigReader } from '../config-reader.js';
import type { ManifestEntry } from '../manifest.js';
import type { ModelSpec, RopeScaling } from '../spec.js';
import { llamaManifest } from './llama.js';

/** One part of a fused stored weight: the graph weight it becomes and how many rows it takes. */
export interface WeightSplit {
  name: string;
  rows: number;
}

/** HF per-layer names of the fused tensors → their GGUF suffixes (tensor-names.ts). */
export const PHI3_HF_LAYER_NAMES: Readonly<Record<string, string>> = {
  'self_attn.qkv_proj.weight': 'attn_qkv.weight',
  'mlp.gate_up_proj.weight': 'ffn_up.weight',
};

/** GGUF names of LongRoPE's per-pair divisors ([dims / 2] each, F32), as llama.cpp names them. */
export const ROPE_FACTORS_LONG = 'rope_factors_long.weight';
export const ROPE_FACTORS_SHORT = 'rope_factors_short.weight';

/** The tensors of a Phi-3 file: Llama's, with Q/K/V and gate/up fused. */
export function phi3Manifest(s: ModelSpec): ManifestEntry[] {
  const qkvRows = (s.nHeads + 2 * s.nKVHeads) * s.headDim;
  const out: ManifestEntry[] = [];
  for (const e of llamaManifest(s)) {
    if (/\.attn_[kv]\.weight$/.test(e.name) || /\.ffn_gate\.weight$/.test(e.name)) continue;
    if (/\.attn_q\.weight$/.test(e.name)) out.push({ name: e.name.replace('attn_q', 'attn_qkv'), shape: [qkvRows, s.dim] });
    else if (/\.ffn_up\.weight$/.test(e.name)) out.push({ name: e.name, shape: [2 * s.ffnDim, s.dim] });
    else out.push(e);
  }
  return out;
}

/** How each fused stored weight splits into the weights LlamaGraph reads, by rows in order. */
export function phi3WeightSplits(s: ModelSpec): Map<string, WeightSplit[]> {
  const qDim = s.nHeads * s.headDim, kvDim = s.nKVHeads * s.headDim;
  const splits = new Map<string, WeightSplit[]>();
  for (let i = 0; i < s.nLayers; i++) {
    const b = `blk.${i}.`;
    splits.set(b + 'attn_qkv.weight', [
      { name: b + 'attn_q.weight', rows: qDim }, { name: b + 'attn_k.weight', rows: kvDim }, { name: b + 'attn_v.weight', rows: kvDim },
    ]);
    splits.set(b + 'ffn_up.weight', [{ name: b + 'ffn_gate.weight', rows: s.ffnDim }, { name: b + 'ffn_up.weight', rows: s.ffnDim }]);
  }
  return splits;
}

/** model_type values of the Phi family that are other graphs, with why they are refused. */
export const PHI_REFUSED_MODEL_TYPES: Readonly<Record<string, string>> = {
  phi3small: 'Phi-3-small (model_type "phi3small": block-sparse attention and a GeGLU MLP) is not supported; '
    + 'Phi-3-mini/medium, Phi-3.5-mini and Phi-4-mini (model_type "phi3") are',
  phimoe: 'Phi-3.5-MoE (model_type "phimoe") is not supported: mixture-of-experts models are not',
};

/**
 * Phi-3's part of config.json: refuses MoE variants; partial_rotary_factor → rope.dims. Phi-3's
 * sliding_window is not applied: llama.cpp disables it for phi3, and the oracle is llama.cpp.
 */
export function phi3FromHFConfig(c: ConfigReader, spec: ModelSpec): ModelSpec {
  for (const key of ['num_local_experts', 'num_experts', 'n_routed_experts']) {
    if (c.has(key)) c.fail(`"${key}": mixture-of-experts Phi models are not supported`);
  }
  const dims = phi3RotaryDims(c, spec.headDim);
  return { ...spec, rope: { ...spec.rope, ...(dims !== spec.headDim ? { dims } : {}) } };
}

/** Rotated dims of a head: ⌊headDim · partial_rotary_factor⌋ (transformers), even and > 0. */
export function phi3RotaryDims(c: ConfigReader, headDim: number): number {
  const factor = c.number('partial_rotary_factor', 1, { positive: true });
  if (factor > 1) c.fail(`"partial_rotary_factor" must be at most 1, got ${factor}`);
  const dims = Math.floor(headDim * factor);
  if (dims < 2 || dims % 2 !== 0) c.fail(`"partial_rotary_factor" ${factor} of a head of ${headDim} gives ${dims} rotated dims (must be even and positive)`);
  return dims;
}

/**
 * rope_scaling of type "longrope" / "su": short_factor and long_factor lists of [dims / 2], the
 * attention factor as transformers computes it (rope_scaling.attention_factor if given, else
 * √(1 + ln s / ln orig) with s = max_position_embeddings / original_max_position_embeddings > 1,
 * else 1; llama.cpp's converter writes the same number as rope.scaling.attn_factor).
 * @param c the whole config; @param s its rope_scaling object
 */
export function longRopeFromHF(c: ConfigReader, s: ConfigReader, headDim: number): RopeScaling {
  const dims = phi3RotaryDims(c, headDim);
  const maxPos = c.count('max_position_embeddings', 2048);
  const orig = c.count('original_max_position_embeddings', maxPos);
  const factors = (key: string): Float32Array => {
    const v = s.raw(key);
    if (!Array.isArray(v) || v.length !== dims / 2 || v.some((x) => typeof x !== 'number' || !(x > 0) || !Number.isFinite(x))) {
      s.fail(`"rope_scaling.${key}" must be a list of ${dims / 2} positive numbers (one per rotated pair)`);
    }
    return Float32Array.from(v as number[]);
  };
  const scale = maxPos / orig;
  const computed = scale > 1 ? Math.sqrt(1 + Math.log(scale) / Math.log(orig)) : 1;
  return {
    type: 'longrope', short: factors('short_factor'), long: factors('long_factor'), originalContextLength: orig,
    attnFactor: s.number('attention_factor', computed, { positive: true }),
  };
}

/**
 * LongRoPE from a GGUF file, as llama.cpp reads it: both factor tensors, the attention factor
 * (rope.scaling.attn_factor, default 1) and the original context (default: the context length).
 * @returns the scaling, or undefined when the file has neither factor tensor
 */
export function longRopeFromGGUF(
  g: ConfigReader, a: string, spec: ModelSpec, factors: { short?: Float32Array; long?: Float32Array },
): RopeScaling | undefined {
  if (!factors.short && !factors.long) return undefined;
  if (!factors.short || !factors.long) g.fail(`${ROPE_FACTORS_LONG} and ${ROPE_FACTORS_SHORT} come together; one is missing`);
  return {
    type: 'longrope', short: factors.short, long: factors.long,
    originalContextLength: g.count(`${a}.rope.scaling.original_context_length`, spec.contextLength),
    attnFactor: g.number(`${a}.rope.scaling.attn_factor`, 1, { positive: true }),
  };
}
