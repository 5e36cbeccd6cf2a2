// The sampler chain, in llama.cpp's order: logit bias → penalties → top-k → top-p → min-p →
// temperature → draw. Temperature 0 (or below) is greedy: the highest logit wins, no randomness
// used. The bias and the penalties change the logits in place, so what the caller reads there
// afterwards (the scheduler's logprobs) is the distribution after bias and penalties, before
// temperature — OpenAI, too, reports log-probabilities after logit_bias.
import { Rng, randomSeed } from './rng.js';

/** A bias at or below this bans the token (its logit becomes -Infinity), as llama.cpp treats -inf. */
export const LOGIT_BIAS_BAN = -100;
/** Most entries a logit bias may have. */
export const LOGIT_BIAS_MAX_ENTRIES = 1024;

export interface SamplingOptions {
  /** 0 = greedy. Default 0.8. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 = off. Default 40. */
  topK?: number;
  /** Keep the smallest set whose probability reaches p; 1 = off. Default 0.95. */
  topP?: number;
  /** Drop tokens less likely than minP × the top token's probability; 0 = off. Default 0.05. */
  minP?: number;
  /** Divide positive (multiply negative) logits of recently seen tokens; 1 = off. Default 1. */
  repeatPenalty?: number;
  /** Subtract once from the logit of every recently seen token; 0 = off. */
  presencePenalty?: number;
  /** Subtract per occurrence of a recently seen token; 0 = off. */
  frequencyPenalty?: number;
  /** How many of the last tokens the penalties look at; -1 = all. Default 64. */
  repeatLastN?: number;
  /** Seed of the PRNG; the same seed, prompt and options give the same sample. */
  seed?: number;
  /**
   * Added to a token's logit before anything else (OpenAI's logit_bias): token id → bias in
   * [-100, 100]; -100 bans the token. At most 1024 entries.
   */
  logitBias?: ReadonlyMap<number, number> | Readonly<Record<number, number>>;
}

/** Sampling options as the sampler takes them: every field set, the logit bias as a map. */
export type ResolvedSampling = Required<Omit<SamplingOptions, 'logitBias'>> & { logitBias: ReadonlyMap<number, number> };

export const DEFAULT_SAMPLING: Required<Omit<SamplingOptions, 'seed' | 'logitBias'>> = {
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  repeatPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repeatLastN: 64,
};

/**
 * Checks sampling options where they enter (CLI, HTTP, library); returns the full set. With
 * `vocabSize`, the logit bias's token ids are checked against it too.
 */
export function resolveSampling(o: SamplingOptions = {}, vocabSize?: number): ResolvedSampling {
  const { logitBias, ...rest } = o;
  const r = { ...DEFAULT_SAMPLING, seed: randomSeed(), ...stripUndefined(rest) };
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new RangeError(`invalid sampling option: ${what}`);
  };
  check(Number.isFinite(r.temperature) && r.temperature >= 0, `temperature must be >= 0, got ${r.temperature}`);
  check(Number.isInteger(r.topK) && r.topK >= 0, `top_k must be an integer >= 0, got ${r.topK}`);
  check(r.topP > 0 && r.topP <= 1, `top_p must be in (0, 1], got ${r.topP}`);
  check(r.minP >= 0 && r.minP <= 1, `min_p must be in [0, 1], got ${r.minP}`);
  check(Number.isFinite(r.repeatPenalty) && r.repeatPenalty > 0, `repeat_penalty must be > 0, got ${r.repeatPenalty}`);
  check(Number.isFinite(r.presencePenalty), `presence_penalty must be a number, got ${r.presencePenalty}`);
  check(Number.isFinite(r.frequencyPenalty), `frequency_penalty must be a number, got ${r.frequencyPenalty}`);
  check(Number.isInteger(r.repeatLastN) && r.repeatLastN >= -1, `repeat_last_n must be an integer >= -1, got ${r.repeatLastN}`);
  check(Number.isInteger(r.seed) && r.seed >= 0 && r.seed < 2 ** 32, `seed must be an integer in [0, 2^32), got ${r.seed}`);
  return { ...r, logitBias: resolveLogitBias(logitBias, vocabSize) };
}

const NO_BIAS: ReadonlyMap<number, number> = new Map();

/** A logit bias as a map, checked: integer token ids (below `vocabSize` when given), finite biases in [-100, 100]. */
function resolveLogitBias(bias: SamplingOptions['logitBias'], vocabSize: number | undefined): ReadonlyMap<number, number> {
  if (bias === undefined || bias === null) return NO_BIAS;
  if (typeof bias !== 'object') throw new RangeError('invalid sampling option: logit_bias must map token ids to numbers');
  const entries: [number, unknown][] = bias instanceof Map
    ? [...(bias as ReadonlyMap<unknown, unknown>)].map(([k, v]) => [typeof k === 'number' ? k : NaN, v])
    : Object.entries(bias).map(([k, v]) => [/^(0|[1-9]\d*)$/.test(k) ? Number(k) : NaN, v]);
  if (entries.length > LOGIT_BIAS_MAX_ENTRIES) {
    throw new RangeError(`invalid sampling option: logit_bias has ${entries.length} entries; at most ${LOGIT_BIAS_MAX_ENTRIES}`);
  }
  const out = new Map<number, number>();
  for (const [id, v] of entries) {
    if (!Number.isInteger(id) || id < 0) throw new RangeError(`invalid sampling option: logit_bias token id ${String(id)} must be an integer >= 0`);
    if (vocabSize !== undefined && id >= vocabSize) {
      throw new RangeError(`invalid sampling option: logit_bias token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v < -100 || v > 100) {
      throw new RangeError(`invalid sampling option: logit_bias for token ${id} must be a number in [-100, 100], got ${String(v)}`);
    }
    if (v !== 0) out.set(id, v);
  }
  return out.size === 0 ? NO_BIAS : out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** One sampler per generation: it owns the PRNG and the scratch arrays. */
export class Sampler {
  private readonly rng: Rng;
  /** Scratch: candidate ids and their logits/probabilities, reused for every token. */
  private ids: Int32Array;
  private vals: Float32Array;
  /** Scratch: probabilities / weights of the candidates. */
  private probs: Float64Array;
  private readonly counts = new Map<number, number>();

  constructor(readonly options: ResolvedSampling, vocabSize: number) {
    this.rng = new Rng(options.seed);
    this.ids = new Int32Array(vocabSize);
    this.vals = new Float32Array(vocabSize);
    this.probs = new Float64Array(vocabSize);
  }

  /**
   * Picks the next token.
   * @param logits [vocab] — modified in place by the logit bias and the penalties
   * @param history tokens so far (prompt and generated), for the penalties
   * @returns the token, or -1 when no token is possible (the logit bias bans every token left)
   */
  sample(logits: Float32Array, history: readonly number[]): number {
    const o = this.options;
    this.applyBias(logits);
    this.applyPenalties(logits, history);
    if (o.temperature <= 0) {
      const best = argmax(logits);
      return logits[best] === -Infinity ? -1 : best;
    }

    const n = logits.length;
    if (this.ids.length < n) {
      this.ids = new Int32Array(n); this.vals = new Float32Array(n); this.probs = new Float64Array(n);
    }
    // Candidates sorted by logit, best first (only the top k when top-k is on).
    let count = this.sortedCandidates(logits, o.topK > 0 ? Math.min(o.topK, n) : n);
    const ids = this.ids, vals = this.vals;
    if (vals[0] === -Infinity) return -1;
    // Tokens masked out (constrained decoding) are never candidates, even through rounding below.
    while (count > 1 && vals[count - 1] === -Infinity) count--;

    // Softmax (at temperature 1) for top-p and min-p, as llama.cpp does.
    const max = vals[0]!;
    let sum = 0;
    const probs = this.probs;
    for (let i = 0; i < count; i++) { probs[i] = Math.exp(vals[i]! - max); sum += probs[i]!; }
    if (o.topP < 1) {
      let cum = 0;
      for (let i = 0; i < count; i++) {
        cum += probs[i]! / sum;
        if (cum >= o.topP) { count = i + 1; break; }
      }
    }
    if (o.minP > 0) {
      const threshold = o.minP * probs[0]!;
      let keep = 1;
      while (keep < count && probs[keep]! >= threshold) keep++;
      count = keep;
    }
    // Temperature, then draw.
    let total = 0;
    const weights = probs; // reused: weights[i] for i < count
    for (let i = 0; i < count; i++) {
      weights[i] = Math.exp((vals[i]! - max) / o.temperature);
      total += weights[i]!;
    }
    let r = this.rng.next() * total;
    for (let i = 0; i < count; i++) {
      r -= weights[i]!;
      if (r < 0) return ids[i]!;
    }
    return ids[count - 1]!;
  }

  private applyBias(logits: Float32Array): void {
    for (const [id, bias] of this.options.logitBias) {
      if (id < logits.length) logits[id] = bias <= LOGIT_BIAS_BAN ? -Infinity : logits[id]! + bias;
    }
  }

  private applyPenalties(logits: Float32Array, history: readonly number[]): void {
    const o = this.options;
    if (o.repeatPenalty === 1 && o.presencePenalty === 0 && o.frequencyPenalty === 0) return;
    const from = o.repeatLastN === -1 ? 0 : Math.max(0, history.length - o.repeatLastN);
    const counts = this.counts;
    counts.clear();
    for (let i = from; i < history.length; i++) counts.set(history[i]!, (counts.get(history[i]!) ?? 0) + 1);
    for (const [id, c] of counts) {
      if (id < 0 || id >= logits.length) continue;
      let l = logits[id]!;
      l = l > 0 ? l / o.repeatPenalty : l * o.repeatPenalty;
      l -= c * o.frequencyPenalty + o.presencePenalty;
      logits[id] = l;
    }
  }

  /** Fills ids/vals with the k largest logits, in descending order; returns k. */
  private sortedCandidates(logits: Float32Array, k: number): number {
    const n = logits.length, ids = this.ids, vals = this.vals;
    if (k === n) {
      const order = ids.subarray(0, n);
      for (let i = 0; i < n; i++) order[i] = i;
      order.sort((a, b) => logits[b]! - logits[a]! || a - b);
      for (let i = 0; i < n; i++) vals[i] = logits[order[i]!]!;
      return n;
    }
    // Insertion into a small sorted list: O(n·k) worst case, O(n) typical for small k.
    let size = 0;
    for (let id = 0; id < n; id++) {
      const v = logits[id]!;
      if (size === k && v <= vals[k - 1]!) continue;
      let pos = size < k ? size++ : k - 1;
      while (pos > 0 && vals[pos - 1]! < v) {
        vals[pos] = vals[pos - 1]!; ids[pos] = ids[pos - 1]!; pos--;
      }
      vals[pos] = v; ids[pos] = id;
    }
    return size;
  }
}

/** Index of the largest value (the first one on ties, as llama.cpp's greedy sampler). */
export function argmax(x: Float32Array): number {
  let best = 0, bestVal = x[0]!;
  for (let i = 1; i < x.length; i++) if (x[i]! > bestVal) { bestVal = x[i]!; best = i; }
  return best;
}
