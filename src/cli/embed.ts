// minerva embed <model> [text...]: one embedding per text (or stdin), printed as JSON.
import { Model } from '../engine/model.js';
import { loadOptions, type ModelCliOptions } from './generation-options.js';
import { loadProgressBar } from './progress.js';

export interface EmbedCliOptions extends Pick<ModelCliOptions, 'tokenizer' | 'ctxSize' | 'backend' | 'threads' | 'quant'> {
  dimensions?: number;
  truncate?: boolean;
  normalize?: boolean;
  /** Each line of stdin is one input. */
  lines?: boolean;
}

export async function embedCommand(modelPath: string, texts: string[], o: EmbedCliOptions): Promise<void> {
  let inputs = texts;
  if (inputs.length === 0) {
    if (process.stdin.isTTY) throw new Error('embed: no text given (pass texts as arguments or pipe them on stdin)');
    const text = await readStdin();
    inputs = o.lines ? text.split(/\r?\n/).filter((l) => l.trim() !== '') : [text.replace(/\r?\n$/, '')];
    if (inputs.length === 0 || inputs.every((t) => t === '')) throw new Error('embed: stdin is empty');
  }
  const progress = loadProgressBar('loading');
  let model: Model;
  try {
    // One sequence at a time: each text is read in batches of the whole context anyway, and more
    // slots would each take a context's worth of KV cache.
    model = await Model.load(modelPath, { ...loadOptions(o), onProgress: progress.update });
  } finally {
    progress.stop();
  }
  try {
    const r = await model.embed(inputs, { dimensions: o.dimensions, truncate: o.truncate, normalize: o.normalize });
    process.stdout.write(JSON.stringify({
      model: modelPath, pooling: r.pooling, prompt_tokens: r.promptTokens, embeddings: r.embeddings.map((e) => Array.from(e)),
    }) + '\n');
  } finally {
    model.dispose();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
