// Tools as a chat request declares them and tool calls as a model makes them, in the engine's own
// shape (the server maps OpenAI's and Ollama's JSON onto these, and back).

/** A function the model may call: its name, what it does, and its arguments as a JSON schema. */
export interface ToolFunction {
  name: string;
  description?: string;
  /** JSON schema of the arguments object ({} when the function takes none). */
  parameters: Record<string, unknown>;
}

/**
 * What the model must do with the tools: "auto" (call any, or answer in text), "none" (answer in
 * text), "required" (call at least one), or call the named function.
 */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string };

/** One call the model made. */
export interface ToolCall {
  /** The id the model gave (Mistral's 9-character ids) or one made up for it ("call_…"). */
  id: string;
  name: string;
  /** The arguments object, parsed. */
  arguments: Record<string, unknown>;
}

/**
 * How a model writes tool calls, as its chat template shows:
 * - "llama3": a JSON object {"name": …, "parameters": …} as the whole reply (Llama 3.1–3.3), maybe
 *   after <|python_tag|>;
 * - "hermes": <tool_call>{"name": …, "arguments": …}</tool_call>, one block per call (Hermes 2/3,
 *   Qwen2.5, Qwen3);
 * - "mistral": [TOOL_CALLS] then a JSON array of {"name", "arguments"} (Mistral v3 tokenizers,
 *   Mistral Nemo, Small) — newer ones write [TOOL_CALLS]name[ARGS]{…};
 * - "generic": no format known; a reply that is a JSON object (or array of objects) with "name" and
 *   "arguments" (or "parameters") is a call.
 */
export type ToolCallFormat = 'llama3' | 'hermes' | 'mistral' | 'generic';
