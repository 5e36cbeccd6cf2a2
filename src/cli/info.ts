// minerva info <model>: what a model is, from its headers only (no weights are read).
import { openModelFiles } from '../model/load.js';
import { parameterCount } from '../model/spec.js';
import { DEFAULT_CHAT_TEMPLATE } from '../chat/builtin-templates.js';

export async function infoCommand(modelPath: string, o: { tokenizer?: string; json?: boolean }): Promise<void> {
  const m = await openModelFiles(modelPath, { tokenizer: o.tokenizer });
  try {
    const dtypes: Record<string, number> = {};
    let bytes = 0;
    for (const t of m.tensors.values()) {
      dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
      bytes += t.byteLength;
    }
    const s = m.spec;
    const tok = await m.describeTokenizer();
    const info = {
      path: m.path,
      format: m.format,
      architecture: s.modelType,
      parameters: parameterCount(s),
      weightBytes: bytes,
      dtypes,
      contextLength: s.contextLength,
      vocabSize: s.vocabSize,
      layers: s.nLayers,
      hiddenSize: s.dim,
      ffnSize: s.ffnDim,
      heads: s.nHeads,
      kvHeads: s.nKVHeads,
      headDim: s.headDim,
      ropeTheta: s.rope.theta,
      ropeScaling: s.rope.scaling.type,
      normEps: s.normEps,
      tiedEmbeddings: s.tiedEmbeddings,
      slidingWindow: s.slidingWindow ?? null,
      /** Declared embedding pooling (GGUF pooling_type, sentence-transformers files), or null. */
      pooling: s.pooling ? `${s.pooling.type}${s.pooling.normalize ? ', normalised' : ''}` : null,
      tokenizer: tok.kind,
      tokenizerModel: tok.model,
      tokenizerVocab: tok.vocabSize,
      chatTemplate: tok.chatTemplate,
      /** What chat prompts are rendered with: the model's own, else the default (ChatML). */
      chatTemplateUsed: tok.chatTemplate ? 'model' : DEFAULT_CHAT_TEMPLATE,
    };
    if (o.json) {
      process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      return;
    }
    const rows: [string, string][] = [
      ['path', info.path],
      ['format', info.format],
      ['architecture', info.architecture],
      ['parameters', `${(info.parameters / 1e6).toFixed(2)} M`],
      ['weights', `${(bytes / 2 ** 20).toFixed(1)} MiB (${Object.entries(dtypes).map(([d, n]) => `${n} × ${d}`).join(', ')})`],
      ['context length', String(info.contextLength)],
      ['layers', String(info.layers)],
      ['hidden / ffn', `${info.hiddenSize} / ${info.ffnSize}`],
      ['heads / kv heads', `${info.heads} / ${info.kvHeads} (head dim ${info.headDim})`],
      ['rope', `theta ${info.ropeTheta}, scaling ${info.ropeScaling}`],
      ['norm eps', String(Number(info.normEps.toPrecision(6)))],
      ['tied embeddings', info.tiedEmbeddings ? 'yes' : 'no'],
      ['sliding window', info.slidingWindow === null ? 'none' : String(info.slidingWindow)],
      ['embedding pooling', info.pooling ?? 'none declared (embeddings: last token, normalised)'],
      ['vocabulary', String(info.vocabSize)],
      ['tokenizer', info.tokenizer === 'none' ? 'none (pass --tokenizer)'
        : `${info.tokenizer}, ${info.tokenizerModel} (${info.tokenizerVocab} tokens)`],
      ['chat template', info.chatTemplate ? "the model's own" : `none; chats use ${DEFAULT_CHAT_TEMPLATE} (the default; --chat-template chooses another)`],
    ];
    const w = Math.max(...rows.map(([k]) => k.length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
  } finally {
    await m.close();
  }
}
