// The fuzz harness shared by test/fuzz-*.test.ts. Jazzer.js, the coverage-guided fuzzer for
// JavaScript, cannot run here (its 4.0 addon needs glibc 2.38, Debian 12 has 2.36; older releases
// download the addon from GitHub at install), so the targets are driven by fast-check: inputs are
// either structured values from a target's own generator or mutations of its seed corpus
// (test/fuzz/corpus/<target>/), which reach deep into a format the way a coverage-guided fuzzer's
// corpus does.
//
// For every input a target must either succeed or throw one of its expected error classes (the
// project's own: FormatError, ConfigError, ChatTemplateError, SchemaError, …). Anything else fails:
// a TypeError or RangeError from deep inside a reader, a hang (each input bounded in time), or
// memory out of proportion to the input (the ArrayBuffer bytes it left allocated: what it holds,
// not its peak, since a collection during the run may free earlier garbage).
//
// A short run per target is part of `npm test`; `npm run fuzz` runs them longer
// (MINERVA_FUZZ_SECONDS per target). A failure prints the input and fast-check's seed and path;
// every finding is then kept as a regression: a file under test/fuzz/corpus/<target>/ (replayed
// first, on every run) or a plain test.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';

/** <repo>/test/fuzz/corpus (this file runs from <repo>/dist/test/helpers/). */
export const CORPUS = fileURLToPath(new URL('../../../test/fuzz/corpus/', import.meta.url));

/** Seconds each target runs: short in `npm test`, longer with MINERVA_FUZZ_SECONDS (npm run fuzz). */
export function fuzzSeconds(defaultSeconds = 3): number {
  const s = Number(process.env.MINERVA_FUZZ_SECONDS);
  return Number.isFinite(s) && s > 0 ? s : defaultSeconds;
}

type ErrorClass = abstract new (...args: never[]) => Error;

export interface FuzzTarget<T> {
  /** Names the target in failures and its corpus folder (test/fuzz/corpus/<name>/). */
  name: string;
  /** The inputs. */
  inputs: fc.Arbitrary<T>;
  /** Runs one input; it may throw only the `expected` error classes. */
  run(input: T): unknown;
  /** The error classes bad input may raise (the project's own). */
  expected: readonly ErrorClass[];
  /**
   * Longest one input may take, ms (default 2000). An asynchronous target is stopped at the bound; a
   * synchronous one is measured when it returns, so a synchronous infinite loop is not caught here.
   */
  timeoutMs?: number;
  /** Size of an input in bytes, for the memory bound (default: its length as bytes or JSON). */
  sizeOf?(input: T): number;
  /** ArrayBuffer bytes an input may leave allocated: `fixed + perByte × size` (defaults 1 MiB and 64). */
  memory?: { fixed?: number; perByte?: number };
  /**
   * Inputs that must succeed (the unmutated seeds, typically): run first, so that a seed corpus
   * the reader no longer accepts is noticed instead of fuzzing only the error paths.
   */
  valid?: readonly T[];
  /** Past findings (the corpus's regress-* files): checked like any input, before the fuzzing. */
  replay?: readonly T[];
}

export interface FuzzRunOptions {
  seconds?: number;
  /** fast-check's seed, to replay a failure (printed with it). */
  seed?: number;
  /** Stop after this many inputs even if time is left. */
  maxRuns?: number;
}

/** Fuzzes a target for the given time; throws (failing the test) on the first bad outcome. */
export async function fuzz<T>(target: FuzzTarget<T>, options: FuzzRunOptions = {}): Promise<{ runs: number }> {
  const seconds = options.seconds ?? fuzzSeconds();
  const timeoutMs = target.timeoutMs ?? 2000;
  const fixed = target.memory?.fixed ?? (1 << 20);
  const perByte = target.memory?.perByte ?? 64;
  const sizeOf = target.sizeOf ?? defaultSize;
  for (const [i, input] of (target.valid ?? []).entries()) {
    try {
      await withTimeout(Promise.resolve().then(() => target.run(input)), timeoutMs, target.name);
    } catch (e) {
      throw new Error(`${target.name}: valid input #${i} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
  }
  /** One input through the properties: success or an expected error, in time, with bounded buffers. */
  const check = async (input: T): Promise<void> => {
    const buffersBefore = process.memoryUsage().arrayBuffers;
    const start = performance.now();
    let outcome: unknown;
    try {
      outcome = await withTimeout(Promise.resolve().then(() => target.run(input)), timeoutMs, target.name);
    } catch (e) {
      if (!target.expected.some((c) => e instanceof c)) {
        const error = e as Error;
        throw new Error(`${target.name}: unexpected ${error?.name ?? typeof e}: ${error?.message ?? String(e)}`, { cause: e });
      }
    }
    const ms = performance.now() - start;
    if (ms > timeoutMs) throw new Error(`${target.name}: one input took ${ms.toFixed(0)} ms (bound ${timeoutMs} ms)`);
    const allocated = process.memoryUsage().arrayBuffers - buffersBefore;
    const bound = fixed + perByte * sizeOf(input);
    if (allocated > bound) {
      throw new Error(`${target.name}: an input of ${sizeOf(input)} bytes allocated ${allocated} bytes of buffers (bound ${bound})`);
    }
    void outcome; // kept alive until the memory was measured
  };
  // Past findings first, every run.
  for (const [i, input] of (target.replay ?? []).entries()) {
    try {
      await check(input);
    } catch (e) {
      throw new Error(`${target.name}: regression #${i}: ${(e as Error).message}`, { cause: e });
    }
  }
  let runs = 0;
  const property = fc.asyncProperty(target.inputs, async (input) => {
    runs++;
    await check(input);
  });
  try {
    await fc.assert(property, {
      interruptAfterTimeLimit: seconds * 1000,
      numRuns: options.maxRuns ?? Number.MAX_SAFE_INTEGER,
      ...(options.seed === undefined ? {} : { seed: options.seed }),
      // The time limit also bounds shrinking a failure to a smaller input.
      markInterruptAsFailure: false,
    });
  } catch (e) {
    // fast-check keeps what went wrong in `cause`, which node:test's report leaves out.
    const cause = (e as Error).cause as Error | undefined;
    if (cause === undefined) throw e;
    throw new Error(`${(e as Error).message}\nWhat went wrong: ${cause.message}`, { cause });
  }
  assert.ok(runs > 0, `${target.name}: no input ran`);
  return { runs };
}

function defaultSize(input: unknown): number {
  if (input instanceof Uint8Array) return input.byteLength;
  if (typeof input === 'string') return Buffer.byteLength(input);
  try {
    return Buffer.byteLength(JSON.stringify(input) ?? '');
  } catch {
    return 0;
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: an input did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The seed files of a target (test/fuzz/corpus/<name>/*), sorted by name; [] when there are none. */
export function seedCorpus(name: string): { file: string; bytes: Uint8Array }[] {
  const dir = path.join(CORPUS, name);
  let files: string[];
  try {
    files = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return files.map((file) => ({ file, bytes: new Uint8Array(readFileSync(path.join(dir, file))) }));
}

/**
 * A target's corpus read once, each file through `read`: every file (the mutation seeds), the
 * `seed-*` files (inputs that must succeed: `valid`) and the `regress-*` files (findings, replayed
 * first: `replay`).
 */
export function corpus<T = Uint8Array>(name: string, read: (bytes: Uint8Array) => T = (b) => b as T): { all: T[]; valid: T[]; replay: T[] } {
  const files = seedCorpus(name).map((s) => ({ file: s.file, value: read(s.bytes) }));
  const values = (prefix: string) => files.filter((f) => f.file.startsWith(prefix)).map((f) => f.value);
  return { all: files.map((f) => f.value), valid: values('seed-'), replay: values('regress-') };
}

/** Little-endian integers that sit on the edges readers get wrong: sizes, counts and offsets. */
const INTERESTING = [0, 1, 2, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** One edit of a byte string: what a mutation-based fuzzer does to its corpus. */
type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'u64'; at: number; value: number; high: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicate'; at: number; length: number; to: number };

const position = fc.nat({ max: 0xffffffff });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: position, bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: position, value: fc.nat({ max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: position, value: fc.oneof(fc.constantFrom(...INTERESTING), fc.nat()) }),
  fc.record({ kind: fc.constant('u64' as const), at: position, value: fc.constantFrom(...INTERESTING), high: fc.constantFrom(0, 1, 0x7fffffff, 0xffffffff) }),
  fc.record({ kind: fc.constant('truncate' as const), at: position }),
  fc.record({ kind: fc.constant('insert' as const), at: position, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: position, length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: position, length: fc.integer({ min: 1, max: 64 }), to: position }),
);

function mutate(seed: Uint8Array, edits: readonly Mutation[]): Uint8Array {
  let b: Uint8Array = seed.slice();
  for (const m of edits) {
    if (b.length === 0 && m.kind !== 'insert') continue;
    const at = m.at % Math.max(1, b.length);
    switch (m.kind) {
      case 'flip': b[at] = b[at]! ^ (1 << m.bit); break;
      case 'set': b[at] = m.value; break;
      case 'u32': writeLE(b, at, [m.value & 0xff, (m.value >>> 8) & 0xff, (m.value >>> 16) & 0xff, m.value >>> 24]); break;
      case 'u64': writeLE(b, at, [m.value & 0xff, (m.value >>> 8) & 0xff, (m.value >>> 16) & 0xff, m.value >>> 24,
        m.high & 0xff, (m.high >>> 8) & 0xff, (m.high >>> 16) & 0xff, m.high >>> 24]); break;
      case 'truncate': b = b.slice(0, at); break;
      case 'insert': b = concat(b.subarray(0, at), m.bytes, b.subarray(at)); break;
      case 'delete': b = concat(b.subarray(0, at), b.subarray(at + m.length)); break;
      case 'duplicate': {
        const piece = b.slice(at, at + m.length);
        const to = m.to % (b.length + 1);
        b = concat(b.subarray(0, to), piece, b.subarray(to));
        break;
      }
    }
  }
  return b;
}

function writeLE(b: Uint8Array, at: number, bytes: number[]): void {
  for (let i = 0; i < bytes.length && at + i < b.length; i++) b[at + i] = bytes[i]!;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Byte strings for a binary or text format: the seeds as they are, seeds with 1–8 edits (bit flips,
 * interesting integers written over sizes and counts, truncation, insertion, deletion, duplicated
 * ranges), and raw random bytes.
 */
export function mutatedBytes(seeds: readonly Uint8Array[], maxRandomLength = 4096): fc.Arbitrary<Uint8Array> {
  const random = fc.uint8Array({ maxLength: maxRandomLength });
  if (seeds.length === 0) return random;
  const seed = fc.constantFrom(...seeds);
  return fc.oneof(
    { weight: 1, arbitrary: seed },
    { weight: 8, arbitrary: fc.tuple(seed, fc.array(mutation, { minLength: 1, maxLength: 8 })).map(([s, edits]) => mutate(s, edits)) },
    { weight: 1, arbitrary: random },
  );
}

/** Text inputs: mutated seeds read as UTF-8 (invalid sequences become U+FFFD). */
export function mutatedText(seeds: readonly string[], maxRandomLength = 4096): fc.Arbitrary<string> {
  const decoder = new TextDecoder();
  return mutatedBytes(seeds.map((s) => new TextEncoder().encode(s)), maxRandomLength).map((b) => decoder.decode(b));
}
