// What differs between architectures at load: the tensors a file holds (manifest) and which
// stored weights split into several graph weights. Every family runs LlamaGraph (llama.ts).
import type { ManifestEntry } from '../manifest.js';
import type { ModelSpec } from '../spec.js';
import { llamaManifest } from './llama.js';
import { phi3Manifest, phi3WeightSplits, type WeightSplit } from './phi3.js';

export type { WeightSplit };

/** Every tensor a file of this architecture holds, under GGUF names, with its shape. */
export function archManifest(spec: ModelSpec): ManifestEntry[] {
  return spec.arch === 'phi3' ? phi3Manifest(spec) : llamaManifest(spec);
}

/** Stored weights that become several graph weights (split by rows at load), by stored name. */
export function archWeightSplits(spec: ModelSpec): ReadonlyMap<string, readonly WeightSplit[]> {
  return spec.arch === 'phi3' ? phi3WeightSplits(spec) : new Map();
}
