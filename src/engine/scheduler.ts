// Continuous batching. Every active sequence of a model advances in one batched forward per
// step: decoding sequences contribute their last token, sequences still reading their prompt
// contribute a chunk of it. New requests join between steps; a request that finds every slot
// taken waits in a bounded queue, and beyond that is refused (QueueFullError).
//
// The KV cache has one slot per concurrent sequence. A finished sequence leaves its tokens in its
// slot, and a new request takes the free slot that shares the longest prefix with its prompt, so
// the next turn of a chat recomputes only what is new (the prefix cache).
//
// Several choices from one prompt (submitChoices) read the prompt once: the first choice
// prefills it; each other waits until the prompt's keys and values are in the cache, copies all
// but the last position into its own slot (backend.copyKV), and evaluates only the last prompt
// token itself — so every choice starts from the same logits as a solo run, bit for bit.
//
// Results never depend on the company a sequence keeps: every kernel computes each token's row
// the same way whatever else is in the batch (tested bit for bit), so a greedy request gives the
// same tokens alone or beside others, whatever the chunking of its prompt.
//
// An embedding is a sequence that only reads its prompt: its chunks share forward passes with
// everything else, and instead of logits it takes final-norm hidden states — every row for mean
// pooling (summed in token order, so chunking does not change the sum), the first row for CLS,
// the last for last-token pooling.
import type { KVCache } from '../backends/backend.js';
import type { LlamaGraph } from '../model/arch/llama.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { PoolingType } from '../model/spec.js';
import { IncrementalDecoder } from '../tokenizer/incremental-decoder.js';
import { AsyncQueue } from './async-queue.js';
import { Sampler, type ResolvedSampling } from './sampler.js';
import { StopMatcher } from './stop-strings.js';
import { GrammarError, type Grammar } from './grammar.js';
import { GrammarConstraint } from './token-constraint.js';

export type FinishReason = 'stop' | 'length' | 'abort';

export interface Timings {
  /** Prompt evaluation: tokens and milliseconds (tokens reused from the cache not counted). */
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generateMs: number;
  /** Milliseconds the request waited for a free slot. */
  queueMs: number;
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
  /** With SequenceRequest.logprobs: per token of `tokens`, its log-probability and the most likely alternatives. */
  logprobs?: TokenLogprob[];
}

export interface TokenLogprob {
  token: number;
  /** Natural log of the token's probability under the model (after the logit bias and repetition penalties, before temperature). */
  logprob: number;
  /** The `logprobs` most likely tokens at that step, best first. */
  top: { token: number; logprob: number }[];
}

export interface SequenceRequest {
  prompt: readonly number[];
  sampling: ResolvedSampling;
  /** Most tokens to generate (Infinity: until the context is full). */
  maxTokens: number;
  stop: readonly string[];
  signal?: AbortSignal;
  /** Instead of generating: receives the prompt's last logits (a copy), then the stream ends. */
  onLogits?: (logits: Float32Array) => void;
  /** Report each token's log-probability and this many top alternatives (0–20). */
  logprobs?: number;
  /** Only generate text this grammar admits; the sequence stops when the grammar is complete. */
  grammar?: Grammar;
  /** Special tokens whose text is written into the stream (and, under a grammar, counts as bytes). */
  keepSpecial?: readonly number[];
  /** Instead of generating: pool the prompt's final hidden states into one vector, then the stream ends. */
  embedding?: EmbeddingTarget;
}

export interface EmbeddingTarget {
  pooling: PoolingType;
  /** Receives the pooled [dim] vector (not normalised), before the stream's last chunk. */
  onEmbedding: (vector: Float32Array) => void;
}

/** Thrown by submit() when every slot is busy and the wait queue is full. */
export class QueueFullError extends Error {
  constructor(readonly slots: number, readonly queued: number) {
    super(`the model is busy: ${slots} sequences running and ${queued} waiting`);
    this.name = 'QueueFullError';
  }
}

export interface SchedulerOptions {
  /** KV-cache slots = most sequences decoding together. */
  slots: number;
  /** Positions per slot (prompt + generated tokens of one sequence). */
  contextLength: number;
  /** Requests that may wait for a slot; more are refused. */
  maxQueue: number;
  /**
   * Most prompt tokens one step takes while other sequences are decoding: a long prompt is read
   * in chunks so running streams keep flowing. Alone, a prompt goes in chunks of the graph's
   * batch limit.
   */
  prefillChunk: number;
}

export interface SchedulerStats {
  slots: number;
  /** Sequences holding a slot (reading their prompt or generating). */
  active: number;
  /** Requests waiting for a slot. */
  queued: number;
  /** Positions of the KV cache holding live sequences' tokens. */
  kvTokens: number;
}

/** A slot of the KV cache and what it holds. */
interface Slot {
  /** The tokens whose keys and values are in the slot, in order. */
  tokens: number[];
  busy: boolean;
  lastUsed: number;
}

class Sequence {
  readonly history: number[];
  /** How many tokens of `history` have keys and values in the slot. */
  evaluated = 0;
  generated = 0;
  readonly sampler: Sampler;
  readonly decoder: IncrementalDecoder;
  readonly stops: StopMatcher;
  readonly queue: AsyncQueue<GenerationChunk>;
  /** With a grammar: what may come next, and [vocab] scratch logits to sample from. */
  readonly constraint: GrammarConstraint | undefined;
  readonly work: Float32Array | undefined;
  cancelled = false;
  slot = -1;
  reused = 0;
  readonly submitted = performance.now();
  admitted = 0;
  firstToken = 0;
  /** With submitChoices: every choice of the same prompt, this one included. */
  choices: readonly Sequence[] | undefined;
  /** An embedding's [dim] sum of pooled rows (mean pooling) or its one row, and how many rows went in. */
  pooled: Float64Array | undefined;
  pooledRows = 0;

  constructor(readonly req: SequenceRequest, tokenizer: Tokenizer, vocabSize: number) {
    this.history = [...req.prompt];
    // An embedding never samples: no [vocab] scratch for it.
    this.sampler = new Sampler(req.sampling, req.embedding ? 0 : vocabSize);
    this.decoder = new IncrementalDecoder(tokenizer, { context: req.prompt, keepSpecial: req.keepSpecial });
    this.stops = new StopMatcher(req.stop);
    if (req.grammar) {
      this.constraint = new GrammarConstraint(req.grammar, tokenizer, tokenizer.eosIds, { specialText: req.keepSpecial });
      this.work = new Float32Array(vocabSize);
    }
    this.queue = new AsyncQueue(() => { this.cancelled = true; });
  }

  /** Still reading the prompt. */
  get prefilling(): boolean {
    return this.evaluated < this.req.prompt.length;
  }
}

export class Scheduler {
  private readonly slots: Slot[];
  private readonly waiting: Sequence[] = [];
  private readonly active: Sequence[] = [];
  private readonly eos: Set<number>;
  /** Per forward call, allocated once: token ids, positions, slots, rows wanting logits. */
  private readonly tokens: Int32Array;
  private readonly positions: Int32Array;
  private readonly seqs: Int32Array;
  private readonly outputRows: Int32Array;
  /** [slots, vocabSize] logits of one step. */
  private readonly logits: Float32Array;
  /** Rows of one step whose hidden states embeddings want, and those states [B, dim]: allocated with the first embedding. */
  private hiddenRows: Int32Array | undefined;
  private hidden: Float32Array | undefined;
  private running = false;
  private closed = false;
  private clock = 0;

  constructor(
    private readonly graph: LlamaGraph, private readonly cache: KVCache,
    private readonly tokenizer: Tokenizer, private readonly opts: SchedulerOptions,
  ) {
    if (graph.limits.maxOutputs < opts.slots) throw new RangeError('scheduler: the graph returns fewer logits rows than there are slots');
    if (graph.limits.maxBatchTokens < opts.slots) throw new RangeError('scheduler: the graph batch is smaller than the number of slots');
    this.slots = Array.from({ length: opts.slots }, () => ({ tokens: [], busy: false, lastUsed: 0 }));
    this.eos = new Set(tokenizer.eosIds);
    const B = graph.limits.maxBatchTokens;
    this.tokens = new Int32Array(B);
    this.positions = new Int32Array(B);
    this.seqs = new Int32Array(B);
    this.outputRows = new Int32Array(opts.slots);
    this.logits = new Float32Array(opts.slots * graph.spec.vocabSize);
  }

  /** Starts a sequence; its chunks stream from the returned iterator. Throws QueueFullError when full. */
  submit(req: SequenceRequest): AsyncIterableIterator<GenerationChunk> {
    if (this.closed) throw new Error('the model has been disposed');
    // Each waiting request will take a free slot or a place in the queue. (Requests arrive between
    // steps, after a step has freed a slot and before the loop admits anyone to it: "some slot is
    // free" alone let a burst of any size in.)
    if (this.waiting.length + 1 > this.freeSlots() + this.opts.maxQueue) throw new QueueFullError(this.opts.slots, this.waiting.length);
    const seq = new Sequence(req, this.tokenizer, this.graph.spec.vocabSize);
    this.waiting.push(seq);
    this.kick();
    return seq.queue;
  }

  /**
   * Starts several choices of one prompt (the requests differ in their sampling only), which
   * share the prompt's evaluation. All are taken or none: QueueFullError when the free slots and
   * the free places in the queue cannot hold them all.
   */
  submitChoices(reqs: readonly SequenceRequest[]): AsyncIterableIterator<GenerationChunk>[] {
    if (this.closed) throw new Error('the model has been disposed');
    if (this.waiting.length + reqs.length > this.freeSlots() + this.opts.maxQueue) throw new QueueFullError(this.opts.slots, this.waiting.length);
    const seqs = reqs.map((r) => new Sequence(r, this.tokenizer, this.graph.spec.vocabSize));
    for (const s of seqs) s.choices = seqs;
    this.waiting.push(...seqs);
    this.kick();
    return seqs.map((s) => s.queue);
  }

  private freeSlots(): number {
    return this.slots.filter((s) => !s.busy).length;
  }

  stats(): SchedulerStats {
    return {
      slots: this.slots.length, active: this.active.length, queued: this.waiting.length,
      kvTokens: this.active.reduce((n, s) => n + s.evaluated, 0),
    };
  }

  /** Ends every sequence with an error and refuses new ones. */
  close(): void {
    this.closed = true;
    for (const s of [...this.active, ...this.waiting]) s.queue.fail(new Error('the model has been disposed'));
    this.active.length = 0;
    this.waiting.length = 0;
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = true;
    setImmediate(() => void this.loop());
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        this.dropCancelled();
        this.admit();
        if (this.active.length === 0 || this.closed) break;
        try {
          await this.step();
        } catch (e) {
          // A failed forward leaves the slots' contents unknown: end every active sequence.
          for (const s of this.active) { s.queue.fail(e); this.release(s, true); }
          this.active.length = 0;
        }
        // Let I/O in (new requests, disconnects) between steps.
        await new Promise((r) => setImmediate(r));
      }
    } finally {
      this.running = false;
    }
    if (!this.closed && (this.waiting.length > 0 || this.active.length > 0)) this.kick();
  }

  /** Sequences whose reader left or whose signal fired end here, freeing their slots. */
  private dropCancelled(): void {
    for (const list of [this.waiting, this.active]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const s = list[i]!;
        if (s.cancelled) {
          list.splice(i, 1);
          this.release(s);
        } else if (s.req.signal?.aborted) {
          list.splice(i, 1);
          this.finish(s, 'abort');
        }
      }
    }
  }

  /** Gives free slots to waiting requests, first come first served. */
  private admit(): void {
    // A choice waiting for another to finish reading their prompt keeps its place: it holds a
    // free slot back from the requests behind it.
    let held = 0;
    for (let next = 0; next < this.waiting.length;) {
      const free = this.slots.map((s, i) => i).filter((i) => !this.slots[i]!.busy);
      if (free.length <= held) return;
      const candidate = this.waiting[next]!;
      if (candidate.choices && this.promptBeingRead(candidate)) { held++; next++; continue; }
      const seq = this.waiting.splice(next, 1)[0]!;
      // Mean and CLS pooling need the hidden state of every token from the first: such an
      // embedding reuses nothing, so it takes the least recently used slot rather than wipe the
      // one holding a conversation that shares its start.
      const everyRow = seq.req.embedding !== undefined && seq.req.embedding.pooling !== 'last';
      // The free slot sharing the longest prefix with the prompt, if it shares at least half of it
      // (as llama.cpp's server judges slot similarity); otherwise the least recently used one, so
      // a short common start (BOS, a template header) does not evict a longer conversation.
      let best = free[0]!, bestShared = -1;
      for (const i of free) {
        const shared = commonPrefix(this.slots[i]!.tokens, seq.req.prompt);
        if (shared > bestShared) { best = i; bestShared = shared; }
      }
      if (bestShared < seq.req.prompt.length / 2 || everyRow) {
        best = free.reduce((a, b) => (this.slots[b]!.lastUsed < this.slots[a]!.lastUsed ? b : a));
        bestShared = everyRow ? 0 : commonPrefix(this.slots[best]!.tokens, seq.req.prompt);
      }
      if (seq.choices) bestShared = Math.max(bestShared, this.copyChoicePrompt(seq, best, bestShared));
      const slot = this.slots[best]!;
      // The prompt's last token always runs again: its logits start the generation.
      const reused = Math.min(bestShared, seq.req.prompt.length - 1);
      slot.busy = true;
      slot.tokens.length = reused;
      seq.slot = best;
      seq.evaluated = reused;
      seq.reused = reused;
      seq.admitted = performance.now();
      if (seq.req.embedding) seq.pooled = new Float64Array(this.graph.spec.dim);
      this.active.push(seq);
    }
  }

  /** Another choice of `seq`'s prompt holds a slot and has not yet evaluated all but its last token. */
  private promptBeingRead(seq: Sequence): boolean {
    const last = seq.req.prompt.length - 1;
    let reading = false;
    for (const c of seq.choices!) {
      if (c === seq || c.slot < 0) continue;
      if (c.evaluated >= last) return false; // ready to copy from
      reading = true;
    }
    return reading;
  }

  /**
   * Copies the prompt (all but its last token) from the slot of another choice that has read it
   * into slot `to`, unless `to` already shares at least as much; returns the tokens `to` now shares.
   */
  private copyChoicePrompt(seq: Sequence, to: number, shared: number): number {
    const count = seq.req.prompt.length - 1;
    if (shared >= count) return shared;
    const from = seq.choices!.find((c) => c !== seq && c.slot >= 0 && c.evaluated >= count);
    if (!from) return shared;
    this.graph.backend.copyKV(this.cache, from.slot, to, count);
    const slot = this.slots[to]!;
    slot.tokens.length = 0;
    slot.tokens.push(...seq.req.prompt.slice(0, count));
    return count;
  }

  /** One batched forward over every active sequence, then a token for each that needs one. */
  private async step(): Promise<void> {
    const B = this.graph.limits.maxBatchTokens;
    let n = 0, nOut = 0, nHidden = 0;
    const outputs: Sequence[] = [];
    /** Embeddings in this batch: their first row in `hidden` and how many rows they have there. */
    const pooling: [Sequence, number, number][] = [];
    /** How many tokens each sequence puts in this batch. */
    const placed: [Sequence, number][] = [];
    // Decoding sequences first: one token each (the last one sampled).
    for (const s of this.active) {
      if (s.prefilling) continue;
      this.place(n, s.history[s.evaluated]!, s.evaluated, s.slot);
      this.outputRows[nOut++] = n++;
      outputs.push(s);
      placed.push([s, 1]);
    }
    // Then prompt chunks, oldest request first, within what is left of the batch.
    let budget = Math.min(B - n, n > 0 ? this.opts.prefillChunk : B);
    for (const s of this.active) {
      if (!s.prefilling || budget <= 0) continue;
      const take = Math.min(s.req.prompt.length - s.evaluated, budget);
      for (let i = 0; i < take; i++) this.place(n++, s.history[s.evaluated + i]!, s.evaluated + i, s.slot);
      budget -= take;
      placed.push([s, take]);
      if (s.req.embedding) {
        nHidden = this.placeHidden(s, n - take, take, nHidden, pooling);
        continue;
      }
      if (s.evaluated + take === s.req.prompt.length) {
        this.outputRows[nOut++] = n - 1;
        outputs.push(s);
      }
    }
    const logits = await this.graph.forward(
      this.tokens.subarray(0, n), { positions: this.positions.subarray(0, n), seqs: this.seqs.subarray(0, n) },
      this.outputRows.subarray(0, nOut), this.cache, this.logits,
      nHidden > 0 ? { rows: this.hiddenRows!.subarray(0, nHidden), into: this.hidden! } : undefined,
    );
    // The slots now hold these tokens too.
    for (const [s, count] of placed) {
      const slot = this.slots[s.slot]!;
      for (let i = 0; i < count; i++) slot.tokens.push(s.history[s.evaluated + i]!);
      s.evaluated += count;
    }
    const vocab = this.graph.spec.vocabSize;
    outputs.forEach((s, i) => this.advance(s, logits.subarray(i * vocab, (i + 1) * vocab)));
    for (const [s, first, count] of pooling) this.pool(s, first, count);
  }

  /**
   * Marks the rows of an embedding's chunk (rows start.. start+take-1 of the batch) whose hidden
   * states its pooling needs; returns the new count of hidden rows.
   */
  private placeHidden(s: Sequence, start: number, take: number, nHidden: number, pooling: [Sequence, number, number][]): number {
    const B = this.graph.limits.maxBatchTokens;
    this.hiddenRows ??= new Int32Array(B);
    this.hidden ??= new Float32Array(B * this.graph.spec.dim);
    const type = s.req.embedding!.pooling;
    const end = s.evaluated + take === s.req.prompt.length;
    let first = start, count = 0;
    if (type === 'mean') count = take;
    else if (type === 'cls' && s.evaluated === 0) count = 1;
    else if (type === 'last' && end) { first = start + take - 1; count = 1; }
    for (let i = 0; i < count; i++) this.hiddenRows[nHidden + i] = first + i;
    pooling.push([s, nHidden, count]);
    return nHidden + count;
  }

  /** An embedding's rows of this step are in `hidden`: add them up, and at the prompt's end hand the vector over. */
  private pool(s: Sequence, first: number, count: number): void {
    const dim = this.graph.spec.dim, sum = s.pooled!, hidden = this.hidden!;
    // Row by row in token order, in f64: the same sum whatever the chunks were.
    for (let r = first; r < first + count; r++) {
      const row = hidden.subarray(r * dim, (r + 1) * dim);
      for (let j = 0; j < dim; j++) sum[j]! += row[j]!;
    }
    s.pooledRows += count;
    if (s.prefilling) return;
    s.firstToken = performance.now();
    const vector = new Float32Array(dim);
    for (let j = 0; j < dim; j++) vector[j] = sum[j]! / s.pooledRows;
    if (!s.cancelled) s.req.embedding!.onEmbedding(vector);
    this.finish(s, 'stop');
  }

  private place(i: number, token: number, position: number, slot: number): void {
    this.tokens[i] = token;
    this.positions[i] = position;
    this.seqs[i] = slot;
  }

  /** A sequence got logits: sample its next token and stream it, or finish. */
  private advance(s: Sequence, logits: Float32Array): void {
    if (s.firstToken === 0) s.firstToken = performance.now();
    if (s.req.onLogits) {
      s.req.onLogits(logits.slice());
      this.finish(s, 'length');
      return;
    }
    if (s.cancelled) return;
    if (s.req.signal?.aborted) { this.finish(s, 'abort'); return; }
    if (s.generated >= s.req.maxTokens) { this.finish(s, 'length'); return; }
    let token: number;
    if (s.constraint) {
      const c = s.constraint, work = s.work!;
      // Sample freely first; only a refused token pays for masking the whole vocabulary.
      work.set(logits);
      token = s.sampler.sample(work, s.history);
      // A grammar too ambiguous to follow (GrammarError: its bounds on work per token) ends this
      // sequence only, not the batch around it.
      let allowed: number | undefined;
      try {
        allowed = c.allows(token) ? undefined : (work.set(logits), c.mask(work));
      } catch (e) {
        if (!(e instanceof GrammarError)) throw e;
        this.fail(s, e.message);
        return;
      }
      if (allowed !== undefined) {
        if (allowed === 0) {
          this.fail(s, 'constrained decoding: no token of the vocabulary can continue the required format');
          return;
        }
        token = s.sampler.sample(work, s.history);
        if (token < 0) { this.fail(s, 'constrained decoding: the logit bias bans every token that can continue the required format'); return; }
      }
      c.accept(token);
      logits = work;
    } else {
      token = s.sampler.sample(logits, s.history);
      if (token < 0) { this.fail(s, 'the logit bias bans every token of the vocabulary'); return; }
    }
    s.generated++;
    s.history.push(token);
    // Text held back (a partial character, a possible start of a stop string) is output after all.
    if (this.eos.has(token)) { this.finish(s, 'stop', true); return; }
    const piece = s.stops.push(s.decoder.push(token));
    const chunk: GenerationChunk = { text: piece.text, tokens: [token] };
    if (s.req.logprobs !== undefined) chunk.logprobs = [tokenLogprob(logits, token, s.req.logprobs)];
    if (piece.stopped) {
      if (piece.text) s.queue.push(chunk);
      this.finish(s, 'stop');
      return;
    }
    s.queue.push(chunk);
    // A complete grammar stops like an end-of-sequence token, keeping all the text.
    if (s.constraint?.finished) { this.finish(s, 'stop', true); return; }
    if (s.generated >= s.req.maxTokens || s.history.length >= this.opts.contextLength) this.finish(s, 'length');
  }

  /** Ends a sequence with an error (its reader's next() rejects) and frees its slot. */
  private fail(s: Sequence, message: string): void {
    s.queue.fail(new Error(message));
    this.release(s, true);
    const i = this.active.indexOf(s);
    if (i >= 0) this.active.splice(i, 1);
  }

  /** Streams the last chunk (with usage and timings) and frees the slot. */
  private finish(s: Sequence, reason: FinishReason, flush = reason !== 'stop'): void {
    const i = this.active.indexOf(s);
    if (i >= 0) this.active.splice(i, 1);
    const tail = flush ? s.stops.push(s.decoder.flush()).text + s.stops.flush() : '';
    const now = performance.now();
    const admitted = s.admitted || now, first = s.firstToken || now;
    s.queue.push({
      text: tail, tokens: [], finishReason: reason,
      usage: { promptTokens: s.req.prompt.length, completionTokens: s.generated },
      timings: {
        promptTokens: s.req.prompt.length - s.reused, promptMs: first - admitted,
        generatedTokens: s.generated, generateMs: now - first, queueMs: admitted - s.submitted,
      },
    });
    s.queue.end();
    this.release(s);
  }

  /** Frees a sequence's slot; its tokens stay there for prefix reuse unless `forget`. */
  private release(s: Sequence, forget = false): void {
    if (s.slot < 0) return;
    const slot = this.slots[s.slot]!;
    slot.busy = false;
    slot.lastUsed = ++this.clock;
    if (forget) slot.tokens.length = 0;
    s.slot = -1;
  }
}

/** log-softmax of `logits` at `token`, and the `top` most likely tokens. */
function tokenLogprob(logits: Float32Array, token: number, top: number): TokenLogprob {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  // The best `top` by insertion into a short sorted list (top is at most 20).
  const best: { token: number; logprob: number }[] = [];
  if (top > 0) {
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i]!;
      if (v === -Infinity) continue; // masked out by a grammar: not an alternative
      if (best.length === top && v <= best[top - 1]!.logprob) continue;
      let j = best.length < top ? best.length : top - 1;
      if (best.length < top) best.push({ token: i, logprob: v });
      while (j > 0 && best[j - 1]!.logprob < v) { best[j] = best[j - 1]!; j--; }
      best[j] = { token: i, logprob: v };
    }
  }
  return { token, logprob: logits[token]! - logZ, top: best.map((b) => ({ token: b.token, logprob: b.logprob - logZ })) };
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
