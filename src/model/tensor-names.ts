// Tensor names. Inside Minerva every weight goes by its GGUF name (token_embd.weight,
// blk.N.attn_q.weight, ...); Hugging Face names are mapped to those at load.
import { PHI3_HF_LAYER_NAMES } from './arch/phi3.js';
import type { ArchName } from './spec.js';

/** HF per-layer suffix (after "model.layers.N.") → GGUF per-layer suffix (after "blk.N."). */
const HF_LAYER_NAMES: Readonly<Record<string, string>> = {
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attn.q_proj.weight': 'attn_q.weight',
  'self_attn.q_proj.bias': 'attn_q.bias',
  'self_attn.k_proj.weight': 'attn_k.weight',
  'self_attn.k_proj.bias': 'attn_k.bias',
  'self_attn.v_proj.weight': 'attn_v.weight',
  'self_attn.v_proj.bias': 'attn_v.bias',
  'self_attn.o_proj.weight': 'attn_output.weight',
  'self_attn.q_norm.weight': 'attn_q_norm.weight',
  'self_attn.k_norm.weight': 'attn_k_norm.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.gate_proj.weight': 'ffn_gate.weight',
  'mlp.up_proj.weight': 'ffn_up.weight',
  'mlp.down_proj.weight': 'ffn_down.weight',
};

/**
 * Gemma 2/3 name their four norms per layer differently: post_attention_layernorm is the norm of
 * the attention output (not the MLP's input, as in Llama), pre_feedforward_layernorm the MLP's.
 */
const HF_POST_NORM_LAYER_NAMES: Readonly<Record<string, string>> = {
  'post_attention_layernorm.weight': 'post_attention_norm.weight',
  'pre_feedforward_layernorm.weight': 'ffn_norm.weight',
  'post_feedforward_layernorm.weight': 'post_ffw_norm.weight',
};


/**
 * Gemma 3's multimodal checkpoints (model_type gemma3) hold the text model under
 * language_model.model.* (older transformers) or model.language_model.* (newer); the vision tower
 * and its projector are not run here and are skipped.
 */
const HF_MULTIMODAL_SKIPPED = /^(model\.)?(vision_tower|multi_modal_projector)\./;
function textModelName(hfName: string): string {
  if (hfName.startsWith('language_model.model.')) return 'model.' + hfName.slice('language_model.model.'.length);
  if (hfName.startsWith('model.language_model.')) return 'model.' + hfName.slice('model.language_model.'.length);
  if (hfName === 'language_model.lm_head.weight') return 'lm_head.weight';
  return hfName;
}

const HF_GLOBAL_NAMES: Readonly<Record<string, string>> = {
  'model.embed_tokens.weight': 'token_embd.weight',
  'model.norm.weight': 'output_norm.weight',
  'lm_head.weight': 'output.weight',
};

/** Per-layer names an architecture has in place of (or besides) the common ones. */
const HF_LAYER_NAMES_BY_ARCH: Partial<Record<ArchName, Readonly<Record<string, string>>>> = {
  phi3: PHI3_HF_LAYER_NAMES,
  gemma2: HF_POST_NORM_LAYER_NAMES,
  gemma3: HF_POST_NORM_LAYER_NAMES,
};

/** Tensors some HF checkpoints carry that hold nothing the model needs (recomputed buffers). */
const HF_IGNORED = /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/;

/**
 * The GGUF name of an HF tensor name; null for tensors known to be unneeded; undefined for names
 * this model family does not know.
 */
export function ggufNameFromHF(hfName: string, arch?: ArchName): string | null | undefined {
  if (HF_IGNORED.test(hfName)) return null;
  if (arch === 'gemma3') {
    if (HF_MULTIMODAL_SKIPPED.test(hfName)) return null;
    hfName = textModelName(hfName);
  }
  const global = HF_GLOBAL_NAMES[hfName];
  if (global) return global;
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m) return undefined;
  const suffix = (arch && HF_LAYER_NAMES_BY_ARCH[arch]?.[m[2]!]) ?? HF_LAYER_NAMES[m[2]!];
  return suffix ? `blk.${Number(m[1])}.${suffix}` : undefined;
}

/** The HF name of a GGUF tensor name (for writing HF folders and for messages). */
export function hfNameFromGGUF(name: string, arch?: ArchName): string | undefined {
  for (const [hf, gguf] of Object.entries(HF_GLOBAL_NAMES)) if (gguf === name) return hf;
  const m = /^blk\.(\d+)\.(.+)$/.exec(name);
  if (!m) return undefined;
  // The architecture's own names first: Phi-3's ffn_up is HF's fused gate_up_proj, not up_proj.
  for (const table of [arch && HF_LAYER_NAMES_BY_ARCH[arch], HF_LAYER_NAMES]) {
    for (const [hf, gguf] of Object.entries(table ?? {})) {
      if (gguf === m[2]) return `model.layers.${m[1]}.${hf}`;
    }
  }
  return undefined;
}
