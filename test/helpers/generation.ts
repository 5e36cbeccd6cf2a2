// What tests compare between model runs: a generation stream collected whole, and logits side by side.
import type { GenerationChunk } from '../../src/index.js';

/** All text, all token ids, and the last chunk (finish reason, usage) of a generation stream. */
export async function collect(chunks: AsyncIterable<GenerationChunk>): Promise<{ text: string; tokens: number[]; last: GenerationChunk }> {
  let text = '';
  const tokens: number[] = [];
  let last: GenerationChunk | undefined;
  for await (const c of chunks) { text += c.text; tokens.push(...c.tokens); last = c; }
  if (!last) throw new Error('the generation yielded nothing');
  return { text, tokens, last };
}

/** The largest |a[i] - b[i]|, and the largest |a[i]| to judge it against. */
export function logitsDiff(a: Float32Array, b: Float32Array): { maxDiff: number; maxAbs: number } {
  let maxDiff = 0, maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    maxAbs = Math.max(maxAbs, Math.abs(a[i]!));
  }
  return { maxDiff, maxAbs };
}
