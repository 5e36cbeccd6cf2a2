// Opens a model as published — a Hugging Face folder, a GGUF file, or a llama2.c checkpoint — and
// turns it into a ModelSpec, a Tokenizer and a provider of its weights under GGUF names. Nothing
// but headers is read here; weights are read one at a time by loadWeights().
import { open, stat, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Backend, Weight } from '../backends/backend.js';
import { FormatError, type TensorInfo, type WeightProvider } from '../formats/tensor.js';
import { openSafeTensors } from '../formats/safetensors.js';
import { openGGUF } from '../formats/gguf.js';
import { openLlama2c } from '../formats/llama2c.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { loadHFTokenizer, loadLlama2cTokenizer, tokenizerFromGGUF } from '../tokenizer/index.js';
import {
  describeGGUFTokenizer, describeHFTokenizer, summarizeTokenizer, type TokenizerSummary,
} from '../tokenizer/describe.js';
import { dequantize } from '../quant/dequantize.js';
import { quantizeOnLoad, type LoadQuant } from '../quant/quantize-on-load.js';
import { ConfigError, ConfigReader } from './config-reader.js';
import { specFromHFConfig } from './hf-config.js';
import { readSentenceTransformersPooling } from './pooling-config.js';
import { specFromGGUF } from './gguf-spec.js';
import { specFromLlama2c } from './llama2c-spec.js';
import { checkManifest, type ManifestEntry } from './manifest.js';
import { ggufNameFromHF } from './tensor-names.js';
import { hfNormsAreOffset, isOffsetNorm } from './arch/gemma.js';
import { archManifest, archWeightSplits, type WeightSplit } from './arch/index.js';
import { longRopeFromGGUF, ROPE_FACTORS_LONG, ROPE_FACTORS_SHORT } from './arch/phi3.js';
import { byteSize } from '../quant/dtype.js';
import type { ModelSpec } from './spec.js';

export type ModelFormat = 'safetensors' | 'gguf' | 'llama2c';

export interface OpenModelOptions {
  /**
   * Tokenizer to use instead of (or where there is none) the model's own: a tokenizer.json or
   * its folder, a GGUF file (its vocabulary), or a llama2.c tokenizer.bin.
   */
  tokenizer?: string;
}

/** A model whose headers have been read and checked; its weights are still on disk. */
export interface ModelFiles {
  /** The path given by the user. */
  path: string;
  format: ModelFormat;
  spec: ModelSpec;
  /** Every tensor the model uses, under its GGUF name. */
  tensors: ReadonlyMap<string, TensorInfo>;
  manifest: readonly ManifestEntry[];
  /** Reads one tensor (by GGUF name), into the start of `into` when given. */
  read(name: string, into?: Uint8Array): Promise<Uint8Array>;
  /** Builds the tokenizer (the one given in the options, else the model's own). */
  loadTokenizer(): Promise<Tokenizer>;
  /** What the tokenizer is, without building it where the files allow. */
  describeTokenizer(): Promise<TokenizerSummary>;
  close(): Promise<void>;
}

/** Model files with their tokenizer built: everything but the weights. */
export interface OpenedModel extends ModelFiles {
  tokenizer: Tokenizer;
}

/** Opens a model's files and checks them; reads headers only, builds no tokenizer. */
export async function openModelFiles(modelPath: string, options: OpenModelOptions = {}): Promise<ModelFiles> {
  const format = await detectFormat(modelPath);
  const files = format === 'safetensors' ? await openHF(modelPath)
    : format === 'gguf' ? await openGGUFModel(modelPath) : await openLlama2cModel(modelPath);
  const override = options.tokenizer;
  if (override === undefined) return files;
  return {
    ...files,
    loadTokenizer: () => loadTokenizerFile(override, files.spec.vocabSize),
    describeTokenizer: async () => summarizeTokenizer(await loadTokenizerFile(override, files.spec.vocabSize)),
  };
}

/** Opens a model's files, checks them, and builds its tokenizer; reads no weights. */
export async function openModel(modelPath: string, options: OpenModelOptions = {}): Promise<OpenedModel> {
  const files = await openModelFiles(modelPath, options);
  try {
    const tokenizer = await files.loadTokenizer();
    if (tokenizer.vocabSize > files.spec.vocabSize) {
      throw new FormatError(modelPath,
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model's embedding only ${files.spec.vocabSize}`);
    }
    return { ...files, tokenizer };
  } catch (e) {
    await files.close();
    throw e;
  }
}

/** Tells the format from the path: a folder (HF), or a file's magic bytes. */
export async function detectFormat(modelPath: string): Promise<ModelFormat> {
  let st;
  try {
    st = await stat(modelPath);
  } catch {
    throw new FormatError(modelPath, 'no such file or folder');
  }
  if (st.isDirectory()) return 'safetensors';
  if (modelPath.endsWith('.safetensors')) return 'safetensors';
  const fh = await open(modelPath, 'r');
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await fh.read(magic, 0, 4, 0);
    if (bytesRead === 4 && magic.toString('latin1') === 'GGUF') return 'gguf';
  } finally {
    await fh.close();
  }
  if (modelPath.endsWith('.gguf')) throw new FormatError(modelPath, 'not a GGUF file (the magic bytes "GGUF" are missing)');
  if (modelPath.endsWith('.bin')) return 'llama2c';
  throw new FormatError(modelPath,
    'unknown model format: expected a Hugging Face folder (config.json + *.safetensors), a .gguf file or a llama2.c .bin checkpoint');
}

async function openHF(modelPath: string): Promise<ModelFiles> {
  const dir = (await stat(modelPath)).isDirectory() ? modelPath : path.dirname(modelPath);
  const configPath = path.join(dir, 'config.json');
  let spec = specFromHFConfig(await readJSON(configPath), configPath);
  const pooling = await readSentenceTransformersPooling(dir, spec.dim);
  if (pooling) spec = { ...spec, pooling };
  const provider = await openSafeTensors(modelPath);
  try {
    // HF names → GGUF names; unknown names are kept as they are so the manifest check lists them.
    const renamed = new Map<string, TensorInfo>();
    const hfName = new Map<string, string>();
    const offsetNorms = new Set<string>(); // HF names
    for (const [name, info] of provider.tensors) {
      const g = ggufNameFromHF(name, spec.arch);
      if (g === null) continue;
      const key = g ?? name;
      hfName.set(key, name);
      if (hfNormsAreOffset(spec) && isOffsetNorm(key) && info.shape.length === 1) {
        // Stored as w of x̂·(1 + w): read as the F32 weight 1 + w of a plain RMS norm (arch/gemma.ts).
        offsetNorms.add(name);
        renamed.set(key, { name: key, dtype: 'F32', shape: info.shape, byteLength: 4 * info.shape[0]! });
      } else {
        renamed.set(key, { ...info, name: key });
      }
    }
    const shifted: WeightProvider = offsetNorms.size === 0 ? provider : {
      source: provider.source,
      tensors: provider.tensors,
      close: () => provider.close(),
      read: async (name, into) => {
        if (!offsetNorms.has(name)) return provider.read(name, into);
        const info = provider.tensors.get(name)!;
        const n = info.shape[0]!;
        const values = dequantize(info.dtype, await provider.read(name), n);
        for (let i = 0; i < n; i++) values[i]! += 1;
        const bytes = new Uint8Array(values.buffer, values.byteOffset, 4 * n);
        if (!into) return bytes;
        into.set(bytes);
        return into.subarray(0, 4 * n);
      },
    };
    const tokenizer = { load: () => loadHFTokenizer(dir), describe: () => describeHFTokenizer(dir) };
    return finish(modelPath, 'safetensors', spec, tokenizer, renamed, shifted, (n) => hfName.get(n) ?? n);
  } catch (e) {
    await provider.close();
    throw e;
  }
}

async function openGGUFModel(modelPath: string): Promise<ModelFiles> {
  const file = await openGGUF(modelPath);
  try {
    const names = new Set(file.tensors.keys());
    let spec = specFromGGUF(file.metadata, names, modelPath);
    // Llama 3 RoPE scaling is stored as per-pair frequency divisors.
    const extra = new Set<string>();
    const freqs = file.tensors.get('rope_freqs.weight');
    if (freqs) {
      extra.add('rope_freqs.weight');
      if (freqs.shape.length !== 1 || freqs.shape[0] !== spec.headDim / 2) {
        throw new FormatError(modelPath, `rope_freqs.weight is [${freqs.shape.join(', ')}], expected [${spec.headDim / 2}]`);
      }
      const factors = dequantize(freqs.dtype, await file.read('rope_freqs.weight'), spec.headDim / 2);
      spec = { ...spec, rope: { ...spec.rope, scaling: { type: 'factors', factors } } };
    }
    // Phi-3's LongRoPE divisors, [rotated dims / 2] each.
    if (spec.arch === 'phi3') {
      const factors: { short?: Float32Array; long?: Float32Array } = {};
      for (const [key, name] of [['short', ROPE_FACTORS_SHORT], ['long', ROPE_FACTORS_LONG]] as const) {
        const t = file.tensors.get(name);
        if (!t) continue;
        const half = (spec.rope.dims ?? spec.headDim) / 2;
        if (t.shape.length !== 1 || t.shape[0] !== half) throw new FormatError(modelPath, `${name} is [${t.shape.join(', ')}], expected [${half}]`);
        factors[key] = dequantize(t.dtype, await file.read(name), half);
        extra.add(name);
      }
      const g = new ConfigReader(modelPath, (key) => file.metadata.get(key));
      const scaling = longRopeFromGGUF(g, 'phi3', spec, factors);
      if (scaling) spec = { ...spec, rope: { ...spec.rope, scaling } };
    }
    const tokenizer = {
      load: async () => tokenizerFromGGUF(file.metadata, modelPath),
      describe: async () => describeGGUFTokenizer(file.metadata),
    };
    return finish(modelPath, 'gguf', spec, tokenizer, file.tensors, file, (n) => n, extra);
  } catch (e) {
    await file.close();
    throw e;
  }
}

async function openLlama2cModel(modelPath: string): Promise<ModelFiles> {
  const { config, provider } = await openLlama2c(modelPath);
  try {
    const spec = specFromLlama2c(config);
    const tokenizer = {
      load: async (): Promise<Tokenizer> => {
        throw new FormatError(modelPath,
          'a llama2.c checkpoint has no tokenizer: pass one with --tokenizer (e.g. tokenizer.bin, tok512.bin)');
      },
      describe: async () => ({ kind: 'none', model: 'none', vocabSize: 0, chatTemplate: false }),
    };
    return finish(modelPath, 'llama2c', spec, tokenizer, provider.tensors, provider, (n) => n);
  } catch (e) {
    await provider.close();
    throw e;
  }
}

function finish(
  modelPath: string, format: ModelFormat, spec: ModelSpec,
  tokenizer: { load: () => Promise<Tokenizer>; describe: () => Promise<TokenizerSummary> },
  tensors: ReadonlyMap<string, TensorInfo>, provider: WeightProvider, storedName: (n: string) => string,
  extraAllowed: ReadonlySet<string> = new Set(),
): ModelFiles {
  const manifest = archManifest(spec);
  checkManifest(modelPath, manifest, tensors, extraAllowed);
  const used = new Map<string, TensorInfo>();
  for (const e of manifest) {
    const t = tensors.get(e.name);
    if (t) used.set(e.name, t);
  }
  return {
    path: modelPath, format, spec, tensors: used, manifest,
    read: (name, into) => provider.read(storedName(name), into),
    loadTokenizer: tokenizer.load,
    describeTokenizer: tokenizer.describe,
    close: () => provider.close(),
  };
}

/** Loads a tokenizer the user named: tokenizer.json or its folder, a GGUF file, or a llama2.c tokenizer.bin. */
async function loadTokenizerFile(override: string, vocabSize: number): Promise<Tokenizer> {
  let st;
  try {
    st = await stat(override);
  } catch {
    throw new FormatError(override, 'tokenizer: no such file or folder');
  }
  if (st.isDirectory()) return loadHFTokenizer(override);
  if (path.basename(override) === 'tokenizer.json') return loadHFTokenizer(path.dirname(override));
  if (await detectFormat(override) === 'gguf') {
    const f = await openGGUF(override);
    try {
      return tokenizerFromGGUF(f.metadata, override);
    } finally {
      await f.close();
    }
  }
  return loadLlama2cTokenizer(override, vocabSize);
}

async function readJSON(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ConfigError(file, 'missing (a Hugging Face model folder needs config.json)');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new ConfigError(file, `not valid JSON: ${(e as Error).message}`);
  }
}

export interface LoadProgress {
  /** Bytes of weights read so far and in all. */
  loadedBytes: number;
  totalBytes: number;
}

/** Reads every weight once and hands it to the backend (quantized first, under `quant`). */
export async function loadWeights(
  model: OpenedModel, backend: Backend, onProgress?: (p: LoadProgress) => void, quant?: LoadQuant,
): Promise<Map<string, Weight>> {
  const totalBytes = [...model.tensors.values()].reduce((s, t) => s + t.byteLength, 0);
  let loadedBytes = 0;
  const weights = new Map<string, Weight>();
  const splits = archWeightSplits(model.spec);
  // One read buffer for every tensor: backends copy what they keep (Backend.loadWeight), and fresh
  // memory costs a page fault per 4 KiB, which on these machines costs more than the read.
  const largest = Math.max(0, ...[...model.tensors.values()].map((t) => t.byteLength));
  const buffer = new Uint8Array(largest);
  for (const [name, info] of model.tensors) {
    const data = await model.read(name, buffer);
    const parts = splits.get(name);
    for (const part of parts ? splitRows(info, data, parts) : [{ info, data }]) {
      const kept = quant ? quantizeOnLoad(part.info, part.data, quant) : part;
      weights.set(part.info.name, backend.loadWeight(kept.info, kept.data));
    }
    loadedBytes += info.byteLength;
    onProgress?.({ loadedBytes, totalBytes });
  }
  return weights;
}

/**
 * A fused matrix [Σ rows, cols] of any dtype cut into consecutive row ranges, as views of `data`:
 * a row is whole blocks of a quantized type, so each part is a valid matrix of the same type.
 */
export function splitRows(
  info: TensorInfo, data: Uint8Array, parts: readonly WeightSplit[],
): { info: TensorInfo; data: Uint8Array }[] {
  const [rows, cols] = info.shape;
  const total = parts.reduce((s, p) => s + p.rows, 0);
  if (info.shape.length !== 2 || rows !== total) {
    throw new Error(`${info.name}: [${info.shape.join(', ')}] does not split into rows ${parts.map((p) => p.rows).join(' + ')}`);
  }
  const rowBytes = byteSize(info.dtype, cols!);
  let offset = 0;
  return parts.map((p) => {
    const byteLength = p.rows * rowBytes;
    const part = { info: { name: p.name, dtype: info.dtype, shape: [p.rows, cols!], byteLength }, data: data.subarray(offset, offset + byteLength) };
    offset += byteLength;
    return part;
  });
}
