// CLI option values → library options.
import type { GenerateOptions, LoadModelOptions, Model } from '../engine/model.js';
import { readChatTemplateArg } from '../chat/chat-template-choice.js';
import type { BackendName } from '../engine/model.js';
import type { LoadQuant } from '../quant/quantize-on-load.js';
import type { Grammar } from '../engine/grammar.js';

export interface ModelCliOptions {
  tokenizer?: string;
  /** --chat-template: a built-in name or a .jinja file. */
  chatTemplate?: string;
  ctxSize?: number;
  backend: BackendName;
  threads?: number;
  quant?: LoadQuant;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repeatPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  repeatLastN?: number;
  seed?: number;
  stop?: string[];
  /** --format: the grammar output must follow. */
  format?: Grammar;
  verbose?: boolean;
}

export async function loadOptions(o: ModelCliOptions): Promise<LoadModelOptions> {
  return {
    tokenizer: o.tokenizer, contextLength: o.ctxSize, backend: o.backend, threads: o.threads, quant: o.quant,
    chatTemplate: o.chatTemplate === undefined ? undefined : await readChatTemplateArg(o.chatTemplate),
  };
}

/** Says on stderr when a chat uses the default template because the model has none. */
export function noteChatTemplate(model: Model, modelPath: string): void {
  if (model.chatTemplate.origin === 'default') {
    process.stderr.write(`note: ${modelPath} has no chat template; using ${model.chatTemplate.label} (choose another with --chat-template)\n`);
  }
}

export function generateOptions(o: ModelCliOptions): GenerateOptions {
  return {
    maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP,
    repeatPenalty: o.repeatPenalty, presencePenalty: o.presencePenalty, frequencyPenalty: o.frequencyPenalty,
    repeatLastN: o.repeatLastN, seed: o.seed, stop: o.stop, grammar: o.format,
  };
}
