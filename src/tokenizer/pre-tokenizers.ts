// Byte-level BPE pre-tokenizers by GGUF's tokenizer.ggml.pre name: the regular expressions
// llama.cpp (src/llama-vocab.cpp) splits text with before merging. Each list is applied in order,
// every regex splitting the pieces left by the previous one into matches and the text between
// them (tokenizers' Split pre-tokenizer with behaviour "Isolated").
//
// Case-insensitive groups "(?i:...)" of the upstream tokenizer.json patterns are written out as
// character classes ('[sS]'), as llama.cpp does; Node 20's RegExp has no inline modifiers.

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const CONTRACTIONS = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";

const LLAMA3 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
// Upper-case runs then lower-case runs, without Unicode case classes: (?=\p{L})[^a-z] is "a letter
// that is not a-z", as llama.cpp writes it.
const UPPER = '((?=[\\p{L}])([^a-z]))';
const LOWER = '((?=[\\p{L}])([^A-Z]))';
const TEKKEN = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const GPT4O = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+${CONTRACTIONS}?|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*${CONTRACTIONS}?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;

export interface PreTokenizerRule {
  /** Regexes applied in order. */
  readonly regexes: readonly string[];
  /** A whole pre-token found in the vocabulary is one token, merges or not (llama.cpp ignore_merges). */
  readonly ignoreMerges: boolean;
  /** llama.cpp's add_bos default for this pre-tokenizer when the file does not say. */
  readonly addBos: boolean;
}

function rule(regexes: string[], options: { ignoreMerges?: boolean; addBos?: boolean } = {}): PreTokenizerRule {
  return { regexes, ignoreMerges: options.ignoreMerges ?? false, addBos: options.addBos ?? false };
}

const DEFAULT_RULE = rule(['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]']);
const LLAMA3_RULE = rule([LLAMA3], { ignoreMerges: true, addBos: true });
const QWEN2_RULE = rule([QWEN2]);
const GPT2_RULE = rule([GPT2]);
const DIGITS_GPT2_RULE = rule(['\\p{N}', GPT2]);
const TEKKEN_RULE = rule([TEKKEN], { ignoreMerges: true, addBos: true });
const GPT4O_RULE = rule([GPT4O]);

const RULES: ReadonlyMap<string, PreTokenizerRule> = new Map([
  ['default', DEFAULT_RULE],
  ...['llama3', 'llama-v3', 'llama-bpe', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2']
    .map((n) => [n, LLAMA3_RULE] as const),
  ...['dbrx', 'smaug-bpe'].map((n) => [n, rule([LLAMA3])] as const),
  ...['qwen2', 'deepseek-r1-qwen', 'stablelm2', 'megrez'].map((n) => [n, QWEN2_RULE] as const),
  ...['gpt-2', 'phi-2', 'mpt', 'olmo', 'jais', 'exaone4', 'trillion', 'granite-docling']
    .map((n) => [n, GPT2_RULE] as const),
  ...['starcoder', 'refact', 'command-r', 'smollm', 'codeshell', 'exaone', 'minerva-7b']
    .map((n) => [n, DIGITS_GPT2_RULE] as const),
  ['tekken', TEKKEN_RULE],
  ...['gpt-4o', 'llama4'].map((n) => [n, GPT4O_RULE] as const),
  ...['glm4', 'chatglm-bpe'].map((n) => [n, rule([LLAMA3])] as const),
]);

/** The rule for a tokenizer.ggml.pre name (undefined: the name is not supported). */
export function preTokenizerRule(name: string | undefined): PreTokenizerRule | undefined {
  // Files written before tokenizer.ggml.pre existed: llama.cpp uses its default rule too.
  if (name === undefined) return DEFAULT_RULE;
  return RULES.get(name);
}

export function supportedPreTokenizers(): string[] {
  return [...RULES.keys()];
}
