// `minerva convert`: any model Minerva loads (a Hugging Face folder, a GGUF file, a llama2.c
// checkpoint with its tokenizer) written as a GGUF file llama.cpp loads, in one of llama.cpp's file
// types. The model is opened and checked as for running it (so an architecture or tokenizer
// Minerva cannot run is refused before anything is written), then streamed tensor by tensor.
import path from 'node:path';
import { stat } from 'node:fs/promises';
import { writeGGUF } from '../formats/gguf.js';
import { openModel } from '../model/load.js';
import { ggufModelMetadata } from '../model/gguf-metadata.js';
import type { DType } from '../quant/dtype.js';
import { CONVERT_TYPES, isConvertType, type ConvertType } from './file-types.js';
import { padVocab, vocabEntries } from './gguf-vocab.js';
import { tensorTypes } from './tensor-types.js';
import { plannedTensors, tensorsToWrite } from './tensors.js';
import { readVocab } from './vocab-sources.js';

export interface ConvertOptions {
  /** One of CONVERT_TYPES' keys (checked: the CLI and library callers pass strings). */
  type: string;
  /** Tokenizer to write instead of the model's own (required for a llama2.c checkpoint). */
  tokenizer?: string;
  /** general.name; default: the model's file or folder name. */
  name?: string;
  onProgress?: (p: ConvertProgress) => void;
}

export interface ConvertProgress {
  tensors: number;
  totalTensors: number;
  /** Bytes of tensor data written and to write. */
  bytes: number;
  totalBytes: number;
}

export interface ConvertResult {
  out: string;
  architecture: string;
  type: ConvertType;
  /** Tensors written per stored type. */
  dtypes: Partial<Record<DType, number>>;
  tensors: number;
  /** Bytes of tensor data written. */
  bytes: number;
}

export async function convertModel(modelPath: string, outPath: string, o: ConvertOptions): Promise<ConvertResult> {
  if (!isConvertType(o.type)) {
    throw new Error(`convert: --type must be one of ${Object.keys(CONVERT_TYPES).join(', ')}, got "${o.type}"`);
  }
  const type = o.type;
  if (path.resolve(outPath) === path.resolve(modelPath)) throw new Error(`convert: ${outPath}: the output would replace the model being read`);
  const outDir = path.dirname(path.resolve(outPath));
  if (!(await stat(outDir).then((s) => s.isDirectory(), () => false))) throw new Error(`convert: ${outPath}: the folder ${outDir} does not exist`);
  const model = await openModel(modelPath, { tokenizer: o.tokenizer });
  try {
    const { spec } = model;
    const modelDir = model.format === 'safetensors' && !(await stat(modelPath)).isDirectory() ? path.dirname(modelPath) : modelPath;
    // openModel has refused a llama2.c checkpoint without --tokenizer.
    const tokenizerPath = o.tokenizer ?? modelDir;
    const vocab = padVocab(await readVocab(tokenizerPath, model.tokenizer, spec.vocabSize), spec.vocabSize, tokenizerPath);
    const planned = plannedTensors(model);
    const types = tensorTypes(planned, type, spec.nLayers);
    const tensors = tensorsToWrite(model, planned, types);
    const name = o.name ?? path.basename(modelDir).replace(/\.(gguf|bin|safetensors)$/, '');
    const metadata = ggufModelMetadata(spec, { name, fileType: CONVERT_TYPES[type].fileType, vocab: vocabEntries(vocab) });
    await writeGGUF(outPath, { metadata, tensors, onProgress: o.onProgress });
    const dtypes: Partial<Record<DType, number>> = {};
    for (const t of tensors) dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
    return {
      out: outPath, architecture: spec.arch, type, dtypes, tensors: tensors.length,
      bytes: tensors.reduce((s, t) => s + t.data.byteLength, 0),
    };
  } finally {
    await model.close();
  }
}
