// Random-weight models for tests (src/model/random-model.ts), written with the real Llama-2
// tokenizer from the fixtures: tokenizer.json in the HF folder, the same vocabulary in the GGUF.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { FIXTURES } from './fixtures.js';
import { metadataEntries, openGGUF } from '../../src/formats/gguf.js';
import type { DType } from '../../src/quant/dtype.js';
import type { ModelSpec } from '../../src/model/spec.js';
import * as random from '../../src/model/random-model.js';

export { randomSpec, randomWeights, permuteForGGUF, type RandomModelShape } from '../../src/model/random-model.js';
export { FIXTURES };
/** The Llama-2 tokenizer as tokenizer.json, and as a vocab-only GGUF. */
export const LLAMA2_HF_TOKENIZER = path.join(FIXTURES, 'hf/llama2');
export const LLAMA2_GGUF_VOCAB = path.join(FIXTURES, 'llama.cpp-vocab-tests/ggml-vocab-llama-spm.gguf');

/** config.json, SafeTensors (sharded when maxShardBytes is small) and the Llama-2 tokenizer files. */
export async function writeHFModel(
  dir: string, spec: ModelSpec, weights: random.RandomWeights, opts: { dtype?: DType; maxShardBytes?: number } = {},
): Promise<void> {
  const [tokenizerJSON, tokenizerConfigJSON] = await Promise.all(['tokenizer.json', 'tokenizer_config.json']
    .map((f) => readFile(path.join(LLAMA2_HF_TOKENIZER, f), 'utf8')));
  await random.writeHFModel(dir, spec, weights, { ...opts, tokenizer: { tokenizerJSON: tokenizerJSON!, tokenizerConfigJSON: tokenizerConfigJSON! } });
}

/** The same weights as GGUF, with the Llama-2 vocabulary copied from the vocab-only GGUF fixture. */
export async function writeGGUFModel(
  file: string, spec: ModelSpec, weights: random.RandomWeights, opts: { dtype?: DType; typeOf?: (tensor: string) => DType | undefined } = {},
): Promise<void> {
  const vocab = await openGGUF(LLAMA2_GGUF_VOCAB);
  const tokenizerEntries = metadataEntries(vocab, (k) => k.startsWith('tokenizer.'));
  await vocab.close();
  await random.writeGGUFModel(file, spec, weights, { ...opts, vocab: tokenizerEntries });
}
