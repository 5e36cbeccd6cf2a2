// The library API.
import { EmbedInputError, Model, QueueFullError, type LoadModelOptions } from './engine/model.js';

export { EmbedInputError, Model, QueueFullError };
export type {
  BackendName, FinishReason, GenerateOptions, GenerationChunk, LoadModelOptions, ModelInfo, SchedulerStats, Timings, TokenLogprob,
} from './engine/model.js';
export type { EmbedInput, EmbedOptions, EmbedResult } from './engine/model.js';
export type { SamplingOptions } from './engine/sampler.js';
export type { ModelSpec, Pooling, PoolingType } from './model/spec.js';
export { embeddingPooling } from './engine/embeddings.js';
export type { ChatMessage, Tokenizer } from './tokenizer/tokenizer.js';
export { openModel } from './model/load.js';
export { Grammar, GrammarBuilder, GrammarError, chars, literal } from './engine/grammar.js';
export { SchemaError, jsonObjectGrammar, jsonSchemaGrammar } from './engine/json-schema-grammar.js';

/** Loads a model (HF folder, .gguf file, or llama2.c .bin) with its real weights. */
export function loadModel(path: string, options?: LoadModelOptions): Promise<Model> {
  return Model.load(path, options);
}

// Models from the Hugging Face Hub, into the shared HF cache (what `minerva pull` runs).
export { pull, defaultModelsDir, type PullOptions, type PullResult, type PulledFile } from './hub/pull.js';
export { ollamaPullStatus, type PullEvent, type PullFileInfo, type OllamaPullStatus } from './hub/pull-events.js';
export { HubError, type HubErrorKind } from './hub/hub-errors.js';
export { readPullRecord, verifyPullRecord, pullRecordPath, type PullRecord, type VerifiedFile } from './hub/pull-record.js';
