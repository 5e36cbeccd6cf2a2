// The library API.
import { EmbedInputError, Model, NotEnoughMemoryError, QueueFullError, type LoadModelOptions } from './engine/model.js';

export { EmbedInputError, Model, NotEnoughMemoryError, QueueFullError };
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
export { ManifestError, UnsupportedTypeError } from './model/manifest.js';
export { readPullRecord, verifyPullRecord, pullRecordPath, type PullRecord, type VerifiedFile } from './hub/pull-record.js';

// Chat: templates, tool calls and reasoning (what the server's chat routes run). A chat with
// tools: model.chat(messages, { tools, keepSpecial: toolMarkerTokens(format, model.tokenizer),
// grammar: toolCallGrammar(…) to force a call }), its text read with a ToolCallParser.
export type { ChatPromptOptions } from './engine/model.js';
export type { ToolCall, ToolCallFormat, ToolChoice, ToolFunction } from './chat/tool-types.js';
export type { ChatTemplateChoice } from './chat/chat-template-choice.js';
export { BUILTIN_CHAT_TEMPLATES } from './chat/builtin-templates.js';
export { toolCallFormat, toolMarkerTokens, mistralCallForm } from './chat/tool-format.js';
export { ToolCallParser, parseToolCalls } from './chat/tool-call-parser.js';
export { toolCallGrammar } from './chat/tool-grammar.js';
export { ReasoningSplitter, splitReasoning, promptOpensThinking } from './chat/reasoning.js';
