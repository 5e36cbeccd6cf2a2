// The library API.
import { Model, QueueFullError, type LoadModelOptions } from './engine/model.js';

export { Model, QueueFullError };
export type {
  BackendName, FinishReason, GenerateOptions, GenerationChunk, LoadModelOptions, ModelInfo, SchedulerStats, Timings, TokenLogprob,
} from './engine/model.js';
export type { SamplingOptions } from './engine/sampler.js';
export type { ModelSpec } from './model/spec.js';
export type { ChatMessage, Tokenizer } from './tokenizer/tokenizer.js';
export { openModel } from './model/load.js';
export { Grammar, GrammarBuilder, GrammarError, chars, literal } from './engine/grammar.js';
export { SchemaError, jsonObjectGrammar, jsonSchemaGrammar } from './engine/json-schema-grammar.js';

/** Loads a model (HF folder, .gguf file, or llama2.c .bin) with its real weights. */
export function loadModel(path: string, options?: LoadModelOptions): Promise<Model> {
  return Model.load(path, options);
}
