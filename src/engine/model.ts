// A loaded model: weights on a backend, a KV cache, and the generation loop behind the library
// API (generate, chat, tokenize, detokenize, info, dispose).
import type { Backend, KVCache } from '../backends/backend.js';
import { availableParallelism } from 'node:os';
import { ReferenceBackend } from '../backends/reference/reference-backend.js';
import { CpuBackend } from '../backends/cpu/cpu-backend.js';
import { LlamaGraph } from '../model/arch/llama.js';
import { loadWeights, openModel, type LoadProgress, type ModelFormat, type OpenModelOptions } from '../model/load.js';
import { parameterCount, type ModelSpec } from '../model/spec.js';
import type { ChatMessage, Tokenizer } from '../tokenizer/tokenizer.js';
import { IncrementalDecoder } from '../tokenizer/incremental-decoder.js';
import { Sampler, resolveSampling, type SamplingOptions } from './sampler.js';
import { StopMatcher } from './stop-strings.js';
import { LOAD_QUANT_TYPES, isLoadQuant, type LoadQuant } from '../quant/quantize-on-load.js';

export type BackendName = 'reference' | 'cpu';

export interface LoadModelOptions extends OpenModelOptions {
  /** Default "cpu": wasm SIMD kernels on worker threads. "reference": plain TypeScript in f32, the executable specification. */
  backend?: BackendName;
  /** Threads of the cpu backend. Default: available cores. */
  threads?: number;
  /** Quantize float weight matrices as they load: "q8_0", "q4_0" or "q4_k". Default: keep the stored types. */
  quant?: LoadQuant;
  /** Tokens of context to allocate KV cache for. Default min(model's context length, 4096). */
  contextLength?: number;
  /** Tokens per prefill chunk. Default 512. */
  batchSize?: number;
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
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Timings {
  /** Prompt evaluation: tokens and milliseconds (tokens reused from the cache not counted). */
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generateMs: number;
}

export interface GenerationChunk {
  /** Newly generated text (may be empty while a multi-byte character or stop string is pending). */
  text: string;
  /** Token ids behind this chunk. */
  tokens: number[];
  /** Set on the last chunk only. */
  finishReason?: FinishReason;
  usage?: { promptTokens: number; completionTokens: number };
  timings?: Timings;
}

export interface ModelInfo {
  path: string;
  format: ModelFormat;
  backend: string;
  spec: ModelSpec;
  parameters: number;
  contextLength: number;
  tokenizer: string;
  chatTemplate: boolean;
}

export class Model {
  private readonly graph: LlamaGraph;
  private readonly cache: KVCache;
  readonly contextLength: number;
  /** Tokens whose keys and values sit in slot 0 of the cache, for prompt-prefix reuse. */
  private cached: number[] = [];
  /** Per-chunk inputs of a forward call, [batchSize] each, allocated once. */
  private readonly batchTokens: Int32Array;
  private readonly batchPositions: Int32Array;
  private readonly batchSeqs: Int32Array;
  private readonly lastRow = new Int32Array(1);
  /** [vocabSize] next-token logits of the running generation, reused for every token. */
  private readonly logitsBuffer: Float32Array;
  /** Generations run one at a time (continuous batching belongs to the server's scheduler). */
  private queue: Promise<void> = Promise.resolve();
  private disposed = false;

  private constructor(
    private readonly backend: Backend, readonly spec: ModelSpec, readonly tokenizer: Tokenizer,
    private readonly meta: { path: string; format: ModelFormat },
    weights: Awaited<ReturnType<typeof loadWeights>>, options: LoadModelOptions,
  ) {
    this.contextLength = options.contextLength ?? Math.min(spec.contextLength, 4096);
    const batchSize = Math.min(options.batchSize ?? 512, this.contextLength);
    this.graph = new LlamaGraph(backend, spec, weights, { maxBatchTokens: batchSize, maxOutputs: 1 });
    this.batchTokens = new Int32Array(batchSize);
    this.batchPositions = new Int32Array(batchSize);
    this.batchSeqs = new Int32Array(batchSize); // one sequence, slot 0
    this.logitsBuffer = new Float32Array(spec.vocabSize);
    this.cache = backend.createKVCache({
      nLayers: spec.nLayers, nKVHeads: spec.nKVHeads, headDim: spec.headDim, maxSeqs: 1, ctxLen: this.contextLength,
    });
  }

  static async load(modelPath: string, options: LoadModelOptions = {}): Promise<Model> {
    checkLoadOptions(options);
    const opened = await openModel(modelPath, options);
    try {
      const backend = await createBackend(options.backend ?? 'cpu', options.threads ?? availableParallelism());
      try {
        const weights = await loadWeights(opened, backend, options.onProgress, options.quant);
        return new Model(backend, opened.spec, opened.tokenizer, { path: opened.path, format: opened.format }, weights, options);
      } catch (e) {
        backend.dispose();
        throw e;
      }
    } finally {
      await opened.close();
    }
  }

  info(): ModelInfo {
    return {
      ...this.meta, backend: this.backend.name, spec: this.spec, parameters: parameterCount(this.spec),
      contextLength: this.contextLength, tokenizer: this.tokenizer.kind,
      chatTemplate: this.tokenizer.chatTemplate !== undefined,
    };
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
    const ids = typeof prompt === 'string'
      ? this.tokenizer.encode(prompt, { addSpecial: options.addSpecial ?? true })
      : [...prompt];
    return this.run(ids, options);
  }

  /** Applies the model's chat template to `messages` and streams the assistant's reply. */
  chat(messages: readonly ChatMessage[], options: GenerateOptions = {}): AsyncIterable<GenerationChunk> {
    return this.run(this.chatPromptTokens(messages), options);
  }

  /** The tokens of a chat prompt: the template's text, with BOS added if the template left it out. */
  chatPromptTokens(messages: readonly ChatMessage[]): number[] {
    const text = this.tokenizer.applyChatTemplate(messages, { addGenerationPrompt: true });
    const ids = this.tokenizer.encode(text, { addSpecial: false });
    const bos = this.tokenizer.bosId;
    if (this.tokenizer.addBos && bos !== undefined && ids[0] !== bos) ids.unshift(bos);
    return ids;
  }

  /**
   * The next-token logits after `tokens` ([vocabSize] floats, before any sampling) — for checking
   * a model against another engine, and for perplexity.
   */
  async logits(tokens: readonly number[]): Promise<Float32Array> {
    this.checkPrompt(tokens);
    const release = await this.acquire();
    try {
      return (await this.prefill(tokens)).logits;
    } finally {
      release();
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backend.dispose();
  }

  private async *run(prompt: number[], options: GenerateOptions): AsyncGenerator<GenerationChunk> {
    if (this.disposed) throw new Error('the model has been disposed');
    const sampling = resolveSampling(options);
    const maxTokens = options.maxTokens ?? Infinity;
    if (!(maxTokens === Infinity || (Number.isInteger(maxTokens) && maxTokens >= 0))) {
      throw new RangeError(`maxTokens must be an integer >= 0, got ${maxTokens}`);
    }
    this.checkPrompt(prompt);

    // Hold the model until this generator finishes or is abandoned.
    const release = await this.acquire();
    try {
      yield* this.generateLocked(prompt, sampling, maxTokens, options);
    } finally {
      release();
    }
  }

  /** Waits for the model to be free; returns the function that frees it again. */
  private async acquire(): Promise<() => void> {
    let release!: () => void;
    const turn = this.queue;
    this.queue = new Promise<void>((r) => (release = r));
    await turn;
    return release;
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

  private async *generateLocked(
    prompt: number[], sampling: ReturnType<typeof resolveSampling>, maxTokens: number, options: GenerateOptions,
  ): AsyncGenerator<GenerationChunk> {
    const sampler = new Sampler(sampling, this.spec.vocabSize);
    const decoder = new IncrementalDecoder(this.tokenizer, { context: prompt });
    const stops = new StopMatcher(options.stop ?? []);
    const eos = new Set(this.tokenizer.eosIds);
    const history = [...prompt];
    const t0 = performance.now();

    const prefilled = await this.prefill(prompt, this.logitsBuffer);
    let logits = prefilled.logits;
    const reuse = prefilled.reused;
    const promptMs = performance.now() - t0;
    const tGen = performance.now();

    let generated = 0;
    let finishReason: FinishReason = 'length';
    while (true) {
      if (options.signal?.aborted) { finishReason = 'abort'; break; }
      if (generated >= maxTokens) { finishReason = 'length'; break; }
      if (history.length >= this.contextLength) { finishReason = 'length'; break; }
      const token = sampler.sample(logits, history);
      generated++;
      history.push(token);
      if (eos.has(token)) { finishReason = 'stop'; break; }
      const piece = stops.push(decoder.push(token));
      if (piece.stopped) {
        finishReason = 'stop';
        if (piece.text) yield { text: piece.text, tokens: [token] };
        break;
      }
      yield { text: piece.text, tokens: [token] };
      if (generated >= maxTokens || history.length >= this.contextLength) continue; // no need to run it
      logits = await this.evaluate(history, history.length - 1, this.logitsBuffer);
      this.cached.push(token);
    }
    const tail = finishReason === 'stop' ? '' : stops.push(decoder.flush()).text + stops.flush();
    yield {
      text: tail,
      tokens: [],
      finishReason,
      usage: { promptTokens: prompt.length, completionTokens: generated },
      timings: {
        promptTokens: prompt.length - reuse, promptMs,
        generatedTokens: generated, generateMs: performance.now() - tGen,
      },
    };
  }

  /**
   * Evaluates a prompt, reusing the longest prefix already in the cache; returns the last token's
   * logits and how many tokens were reused.
   */
  private async prefill(tokens: readonly number[], into?: Float32Array): Promise<{ logits: Float32Array; reused: number }> {
    let reused = commonPrefix(this.cached, tokens);
    if (reused === tokens.length) reused--; // the last token must run again for its logits
    this.cached = tokens.slice(0, reused);
    const logits = await this.evaluate(tokens, reused, into);
    this.cached = [...tokens];
    return { logits, reused };
  }

  /** Runs tokens[from..] through the model in slot 0; returns the logits of the last one. */
  private async evaluate(tokens: readonly number[], from: number, into?: Float32Array): Promise<Float32Array> {
    const chunk = this.graph.limits.maxBatchTokens;
    let logits: Float32Array | undefined;
    for (let start = from; start < tokens.length; start += chunk) {
      const end = Math.min(tokens.length, start + chunk);
      const n = end - start;
      const ids = this.batchTokens.subarray(0, n), positions = this.batchPositions.subarray(0, n);
      for (let i = 0; i < n; i++) { ids[i] = tokens[start + i]!; positions[i] = start + i; }
      const batch = { positions, seqs: this.batchSeqs.subarray(0, n) };
      // Only the very last token's logits are needed; earlier chunks still ask for one row.
      this.lastRow[0] = n - 1;
      logits = await this.graph.forward(ids, batch, this.lastRow, this.cache, into);
    }
    if (!logits) throw new Error('evaluate: nothing to evaluate');
    return logits;
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

async function createBackend(name: BackendName, threads: number): Promise<Backend> {
  switch (name) {
    case 'reference': return new ReferenceBackend();
    case 'cpu': return CpuBackend.create(threads);
    default: throw new RangeError(`unknown backend "${String(name)}" (available: reference, cpu)`);
  }
}

function checkLoadOptions(o: LoadModelOptions): void {
  if (o.quant !== undefined && !isLoadQuant(o.quant)) {
    throw new RangeError(`quant must be one of ${Object.keys(LOAD_QUANT_TYPES).join(', ')}, got ${String(o.quant)}`);
  }
  if (o.contextLength !== undefined && !(Number.isInteger(o.contextLength) && o.contextLength > 0 && o.contextLength <= 1 << 20)) {
    throw new RangeError(`contextLength must be an integer in 1..${1 << 20}, got ${o.contextLength}`);
  }
  if (o.threads !== undefined && !(Number.isInteger(o.threads) && o.threads >= 1 && o.threads <= 256)) {
    throw new RangeError(`threads must be an integer in 1..256, got ${o.threads}`);
  }
  if (o.batchSize !== undefined && !(Number.isInteger(o.batchSize) && o.batchSize > 0 && o.batchSize <= 1 << 16)) {
    throw new RangeError(`batchSize must be an integer in 1..${1 << 16}, got ${o.batchSize}`);
  }
}
