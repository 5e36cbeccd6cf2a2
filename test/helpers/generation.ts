// Collects a generation stream: all text, all token ids, and the last chunk (finish reason, usage).
import type { GenerationChunk } from '../../src/index.js';

export async function collect(chunks: AsyncIterable<GenerationChunk>): Promise<{ text: string; tokens: number[]; last: GenerationChunk }> {
  let text = '';
  const tokens: number[] = [];
  let last: GenerationChunk | undefined;
  for await (const c of chunks) { text += c.text; tokens.push(...c.tokens); last = c; }
  if (!last) throw new Error('the generation yielded nothing');
  return { text, tokens, last };
}
