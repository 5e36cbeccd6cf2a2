// A tensor manifest: every tensor an architecture needs, with its exact shape. Checking a file
// against it turns "missing", "unexpected" and "wrong shape" into one clear error before any
// weight is read.
import type { TensorInfo } from '../formats/tensor.js';
import { STORED_WEIGHT_DTYPES, type DType } from '../quant/dtype.js';

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
 * A file whose tensors use types no backend computes with (the codebook IQ and ternary TQ types):
 * refused when the model opens, before any memory is committed, naming each type and its tensors.
 */
export class UnsupportedTypeError extends ManifestError {
  constructor(source: string, readonly tensorsByType: ReadonlyMap<DType, readonly string[]>) {
    const parts = [...tensorsByType].map(([dtype, names]) => {
      const shown = names.slice(0, 3).join(', ') + (names.length > 3 ? ` and ${names.length - 3} more` : '');
      return `${dtype} (${names.length} tensor${names.length === 1 ? '' : 's'}: ${shown})`;
    });
    super(source, `weight type${tensorsByType.size === 1 ? '' : 's'} not supported: ${parts.join('; ')}. `
      + `Minerva computes with ${[...STORED_WEIGHT_DTYPES].join(', ')}`);
    this.name = 'UnsupportedTypeError';
  }
}

/** Throws UnsupportedTypeError if any of `tensors` has a type outside STORED_WEIGHT_DTYPES. */
export function checkTensorTypes(source: string, tensors: ReadonlyMap<string, TensorInfo>): void {
  const byType = new Map<DType, string[]>();
  for (const t of tensors.values()) {
    if (STORED_WEIGHT_DTYPES.has(t.dtype)) continue;
    const names = byType.get(t.dtype) ?? [];
    names.push(t.name);
    byType.set(t.dtype, names);
  }
  if (byType.size > 0) throw new UnsupportedTypeError(source, byType);
}

/**
 * Checks `tensors` (already renamed to GGUF names) against `manifest`: first their types (one
 * UnsupportedTypeError for all of them), then names and shapes. Every problem found is
 * listed in one error (first few of each kind), naming the tensors.
 * @param extraAllowed names the loader consumes itself (e.g. rope_freqs.weight)
 */
export function checkManifest(
  source: string, manifest: readonly ManifestEntry[], tensors: ReadonlyMap<string, TensorInfo>,
  extraAllowed: ReadonlySet<string> = new Set(),
): void {
  checkTensorTypes(source, tensors);
  const problems: string[] = [];
  const list = (what: string, names: string[]) => {
    if (names.length === 0) return;
    const shown = names.slice(0, 5).join(', ');
    problems.push(`${what}: ${shown}${names.length > 5 ? ` and ${names.length - 5} more` : ''}`);
  };
  const expected = new Set(manifest.map((e) => e.name));
  const missing: string[] = [], wrongShape: string[] = [];
  for (const e of manifest) {
    const t = tensors.get(e.name);
    if (!t) {
      if (!e.optional) missing.push(e.name);
      continue;
    }
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      wrongShape.push(`${e.name} is [${t.shape.join(', ')}], expected [${e.shape.join(', ')}]`);
    }
  }
  const unexpected = [...tensors.keys()].filter((n) => !expected.has(n) && !extraAllowed.has(n));
  list('missing tensors', missing);
  list('unexpected tensors', unexpected);
  list('wrong shapes', wrongShape);
  if (problems.length > 0) throw new ManifestError(source, problems.join('; '));
}
