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
// The grammar must not be left-recursive (a rule reaching itself without consuming a byte):
// Grammar's constructor refuses one. Right recursion (`chars ::= char chars | ε`) runs in constant
// stack depth because a reference in last position does not leave a continuation behind.
//
// Grammars can come from strangers (a JSON schema in a request), so every step is bounded: a
// state holds at most MAX_STACKS stacks, and computing one state takes at most MAX_EXPANSIONS
// rule expansions (each rule is expanded once per continuation and state, so an alternative that
// appears twice costs no more than once). Past
// either bound advance() throws GrammarError, and so does the constructor for the initial state.

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
export const MAX_STACKS = 4096;
/** Most (position, continuation) expansions while computing one state. */
export const MAX_EXPANSIONS = 65_536;

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
    refuseLeftRecursion(order, this.kind, this.arg, this.ruleAlts, this.altStart);
    const start = new StateBuilder();
    this.expand([{ pos: -1, next: null }], start); // -1: the root rule, 0
    this.initial = start.done();
  }

  /** The state after `byte`; no stacks and not accepting when the byte cannot come next. */
  advance(state: GrammarState, byte: number): GrammarState {
    const out = new StateBuilder();
    const work: Pending[] = [];
    // Pushed last to first, so that they are expanded in their order: the stacks of a state keep a
    // stable order (mask caches key on it).
    for (let i = state.stacks.length - 1; i >= 0; i--) {
      const s = state.stacks[i]!;
      if (this.admits(this.arg[s.pos]!, byte)) work.push({ pos: s.pos + 1, next: s.next });
    }
    this.expand(work, out);
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

  /**
   * Pushes onto `out` every stack, topped by a byte class, that reading the pending items leads
   * to. An item is a position then a continuation; pos -1 - r stands for "any alternative of rule
   * r". A worklist rather than recursion: chains of optional rules and deep continuations cannot
   * overflow the call stack.
   */
  private expand(work: Pending[], out: StateBuilder): void {
    // Made at the first rule item: most bytes (inside a string, a number) expand no rule.
    let seen: Set<string> | undefined;
    let expansions = 0;
    while (work.length > 0) {
      const { pos, next } = work.pop()!;
      if (pos < 0) {
        // A rule expanded twice with the same continuation gives the same stacks: once is enough
        // (what keeps `anyOf: [x, x]` nested n deep from costing 2^n).
        const key = next === null ? `${pos}` : `${pos} ${next.key}`;
        seen ??= new Set();
        if (seen.has(key)) continue;
        seen.add(key);
        if (++expansions > MAX_EXPANSIONS) {
          throw new GrammarError(`grammar: more than ${MAX_EXPANSIONS} rule expansions for one byte (the grammar is too ambiguous)`);
        }
        const rule = -1 - pos;
        // Pushed last to first, so that they are taken first to last.
        for (let a = this.ruleAlts[rule + 1]! - 1; a >= this.ruleAlts[rule]!; a--) work.push({ pos: this.altStart[a]!, next });
        continue;
      }
      switch (this.kind[pos]) {
        case END:
          if (next === null) out.accept();
          else work.push({ pos: next.pos, next: next.next });
          break;
        case BYTES:
          out.push(pos, next);
          break;
        default:
          // What follows the reference; nothing (tail position) keeps right recursion flat.
          work.push({ pos: -1 - this.arg[pos]!, next: this.kind[pos + 1] === END ? next : makeStack(pos + 1, next) });
      }
    }
  }
}

/** Work for Grammar.expand: a position (or -1 - rule: each of its alternatives), then a continuation. */
interface Pending {
  readonly pos: number;
  readonly next: Stack | null;
}

/**
 * Throws GrammarError when a rule can reach itself without reading a byte (left recursion, such as
 * a JSON schema's "$ref" cycle through nothing but anyOf and $ref): expanding it would never end.
 */
function refuseLeftRecursion(names: readonly string[], kind: Uint8Array, arg: Int32Array, ruleAlts: Int32Array, altStart: Int32Array): void {
  const rules = names.length;
  // Nullable rules (that can match no byte), by fixed point.
  const nullable = new Uint8Array(rules);
  for (let changed = true; changed;) {
    changed = false;
    for (let r = 0; r < rules; r++) {
      if (nullable[r]) continue;
      for (let a = ruleAlts[r]!; a < ruleAlts[r + 1]!; a++) {
        let p = altStart[a]!;
        while (kind[p] === REF && nullable[arg[p]!]) p++;
        if (kind[p] === END) { nullable[r] = 1; changed = true; break; }
      }
    }
  }
  // Edges r → s: s can come first in r, after only nullable rules.
  const edges: number[][] = Array.from({ length: rules }, () => []);
  for (let r = 0; r < rules; r++) {
    for (let a = ruleAlts[r]!; a < ruleAlts[r + 1]!; a++) {
      for (let p = altStart[a]!; kind[p] === REF; p++) {
        edges[r]!.push(arg[p]!);
        if (!nullable[arg[p]!]) break;
      }
    }
  }
  // A cycle among these edges, by depth-first search with an explicit stack (0 new, 1 open, 2 done).
  const color = new Uint8Array(rules);
  for (let root = 0; root < rules; root++) {
    if (color[root]) continue;
    const path: [number, number][] = [[root, 0]];
    color[root] = 1;
    while (path.length > 0) {
      const top = path[path.length - 1]!;
      const [r, i] = top;
      if (i === edges[r]!.length) { color[r] = 2; path.pop(); continue; }
      top[1]++;
      const s = edges[r]![i]!;
      if (color[s] === 1) throw new GrammarError(`grammar: rule "${names[s]}" reaches itself without reading a byte (left recursion)`);
      if (color[s] === 0) { color[s] = 1; path.push([s, 0]); }
    }
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
