// Benchmark measurements: one model, one engine, a fixed prompt of token ids and greedy decoding,
// repeated; summarised as medians and ranges. Minerva and llama.cpp are measured the same way.
import { loadModel, type Model } from '../index.js';
import type { BackendName } from '../engine/model.js';
import type { LoadQuant } from '../quant/quantize-on-load.js';

export interface BenchCase {
  /** What Minerva runs. */
  model: string;
  /** What llama.cpp runs (a GGUF of the same weights); default: model. */
  llamaModel?: string;
  /** Quantize float weights on load (Minerva only). */
  quant?: LoadQuant;
  promptTokens: number;
  genTokens: number;
  repeat: number;
  threads: number;
  tokenizer?: string;
}

export interface RunResult {
  /** Prompt evaluation, tokens per second. */
  promptTps: number;
  /** Decoding after the first token, tokens per second. */
  decodeTps: number;
  /** Time to first generated token, ms. */
  ttftMs: number;
  /** Per-token decode latency percentiles, ms. */
  p50Ms: number;
  p95Ms: number;
  /** Per decoded token, where the backend counts them (webgpu): dispatches, submits, JS recording ms, GPU ms. */
  perToken?: Record<string, number>;
}

export interface EngineResult {
  engine: string;
  /** The prompt's token ids (the first prompt token varies per run). */
  prompt: number[];
  loadMs: number;
  runs: RunResult[];
  /** Peak resident set size of the process after this engine's runs, bytes. */
  peakRssBytes: number;
}

/** A prompt of ordinary token ids that every vocabulary of at least 1000 tokens has. */
export function benchPrompt(n: number, vocabSize: number): number[] {
  return Array.from({ length: n }, (_, i) => 100 + ((i * 37) % Math.max(1, Math.min(vocabSize, 32000) - 200)));
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export function median(xs: readonly number[]): number {
  return percentile([...xs].sort((a, b) => a - b), 0.5);
}

function summarise(promptTokens: number, promptMs: number, tokenTimes: number[]): RunResult {
  const gaps = tokenTimes.slice(1).map((t, i) => t - tokenTimes[i]!).sort((a, b) => a - b);
  const decodeMs = tokenTimes.length > 1 ? tokenTimes[tokenTimes.length - 1]! - tokenTimes[0]! : NaN;
  return {
    promptTps: (promptTokens * 1000) / promptMs,
    decodeTps: ((tokenTimes.length - 1) * 1000) / decodeMs,
    ttftMs: tokenTimes[0] ?? NaN,
    p50Ms: percentile(gaps, 0.5),
    p95Ms: percentile(gaps, 0.95),
  };
}

/** Minerva on one backend. */
export async function benchMinerva(c: BenchCase, backend: BackendName, onRun?: (i: number) => void): Promise<EngineResult> {
  const t0 = performance.now();
  const model: Model = await loadModel(c.model, {
    backend, threads: c.threads, tokenizer: c.tokenizer, quant: c.quant, contextLength: c.promptTokens + c.genTokens + 8, profile: true,
  });
  const loadMs = performance.now() - t0;
  const backendName = model.info().backend;
  const runs: RunResult[] = [];
  let prompt: number[] = [];
  try {
    prompt = [...(model.tokenizer.bosId !== undefined ? [model.tokenizer.bosId] : []), ...benchPrompt(c.promptTokens, model.spec.vocabSize)];
    for (let i = 0; i < c.repeat; i++) {
      onRun?.(i);
      // A different first token each run, so no prompt prefix is reused from the cache.
      prompt[prompt.length - c.promptTokens] = 100 + i;
      const start = performance.now();
      const times: number[] = [];
      let promptMs = NaN, evaluated = prompt.length;
      // The backend's counters from the first token (the prompt read) to the last: the decode steps'.
      let first: Record<string, number> | undefined;
      for await (const chunk of model.generate(prompt, { temperature: 0, maxTokens: c.genTokens })) {
        if (chunk.tokens.length > 0) times.push(performance.now() - start);
        if (times.length === 1 && !first) first = await model.profile();
        if (chunk.timings) { promptMs = chunk.timings.promptMs; evaluated = chunk.timings.promptTokens; }
      }
      const run = summarise(evaluated, promptMs, times);
      const last = await model.profile();
      if (first && times.length > 1 && Object.keys(last).length > 0) {
        run.perToken = Object.fromEntries(Object.entries(last).map(([k, v]) => [k, (v - (first[k] ?? 0)) / (times.length - 1)]));
      }
      runs.push(run);
    }
  } finally {
    model.dispose();
  }
  return { engine: `minerva-${backendName}`, prompt, loadMs, runs, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
}

/**
 * llama.cpp through node-llama-cpp, on the same GGUF file and the same prompt token ids Minerva
 * ran: on the CPU with the same thread count, or — when Minerva ran on a GPU (`gpu`) — its GPU
 * build (CUDA, Vulkan or Metal, whichever node-llama-cpp finds) with every layer on the GPU.
 */
export async function benchLlamaCpp(c: BenchCase, minervaPrompt: readonly number[], onRun?: (i: number) => void, gpu = false): Promise<EngineResult> {
  let nlc: typeof import('node-llama-cpp');
  try {
    nlc = await import('node-llama-cpp');
  } catch {
    throw new Error('--vs llamacpp needs node-llama-cpp (npm install node-llama-cpp)');
  }
  const llama = await nlc.getLlama({ gpu: gpu ? 'auto' : false, build: 'never', logLevel: nlc.LlamaLogLevel.error });
  if (gpu && llama.gpu === false) throw new Error('--vs llamacpp on a GPU: node-llama-cpp found no GPU build (CUDA, Vulkan or Metal) for this machine');
  const t0 = performance.now();
  const model = await llama.loadModel({ modelPath: c.llamaModel ?? c.model, ...(gpu ? { gpuLayers: 'max' as const } : {}) });
  const context = await model.createContext({ contextSize: c.promptTokens + c.genTokens + 8, threads: c.threads });
  const loadMs = performance.now() - t0;
  const runs: RunResult[] = [];
  const prompt = [...minervaPrompt];
  try {
    for (let i = 0; i < c.repeat; i++) {
      onRun?.(i);
      prompt[prompt.length - c.promptTokens] = 100 + i;
      const seq = context.getSequence();
      const start = performance.now();
      const times: number[] = [];
      for await (const _ of seq.evaluate(prompt as never, { temperature: 0 })) {
        times.push(performance.now() - start);
        if (times.length >= c.genTokens) break;
      }
      // llama.cpp evaluates the prompt before yielding the first token: that time is the prompt's.
      runs.push(summarise(prompt.length, times[0]!, times));
      seq.dispose();
    }
  } finally {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  }
  return { engine: gpu ? `llama.cpp-${llama.gpu}` : 'llama.cpp', prompt, loadMs, runs, peakRssBytes: process.resourceUsage().maxRSS * 1024 };
}
