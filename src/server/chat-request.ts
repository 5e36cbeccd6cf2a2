// The chat-specific fields of a request, as OpenAI and Ollama spell them, checked at the border:
// messages (with tool calls and tool results), tools, tool_choice, parallel_tool_calls and the
// reasoning switches. Everything maps onto the engine's shapes (ChatMessage, ToolFunction,
// ToolChoice); a field that cannot be honoured is refused with a 400 naming it.
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import type { ToolCall, ToolChoice, ToolFunction } from '../chat/tool-types.js';
import { BadRequest, optBool, optObject } from './params.js';

type Body = Record<string, unknown>;
export type Dialect = 'openai' | 'ollama';

/** OpenAI's rule for function names. */
const FUNCTION_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_TOOLS = 128;
const MAX_MESSAGES = 4096;
const MAX_CALLS_PER_MESSAGE = 128;

const isObject = (v: unknown): v is Body => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Messages: a role and content (a string, null, or OpenAI's array of text parts); an assistant
 * message's tool_calls (OpenAI: arguments as a JSON string; Ollama: as an object); a tool
 * message's tool_call_id (OpenAI) or tool_name (Ollama); an assistant's earlier reasoning
 * (OpenAI-compatible servers' reasoning_content, Ollama's thinking). "developer" is OpenAI's newer
 * name for "system". Tool results without ids (Ollama) are matched to the calls before them in order.
 */
export function chatMessages(b: Body, dialect: Dialect, key = 'messages'): ChatMessage[] {
  const v = b[key];
  if (!Array.isArray(v) || v.length === 0) throw new BadRequest(`${key} must be a non-empty array of messages`, key);
  if (v.length > MAX_MESSAGES) throw new BadRequest(`${key} holds ${v.length} messages; at most ${MAX_MESSAGES}`, key);
  const pending: string[] = []; // ids of calls not yet answered, for Ollama's id-less tool results
  let made = 0;
  return v.map((m, i) => {
    const where = `${key}[${i}]`;
    if (!isObject(m)) throw new BadRequest(`${where} must be an object with role and content`, where);
    const role = m.role;
    if (typeof role !== 'string' || !['system', 'developer', 'user', 'assistant', 'tool'].includes(role)) {
      throw new BadRequest(`${where}.role must be one of system, developer, user, assistant, tool`, `${where}.role`);
    }
    if (m.images !== undefined && m.images !== null && !(Array.isArray(m.images) && m.images.length === 0)) {
      throw new BadRequest(`${where}.images: images are not supported (the models served are text-only)`, `${where}.images`);
    }
    const message: ChatMessage = { role: role === 'developer' ? 'system' : role, content: messageText(m.content, where) };
    if (role === 'assistant') {
      const calls = toolCalls(m.tool_calls, `${where}.tool_calls`, dialect, () => nextId(made++));
      if (calls.length > 0) {
        message.toolCalls = calls;
        pending.push(...calls.map((c) => c.id));
      }
      const reasoning = m.reasoning_content ?? m.thinking;
      if (typeof reasoning === 'string' && reasoning !== '') message.reasoning = reasoning;
    }
    if (role === 'tool') {
      const id = m.tool_call_id;
      if (id !== undefined && id !== null) {
        if (typeof id !== 'string' || id === '') throw new BadRequest(`${where}.tool_call_id must be a non-empty string`, `${where}.tool_call_id`);
        message.toolCallId = id;
        const at = pending.indexOf(id);
        if (at >= 0) pending.splice(at, 1);
      } else if (dialect === 'openai') {
        throw new BadRequest(`${where}.tool_call_id is required in a tool message (the id of the call it answers)`, `${where}.tool_call_id`);
      } else if (pending.length > 0) {
        message.toolCallId = pending.shift()!;
      }
      const name = m.tool_name ?? m.name;
      if (name !== undefined && name !== null) {
        if (typeof name !== 'string') throw new BadRequest(`${where}.${m.tool_name !== undefined ? 'tool_name' : 'name'} must be a string`, where);
        message.name = name;
      }
    }
    return message;
  });
}

/**
 * Ids for calls that came without one (Ollama's history): nine letters and digits, the form
 * Mistral's templates insist on, and unique within the request.
 */
function nextId(n: number): string {
  return `call${String(n).padStart(5, '0')}`;
}

function messageText(content: unknown, where: string): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    return content.map((part, j) => {
      const p = part as Body | null;
      if (!p || p.type !== 'text' || typeof p.text !== 'string') {
        throw new BadRequest(`${where}.content[${j}]: only text parts ({"type": "text", "text": …}) are supported`, `${where}.content`);
      }
      return p.text;
    }).join('');
  }
  throw new BadRequest(`${where}.content must be a string or an array of text parts`, `${where}.content`);
}

function toolCalls(v: unknown, where: string, dialect: Dialect, makeId: () => string): ToolCall[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new BadRequest(`${where} must be an array of tool calls`, where);
  if (v.length > MAX_CALLS_PER_MESSAGE) throw new BadRequest(`${where} holds ${v.length} calls; at most ${MAX_CALLS_PER_MESSAGE}`, where);
  return v.map((c, j) => {
    const at = `${where}[${j}]`;
    if (!isObject(c) || !isObject(c.function)) throw new BadRequest(`${at} must be {"type": "function", "function": {"name", "arguments"}}`, at);
    if (c.type !== undefined && c.type !== 'function') throw new BadRequest(`${at}.type must be "function"`, `${at}.type`);
    const name = c.function.name;
    if (typeof name !== 'string' || name === '') throw new BadRequest(`${at}.function.name must be a non-empty string`, `${at}.function.name`);
    let args = c.function.arguments;
    if (typeof args === 'string') {
      // OpenAI sends the arguments as JSON text; templates want the object.
      try {
        args = args.trim() === '' ? {} : JSON.parse(args);
      } catch {
        throw new BadRequest(`${at}.function.arguments is not valid JSON`, `${at}.function.arguments`);
      }
    } else if (args === undefined || args === null) {
      args = {};
    }
    if (!isObject(args)) throw new BadRequest(`${at}.function.arguments must be a JSON object${dialect === 'openai' ? ' (as a string)' : ''}`, `${at}.function.arguments`);
    const id = c.id;
    if (id !== undefined && id !== null && (typeof id !== 'string' || id === '')) throw new BadRequest(`${at}.id must be a non-empty string`, `${at}.id`);
    return { id: typeof id === 'string' ? id : makeId(), name, arguments: args };
  });
}

export interface ToolRequest {
  tools: ToolFunction[];
  choice: ToolChoice;
  /** Whether the reply may hold several calls. */
  parallel: boolean;
}

/**
 * tools, tool_choice and parallel_tool_calls. Ollama's API has only tools; its /api/chat takes
 * OpenAI's tool_choice and parallel_tool_calls too, as an extension. Undefined when the request
 * offers no tools, or tool_choice is "none" (the model then answers in text and the tools are not
 * shown to it).
 */
export function toolRequest(b: Body, _dialect: Dialect): ToolRequest | undefined {
  const tools = toolList(b.tools);
  const choice = toolChoice(b.tool_choice, tools);
  const parallel = optBool(b, 'parallel_tool_calls') ?? true;
  if (tools.length === 0 || choice === 'none') return undefined;
  return { tools, choice, parallel };
}

function toolList(v: unknown): ToolFunction[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new BadRequest('tools must be an array of {"type": "function", "function": {…}}', 'tools');
  if (v.length > MAX_TOOLS) throw new BadRequest(`tools holds ${v.length} functions; at most ${MAX_TOOLS}`, 'tools');
  const seen = new Set<string>();
  return v.map((t, i) => {
    const where = `tools[${i}]`;
    if (!isObject(t)) throw new BadRequest(`${where} must be an object`, 'tools');
    if (t.type !== 'function') throw new BadRequest(`${where}.type must be "function" (the only kind of tool there is), got ${JSON.stringify(t.type)}`, 'tools');
    const f = t.function;
    if (!isObject(f)) throw new BadRequest(`${where}.function must be an object with name, description and parameters`, 'tools');
    if (typeof f.name !== 'string' || !FUNCTION_NAME.test(f.name)) {
      throw new BadRequest(`${where}.function.name must be 1–64 letters, digits, "_", "." or "-"`, 'tools');
    }
    if (seen.has(f.name)) throw new BadRequest(`${where}.function.name: "${f.name}" is declared twice`, 'tools');
    seen.add(f.name);
    if (f.description !== undefined && f.description !== null && typeof f.description !== 'string') {
      throw new BadRequest(`${where}.function.description must be a string`, 'tools');
    }
    const parameters = f.parameters ?? { type: 'object', properties: {} };
    if (!isObject(parameters)) throw new BadRequest(`${where}.function.parameters must be a JSON schema object`, 'tools');
    if (f.strict !== undefined && f.strict !== null && typeof f.strict !== 'boolean') {
      throw new BadRequest(`${where}.function.strict must be true or false`, 'tools');
    }
    const fn: ToolFunction = { name: f.name, parameters };
    if (typeof f.description === 'string') fn.description = f.description;
    return fn;
  });
}

function toolChoice(v: unknown, tools: readonly ToolFunction[]): ToolChoice {
  if (v === undefined || v === null) return 'auto';
  if (v === 'auto' || v === 'none') return v;
  if (v === 'required') {
    if (tools.length === 0) throw new BadRequest('tool_choice "required" needs tools', 'tool_choice');
    return v;
  }
  if (isObject(v) && v.type === 'function' && isObject(v.function) && typeof v.function.name === 'string') {
    const name = v.function.name;
    if (!tools.some((t) => t.name === name)) throw new BadRequest(`tool_choice names the function "${name}", which is not in tools`, 'tool_choice');
    return { name };
  }
  throw new BadRequest('tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": …}}', 'tool_choice');
}

/**
 * Template variables a request passes (chat_template_kwargs, as vLLM and llama-server take them):
 * plain JSON values under names that do not replace the ones the server sets.
 */
export function templateVariables(b: Body): Record<string, unknown> {
  const kwargs = optObject(b, 'chat_template_kwargs') ?? {};
  const reserved = ['messages', 'tools', 'add_generation_prompt', 'bos_token', 'eos_token'];
  for (const k of Object.keys(kwargs)) {
    if (reserved.includes(k)) throw new BadRequest(`chat_template_kwargs.${k} is set by the server; it cannot be passed`, 'chat_template_kwargs');
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(k)) throw new BadRequest(`chat_template_kwargs: "${k}" is not a template variable name`, 'chat_template_kwargs');
  }
  if (JSON.stringify(kwargs).length > 65536) throw new BadRequest('chat_template_kwargs is larger than 64 KiB', 'chat_template_kwargs');
  return { ...kwargs };
}
