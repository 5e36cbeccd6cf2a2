// Random-weight Llama-family models for tests: the same weights written as a Hugging Face folder
// (config.json + SafeTensors + the Llama-2 tokenizer) and as GGUF (with the same vocabulary), the
// way transformers and llama.cpp's convert_hf_to_gguf.py lay them out. Random weights are fine for
// shape, format and engine-agreement checks; trained behaviour is tested on real models.
import { mkdir, copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Rng } from '../../src/engine/rng.js';
import { FIXTURES } from './fixtures.js';
import { writeSafeTensorsSharded, type TensorToWrite } from '../../src/formats/safetensors.js';
import {
  metadataEntries, openGGUF, writeGGUF, type GGUFMetadataEntry, type GGUFTensorToWrite,
} from '../../src/formats/gguf.js';
import { quantize } from '../../src/quant/dequantize.js';
import type { DType } from '../../src/quant/dtype.js';
import { llamaManifest } from '../../src/model/arch/llama.js';
import { hfNameFromGGUF } from '../../src/model/tensor-names.js';
import type { ModelSpec } from '../../src/model/spec.js';

export { FIXTURES };
/** The Llama-2 tokenizer as tokenizer.json, and as a vocab-only GGUF. */
export const LLAMA2_HF_TOKENIZER = path.join(FIXTURES, 'hf/llama2');
export const LLAMA2_GGUF_VOCAB = path.join(FIXTURES, 'llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf');

export interface RandomModelShape {
  arch: 'llama' | 'qwen2';
  dim: number;
  nLayers: number;
  nHeads: number;
  nKVHeads: number;
  ffnDim: number;
  tied: boolean;
  /** Default 32000: the Llama-2 vocabulary the files are written with. */
  vocabSize?: number;
  contextLength?: number;
  ropeTheta?: number;
  /** Llama 3.1-style RoPE scaling. */
  llama3Rope?: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContextLength: number };
}

/** The spec as the HF loader will read it back (halves RoPE layout). */
export function randomSpec(s: RandomModelShape): ModelSpec {
  return {
    arch: s.arch, modelType: s.arch, vocabSize: s.vocabSize ?? 32000, dim: s.dim, nLayers: s.nLayers,
    nHeads: s.nHeads, nKVHeads: s.nKVHeads, headDim: s.dim / s.nHeads, ffnDim: s.ffnDim,
    contextLength: s.contextLength ?? 512, normEps: 1e-5,
    rope: {
      theta: s.ropeTheta ?? 10000, style: 'halves',
      scaling: s.llama3Rope ? { type: 'llama3', ...s.llama3Rope } : { type: 'none' },
    },
    tiedEmbeddings: s.tied, qkvBias: s.arch === 'qwen2', slidingWindow: undefined,
  };
}

/**
 * Weights for every tensor of the spec's manifest, by GGUF name, in Hugging Face row order.
 * Scales keep activations O(1) and make logits peaked enough that greedy choices are stable.
 */
export function randomWeights(spec: ModelSpec, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const rng = new Rng(seed);
  const normal = () => {
    const u = Math.max(rng.next(), 1e-12), v = rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const e of llamaManifest(spec)) {
    if (e.optional) continue; // output.weight of a tied model
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    let scale: number, offset = 0;
    if (e.name.endsWith('norm.weight')) { scale = 0.1; offset = 1; }
    else if (e.name.endsWith('.bias')) scale = 0.2;
    else if (e.name === 'token_embd.weight') scale = 1;
    else if (e.name === 'output.weight') scale = 4 / Math.sqrt(e.shape[1]!);
    else scale = 1 / Math.sqrt(e.shape[1]!);
    for (let i = 0; i < n; i++) data[i] = offset + scale * normal();
    out.set(e.name, { shape: e.shape, data });
  }
  return out;
}

/** Stores values in `dtype`; 1-D tensors stay F32, as convert_hf_to_gguf.py keeps norms and biases. */
function encode(dtype: DType, shape: readonly number[], data: Float32Array): { dtype: DType; data: Uint8Array } {
  const d = shape.length === 1 ? 'F32' : dtype;
  return { dtype: d, data: quantize(d, data) };
}

/** Writes config.json, SafeTensors (sharded when maxShardBytes is small) and the tokenizer files. */
export async function writeHFModel(
  dir: string, spec: ModelSpec, weights: ReturnType<typeof randomWeights>,
  opts: { dtype?: DType; maxShardBytes?: number } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const config = {
    architectures: [spec.arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: spec.arch, hidden_size: spec.dim, intermediate_size: spec.ffnDim,
    num_attention_heads: spec.nHeads, num_key_value_heads: spec.nKVHeads, num_hidden_layers: spec.nLayers,
    max_position_embeddings: spec.contextLength, rms_norm_eps: spec.normEps, rope_theta: spec.rope.theta,
    tie_word_embeddings: spec.tiedEmbeddings, vocab_size: spec.vocabSize, hidden_act: 'silu',
    bos_token_id: 1, eos_token_id: 2, torch_dtype: 'float32',
    ...(spec.rope.scaling.type === 'llama3' ? {
      rope_scaling: {
        rope_type: 'llama3', factor: spec.rope.scaling.factor, low_freq_factor: spec.rope.scaling.lowFreqFactor,
        high_freq_factor: spec.rope.scaling.highFreqFactor,
        original_max_position_embeddings: spec.rope.scaling.originalContextLength,
      },
    } : {}),
  };
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const tensors: TensorToWrite[] = [];
  for (const [name, w] of weights) {
    const hf = hfNameFromGGUF(name);
    if (!hf) throw new Error(`no HF name for ${name}`);
    tensors.push({ name: hf, shape: w.shape, ...encode(opts.dtype ?? 'F32', w.shape, w.data) });
  }
  await writeSafeTensorsSharded(dir, tensors, opts.maxShardBytes ?? Number.MAX_SAFE_INTEGER, { format: 'pt' });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
    await copyFile(path.join(LLAMA2_HF_TOKENIZER, f), path.join(dir, f));
  }
}

/**
 * Q and K rows as convert_hf_to_gguf.py stores them for Llama: within each head, HF row
 * (half·d/2 + i) moves to row (2i + half), so that interleaved RoPE on the GGUF weights equals
 * HF's rotate_half RoPE on the original ones.
 */
export function permuteForGGUF(data: Float32Array, shape: readonly number[], nHeads: number): Float32Array {
  const rows = shape[0]!, cols = shape.length > 1 ? shape[1]! : 1;
  const headDim = rows / nHeads, half = headDim / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let part = 0; part < 2; part++) {
        const src = (h * headDim + part * half + i) * cols;
        const dst = (h * headDim + 2 * i + part) * cols;
        out.set(data.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/**
 * Writes the same weights as a GGUF file, as convert_hf_to_gguf.py would: GGUF tensor names,
 * Llama's Q/K rows permuted for interleaved RoPE, 1-D tensors in F32, and the Llama-2
 * vocabulary copied from the vocab-only GGUF fixture.
 */
export async function writeGGUFModel(
  file: string, spec: ModelSpec, weights: ReturnType<typeof randomWeights>, opts: { dtype?: DType } = {},
): Promise<void> {
  const dtype = opts.dtype ?? 'F32';
  const vocab = await openGGUF(LLAMA2_GGUF_VOCAB);
  const tokenizerEntries = metadataEntries(vocab, (k) => k.startsWith('tokenizer.'));
  await vocab.close();
  const a = spec.arch;
  const u32 = (key: string, value: number): GGUFMetadataEntry => ({ key: `${a}.${key}`, type: 'u32', value });
  const f32 = (key: string, value: number): GGUFMetadataEntry => ({ key: `${a}.${key}`, type: 'f32', value });
  const metadata: GGUFMetadataEntry[] = [
    { key: 'general.architecture', type: 'string', value: a },
    { key: 'general.name', type: 'string', value: 'minerva-random-test' },
    { key: 'general.file_type', type: 'u32', value: dtype === 'F32' ? 0 : dtype === 'F16' ? 1 : dtype === 'Q8_0' ? 7 : 2 },
    u32('context_length', spec.contextLength), u32('embedding_length', spec.dim), u32('block_count', spec.nLayers),
    u32('feed_forward_length', spec.ffnDim), u32('rope.dimension_count', spec.headDim),
    u32('attention.head_count', spec.nHeads), u32('attention.head_count_kv', spec.nKVHeads),
    f32('attention.layer_norm_rms_epsilon', spec.normEps), f32('rope.freq_base', spec.rope.theta),
    ...tokenizerEntries,
  ];
  const tensors: GGUFTensorToWrite[] = [];
  for (const [name, w] of weights) {
    let data = w.data;
    if (a === 'llama' && /\.attn_q\.weight$/.test(name)) data = permuteForGGUF(data, w.shape, spec.nHeads);
    if (a === 'llama' && /\.attn_k\.weight$/.test(name)) data = permuteForGGUF(data, w.shape, spec.nKVHeads);
    tensors.push({ name, shape: w.shape, ...encode(dtype, w.shape, data) });
  }
  if (spec.rope.scaling.type === 'llama3') {
    const factors = llama3RopeFactors(spec.headDim, spec.rope.theta, spec.rope.scaling);
    tensors.push({ name: 'rope_freqs.weight', dtype: 'F32', shape: [factors.length], data: new Uint8Array(factors.buffer) });
  }
  await writeGGUF(file, { metadata, tensors });
}

/**
 * The per-pair divisors convert_hf_to_gguf.py stores as rope_freqs.weight for Llama 3 scaling:
 * 1 for short wavelengths, `factor` for long ones, a blend in between.
 */
function llama3RopeFactors(
  headDim: number, theta: number,
  s: { factor: number; lowFreqFactor: number; highFreqFactor: number; originalContextLength: number },
): Float32Array {
  const out = new Float32Array(headDim / 2);
  const lowWavelen = s.originalContextLength / s.lowFreqFactor;
  const highWavelen = s.originalContextLength / s.highFreqFactor;
  for (let i = 0; i < out.length; i++) {
    const wavelen = 2 * Math.PI * Math.pow(theta, (2 * i) / headDim);
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContextLength / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}
