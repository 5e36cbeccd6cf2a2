// llama2.c checkpoint header → ModelSpec. The format fixes what the header does not say:
// RMSNorm eps 1e-5, RoPE theta 10000 on interleaved pairs (run.c's rope loop).
import type { Llama2cConfig } from '../formats/llama2c.js';
import type { ModelSpec } from './spec.js';

export function specFromLlama2c(c: Llama2cConfig): ModelSpec {
  return {
    arch: 'llama',
    modelType: 'llama2.c',
    vocabSize: c.vocabSize,
    dim: c.dim,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKVHeads: c.nKVHeads,
    headDim: c.dim / c.nHeads,
    ffnDim: c.hiddenDim,
    contextLength: c.seqLen,
    normEps: 1e-5,
    rope: { theta: 10000, style: 'interleaved', scaling: { type: 'none' } },
    tiedEmbeddings: c.sharedClassifier,
    qkvBias: false,
    qkNorm: false,
    slidingWindow: undefined,
  };
}
