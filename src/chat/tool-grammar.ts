// Grammars that force a tool call (tool_choice "required" or a named function): the text the
// grammar admits is exactly a call — or, with parallel calls, several — in the model's own format
// (the one its chat template shows), each naming an offered function with arguments valid
// against that function's "parameters" schema (json-schema-grammar.ts compiles them). Markers that
// are special tokens (Mistral's [TOOL_CALLS]) are written as their text here: the constraint
// admits those tokens when given them (GrammarConstraint's specialText, toolMarkerTokens).
//
// The calls are written as the templates write past calls, spacing included:
//   hermes   <tool_call>\n{"name": "f", "arguments": {…}}\n</tool_call>     (joined by "\n")
//   llama3   {"name": "f", "parameters": {…}}                              (joined by "; ")
//   mistral  [TOOL_CALLS][{"name": "f", "arguments": {…}, "id": "a1B2c3D4e"}, …]   (id optional)
//            or [TOOL_CALLS]f[ARGS]{…}, one after another
//   generic  {"name": "f", "arguments": {…}}, or an array of them with parallel calls
// Whatever the grammar admits, ToolCallParser reads back as the same calls.
import type { Grammar, GrammarBuilder, Symbol } from '../engine/grammar.js';
import { chars, literal } from '../engine/grammar.js';
import { JsonSchemaRules, SchemaError } from '../engine/json-schema-grammar.js';
import type { ToolCallFormat, ToolFunction } from './tool-types.js';

export interface ToolGrammarOptions {
  format: ToolCallFormat;
  /** The functions offered (names unique). */
  tools: readonly ToolFunction[];
  /** "required": a call of any of the tools; { name }: one call of that function. */
  choice: 'required' | { name: string };
  /** With "required": several calls may follow one another (OpenAI's parallel_tool_calls). Default true. */
  parallel?: boolean;
  /** For "mistral": which form the template writes (tool-format.ts mistralCallForm). Default "array". */
  mistralForm?: 'array' | 'args';
  /**
   * Reasoning before the calls (Qwen3, DeepSeek-R1; reasoning.ts splits it off before the parser
   * sees the calls): "block" — a <think>…</think> block may come first; "open" — the prompt
   * opened <think> (promptOpensThinking), so the reply starts inside it and must close it first.
   * Default: no reasoning.
   */
  reasoning?: 'block' | 'open';
}

const THINK_OPEN = '<think>', THINK_CLOSE = '</think>';

/**
 * The grammar of a forced tool call. Throws SchemaError (naming the function and the keyword) for
 * a parameters schema it cannot enforce, and RangeError when the named function is not offered.
 */
export function toolCallGrammar(options: ToolGrammarOptions): Grammar {
  const { format, tools, choice } = options;
  const chosen = choice === 'required' ? tools : tools.filter((t) => t.name === choice.name);
  if (chosen.length === 0) {
    throw new RangeError(choice === 'required' ? 'tool_choice "required" needs at least one tool' : `tool_choice names function "${choice.name}", which is not among the tools`);
  }
  const parallel = choice === 'required' && (options.parallel ?? true);
  const rules = new JsonSchemaRules();
  const g = rules.builder;
  const mistralArgs = format === 'mistral' && options.mistralForm === 'args';

  const calls = chosen.map((f) => {
    const where = `function "${f.name}" parameters #`;
    let args: string;
    try {
      args = rules.schema(argumentsSchema(f.parameters), '#');
    } catch (e) {
      if (e instanceof SchemaError) throw new SchemaError(`${where}${e.where.slice(1)}`, e.problem);
      throw e;
    }
    const name = JSON.stringify(f.name);
    switch (format) {
      case 'hermes': return [...literal(`<tool_call>\n{"name": ${name}, "arguments": `), args, ...literal('}\n</tool_call>')];
      case 'llama3': return [...literal(`{"name": ${name}, "parameters": `), args, ...literal('}')];
      case 'mistral':
        if (mistralArgs) return [...literal(`[TOOL_CALLS]${f.name}[ARGS]`), args];
        return [...literal(`{"name": ${name}, "arguments": `), args, mistralId(g), ...literal('}')];
      default: return [...literal(`{"name": ${name}, "arguments": `), args, ...literal('}')];
    }
  });
  const call = g.rule('call', calls);
  const joined = (sep: string): Symbol[] => (parallel ? [call, ...g.repeat('calls', [...literal(sep), call], 0, Infinity)] : [call]);

  let root: Symbol[][];
  switch (format) {
    case 'hermes': root = [joined('\n')]; break;
    case 'llama3': root = [joined('; ')]; break;
    case 'mistral': root = [mistralArgs ? joined('') : [...literal('[TOOL_CALLS]['), ...joined(', '), ...literal(']')]]; break;
    default: root = parallel ? [[call], [...literal('['), ...joined(', '), ...literal(']')]] : [[call]];
  }
  if (options.reasoning !== undefined) {
    // The reasoning, then at most a few whitespace characters (Qwen3 writes "\n\n"), then the calls.
    const body = textUntil(g, THINK_CLOSE);
    const after = g.repeat('think-ws', [chars(' ', '\n', '\t', '\r')], 0, 4);
    const think = options.reasoning === 'open' ? [body, ...after] : [...literal(THINK_OPEN), body, ...after];
    const calls = g.rule('calls', root);
    root = options.reasoning === 'open' ? [[...think, calls]] : [[...think, calls], [calls]];
  }
  return rules.build(g.rule('tool-calls', root));
}

/**
 * Any bytes up to and including the first `marker`: a rule per length of the marker's prefix
 * matched so far (the marker's KMP automaton), so the text cannot hold the marker before its end.
 */
function textUntil(g: GrammarBuilder, marker: string): string {
  const m = Buffer.from(marker, 'utf8');
  // fail[k]: the longest proper suffix of m[0..k) that is a prefix of m.
  const fail = new Array<number>(m.length + 1).fill(0);
  for (let k = 2; k <= m.length; k++) {
    let f = fail[k - 1]!;
    while (f > 0 && m[f] !== m[k - 1]) f = fail[f]!;
    fail[k] = m[f] === m[k - 1] ? f + 1 : 0;
  }
  const next = (k: number, b: number): number => {
    while (k > 0 && m[k] !== b) k = fail[k]!;
    return m[k] === b ? k + 1 : 0;
  };
  const names = Array.from({ length: m.length }, () => g.name('think'));
  for (let k = 0; k < m.length; k++) {
    // Bytes grouped by the state they lead to; reaching m.length ends the text.
    const byTarget = new Map<number, [number, number][]>();
    for (let b = 0; b < 256; b++) {
      const j = next(k, b);
      const ranges = byTarget.get(j) ?? [];
      const last = ranges[ranges.length - 1];
      if (last && last[1] === b - 1) last[1] = b;
      else ranges.push([b, b]);
      byTarget.set(j, ranges);
    }
    g.define(names[k]!, [...byTarget].map(([j, bytes]): Symbol[] => (j === m.length ? [{ bytes }] : [{ bytes }, names[j]!])));
  }
  return names[0]!;
}

/** `, "id": "…"` with Mistral's 9 letters and digits, or nothing. */
function mistralId(g: GrammarBuilder): string {
  if (g.has('mistral-id')) return 'mistral-id';
  const alnum = chars(['A', 'Z'], ['a', 'z'], ['0', '9']);
  return g.define('mistral-id', [[], [...literal(', "id": "'), ...g.repeat('id', [alnum], 9, 9), ...literal('"')]]);
}

/**
 * The schema the arguments are generated from: arguments are always an object, so a schema that
 * leaves the type open is made an object schema, and one that excludes objects is refused.
 */
function argumentsSchema(parameters: unknown): unknown {
  if (parameters === true) return { type: 'object' };
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    throw new SchemaError('#', 'the parameters of a function must be a JSON schema object');
  }
  const s = parameters as Record<string, unknown>;
  const type = s.type;
  if (type === undefined) {
    // A combinator at the top decides the type itself (each branch an object, one hopes: the
    // compiler enforces whatever the branches say).
    if (['$ref', 'anyOf', 'oneOf', 'allOf', 'enum', 'const'].some((k) => k in s)) return s;
    return { ...s, type: 'object' };
  }
  const types = Array.isArray(type) ? type : [type];
  if (!types.includes('object')) throw new SchemaError('#/type', `the arguments of a function are an object, but the schema's type is ${JSON.stringify(type)}`);
  return { ...s, type: 'object' };
}
