// A byte-level context-free grammar and the parser state that constrained decoding walks.
//
// A grammar is a set of rules; a rule is a list of alternatives; an alternative is a sequence of
// elements, each either a byte class (a set of byte values) or a reference to a rule. Grammars are
// built with GrammarBuilder (json-schema-grammar.ts builds one from a JSON schema) and compiled
// into flat arrays.
//
// The parser state is, as in llama.cpp's grammar sampler, the set of every way the bytes so far
// can be continued: a list of stacks, each a persistent linked list of positions "what must come
// next, then what comes after that". The top of every stack is a byte class; a byte advances each
// stack whose top admits it. An empty stack means the root rule is complete (the output may end).
// The grammar must not be left-recursive (a rule reaching itself without consuming a byte);
// right recursion (`chars ::= char chars | ε`) runs in constant stack depth because a reference
// in last position does not leave a continuation behind.

/** Inclusive byte ranges, e.g. [[0x30, 0x39]] for a digit. */
export type ByteRanges = readonly (readonly [number, number])[];

/** An element of an alternative: a byte class, or the name of a rule. */
export type Symbol = { bytes: ByteRanges } | string;

export class GrammarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GrammarError';
  }
}

const END = 0, BYTES = 1, REF = 2;

/** Most stacks a state may hold: an ambiguous grammar cannot make decoding explode. */
const MAX_STACKS = 4096;
/** Most rule expansions without consuming a byte (a left-recursive grammar hits this). */
const MAX_EXPANSION_DEPTH = 512;

export class GrammarBuilder {
  private readonly rules = new Map<string, Symbol[][]>();
  private fresh = 0;
  /** Symbols defined so far (redefinitions count again: they are rare and small). */
  private symbols = 0;

  /** @param maxSymbols most symbols the rules may hold, so that a hostile input cannot exhaust memory */
  constructor(private readonly maxSymbols = 4_000_000) {}

  /** Defines (or redefines) a rule. */
  define(name: string, alternatives: Symbol[][]): string {
    for (const alt of alternatives) this.symbols += alt.length + 1;
    if (this.symbols > this.maxSymbols) throw new GrammarError(`grammar: more than ${this.maxSymbols} symbols`);
    this.rules.set(name, alternatives);
    return name;
  }

  has(name: string): boolean {
    return this.rules.has(name);
  }

  /** A name no rule uses yet, starting with `hint`. */
  name(hint: string): string {
    let n = hint;
    while (this.rules.has(n)) n = `${hint}-${++this.fresh}`;
    this.rules.set(n, []); // reserved until defined
    return n;
  }

  /** A new rule with these alternatives, named after `hint`. */
  rule(hint: string, alternatives: Symbol[][]): string {
    return this.define(this.name(hint), alternatives);
  }

  /**
   * `min` to `max` repetitions of `item` (max Infinity: unbounded). Bounded repetition takes one
   * rule per optional step, so large bounds make large grammars (callers cap them).
   */
  repeat(hint: string, item: Symbol[], min: number, max: number): Symbol[] {
    if ((min + (max === Infinity ? 1 : max)) * item.length > this.maxSymbols) throw new GrammarError(`grammar: more than ${this.maxSymbols} symbols`);
    const out: Symbol[] = [];
    for (let i = 0; i < min; i++) out.push(...item);
    if (max === min) return out;
    if (max === Infinity) {
      const r = this.name(`${hint}-star`);
      this.define(r, [[], [...item, r]]);
      out.push(r);
      return out;
    }
    // opt_k ::= ε | item opt_{k+1}, built from the last one back.
    let next: string | undefined;
    for (let k = max - min; k >= 1; k--) {
      const r = this.name(`${hint}-opt`);
      this.define(r, [[], next === undefined ? [...item] : [...item, next]]);
      next = r;
    }
    out.push(next!);
    return out;
  }

  /** Compiles the rules reachable from `root`. */
  build(root: string): Grammar {
    return new Grammar(this.rules, root);
  }
}

/** The bytes of `text` in UTF-8, one single-byte class each. */
export function literal(text: string): Symbol[] {
  return [...Buffer.from(text, 'utf8')].map((b) => ({ bytes: [[b, b]] }));
}

/** A class of single characters given as [from, to] pairs of ASCII characters or single characters. */
export function chars(...spec: (string | [string, string])[]): Symbol {
  return { bytes: spec.map((s) => (typeof s === 'string' ? [s.charCodeAt(0), s.charCodeAt(0)] : [s[0].charCodeAt(0), s[1].charCodeAt(0)]) as [number, number]) };
}

/** One stack of a parser state: a position in the compiled grammar, then what follows it. */
interface Stack {
  readonly pos: number;
  readonly next: Stack | null;
  /** Identity of the whole stack, for merging equal stacks reached two ways. */
  readonly key: string;
}

/** Where a parse can be: its stacks (each topped by a byte class) and whether it may end here. */
export interface GrammarState {
  readonly stacks: readonly Stack[];
  readonly accepting: boolean;
}

export class Grammar {
  /** Per position: END, BYTES or REF. */
  private readonly kind: Uint8Array;
  /** Per position: the byte class (BYTES) or rule index (REF). */
  private readonly arg: Int32Array;
  /** Byte classes, 8 words (256 bits) each. */
  private readonly classes: Uint32Array;
  /** Start positions of each rule's alternatives: altStart[ruleAlts[r] .. ruleAlts[r + 1]). */
  private readonly ruleAlts: Int32Array;
  private readonly altStart: Int32Array;
  /** Positions in the compiled form (a measure of grammar size). */
  readonly size: number;
  readonly initial: GrammarState;

  constructor(rules: ReadonlyMap<string, Symbol[][]>, root: string) {
    // Rules reachable from the root, numbered in order of discovery.
    const index = new Map<string, number>();
    const order: string[] = [];
    const visit = (name: string): number => {
      let i = index.get(name);
      if (i !== undefined) return i;
      if (!rules.has(name)) throw new GrammarError(`grammar: rule "${name}" is not defined`);
      i = order.length;
      index.set(name, i);
      order.push(name);
      return i;
    };
    visit(root);
    const kind: number[] = [], arg: number[] = [], altStart: number[] = [], ruleAlts: number[] = [];
    const classIds = new Map<string, number>();
    const classWords: number[] = [];
    for (let r = 0; r < order.length; r++) {
      ruleAlts.push(altStart.length);
      for (const alt of rules.get(order[r]!)!) {
        altStart.push(kind.length);
        for (const sym of alt) {
          if (typeof sym === 'string') {
            kind.push(REF); arg.push(visit(sym));
          } else {
            const words = new Uint32Array(8);
            for (const [lo, hi] of sym.bytes) {
              if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi <= 255 && lo <= hi)) {
                throw new GrammarError(`grammar: bad byte range [${lo}, ${hi}] in rule "${order[r]}"`);
              }
              for (let b = lo; b <= hi; b++) words[b >> 5]! |= 1 << (b & 31);
            }
            const key = words.join(',');
            let id = classIds.get(key);
            if (id === undefined) {
              id = classIds.size;
              classIds.set(key, id);
              classWords.push(...words);
            }
            kind.push(BYTES); arg.push(id);
          }
        }
        kind.push(END); arg.push(0);
      }
    }
    ruleAlts.push(altStart.length);
    this.kind = Uint8Array.from(kind);
    this.arg = Int32Array.from(arg);
    this.classes = Uint32Array.from(classWords);
    this.ruleAlts = Int32Array.from(ruleAlts);
    this.altStart = Int32Array.from(altStart);
    this.size = kind.length;
    const start = new StateBuilder();
    this.expandRule(0, null, start, 0);
    this.initial = start.done();
  }

  /** The state after `byte`; no stacks and not accepting when the byte cannot come next. */
  advance(state: GrammarState, byte: number): GrammarState {
    const out = new StateBuilder();
    for (const s of state.stacks) {
      if (this.admits(this.arg[s.pos]!, byte)) this.expand(s.pos + 1, s.next, out, 0);
    }
    return out.done();
  }

  /** The state after all of `bytes`, or undefined as soon as one cannot come next. */
  advanceBytes(state: GrammarState, bytes: Uint8Array): GrammarState | undefined {
    let s = state;
    for (const b of bytes) {
      if (s.stacks.length === 0) return undefined;
      s = this.advance(s, b);
      if (s.stacks.length === 0 && !s.accepting) return undefined;
    }
    return s;
  }

  private admits(cls: number, byte: number): boolean {
    return (this.classes[cls * 8 + (byte >> 5)]! >>> (byte & 31) & 1) === 1;
  }

  /** Pushes onto `out` every stack that reads position `pos` then `next`, topped by a byte class. */
  private expand(pos: number, next: Stack | null, out: StateBuilder, depth: number): void {
    if (depth > MAX_EXPANSION_DEPTH) throw new GrammarError('grammar: a rule reaches itself without reading a byte (left recursion)');
    switch (this.kind[pos]) {
      case END:
        if (next === null) out.accept();
        else this.expand(next.pos, next.next, out, depth + 1);
        return;
      case BYTES:
        out.push(pos, next);
        return;
      default: {
        // What follows the reference; nothing (tail position) keeps right recursion flat.
        const after = this.kind[pos + 1] === END ? next : makeStack(pos + 1, next);
        this.expandRule(this.arg[pos]!, after, out, depth + 1);
      }
    }
  }

  private expandRule(rule: number, next: Stack | null, out: StateBuilder, depth: number): void {
    for (let a = this.ruleAlts[rule]!; a < this.ruleAlts[rule + 1]!; a++) this.expand(this.altStart[a]!, next, out, depth);
  }
}

function makeStack(pos: number, next: Stack | null): Stack {
  return { pos, next, key: next === null ? `${pos}` : `${pos} ${next.key}` };
}

/** Collects the stacks of a new state, merging equal ones. */
class StateBuilder {
  private readonly stacks: Stack[] = [];
  private readonly seen = new Set<string>();
  private accepting = false;

  push(pos: number, next: Stack | null): void {
    const s = makeStack(pos, next);
    if (this.seen.has(s.key)) return;
    this.seen.add(s.key);
    this.stacks.push(s);
    if (this.stacks.length > MAX_STACKS) throw new GrammarError(`grammar: more than ${MAX_STACKS} ways to continue (the grammar is too ambiguous)`);
  }

  accept(): void {
    this.accepting = true;
  }

  done(): GrammarState {
    return { stacks: this.stacks, accepting: this.accepting };
  }
}
