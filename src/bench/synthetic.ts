// `minerva bench --synthetic <preset> --dtype <type>`: a random-weight model with a real model's
// dimensions, written once as GGUF (and, for float types, as a Hugging Face SafeTensors folder)
// and cached, so anyone can reproduce speed measurements without downloading a model. Weights are
// generated tensor by tensor as the files are written: memory stays at about one tensor.
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { lazyRandomWeights, randomSpec, writeGGUFModel, writeHFModel, type RandomModelShape, type RandomWeights } from '../model/random-model.js';
import type { DType } from '../quant/dtype.js';
import { syntheticSpmVocab, syntheticVocabGGUF, syntheticVocabHF } from '../tokenizer/synthetic-vocab.js';

/** Published dimensions (the models' config.json on Hugging Face). */
export const SYNTHETIC_PRESETS = {
  // TinyLlama/TinyLlama-1.1B-Chat-v1.0
  'tinyllama-1.1b': {
    arch: 'llama', dim: 2048, nLayers: 22, nHeads: 32, nKVHeads: 4, ffnDim: 5632, tied: false,
    vocabSize: 32000, contextLength: 2048, ropeTheta: 10000,
  },
  // meta-llama/Llama-3.2-1B
  'llama-3.2-1b': {
    arch: 'llama', dim: 2048, nLayers: 16, nHeads: 32, nKVHeads: 8, ffnDim: 8192, tied: true,
    vocabSize: 128256, contextLength: 131072, ropeTheta: 500000,
    llama3Rope: { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 },
  },
  // karpathy/tinyllamas stories110M (llama2.c's largest story model): a small model, where a
  // token's cost is less the weights and more the per-step work around them.
  'stories-110m': {
    arch: 'llama', dim: 768, nLayers: 12, nHeads: 12, nKVHeads: 12, ffnDim: 2048, tied: true,
    vocabSize: 32000, contextLength: 1024, ropeTheta: 10000,
  },
} as const satisfies Record<string, RandomModelShape>;
export type SyntheticPreset = keyof typeof SYNTHETIC_PRESETS;

/** The --dtype choices and the weight type of the files. */
export const SYNTHETIC_DTYPES = { f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_k: 'Q4_K' } as const satisfies Record<string, DType>;
export type SyntheticDType = keyof typeof SYNTHETIC_DTYPES;

export function isSyntheticPreset(s: string): s is SyntheticPreset {
  return Object.hasOwn(SYNTHETIC_PRESETS, s);
}
export function isSyntheticDType(s: string): s is SyntheticDType {
  return Object.hasOwn(SYNTHETIC_DTYPES, s);
}

export interface SyntheticModel {
  /** The GGUF file (what llama.cpp runs). */
  gguf: string;
  /** The SafeTensors folder, for float types (what Minerva runs: its own format is the point). */
  hf: string | undefined;
}

/** `$MINERVA_CACHE`, else ~/.cache/minerva. */
export function cacheRoot(): string {
  return process.env.MINERVA_CACHE ?? path.join(os.homedir(), '.cache', 'minerva');
}

export interface SyntheticOptions {
  cacheDir?: string;
  seed?: number;
  /** Bytes of weights generated so far and in all (float32 values; the files may be smaller). */
  onProgress?: (done: number, total: number) => void;
}

/**
 * The cached model for (name, shape, dtype), generated first if absent. Files are written into a
 * temporary folder renamed into place when complete, so an interrupted run never leaves a
 * half-written model that looks cached.
 */
export async function syntheticModel(
  name: string, shape: RandomModelShape, dtype: SyntheticDType, o: SyntheticOptions = {},
): Promise<SyntheticModel> {
  const dir = path.join(o.cacheDir ?? path.join(cacheRoot(), 'synthetic'), `${name}-${dtype}`);
  const float = dtype === 'f32' || dtype === 'f16' || dtype === 'bf16';
  const result = { gguf: path.join(dir, 'model.gguf'), hf: float ? path.join(dir, 'hf') : undefined };
  if (await exists(dir)) return result;

  const partial = `${dir}.partial-${process.pid}`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    const spec = randomSpec(shape);
    const vocab = syntheticSpmVocab(spec.vocabSize);
    // Both files draw the same tensors from the same seeds, so for float types each tensor is
    // generated twice: the price of memory that stays at one tensor instead of the whole model.
    const files = float ? 2 : 1;
    const weights = withProgress(lazyRandomWeights(spec, o.seed ?? 1), files, o.onProgress);
    const type = SYNTHETIC_DTYPES[dtype];
    await writeGGUFModel(path.join(partial, 'model.gguf'), spec, weights, { dtype: type, vocab: syntheticVocabGGUF(vocab), name: `minerva-synthetic-${name}` });
    if (float) await writeHFModel(path.join(partial, 'hf'), spec, weights, { dtype: type, tokenizer: syntheticVocabHF(vocab), maxShardBytes: 2 ** 31 });
    await rename(partial, dir);
  } catch (e) {
    await rm(partial, { recursive: true, force: true });
    throw e;
  }
  return result;
}

/** The same weights, reporting how much has been generated as each tensor is produced. */
function withProgress(weights: RandomWeights, passes: number, onProgress?: (done: number, total: number) => void): RandomWeights {
  if (!onProgress) return weights;
  let total = 0;
  for (const w of weights.values()) total += 4 * w.shape.reduce((a, b) => a * b, 1);
  total *= passes;
  let done = 0;
  const out: RandomWeights = new Map();
  for (const [name, w] of weights) {
    const produce = w.data;
    out.set(name, {
      shape: w.shape,
      data: () => {
        const v = typeof produce === 'function' ? produce() : produce;
        done += v.byteLength;
        onProgress(done, total);
        return v;
      },
    });
  }
  return out;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}
