// GGUF metadata (llama.*, qwen2.*, qwen3.*) → ModelSpec.
import { ConfigReader } from './config-reader.js';
import { poolingFromGGUF } from './pooling-config.js';
import type { ArchName, ModelSpec, RopeScaling } from './spec.js';
import { gemmaSpecFromGGUF, isGemma } from './arch/gemma.js';
import { smollm3FromGGUF } from './arch/smollm3.js';

const GGUF_ARCHS: Readonly<Record<string, ArchName>> = {
  llama: 'llama',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  gemma: 'gemma',
  gemma2: 'gemma2',
  gemma3: 'gemma3',
  phi3: 'phi3',
  smollm3: 'smollm3',
};

/**
 * @param meta GGUF metadata by key
 * @param tensorNames names of the tensors in the file (tied embeddings = no output.weight)
 */
export function specFromGGUF(
  meta: ReadonlyMap<string, unknown>, tensorNames: ReadonlySet<string>, file: string,
): ModelSpec {
  const g = new ConfigReader(file, (key) => meta.get(key));
  const a = g.string('general.architecture');
  const arch = GGUF_ARCHS[a];
  if (!arch) {
    g.fail(`general.architecture "${a}" is not supported (supported: ${Object.keys(GGUF_ARCHS).join(', ')})`);
  }
  const dim = g.count(`${a}.embedding_length`);
  const nHeads = g.count(`${a}.attention.head_count`);
  const nKVHeads = g.count(`${a}.attention.head_count_kv`, nHeads);
  if (nHeads % nKVHeads !== 0) g.fail(`${a}.attention.head_count (${nHeads}) is not a multiple of head_count_kv (${nKVHeads})`);
  const headDim = g.count(`${a}.attention.key_length`, Math.floor(dim / nHeads));
  if (g.has(`${a}.attention.value_length`) && g.count(`${a}.attention.value_length`) !== headDim) {
    g.fail(`${a}.attention.value_length differs from key_length: not supported`);
  }
  if (headDim % 2 !== 0) g.fail(`head dimension ${headDim} must be even for RoPE`);
  const ropeDims = g.count(`${a}.rope.dimension_count`, headDim);
  if (ropeDims !== headDim && arch !== 'phi3') g.fail(`partial RoPE (${a}.rope.dimension_count ${ropeDims} of ${headDim}) is not supported`);
  if (ropeDims > headDim || ropeDims % 2 !== 0) g.fail(`${a}.rope.dimension_count ${ropeDims} must be even and at most the head size ${headDim}`);
  if ([...tensorNames].some((n) => n.includes('.ffn_gate_inp.'))) g.fail('mixture-of-experts models are not supported');

  const pooling = poolingFromGGUF(g, a);
  const tokens = meta.get('tokenizer.ggml.tokens');
  const tokenCount = Array.isArray(tokens) ? tokens.length : undefined;
  const vocabSize = g.count(`${a}.vocab_size`, tokenCount);

  const spec: ModelSpec = {
    arch,
    modelType: a,
    vocabSize,
    dim,
    nLayers: g.count(`${a}.block_count`),
    nHeads,
    nKVHeads,
    headDim,
    ffnDim: g.count(`${a}.feed_forward_length`),
    contextLength: g.count(`${a}.context_length`, 2048),
    normEps: g.number(`${a}.attention.layer_norm_rms_epsilon`, 1e-5, { positive: true }),
    rope: {
      theta: g.number(`${a}.rope.freq_base`, 10000, { positive: true }),
      // convert_hf_to_gguf permutes Llama's (and SmolLM3's) Q/K rows to the interleaved layout;
      // Qwen2/3 and Phi-3 keep HF's.
      style: arch === 'llama' || arch === 'smollm3' ? 'interleaved' : 'halves',
      scaling: ropeScaling(g, a),
      ...(ropeDims !== headDim ? { dims: ropeDims } : {}),
    },
    tiedEmbeddings: !tensorNames.has('output.weight'),
    qkvBias: arch === 'qwen2',
    qkNorm: arch === 'qwen3',
    // Not a key llama.cpp reads for these architectures; `minerva convert` writes it for Mistral.
    // Phi-3's converter writes it (0 for none) but llama.cpp disables Phi's sliding window.
    slidingWindow: arch !== 'phi3' && g.has(`${a}.attention.sliding_window`) ? g.count(`${a}.attention.sliding_window`) : undefined,
    ...(pooling ? { pooling } : {}),
  };
  if (isGemma(arch)) return gemmaSpecFromGGUF(g, arch, spec);
  // Phi-3's LongRoPE factors are tensors: load.ts reads them (arch/phi3.ts).
  return arch === 'smollm3' ? smollm3FromGGUF(spec) : spec;
}

function ropeScaling(g: ConfigReader, a: string): RopeScaling {
  const type = g.string(`${a}.rope.scaling.type`, 'none');
  switch (type) {
    case 'none':
      return { type: 'none' };
    case 'linear': {
      const factor = g.number(`${a}.rope.scaling.factor`, 1, { positive: true });
      return factor === 1 ? { type: 'none' } : { type: 'linear', factor };
    }
    default:
      // Llama 3 scaling arrives as the rope_freqs.weight tensor, not as a scaling type.
      return g.fail(`${a}.rope.scaling.type "${type}" is not supported (supported: none, linear)`);
  }
}
