// llama.cpp (node-llama-cpp, CPU) as an oracle: its greedy continuation of prompts on a GGUF file.
import type { Llama } from 'node-llama-cpp';

/** llama.cpp's greedy continuation of each prompt (token ids, BOS included), up to and excluding EOS. */
export async function llamaCppGreedy(llama: Llama, file: string, prompts: number[][], maxTokens: number): Promise<number[][]> {
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({ contextSize: 256, threads: 2 });
  const out: number[][] = [];
  try {
    for (const prompt of prompts) {
      const seq = context.getSequence();
      const tokens: number[] = [];
      for await (const t of seq.evaluate(prompt as never, { temperature: 0 })) {
        if (t === model.tokens.eos) break;
        tokens.push(t as number);
        if (tokens.length >= maxTokens) break;
      }
      out.push(tokens);
      seq.dispose();
    }
  } finally {
    await context.dispose();
    await model.dispose();
  }
  return out;
}

/**
 * llama.cpp on a file, with an F32 KV cache and no flash attention (its defaults keep K and V in
 * f16): the logits at the end of each prompt ([vocabSize] each) and its greedy continuation of
 * each prompt (up to maxTokens, EOS included if it comes); with `texts`, also its tokenization of
 * each (special tokens parsed).
 */
export async function llamaCppLogitsAndGreedy(
  llama: Llama, file: string, prompts: number[][], o: { vocabSize: number; maxTokens: number; contextSize?: number; texts?: string[] },
): Promise<{ logits: Float32Array[]; greedy: number[][]; tokenized?: number[][] }> {
  const model = await llama.loadModel({ modelPath: file });
  const context = await model.createContext({
    contextSize: o.contextSize ?? 256, threads: 2, sequences: 2, flashAttention: false,
    experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  });
  const logits: Float32Array[] = [], greedy: number[][] = [];
  const [forLogits, forGreedy] = [context.getSequence(), context.getSequence()];
  try {
    for (const prompt of prompts) {
      await forLogits.clearHistory();
      const out = await forLogits.controlledEvaluate(prompt.map((t, i) => (i === prompt.length - 1 ? [t, { generateNext: { logits: true } }] : t)) as never);
      const row = new Float32Array(o.vocabSize);
      for (const [t, v] of out[prompt.length - 1]!.next.logits!) row[t as number] = v;
      logits.push(row);
      await forGreedy.clearHistory();
      const tokens: number[] = [];
      for await (const t of forGreedy.evaluate(prompt as never, { temperature: 0 })) {
        tokens.push(t as number);
        if (tokens.length >= o.maxTokens) break;
      }
      greedy.push(tokens);
    }
    const tokenized = o.texts?.map((t) => [...model.tokenize(t, true)] as number[]);
    return { logits, greedy, ...(tokenized ? { tokenized } : {}) };
  } finally {
    await context.dispose();
    await model.dispose();
  }
}

/** ‖a − b‖ / ‖b‖. */
export function relativeRMS(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) { num += (a[i]! - b[i]!) ** 2; den += b[i]! ** 2; }
  return Math.sqrt(num / den);
}
