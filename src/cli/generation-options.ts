// CLI option values → library options.
import type { GenerateOptions, LoadModelOptions } from '../engine/model.js';
import type { BackendName } from '../engine/model.js';
import type { LoadQuant } from '../quant/quantize-on-load.js';
import type { Grammar } from '../engine/grammar.js';

export interface ModelCliOptions {
  tokenizer?: string;
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

export function loadOptions(o: ModelCliOptions): LoadModelOptions {
  return { tokenizer: o.tokenizer, contextLength: o.ctxSize, backend: o.backend, threads: o.threads, quant: o.quant };
}

export function generateOptions(o: ModelCliOptions): GenerateOptions {
  return {
    maxTokens: o.maxTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP,
    repeatPenalty: o.repeatPenalty, presencePenalty: o.presencePenalty, frequencyPenalty: o.frequencyPenalty,
    repeatLastN: o.repeatLastN, seed: o.seed, stop: o.stop, grammar: o.format,
  };
}
