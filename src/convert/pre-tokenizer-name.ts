// tokenizer.ggml.pre for a byte-level BPE tokenizer.json: the name under which llama.cpp (and
// Minerva's GGUF reader, tokenizer/pre-tokenizers.ts) split text exactly as this file does.
//
// llama.cpp's converter finds the name by hashing the token ids the model's tokenizer gives one
// test string, against a table of known models. Here it is read from what decides the splitting:
// the pre_tokenizer's regular expression and the model's ignore_merges flag, matched against the
// rules both engines implement. Anything else is refused by name: a wrong tokenizer.ggml.pre
// would load and run, and quietly tokenize differently from the original.
import { preTokenizerRule } from '../tokenizer/pre-tokenizers.js';

/** Split patterns as published tokenizer.json files write them, and the GGUF names they map to. */
const SPLIT_PATTERNS: readonly { regex: string; name: (ignoreMerges: boolean) => string; what: string }[] = [
  {
    // Llama 3 / 3.1 / 3.2 (and DBRX, Smaug without ignore_merges).
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    name: (ignoreMerges) => (ignoreMerges ? 'llama-bpe' : 'smaug-bpe'),
    what: 'Llama 3',
  },
  {
    // Qwen2 / Qwen2.5: single digits.
    regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    name: () => 'qwen2',
    what: 'Qwen2',
  },
];

type JSONObject = Record<string, unknown>;
const isObject = (v: unknown): v is JSONObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A short description of a pre-tokenizer for messages: its type, and its pattern if it splits. */
function describe(p: unknown): string {
  if (!isObject(p)) return String(p);
  if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) return `Sequence[${p.pretokenizers.map(describe).join(', ')}]`;
  const pattern = isObject(p.pattern) ? (p.pattern.Regex ?? p.pattern.String) : undefined;
  const shown = typeof pattern === 'string' ? ` ${JSON.stringify(pattern.length > 60 ? `${pattern.slice(0, 60)}…` : pattern)}` : '';
  return `${String(p.type)}${shown}`;
}

/** ByteLevel as the last step, mapping bytes only (the splitting done before it). */
function isPlainByteLevel(p: unknown, useRegex: boolean): boolean {
  return isObject(p) && p.type === 'ByteLevel' && (p.use_regex ?? true) === useRegex && (p.add_prefix_space ?? false) === false;
}

/**
 * The GGUF pre-tokenizer name for tokenizer.json's `pre_tokenizer` and `model.ignore_merges`;
 * throws an Error naming what was found when no known rule matches.
 */
export function preTokenizerName(preTokenizer: unknown, ignoreMerges: boolean, file: string): string {
  let name: string | undefined;
  // GPT-2: ByteLevel splitting with its own built-in regex.
  if (isPlainByteLevel(preTokenizer, true)) name = 'gpt-2';
  if (isObject(preTokenizer) && preTokenizer.type === 'Sequence' && Array.isArray(preTokenizer.pretokenizers)
    && preTokenizer.pretokenizers.length === 2 && isPlainByteLevel(preTokenizer.pretokenizers[1], false)) {
    const split = preTokenizer.pretokenizers[0] as unknown;
    if (isObject(split) && split.type === 'Split' && split.behavior === 'Isolated' && split.invert === false
      && isObject(split.pattern) && typeof split.pattern.Regex === 'string') {
      const regex = split.pattern.Regex;
      name = SPLIT_PATTERNS.find((p) => p.regex === regex)?.name(ignoreMerges);
    }
  }
  // The rule must also agree on ignore_merges, or the two would merge differently.
  const rule = name === undefined ? undefined : preTokenizerRule(name);
  if (name === undefined || !rule || rule.ignoreMerges !== ignoreMerges) {
    const known = SPLIT_PATTERNS.map((p) => `${p.what} Split`).join(', ');
    throw new Error(`${file}: pre-tokenizer ${describe(preTokenizer)}${ignoreMerges ? ' with ignore_merges' : ''} is not one `
      + `llama.cpp and Minerva both know (known: GPT-2 ByteLevel, ${known}); refusing to write a tokenizer.ggml.pre that would tokenize differently`);
  }
  return name;
}
