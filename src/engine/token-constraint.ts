// Constrained decoding: a grammar decides which tokens may come next.
//
// The scheduler samples as usual and asks `allows(token)` — one walk of the token's bytes through
// the grammar, cheap. Only when the sampled token is refused does it call `mask(logits)`, which
// sets every token the grammar cannot continue with to -Infinity, and samples again (llama.cpp's
// grammar sampler works the same way). A mask walks the whole vocabulary, so it is made cheap
// twice over: tokens are visited in byte order, so a prefix shared by many tokens is walked once
// and a dead prefix rejects all the tokens after it in one step; and masks are remembered by
// parser state, since structural positions ("after {", "after a key") recur.
//
// A mask's cost is the bytes walked times the parse stacks alive at each: one stack inside a
// string walks most of the vocabulary (~0.1 s on Llama 2's 32,000 tokens), and a grammar whose
// alternatives overlap (anyOf of many similar strings) multiplies that by the stacks it keeps alive.
// MAX_MASK_STEPS bounds it: past it mask() throws GrammarError, ending that request (the scheduler
// fails the one sequence), rather than stalling every other one for seconds per token.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { GrammarError, type Grammar, type GrammarState } from './grammar.js';

/** Each token's bytes, and the tokens in byte order, computed once per tokenizer. */
interface TokenTable {
  /** [vocab] bytes per id; undefined for special tokens and tokens that write nothing. */
  bytes: (Uint8Array | undefined)[];
  /** Ids with bytes, sorted by their bytes. */
  sorted: Int32Array;
  /** [sorted.length] bytes each sorted token shares with the one before it. */
  shared: Uint16Array;
}

const tables = new WeakMap<Tokenizer, TokenTable>();

function tokenTable(tokenizer: Tokenizer): TokenTable {
  let t = tables.get(tokenizer);
  if (t) return t;
  const bytes: (Uint8Array | undefined)[] = [];
  const ids: number[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const b = tokenizer.tokenBytes(id);
    // A token that writes nothing would let generation run on forever without advancing.
    bytes.push(b !== undefined && b.length > 0 ? b : undefined);
    if (bytes[id] !== undefined) ids.push(id);
  }
  ids.sort((a, b) => Buffer.compare(bytes[a]!, bytes[b]!) || a - b);
  const shared = new Uint16Array(ids.length);
  for (let i = 1; i < ids.length; i++) {
    const x = bytes[ids[i - 1]!]!, y = bytes[ids[i]!]!;
    let n = 0;
    while (n < x.length && n < y.length && x[n] === y[n] && n < 0xffff) n++;
    shared[i] = n;
  }
  t = { bytes, sorted: Int32Array.from(ids), shared };
  tables.set(tokenizer, t);
  return t;
}

export interface GrammarConstraintOptions {
  /**
   * Special tokens whose text counts as bytes the grammar may admit (a tool-call marker such as
   * Mistral's [TOOL_CALLS] is a special token, and a tool-call grammar must be able to produce
   * it). Every other special token stays refused.
   */
  specialText?: readonly number[];
}

/**
 * Most stack advances one mask may take: about 5 times a mask inside one free string on Llama 2's
 * vocabulary (~1 s on one core of the CI machines).
 */
export const MAX_MASK_STEPS = 3_000_000;

/** Masks remembered per constraint (each a bitset over the vocabulary). */
const MASK_CACHE_ENTRIES = 64;

export class GrammarConstraint {
  private state: GrammarState;
  private readonly table: TokenTable;
  private readonly eos: ReadonlySet<number>;
  private readonly masks = new Map<string, Uint32Array>();
  /** The state allows() reached for its last token, so accept() need not walk the bytes again. */
  private checked: { token: number; state: GrammarState } | undefined;
  /** Scratch for mask(): the state after each prefix length of the current token. */
  private readonly prefixStates: GrammarState[] = [];
  /** options.specialText: id → the token's text in UTF-8 (kept apart from the shared table). */
  private readonly special = new Map<number, Uint8Array>();

  constructor(private readonly grammar: Grammar, tokenizer: Tokenizer, eosIds: Iterable<number>, options: GrammarConstraintOptions = {}) {
    this.state = grammar.initial;
    this.table = tokenTable(tokenizer);
    this.eos = new Set(eosIds);
    for (const id of options.specialText ?? []) {
      if (!(Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize)) {
        throw new RangeError(`special token id ${id} is outside the vocabulary (0..${tokenizer.vocabSize - 1})`);
      }
      // Ordinary tokens already have their bytes; an end-of-sequence token ends the text instead.
      if (this.table.bytes[id] !== undefined || this.eos.has(id)) continue;
      const text = Buffer.from(tokenizer.decode([id], { skipSpecial: false }), 'utf8');
      if (text.length > 0) this.special.set(id, new Uint8Array(text));
    }
  }

  /** The bytes `token` writes under this constraint; undefined: none (refused). */
  private bytesOf(token: number): Uint8Array | undefined {
    return this.table.bytes[token] ?? this.special.get(token);
  }

  /** The grammar is complete and nothing more can follow: generation should end. */
  get finished(): boolean {
    return this.state.stacks.length === 0;
  }

  /** Whether `token` may come next (an end-of-sequence token: whether the text may end here). */
  allows(token: number): boolean {
    if (this.eos.has(token)) return this.state.accepting;
    const bytes = this.bytesOf(token);
    const next = bytes === undefined ? undefined : this.grammar.advanceBytes(this.state, bytes);
    if (next) this.checked = { token, state: next };
    return next !== undefined;
  }

  /** Moves past `token`, which allows() must have accepted. */
  accept(token: number): void {
    if (this.eos.has(token)) return;
    const next = this.checked?.token === token ? this.checked.state : this.grammar.advanceBytes(this.state, this.bytesOf(token) ?? new Uint8Array());
    this.checked = undefined;
    if (next === undefined) throw new Error(`constrained decoding: token ${token} does not continue the grammar`);
    this.state = next;
  }

  /**
   * Sets the logits of every token that cannot come next to -Infinity.
   * @param logits [vocab]
   * @returns how many tokens remain
   */
  mask(logits: Float32Array): number {
    const bits = this.allowedBits(logits.length);
    let allowed = 0;
    for (let id = 0; id < logits.length; id++) {
      if ((bits[id >> 5]! >>> (id & 31) & 1) === 1) allowed++;
      else logits[id] = -Infinity;
    }
    return allowed;
  }

  private allowedBits(vocab: number): Uint32Array {
    const key = stateKey(this.state);
    const hit = this.masks.get(key);
    if (hit) {
      this.masks.delete(key);
      this.masks.set(key, hit); // most recently used last
      return hit;
    }
    const bits = new Uint32Array((vocab + 31) >> 5);
    const { bytes, sorted, shared } = this.table;
    const states = this.prefixStates;
    states[0] = this.state;
    // `alive`: prefix lengths of the previous token with states known to continue;
    // `dead`: a prefix length known to lead nowhere (Infinity: none).
    let alive = 0, dead = Infinity, steps = 0;
    for (let i = 0; i < sorted.length; i++) {
      const id = sorted[i]!, b = bytes[id]!;
      const common = shared[i]!;
      if (common >= dead) continue; // starts with a prefix already refused
      dead = Infinity;
      let d = Math.min(common, alive);
      let ok = true;
      while (d < b.length) {
        steps += states[d]!.stacks.length;
        if (steps > MAX_MASK_STEPS) {
          throw new GrammarError(`constrained decoding: the grammar is too ambiguous (more than ${MAX_MASK_STEPS} parse steps to find the tokens that may come next)`);
        }
        const next = this.grammar.advance(states[d]!, b[d]!);
        if (next.stacks.length === 0 && (!next.accepting || d + 1 < b.length)) {
          // Byte d is refused, or the text is complete and the token goes on: either way every
          // later token with these first d + 1 bytes (they all go on past them) is refused too.
          ok = false;
          dead = d + 1;
          break;
        }
        states[++d] = next;
      }
      alive = d;
      if (ok && id < vocab) bits[id >> 5]! |= 1 << (id & 31);
    }
    for (const [id, b] of this.special) {
      if (id < vocab && this.grammar.advanceBytes(this.state, b) !== undefined) bits[id >> 5]! |= 1 << (id & 31);
    }
    if (this.state.accepting) for (const id of this.eos) if (id < vocab) bits[id >> 5]! |= 1 << (id & 31);
    this.masks.set(key, bits);
    if (this.masks.size > MASK_CACHE_ENTRIES) this.masks.delete(this.masks.keys().next().value!);
    return bits;
  }
}

function stateKey(s: GrammarState): string {
  return `${s.accepting ? 1 : 0}|${s.stacks.map((x) => x.key).join(';')}`;
}
