// Streams a generation to stdout; returns the last chunk (finish reason, usage, timings).
import type { GenerationChunk } from '../engine/model.js';

export async function streamToStdout(chunks: AsyncIterable<GenerationChunk>, verbose: boolean): Promise<GenerationChunk | undefined> {
  let last: GenerationChunk | undefined;
  for await (const chunk of chunks) {
    if (chunk.text) process.stdout.write(chunk.text);
    last = chunk;
  }
  if (verbose && last?.timings) {
    const t = last.timings;
    const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(2) : '–');
    process.stderr.write(
      `\nprompt: ${t.promptTokens} tokens in ${t.promptMs.toFixed(0)} ms (${rate(t.promptTokens, t.promptMs)} tok/s); `
      + `generated: ${t.generatedTokens} tokens in ${t.generateMs.toFixed(0)} ms (${rate(t.generatedTokens, t.generateMs)} tok/s); `
      + `finish: ${last.finishReason}\n`,
    );
  }
  return last;
}
