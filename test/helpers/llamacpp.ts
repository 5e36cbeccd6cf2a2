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
