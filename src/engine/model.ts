// A loaded model: weights on a backend, a KV cache, and the generation loop behind the library
// API (generate, chat, tokenize, detokenize, info, dispose).
import type { Backend, KVCache } from '../backends/backend.js';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { ReferenceBackend } from '../backends/reference/reference-backend.js';
import { CpuBackend } from '../backends/cpu/cpu-backend.js';
import { autoBackend } from '../backends/webgpu/gpu.js';
import { LlamaGraph } from '../model/arch/llama.js';
import { loadWeights, openModel, type LoadProgress, type ModelFormat, type OpenedModel, type OpenModelOptions } from '../model/load.js';
import { GpuCapacityError, WebGpuBackend } from '../backends/webgpu/webgpu-backend.js';
import { activationBytes, graphBatchTokens, kvCacheBytes, parameterCount, type ModelSpec } from '../model/spec.js';
import type { ChatMessage, Tokenizer } from '../tokenizer/tokenizer.js';
import type { ToolFunction } from '../chat/tool-types.js';
import { chatTemplateFromOption, chooseChatTemplate, type ChatTemplateChoice } from '../chat/chat-template-choice.js';
import { resolveSampling, type SamplingOptions } from './sampler.js';
import { choiceSeed } from './rng.js';
import type { Grammar } from './grammar.js';
import { QueueFullError, Scheduler, type GenerationChunk, type SchedulerStats, type SequenceRequest } from './scheduler.js';
import {
  checkDimensions, embedInputs, embeddingPooling, embeddingTokens, finishEmbedding,
  type EmbedInput, type EmbedOptions, type EmbedResult,
} from './embeddings.js';
import { LOAD_QUANT_TYPES, isLoadQuant, keptBytes, type LoadQuant } from '../quant/quantize-on-load.js';

export type BackendName = 'auto' | 'webgpu' | 'cpu' | 'reference';
export const BACKEND_NAMES: readonly BackendName[] = ['auto', 'webgpu', 'cpu', 'reference'];

export interface LoadModelOptions extends OpenModelOptions {
  /**
   * Default "auto": "webgpu" when a hardware GPU adapter exists, else "cpu". "webgpu": WGSL kernels
   * through Dawn (a software adapter such as lavapipe is used only when asked for by this name).
   * "cpu": wasm SIMD kernels on worker threads. "reference": plain TypeScript in f32, the
   * executable specification.
   */
  backend?: BackendName;
  /**
   * With backend "auto": when the GPU cannot hold the model (out of memory, a buffer over the
   * adapter's limits), load it on the cpu backend instead. Default true; the server turns it off
   * to first make room on the GPU.
   */
  gpuFallback?: boolean;
  /**
   * Bytes of memory free for this model, checked before the cpu backend takes any (default:
   * process.availableMemory(), the system's available memory within any cgroup limit). A model whose weights and KV cache would not fit is
   * refused with NotEnoughMemoryError rather than left for the OOM killer.
   */
  freeMemory?: number;
  /** Time the GPU's work with timestamp queries (webgpu; for Model.profile(), as minerva bench does). */
  profile?: boolean;
  /** GPU bytes the webgpu backend may take; a model whose weights and KV cache need more is refused before it loads. */
  maxGpuMemory?: number;
  /** Threads of the cpu backend. Default: available cores. */
  threads?: number;
  /** Quantize float weight matrices as they load: "q8_0", "q4_0", "q4_k", "q5_k" or "q3_k". Default: keep the stored types. */
  quant?: LoadQuant;
  /**
   * Chat template to use instead of the model's own: a built-in name (chatml, llama2, llama3, gemma,
   * phi3, phi4, mistral-v7), Jinja source, or a choice read by readChatTemplateArg (a file). A model
   * without a template of its own gets ChatML.
   */
  chatTemplate?: string | ChatTemplateChoice;
  /** Tokens of context to allocate KV cache for. Default min(model's context length, 4096). */
  contextLength?: number;
  /** Most tokens one forward call takes (the prompt is read in chunks of this). Default 512. */
  batchSize?: number;
  /**
   * Sequences that generate together (continuous batching: concurrent generate() calls share each
   * forward pass). Each has its own `contextLength` of KV cache. Default 1.
   */
  parallel?: number;
  /** Calls that may wait for a free sequence slot; beyond this generate() throws QueueFullError. Default: no limit. */
  maxQueue?: number;
  /** Prompt tokens one step reads while other sequences are generating. Default 64. */
  prefillChunk?: number;
  onProgress?: (p: LoadProgress) => void;
}

export interface GenerateOptions extends SamplingOptions {
  /** Most tokens to generate. Default: until the context is full. */
  maxTokens?: number;
  /** Generation ends before the first of these appears; it is not part of the output. */
  stop?: readonly string[];
  /** Prepend BOS where the model asks for it. Default true for generate(), handled by chat(). */
  addSpecial?: boolean;
  /** Stops generation early; the last chunk then has finishReason "abort". */
  signal?: AbortSignal;
  /** Report each generated token's log-probability and this many most likely alternatives (0–20). */
  logprobs?: number;
  /**
   * Only generate text this grammar admits (structured output: see json-schema-grammar.ts); the
   * generation ends when the grammar is complete.
   */
  grammar?: Grammar;
  /**
   * Special tokens whose text is written into the output although special (tool-call markers such
   * as Mistral's [TOOL_CALLS]: see chat/tool-format.ts toolMarkerTokens); under a grammar their
   * text counts as bytes the grammar must admit.
   */
  keepSpecial?: readonly number[];
}

export interface ChatPromptOptions {
  /** Functions the model may call: the template lists them. */
  tools?: readonly ToolFunction[];
  /** More template variables (e.g. enable_thinking for Qwen3). */
  variables?: Readonly<Record<string, unknown>>;
}

/** Most choices one prompt may have (startChoices). */
export const MAX_CHOICES = 128;

export type { FinishReason, GenerationChunk, SchedulerStats, Timings, TokenLogprob } from './scheduler.js';
export { QueueFullError } from './scheduler.js';
export type { EmbedInput, EmbedOptions, EmbedResult } from './embeddings.js';
export { EmbedInputError } from './embeddings.js';

export interface ModelInfo {
  path: string;
  format: ModelFormat;
  backend: string;
  spec: ModelSpec;
  parameters: number;
  contextLength: number;
  tokenizer: string;
  /** Whether the model's own files have a chat template. */
  chatTemplate: boolean;
  /** The template chat prompts are rendered with, and where it came from. */
  chatTemplateUsed: Pick<ChatTemplateChoice, 'origin' | 'label'>;
  /** Sequences that can generate at once. */
  parallel: number;
}

export class Model {
  private readonly scheduler: Scheduler;
  /** Positions of KV cache per sequence. */
  readonly contextLength: number;
  readonly parallel: number;
  /** The chat template chat prompts are rendered with (the model's, an override, or ChatML). */
  readonly chatTemplate: ChatTemplateChoice;
  private disposed = false;

  private constructor(
    private readonly backend: Backend, readonly spec: ModelSpec, readonly tokenizer: Tokenizer,
    private readonly meta: { path: string; format: ModelFormat },
    weights: Awaited<ReturnType<typeof loadWeights>>, options: LoadModelOptions,
  ) {
    this.contextLength = options.contextLength ?? Math.min(spec.contextLength, 4096);
    this.parallel = options.parallel ?? 1;
    this.chatTemplate = chooseChatTemplate(tokenizer, chatTemplateOverride(options.chatTemplate));
    const batchSize = graphBatchTokens(options.batchSize, this.contextLength, this.parallel);
    const graph = new LlamaGraph(backend, spec, weights, {
      maxBatchTokens: batchSize, maxOutputs: this.parallel, contextLength: this.contextLength,
    });
    const cache: KVCache = backend.createKVCache({
      nLayers: spec.nLayers, nKVHeads: spec.nKVHeads, headDim: spec.headDim, maxSeqs: this.parallel, ctxLen: this.contextLength,
    });
    this.scheduler = new Scheduler(graph, cache, tokenizer, {
      slots: this.parallel, contextLength: this.contextLength,
      maxQueue: options.maxQueue ?? Infinity, prefillChunk: options.prefillChunk ?? 64,
    });
    this.warm = { graph, cache };
  }

  private readonly warm: { graph: LlamaGraph; cache: KVCache };

  /**
   * A GPU compiles its pipelines and makes its bind groups on first use: one decode step and one
   * batch step run here, at load, so the first request does not pay for them. (They write slot 0
   * of the KV cache, which the scheduler holds as empty and overwrites before any read.)
   */
  private async warmUp(): Promise<void> {
    const { graph, cache } = this.warm;
    for (const n of new Set([1, Math.min(16, graph.limits.maxBatchTokens, this.contextLength)])) {
      await graph.forward(new Int32Array(n), { positions: Int32Array.from({ length: n }, (_, i) => i), seqs: new Int32Array(n) },
        Int32Array.of(n - 1), cache);
    }
  }

  static async load(modelPath: string, options: LoadModelOptions = {}): Promise<Model> {
    checkLoadOptions(options);
    const opened = await openModel(modelPath, options);
    try {
      const name = await resolveBackend(options.backend);
      try {
        return await Model.loadOn(name, opened, options);
      } catch (e) {
        // auto: a model the GPU cannot hold (out of memory, a buffer over its limits) runs on the cpu.
        if (!(e instanceof GpuCapacityError) || (options.backend ?? 'auto') !== 'auto' || options.gpuFallback === false) throw e;
        return await Model.loadOn('cpu', opened, options);
      }
    } finally {
      await opened.close();
    }
  }

  private static async loadOn(name: Exclude<BackendName, 'auto'>, opened: OpenedModel, options: LoadModelOptions): Promise<Model> {
    if (name === 'cpu') checkMemoryFits(opened, options);
    const backend = await createBackend(name, options.threads ?? availableParallelism(), options.profile ?? false);
    try {
      if (backend instanceof WebGpuBackend) checkGpuFits(backend, opened, options);
      const weights = await loadWeights(opened, backend, options.onProgress, options.quant);
      const model = new Model(backend, opened.spec, opened.tokenizer, { path: opened.path, format: opened.format }, weights, options);
      if (backend instanceof WebGpuBackend) await model.warmUp();
      return model;
    } catch (e) {
      backend.dispose();
      throw e;
    }
  }

  info(): ModelInfo {
    return {
      ...this.meta, backend: this.backend.name, spec: this.spec, parameters: parameterCount(this.spec),
      contextLength: this.contextLength, tokenizer: this.tokenizer.kind,
      chatTemplate: this.tokenizer.chatTemplate !== undefined, parallel: this.parallel,
      chatTemplateUsed: { origin: this.chatTemplate.origin, label: this.chatTemplate.label },
    };
  }

  /** What the scheduler is doing: sequences running and waiting, KV cache in use. */
  stats(): SchedulerStats {
    return this.scheduler.stats();
  }

  /** The backend's own counters (webgpu: dispatches, submits, JS encode ms, GPU ms), or {} where it keeps none. */
  async profile(): Promise<Record<string, number>> {
    return (await this.backend.profile?.()) ?? {};
  }

  tokenize(text: string, options: { addSpecial?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, options);
  }

  detokenize(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.tokenizer.vocabSize) {
        throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.tokenizer.vocabSize - 1})`);
      }
    }
    return this.tokenizer.decode(ids, options);
  }

  /** Streams the continuation of `prompt`. */
  generate(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncIterable<GenerationChunk> {
    return this.deferred(() => this.start(this.promptTokens(prompt, options), options));
  }

  /** Applies the model's chat template to `messages` and streams the assistant's reply. */
  chat(messages: readonly ChatMessage[], options: GenerateOptions & ChatPromptOptions = {}): AsyncIterable<GenerationChunk> {
    return this.deferred(() => this.start(this.chatPromptTokens(messages, options), options));
  }

  /**
   * generate() for callers that must know at once whether the request was taken (a server that
   * answers 429 or 400 before it starts a stream): checks everything and joins the scheduler now,
   * throwing RangeError for bad input and QueueFullError when every slot and the queue are taken.
   */
  start(prompt: readonly number[], options: GenerateOptions = {}): AsyncIterableIterator<GenerationChunk> {
    return this.scheduler.submit(this.request(prompt, options));
  }

  /**
   * `n` choices (independent continuations) of one prompt, as OpenAI's `n`: the prompt is read
   * once and its keys and values copied to the other choices' sequences. Choice i samples with
   * its own seed derived from the request's (choice 0 with the seed itself, so it equals the
   * same request alone; see rng.ts choiceSeed), so sampled choices differ while a seeded request
   * still repeats; greedy choices are all the same. Each choice takes a sequence slot; those
   * beyond the free slots wait in the queue. Like start(), it checks everything at once: all
   * choices are taken, or none (QueueFullError when the free slots and queue places are fewer
   * than `n`). Each stream's last chunk has that choice's usage (promptTokens is the prompt's
   * length in each: count it once when summing).
   */
  startChoices(prompt: readonly number[], n: number, options: GenerateOptions = {}): AsyncIterableIterator<GenerationChunk>[] {
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_CHOICES)) throw new RangeError(`n must be an integer in 1..${MAX_CHOICES}, got ${n}`);
    const first = this.request(prompt, options);
    if (n === 1) return [this.scheduler.submit(first)];
    const reqs = Array.from({ length: n }, (_, i): SequenceRequest => ({
      ...first, sampling: { ...first.sampling, seed: choiceSeed(first.sampling.seed, i) },
    }));
    return this.scheduler.submitChoices(reqs);
  }

  /** startChoices() as iterables whose checks and submission happen when the first is iterated. */
  generateChoices(prompt: string | readonly number[], n: number, options: GenerateOptions = {}): AsyncIterable<GenerationChunk>[] {
    let streams: AsyncIterableIterator<GenerationChunk>[] | undefined;
    const begin = () => (streams ??= this.startChoices(this.promptTokens(prompt, options), n, options));
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_CHOICES)) throw new RangeError(`n must be an integer in 1..${MAX_CHOICES}, got ${n}`);
    return Array.from({ length: n }, (_, i) => this.deferred(() => begin()[i]!));
  }

  /** A request checked: sampling options, length, prompt, logprobs. */
  private request(prompt: readonly number[], options: GenerateOptions): SequenceRequest {
    if (this.disposed) throw new Error('the model has been disposed');
    const sampling = resolveSampling(options, this.spec.vocabSize);
    const maxTokens = options.maxTokens ?? Infinity;
    if (!(maxTokens === Infinity || (Number.isInteger(maxTokens) && maxTokens >= 0))) {
      throw new RangeError(`maxTokens must be an integer >= 0, got ${maxTokens}`);
    }
    this.checkPrompt(prompt);
    const logprobs = options.logprobs;
    if (logprobs !== undefined && !(Number.isInteger(logprobs) && logprobs >= 0 && logprobs <= 20)) {
      throw new RangeError(`logprobs must be an integer in 0..20, got ${logprobs}`);
    }
    return {
      prompt, sampling, maxTokens, stop: options.stop ?? [], signal: options.signal, logprobs, grammar: options.grammar,
      keepSpecial: options.keepSpecial,
    };
  }

  /** The prompt's token ids: text is encoded (with BOS unless addSpecial is false), ids are taken as they are. */
  promptTokens(prompt: string | readonly number[], options: { addSpecial?: boolean } = {}): number[] {
    return typeof prompt === 'string' ? this.tokenizer.encode(prompt, { addSpecial: options.addSpecial ?? true }) : [...prompt];
  }

  /** The text of a chat prompt: the chat template (the model's, an override, or ChatML) rendered. */
  renderChat(messages: readonly ChatMessage[], options: ChatPromptOptions = {}): string {
    return this.tokenizer.applyChatTemplate(messages, {
      addGenerationPrompt: true, tools: options.tools, variables: options.variables,
      // The model's own: the tokenizer picks it (or its tool_use variant when there are tools).
      template: this.chatTemplate.origin === 'model' ? undefined : this.chatTemplate.source,
    });
  }

  /** The tokens of a rendered chat prompt (renderChat), with BOS added if the template left it out. */
  chatTextTokens(text: string): number[] {
    const ids = this.tokenizer.encode(text, { addSpecial: false });
    const bos = this.tokenizer.bosId;
    if (this.tokenizer.addBos && bos !== undefined && ids[0] !== bos) ids.unshift(bos);
    return ids;
  }

  /** The tokens of a chat prompt: renderChat, then chatTextTokens. */
  chatPromptTokens(messages: readonly ChatMessage[], options: ChatPromptOptions = {}): number[] {
    return this.chatTextTokens(this.renderChat(messages, options));
  }

  /**
   * The next-token logits after `tokens` ([vocabSize] floats, before any sampling) — for checking
   * a model against another engine, and for perplexity.
   */
  async logits(tokens: readonly number[]): Promise<Float32Array> {
    if (this.disposed) throw new Error('the model has been disposed');
    this.checkPrompt(tokens);
    let out: Float32Array | undefined;
    const stream = this.scheduler.submit({
      prompt: tokens, sampling: resolveSampling({ temperature: 0, seed: 0 }), maxTokens: 0, stop: [],
      onLogits: (l) => { out = l; },
    });
    for await (const chunk of stream) void chunk;
    if (!out) throw new Error('logits: the evaluation ended without logits');
    return out;
  }

  /**
   * One embedding vector per input: the final hidden states of its tokens pooled as the model
   * declares (embeddingPooling: mean, CLS or last token; a model that declares nothing gets its
   * last token's, normalised). Each input is a sequence of its own, batched with whatever else
   * the model is running. Throws EmbedInputError for a bad input or option, QueueFullError when
   * the model is too busy to take it.
   */
  async embed(input: EmbedInput, options: EmbedOptions = {}): Promise<EmbedResult> {
    if (this.disposed) throw new Error('the model has been disposed');
    const pooling = embeddingPooling(this.spec);
    if (options.normalize !== undefined) pooling.normalize = options.normalize;
    const dimensions = checkDimensions(options.dimensions, this.spec);
    const prompts = embedInputs(input).map((x, i) => embeddingTokens(this.tokenizer, this.spec.vocabSize, this.contextLength, x, i, options));
    const pooled: (Float32Array | undefined)[] = prompts.map(() => undefined);
    const streams = new Set<AsyncIterableIterator<GenerationChunk>>();
    const running = new Set<Promise<void>>();
    const sampling = resolveSampling({ temperature: 0, seed: 0 });
    let failure: { error: unknown } | undefined;
    // At most `parallel` inputs of this call at a time, so one long list does not fill the wait queue.
    for (let i = 0; i < prompts.length && !failure; i++) {
      let stream: AsyncIterableIterator<GenerationChunk> | undefined;
      while (!stream && !failure) {
        if (running.size >= this.parallel) { await Promise.race(running); continue; }
        try {
          stream = this.scheduler.submit({
            prompt: prompts[i]!, sampling, maxTokens: 0, stop: [], signal: options.signal,
            embedding: { pooling: pooling.type, onEmbedding: (v) => { pooled[i] = v; } },
          });
        } catch (e) {
          // Other callers fill the queue: wait for one of this call's inputs to finish, then retry.
          if (!(e instanceof QueueFullError) || running.size === 0) { failure = { error: e }; break; }
          await Promise.race(running);
        }
      }
      if (!stream) break;
      const s = stream;
      streams.add(s);
      let done = Promise.resolve();
      done = (async () => {
        try {
          for await (const chunk of s) void chunk;
        } catch (e) {
          failure ??= { error: e };
        } finally {
          streams.delete(s);
          running.delete(done);
        }
      })();
      running.add(done);
    }
    if (failure) for (const s of streams) void s.return?.();
    await Promise.all(running);
    if (failure) throw failure.error;
    const embeddings = pooled.map((v) => {
      if (!v) throw Object.assign(new Error('the embedding was aborted'), { name: 'AbortError' });
      return finishEmbedding(v, pooling.normalize, dimensions);
    });
    const tokenCounts = prompts.map((p) => p.length);
    return { embeddings, tokenCounts, promptTokens: tokenCounts.reduce((a, b) => a + b, 0), pooling };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.scheduler.close();
    this.backend.dispose();
  }

  /** An iterable whose checks and submission happen when iteration starts (errors reject the first next()). */
  private deferred(begin: () => AsyncIterableIterator<GenerationChunk>): AsyncIterable<GenerationChunk> {
    return { [Symbol.asyncIterator]: () => {
      let inner: AsyncIterableIterator<GenerationChunk> | undefined;
      return {
        next: async () => (inner ??= begin()).next(),
        return: async () => (inner ? inner.return!() : { value: undefined, done: true }),
      };
    } };
  }

  private checkPrompt(prompt: readonly number[]): void {
    if (prompt.length === 0) throw new RangeError('the prompt is empty (no tokens)');
    if (prompt.length >= this.contextLength) {
      throw new RangeError(`the prompt has ${prompt.length} tokens; the context holds ${this.contextLength}`);
    }
    for (const id of prompt) {
      if (!Number.isInteger(id) || id < 0 || id >= this.spec.vocabSize) {
        throw new RangeError(`prompt token id ${id} is outside the vocabulary (0..${this.spec.vocabSize - 1})`);
      }
    }
  }
}


/** The backend `name` resolves to here: "auto" becomes "webgpu" on a hardware GPU, else "cpu". */
export async function resolveBackend(name: BackendName = 'auto'): Promise<Exclude<BackendName, 'auto'>> {
  return name === 'auto' ? autoBackend() : name;
}

async function createBackend(name: Exclude<BackendName, 'auto'>, threads: number, profile: boolean): Promise<Backend> {
  switch (name) {
    case 'reference': return new ReferenceBackend();
    case 'cpu': return CpuBackend.create(threads);
    case 'webgpu': return WebGpuBackend.create({ allowSoftware: true, timestamps: profile });
    default: throw new RangeError(`unknown backend "${String(name)}" (available: ${BACKEND_NAMES.join(', ')})`);
  }
}

/**
 * Refuses, before any weight is uploaded, a model whose weights (as they will be kept) and KV cache
 * do not fit the GPU budget: the adapter does not say how much memory it has, so the budget is
 * `maxGpuMemory` when given.
 */
function checkGpuFits(backend: WebGpuBackend, opened: OpenedModel, o: LoadModelOptions): void {
  if (o.maxGpuMemory === undefined) return;
  const need = modelBytes(opened, o);
  if (need > o.maxGpuMemory) {
    throw new GpuCapacityError(`${opened.path} needs ${formatBytes(need)} of GPU memory (weights and KV cache); `
      + `the budget is ${formatBytes(o.maxGpuMemory)} (--max-gpu-memory) on ${backend.adapter.description}`);
  }
}

/** Bytes a model takes once loaded under `o`: weights as kept (after --quant) plus the KV cache. */
export function modelBytes(opened: Pick<OpenedModel, 'spec' | 'tensors'>, o: MemoryOptions): number {
  const { weights, kv, scratch } = modelMemory(opened, o);
  return weights + kv + scratch;
}

type MemoryOptions = Pick<LoadModelOptions, 'quant' | 'contextLength' | 'parallel' | 'batchSize'>;

/** What a loaded model holds, in bytes: its weights as kept, the KV cache, the graph's activations. */
function modelMemory(opened: Pick<OpenedModel, 'spec' | 'tensors'>, o: MemoryOptions): { weights: number; kv: number; scratch: number } {
  let weights = 0;
  for (const t of opened.tensors.values()) weights += keptBytes(t, o.quant);
  const s = opened.spec, ctx = o.contextLength ?? Math.min(s.contextLength, 4096), slots = o.parallel ?? 1;
  return { weights, kv: kvCacheBytes(s, ctx, slots), scratch: activationBytes(s, graphBatchTokens(o.batchSize, ctx, slots), slots) };
}

/** The model's weights and KV cache do not fit in the memory that is free. */
export class NotEnoughMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotEnoughMemoryError';
  }
}

/**
 * Refuses, before any weight is copied, a model whose weights and KV cache (modelBytes) exceed
 * the free memory, naming both numbers and what would make it fit.
 */
function checkMemoryFits(opened: OpenedModel, o: LoadModelOptions): void {
  const { weights, kv, scratch } = modelMemory(opened, o), need = weights + kv + scratch;
  const free = o.freeMemory ?? process.availableMemory();
  if (need <= free) return;
  const ctx = o.contextLength ?? Math.min(opened.spec.contextLength, 4096), seqs = o.parallel ?? 1;
  throw new NotEnoughMemoryError(`${path.basename(opened.path)} needs ${formatBytes(need)} (weights ${formatBytes(weights)}, KV cache `
    + `${formatBytes(kv)} for ${seqs} × ${ctx} positions, activations ${formatBytes(scratch)}) and ${formatBytes(free)} of memory is free; `
    + 'use a smaller context (--ctx-size), fewer parallel sequences, or a smaller weight type');
}

/** A size for messages: MiB below 1 GiB, else GiB. */
export function formatBytes(bytes: number): string {
  return bytes < 2 ** 30 ? `${(bytes / 2 ** 20).toFixed(1)} MiB` : `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}

function chatTemplateOverride(t: LoadModelOptions['chatTemplate']): ChatTemplateChoice | undefined {
  if (t === undefined) return undefined;
  if (typeof t === 'string') return chatTemplateFromOption(t);
  if (typeof t !== 'object' || t === null || typeof t.source !== 'string') {
    throw new RangeError('chatTemplate must be a built-in template name, Jinja source, or a ChatTemplateChoice');
  }
  return t;
}

function checkLoadOptions(o: LoadModelOptions): void {
  chatTemplateOverride(o.chatTemplate); // parses it now, before any weight is read
  if (o.quant !== undefined && !isLoadQuant(o.quant)) {
    throw new RangeError(`quant must be one of ${Object.keys(LOAD_QUANT_TYPES).join(', ')}, got ${String(o.quant)}`);
  }
  if (o.contextLength !== undefined && !(Number.isInteger(o.contextLength) && o.contextLength > 0 && o.contextLength <= 1 << 20)) {
    throw new RangeError(`contextLength must be an integer in 1..${1 << 20}, got ${o.contextLength}`);
  }
  if (o.backend !== undefined && !BACKEND_NAMES.includes(o.backend)) {
    throw new RangeError(`backend must be one of ${BACKEND_NAMES.join(', ')}, got ${String(o.backend)}`);
  }
  if (o.maxGpuMemory !== undefined && !(Number.isFinite(o.maxGpuMemory) && o.maxGpuMemory > 0)) {
    throw new RangeError(`maxGpuMemory must be a positive number of bytes, got ${o.maxGpuMemory}`);
  }
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= 256)) {
    throw new RangeError(`threads must be an integer in 1..256, got ${o.threads}`);
  }
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize > 0 && o.batchSize <= 1 << 16)) {
    throw new RangeError(`batchSize must be an integer in 1..${1 << 16}, got ${o.batchSize}`);
  }
  if (o.parallel !== undefined && !(Number.isInteger(o.parallel) && o.parallel >= 1 && o.parallel <= 256)) {
    throw new RangeError(`parallel must be an integer in 1..256, got ${o.parallel}`);
  }
  if (o.maxQueue !== undefined && !(o.maxQueue === Infinity || (Number.isInteger(o.maxQueue) && o.maxQueue >= 0))) {
    throw new RangeError(`maxQueue must be an integer >= 0, got ${o.maxQueue}`);
  }
  if (o.prefillChunk !== undefined && !(Number.isInteger(o.prefillChunk) && o.prefillChunk >= 1)) {
    throw new RangeError(`prefillChunk must be an integer >= 1, got ${o.prefillChunk}`);
  }
}
