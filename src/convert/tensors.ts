// The tensors of a converted file, each produced only when the writer reaches it: read from the
// source, decoded to f32, Q/K rows reordered where the source is in Hugging Face's RoPE layout,
// encoded in its planned type. At most one tensor (its stored bytes, its f32 values and its new
// bytes) is in memory at a time.
import type { GGUFTensorToWrite } from '../formats/gguf.js';
import { elementCount } from '../formats/tensor.js';
import { dequantize, quantize } from '../quant/dequantize.js';
import { byteSize, type DType } from '../quant/dtype.js';
import type { ModelFiles } from '../model/load.js';
import { llama3RopeFactors, permuteForGGUF } from '../model/rope-layout.js';
import { ROPE_FACTORS_LONG, ROPE_FACTORS_SHORT } from '../model/arch/phi3.js';
import type { ModelSpec } from '../model/spec.js';
import type { PlannedTensor } from './tensor-types.js';

const FLOAT_TYPES: ReadonlySet<DType> = new Set(['F32', 'F16', 'BF16']);

/**
 * What the file will hold, in order: rope_freqs.weight first (as convert_hf_to_gguf.py generates
 * it before the model's tensors), then the architecture's tensors in manifest order, without
 * output.weight when the embeddings are tied (llama.cpp then uses token_embd.weight for both).
 */
export function plannedTensors(files: ModelFiles): PlannedTensor[] {
  const { spec } = files;
  const out: PlannedTensor[] = [];
  if (spec.rope.scaling.type === 'llama3' || spec.rope.scaling.type === 'factors') {
    out.push({ name: 'rope_freqs.weight', shape: [spec.headDim / 2] });
  }
  // Phi-3's LongRoPE divisors, long then short, as convert_hf_to_gguf.py generates them.
  if (spec.rope.scaling.type === 'longrope') {
    const half = (spec.rope.dims ?? spec.headDim) / 2;
    out.push({ name: ROPE_FACTORS_LONG, shape: [half] }, { name: ROPE_FACTORS_SHORT, shape: [half] });
  }
  for (const e of files.manifest) {
    if (!files.tensors.has(e.name)) continue;
    if (e.name === 'output.weight' && spec.tiedEmbeddings) continue;
    out.push({ name: e.name, shape: e.shape });
  }
  return out;
}

/** The Llama per-pair RoPE divisors the file stores, from the spec's scaling. */
function ropeFactors(spec: ModelSpec): Float32Array {
  const s = spec.rope.scaling;
  if (s.type === 'factors') return s.factors;
  if (s.type === 'llama3') return llama3RopeFactors(spec.headDim, spec.rope.theta, s);
  throw new Error(`rope_freqs.weight: the model has ${s.type} RoPE scaling, not per-pair factors`);
}

/**
 * How many heads a tensor's rows hold when they must be reordered for llama.cpp's interleaved
 * RoPE (Llama's and SmolLM3's Q and K from a Hugging Face folder), else undefined. GGUF and
 * llama2.c sources are interleaved already; Qwen2/3 and Phi-3 run HF's layout in llama.cpp too.
 */
function permutedHeads(spec: ModelSpec, name: string): number | undefined {
  if ((spec.arch !== 'llama' && spec.arch !== 'smollm3') || spec.rope.style !== 'halves') return undefined;
  if (/\.attn_q\.(weight|bias)$/.test(name)) return spec.nHeads;
  if (/\.attn_k\.(weight|bias)$/.test(name)) return spec.nKVHeads;
  return undefined;
}

export function tensorsToWrite(files: ModelFiles, planned: readonly PlannedTensor[], types: ReadonlyMap<string, DType>): GGUFTensorToWrite[] {
  const { spec } = files;
  return planned.map((t): GGUFTensorToWrite => {
    const dtype = types.get(t.name)!;
    const count = elementCount(t.shape);
    const byteLength = byteSize(dtype, count);
    if (t.name === 'rope_freqs.weight') {
      return { name: t.name, dtype, shape: t.shape, data: { byteLength, bytes: () => quantize(dtype, ropeFactors(spec)) } };
    }
    const scaling = spec.rope.scaling;
    if (scaling.type === 'longrope' && (t.name === ROPE_FACTORS_LONG || t.name === ROPE_FACTORS_SHORT)) {
      const factors = t.name === ROPE_FACTORS_LONG ? scaling.long : scaling.short;
      return { name: t.name, dtype, shape: t.shape, data: { byteLength, bytes: () => quantize(dtype, factors) } };
    }
    const source = files.tensors.get(t.name)!;
    const heads = permutedHeads(spec, t.name);
    if (source.dtype !== dtype && !FLOAT_TYPES.has(source.dtype) && !FLOAT_TYPES.has(dtype)) {
      // llama-quantize refuses this too unless told --allow-requantize.
      throw new Error(`${files.path}: ${t.name} is stored as ${source.dtype}; requantizing it to ${dtype} would add a second `
        + 'rounding error on top of the first — convert from the F32/F16/BF16 original, or choose f32, f16 or bf16');
    }
    return {
      name: t.name, dtype, shape: t.shape,
      data: {
        byteLength,
        bytes: async () => {
          const stored = await files.read(t.name);
          if (source.dtype === dtype && heads === undefined) return stored;
          let values = dequantize(source.dtype, stored, count);
          if (heads !== undefined) values = permuteForGGUF(values, t.shape, heads);
          return quantize(dtype, values);
        },
      },
    };
  });
}
