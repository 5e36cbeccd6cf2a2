// What tests compare between model runs: a generation stream collected whole, and logits side by side.
import assert from 'node:assert/strict';
import { loadModel, type GenerationChunk, type LoadModelOptions, type Model } from '../../src/index.js';

/** All text, all token ids, and the last chunk (finish reason, usage) of a generation stream. */
export async function collect(chunks: AsyncIterable<GenerationChunk>): Promise<{ text: string; tokens: number[]; last: GenerationChunk }> {
  let text = '';
  const tokens: number[] = [];
  let last: GenerationChunk | undefined;
  for await (const c of chunks) { text += c.text; tokens.push(...c.tokens); last = c; }
  if (!last) throw new Error('the generation yielded nothing');
  return { text, tokens, last };
}

/** Minerva's greedy continuation of each prompt, up to maxTokens (as the llama.cpp oracles compare). */
export async function greedyContinuations(model: Model, prompts: number[][], maxTokens: number): Promise<number[][]> {
  const out: number[][] = [];
  for (const prompt of prompts) out.push((await collect(model.generate(prompt, { temperature: 0, maxTokens }))).tokens);
  return out;
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

/**
 * Quantize on load against a GGUF file: `folder` loaded with `quant` holds the same blocks as the
 * GGUF written from the same weights (convert_hf_to_gguf.py's Q/K row order aside, which moves
 * whole rows), so both give the same logits.
 */
export async function assertQuantOnLoadEqualsGGUF(folder: string, quant: LoadModelOptions['quant'], gguf: string): Promise<void> {
  const onLoad = await loadModel(folder, { contextLength: 64, quant });
  const file = await loadModel(gguf, { contextLength: 64 });
  try {
    const ids = file.tokenize('The quick brown fox jumps over the lazy dog');
    const { maxDiff, maxAbs } = logitsDiff(await file.logits(ids), await onLoad.logits(ids));
    assert.ok(maxDiff <= 1e-5 * maxAbs, `max |Δlogit| ${maxDiff} of ${maxAbs}`);
  } finally {
    onLoad.dispose();
    file.dispose();
  }
}
