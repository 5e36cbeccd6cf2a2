// Renders a model's Jinja chat template with @huggingface/jinja, the way transformers'
// apply_chat_template does (trim_blocks and lstrip_blocks on, which that library always sets), with
// the variables real templates read: messages (with tool_calls, tool_call_id, name and
// reasoning_content in transformers' shapes), tools, add_generation_prompt, bos_token, eos_token;
// raise_exception and strftime_now are the library's globals. test/chat-template-tools.test.ts
// checks the output against Python's jinja2 on the templates of Llama 3.2, Qwen2.5, Qwen3 and
// Mistral Nemo. Rendering runs in chat-template-sandbox.ts, bounded in time, memory and output size.
import { Template } from '@huggingface/jinja';
import { RenderFailure, renderInSandbox } from './chat-template-sandbox.js';
import type { ToolFunction } from '../chat/tool-types.js';
import type { ChatMessage } from './tokenizer.js';

export interface RenderChatOptions {
  /** End with the header of an assistant turn. Default true. */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** Functions the model may call (the template's `tools`, as OpenAI-style {type, function}). */
  tools?: readonly ToolFunction[];
  /** More variables for the template (e.g. enable_thinking, date_string); they cannot replace the above. */
  extra?: Readonly<Record<string, unknown>>;
}

/** The source could not be parsed, or rendering it failed (including raise_exception). */
export class ChatTemplateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatTemplateError';
  }
}

/** Parsed templates by source, for checkChatTemplate (the sandbox's thread keeps its own). */
const parsedTemplates = new Map<string, Template>();
const PARSED_TEMPLATES_KEPT = 16;

function parseTemplate(source: string): Template {
  let template = parsedTemplates.get(source);
  if (template) return template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`, { cause: e });
  }
  if (parsedTemplates.size >= PARSED_TEMPLATES_KEPT) {
    const oldest = parsedTemplates.keys().next().value;
    if (oldest !== undefined) parsedTemplates.delete(oldest);
  }
  parsedTemplates.set(source, template);
  return template;
}

/** Checks a template parses, without rendering it (for --chat-template files). */
export function checkChatTemplate(source: string): void {
  parseTemplate(source);
}

export function renderChatTemplate(
  source: string, messages: readonly ChatMessage[], options: RenderChatOptions = {},
): string {
  // raise_exception is not passed in: @huggingface/jinja defines it as a global that throws an
  // Error carrying the template's message, and refuses a second definition ("Variable already
  // declared"). Its errors, like every other rendering error, are wrapped below.
  const variables: Record<string, unknown> = {
    ...options.extra,
    messages: messages.map(templateMessage),
    add_generation_prompt: options.addGenerationPrompt ?? true,
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
  };
  // Templates test `tools is not none` / `if tools`: no tools means the variable is absent.
  if (options.tools && options.tools.length > 0) variables.tools = options.tools.map(templateTool);
  else delete variables.tools;
  try {
    return renderInSandbox(source, variables);
  } catch (e) {
    if (e instanceof RenderFailure && e.parse) throw new ChatTemplateError(`chat template does not parse: ${e.message}`, { cause: e });
    throw new ChatTemplateError(`chat template failed: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * A message as templates read it (transformers' convention): tool calls as
 * {id, type: "function", function: {name, arguments}} with the arguments an object; optional
 * fields present only when set, since templates test `message.tool_calls is defined`.
 */
function templateMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.toolCalls && m.toolCalls.length > 0) {
    out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
  }
  if (m.toolCallId !== undefined) out.tool_call_id = m.toolCallId;
  if (m.name !== undefined) out.name = m.name;
  if (m.reasoning !== undefined) out.reasoning_content = m.reasoning;
  return out;
}

function templateTool(t: ToolFunction): Record<string, unknown> {
  const fn: Record<string, unknown> = { name: t.name };
  if (t.description !== undefined) fn.description = t.description;
  fn.parameters = t.parameters;
  return { type: 'function', function: fn };
}

/** Whether each template source shows a system message, by source (see renderChatWithSystem). */
const systemSupport = new Map<string, boolean>();

/**
 * Whether a template shows a system message: it renders a probe conversation without raising,
 * and the system text appears in the output. (Gemma's templates raise on a system role; Phi-3's
 * drop it silently.)
 */
export function templateShowsSystem(source: string, options: RenderChatOptions = {}): boolean {
  let shows = systemSupport.get(source);
  if (shows === undefined) {
    const probe = 'system-probe-3f9c';
    try {
      shows = renderChatTemplate(source, [{ role: 'system', content: probe }, { role: 'user', content: 'hi' }], options).includes(probe);
    } catch {
      shows = false;
    }
    if (systemSupport.size >= PARSED_TEMPLATES_KEPT) systemSupport.clear();
    systemSupport.set(source, shows);
  }
  return shows;
}

/**
 * renderChatTemplate for chats: a template that cannot show a system message gets it folded into
 * the first user message (system text, a newline, the user's text), as llama.cpp's Jinja path
 * does, so that a system prompt is neither refused nor silently lost.
 */
export function renderChatWithSystem(source: string, messages: readonly ChatMessage[], options: RenderChatOptions = {}): string {
  if (messages[0]?.role !== 'system' || templateShowsSystem(source, options)) return renderChatTemplate(source, messages, options);
  const [system, ...rest] = messages;
  const first = rest[0];
  const folded: ChatMessage[] = first?.role === 'user'
    ? [{ ...first, content: `${system!.content}\n${first.content}` }, ...rest.slice(1)]
    : [{ role: 'user', content: system!.content }, ...rest];
  return renderChatTemplate(source, folded, options);
}
