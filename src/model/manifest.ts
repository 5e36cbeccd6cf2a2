// A tensor manifest: every tensor an architecture needs, with its exact shape. Checking a file
// against it turns "missing", "unexpected" and "wrong shape" into one clear error before any
// weight is read.
import type { TensorInfo } from '../formats/tensor.js';
import { STORED_WEIGHT_DTYPES } from '../quant/dtype.js';

export interface ManifestEntry {
  /** GGUF-style name. */
  name: string;
  /** Outermost first. */
  shape: number[];
  /** Absent is allowed (e.g. output.weight when embeddings are tied). */
  optional?: boolean;
}

export class ManifestError extends Error {
  constructor(readonly source: string, problem: string) {
    super(`${source}: ${problem}`);
    this.name = 'ManifestError';
  }
}

/**
 * Checks `tensors` (already renamed to GGUF names) against `manifest`. Every problem found is
 * listed in one error (first few of each kind), naming the tensors.
 * @param extraAllowed names the loader consumes itself (e.g. rope_freqs.weight)
 */
export function checkManifest(
  source: string, manifest: readonly ManifestEntry[], tensors: ReadonlyMap<string, TensorInfo>,
  extraAllowed: ReadonlySet<string> = new Set(),
): void {
  const problems: string[] = [];
  const list = (what: string, names: string[]) => {
    if (names.length === 0) return;
    const shown = names.slice(0, 5).join(', ');
    problems.push(`${what}: ${shown}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`);
  };
  const expected = new Set(manifest.map((e) => e.name));
  const missing: string[] = [], wrongShape: string[] = [], wrongType: string[] = [];
  for (const e of manifest) {
    const t = tensors.get(e.name);
    if (!t) {
      if (!e.optional) missing.push(e.name);
      continue;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      wrongShape.push(`${e.name} is [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`);
    }
    if (!STORED_WEIGHT_DTYPES.has(t.dtype)) wrongType.push(`${e.name} (${t.dtype})`);
  }
  const unexpected = [...tensors.keys()].filter((n) => !expected.has(n) && !extraAllowed.has(n));
  list('missing tensors', missing);
  list('unexpected tensors', unexpected);
  list('wrong shapes', wrongShape);
  list(`unsupported tensor types (supported: ${[...STORED_WEIGHT_DTYPES].join(', ')})`, wrongType);
  if (problems.length > 0) throw new ManifestError(source, problems.join('; '));
}
