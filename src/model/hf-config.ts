// config.json (Hugging Face transformers) → ModelSpec.
import { ConfigReader } from './config-reader.js';
import type { ArchName, ModelSpec, RopeScaling } from './spec.js';
import { GEMMA_HF_MODEL_TYPES, specFromGemmaHFConfig } from './arch/gemma.js';
import { longRopeFromHF, phi3FromHFConfig, PHI_REFUSED_MODEL_TYPES } from './arch/phi3.js';
import { smollm3FromHFConfig } from './arch/smollm3.js';

/** model_type values we run, and the graph family each uses. */
const HF_MODEL_TYPES: Readonly<Record<string, ArchName>> = {
  llama: 'llama',
  mistral: 'llama',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  phi3: 'phi3',
  smollm3: 'smollm3',
};

export function specFromHFConfig(raw: unknown, file: string): ModelSpec {
  const c = ConfigReader.fromObject(file, raw);
  const modelType = c.string('model_type');
  if (Object.hasOwn(GEMMA_HF_MODEL_TYPES, modelType)) return specFromGemmaHFConfig(c, modelType, (r) => ropeScaling(r, 0));
  const arch = HF_MODEL_TYPES[modelType];
  const refused = PHI_REFUSED_MODEL_TYPES[modelType];
  if (refused) c.fail(refused);
  if (!arch) {
    const supported = [...Object.keys(HF_MODEL_TYPES), ...Object.keys(GEMMA_HF_MODEL_TYPES)];
    c.fail(`model_type "${modelType}" is not supported (supported: ${supported.join(', ')})`);
  }
  const act = c.string('hidden_act', 'silu');
  if (act !== 'silu') c.fail(`hidden_act "${act}" is not supported (only silu)`);
  if (c.boolean('attention_bias', false) && arch !== 'qwen2') c.fail('"attention_bias": true is not supported');
  if (c.boolean('mlp_bias', false)) c.fail('"mlp_bias": true is not supported');

  const dim = c.count('hidden_size');
  const nHeads = c.count('num_attention_heads');
  const nKVHeads = c.count('num_key_value_heads', nHeads);
  if (nHeads % nKVHeads !== 0) {
    c.fail(`num_attention_heads (${nHeads}) is not a multiple of num_key_value_heads (${nKVHeads})`);
  }
  const headDim = c.count('head_dim', Math.floor(dim / nHeads));
  if (!c.has('head_dim') && dim % nHeads !== 0) {
    c.fail(`hidden_size (${dim}) is not a multiple of num_attention_heads (${nHeads})`);
  }
  if (headDim % 2 !== 0) c.fail(`head dimension ${headDim} must be even for RoPE`);

  // Mistral always honours its window; Qwen2 and Qwen3 only when use_sliding_window is set.
  let slidingWindow: number | undefined;
  const qwen = modelType === 'qwen2' || modelType === 'qwen3';
  const windowApplies = modelType === 'mistral' || (qwen && c.boolean('use_sliding_window', false));
  if (windowApplies && c.has('sliding_window')) slidingWindow = c.count('sliding_window');
  if (qwen && slidingWindow !== undefined) {
    c.fail(`use_sliding_window with max_window_layers is not supported for ${modelType}`);
  }

  const spec: ModelSpec = {
    arch,
    modelType,
    vocabSize: c.count('vocab_size'),
    dim,
    nLayers: c.count('num_hidden_layers'),
    nHeads,
    nKVHeads,
    headDim,
    ffnDim: c.count('intermediate_size'),
    contextLength: c.count('max_position_embeddings', 2048),
    normEps: c.number('rms_norm_eps', 1e-6, { positive: true }),
    rope: {
      theta: c.number('rope_theta', 10000, { positive: true }),
      style: 'halves',
      scaling: ropeScaling(c, headDim),
    },
    tiedEmbeddings: c.boolean('tie_word_embeddings', false),
    qkvBias: arch === 'qwen2',
    qkNorm: arch === 'qwen3',
    slidingWindow,
  };
  if (arch === 'phi3') return phi3FromHFConfig(c, spec);
  if (arch === 'smollm3') return smollm3FromHFConfig(c, spec);
  return spec;
}

function ropeScaling(c: ConfigReader, headDim: number): RopeScaling {
  const s = c.object('rope_scaling');
  if (!s) return { type: 'none' };
  const type = s.has('rope_type') ? s.string('rope_type') : s.string('type', 'default');
  switch (type) {
    case 'default':
      return { type: 'none' };
    case 'linear':
      return { type: 'linear', factor: s.number('factor', undefined, { positive: true }) };
    case 'llama3':
      return {
        type: 'llama3',
        factor: s.number('factor', undefined, { positive: true }),
        lowFreqFactor: s.number('low_freq_factor', 1, { positive: true }),
        highFreqFactor: s.number('high_freq_factor', 4, { positive: true }),
        originalContextLength: s.count('original_max_position_embeddings', 8192),
      };
    case 'longrope':
    case 'su':
      if (c.string('model_type') !== 'phi3') break;
      return longRopeFromHF(c, s, headDim);
  }
  return c.fail(`rope_scaling type "${type}" is not supported (supported: linear, llama3; longrope for phi3)`);
}
