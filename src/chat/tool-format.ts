// Which tool-call format a model writes, read from its chat template: the template shows the
// model's past calls (or instructs it) in the format it was trained to write.
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { ToolCallFormat } from './tool-types.js';

/**
 * The tool-call format a chat template uses: "mistral" when it writes [TOOL_CALLS], "hermes"
 * when it writes <tool_call> blocks (Hermes, Qwen2.5, Qwen3), "llama3" when it has Llama 3.1's
 * <|python_tag|> or Llama 3.x's instruction to answer {"name": …, "parameters": …}, else
 * "generic" (also when there is no template).
 */
export function toolCallFormat(template: string | undefined): ToolCallFormat {
  if (template === undefined) return 'generic';
  if (template.includes('[TOOL_CALLS]')) return 'mistral';
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('<|python_tag|>')) return 'llama3';
  // Llama 3.2 / 3.3 templates drop <|python_tag|> for custom tools but keep the instruction and
  // write past calls as {"name": "…", "parameters": …}.
  if (template.includes('<|start_header_id|>') && template.includes('"parameters"')) return 'llama3';
  return 'generic';
}

/**
 * How a "mistral" template writes a call: "array" — [TOOL_CALLS][{"name": …, "arguments": …}]
 * (v3 tokenizers: Mistral 7B v0.3, Nemo, Small 2409) — or "args" — [TOOL_CALLS]name[ARGS]{…}
 * (the v11+ tokenizers of newer Mistral models).
 */
export function mistralCallForm(template: string | undefined): 'array' | 'args' {
  return template !== undefined && template.includes('[ARGS]') ? 'args' : 'array';
}

/** The text markers of each format (the ones that are special tokens must be kept in the stream). */
const MARKERS: Record<ToolCallFormat, readonly string[]> = {
  llama3: ['<|python_tag|>'],
  hermes: ['<tool_call>', '</tool_call>'],
  mistral: ['[TOOL_CALLS]', '[ARGS]', '[CALL_ID]'],
  generic: [],
};

/**
 * The ids of the format's markers that are special tokens in this tokenizer (Mistral Nemo's
 * [TOOL_CALLS], Llama 3's <|python_tag|>; Qwen's <tool_call> is an ordinary added token). Text
 * streams leave special tokens out, so these must be passed as GenerateOptions.keepSpecial for the
 * tool-call parser to see them, and for a tool-call grammar to be able to produce them.
 */
export function toolMarkerTokens(format: ToolCallFormat, tokenizer: Tokenizer): number[] {
  const ids: number[] = [];
  for (const marker of MARKERS[format]) {
    const enc = tokenizer.encode(marker, { addSpecial: false });
    if (enc.length === 1 && tokenizer.isSpecial(enc[0]!)) ids.push(enc[0]!);
  }
  return ids;
}
