// A chat request's reply as the APIs report it: the prompt rendered with the tools offered and the
// template variables asked for, the constraint that forces a call when tool_choice demands one,
// and a reader that splits the streamed text into reasoning (<think>…</think>), content and tool
// calls in the model's own format (chat/tool-format.ts).
import type { GenerateOptions, Model } from '../engine/model.js';
import type { Grammar } from '../engine/grammar.js';
import { SchemaError } from '../engine/json-schema-grammar.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import type { ToolCall, ToolCallFormat } from '../chat/tool-types.js';
import { mistralCallForm, toolCallFormat, toolMarkerTokens } from '../chat/tool-format.js';
import { toolCallGrammar } from '../chat/tool-grammar.js';
import { ToolCallParser } from '../chat/tool-call-parser.js';
import { ReasoningSplitter, promptOpensThinking } from '../chat/reasoning.js';
import { BadRequest } from './params.js';
import type { ToolRequest } from './chat-request.js';

export interface ChatRequestParts {
  messages: readonly ChatMessage[];
  tools: ToolRequest | undefined;
  /** chat_template_kwargs. */
  variables: Record<string, unknown>;
  /** true / false: thinking on or off (the template's enable_thinking); undefined: the template's default. */
  think: boolean | undefined;
  /** Report a thinking model's reasoning apart from the content; false leaves it in the content. */
  separateReasoning: boolean;
}

/** What one piece of the reply holds once read. */
export interface ReplyPiece {
  content: string;
  reasoning: string;
  calls: ToolCall[];
}

export interface ChatPlan {
  /** The rendered prompt, and its tokens. */
  text: string;
  prompt: number[];
  /** Options the reply needs: a grammar forcing a call, special tokens kept for the parser. */
  options: Pick<GenerateOptions, 'grammar' | 'keepSpecial'>;
  format: ToolCallFormat | undefined;
  /** A reader for one reply's text (one per choice). */
  reader(): ChatReplyReader;
}

/** Whether a chat template writes <think>…</think> reasoning (Qwen3, DeepSeek-R1 and their kin). */
export function templateThinks(source: string): boolean {
  return source.includes('<think>');
}

/** Whether a template can show tools to the model (ChatML, the fallback, can). */
export function templateTakesTools(source: string): boolean {
  return /\btools\b/.test(source);
}

/**
 * Renders the prompt and prepares the reply's reading. Throws BadRequest for a tool schema the
 * grammar cannot enforce, or a template that fails (raise_exception: e.g. Mistral's ids).
 */
export function planChat(model: Model, parts: ChatRequestParts, modelName: string): ChatPlan {
  const template = model.chatTemplate.source;
  const thinks = templateThinks(template);
  const variables: Record<string, unknown> = { ...parts.variables };
  const tools = parts.tools;
  const format = tools ? toolCallFormat(template) : undefined;
  const forced = tools !== undefined && format !== undefined && tools.choice !== 'auto' && tools.choice !== 'none';
  // A forced call leaves no room for reasoning first: thinking is turned off where the template
  // can turn it off (Qwen3's enable_thinking); where its prompt opens <think> anyway, the grammar
  // lets the reply close it before the call.
  if (forced && thinks) variables.enable_thinking = false;
  else if (parts.think !== undefined && variables.enable_thinking === undefined) variables.enable_thinking = parts.think;
  let text: string;
  try {
    text = model.renderChat(parts.messages, { tools: tools?.tools, variables });
  } catch (e) {
    // The template is the model's: say which model's failed, and why.
    throw new BadRequest(`model "${modelName}": ${(e as Error).message}`, 'messages');
  }
  const prompt = model.chatTextTokens(text);
  const opensThinking = thinks && promptOpensThinking(text);
  let grammar: Grammar | undefined;
  if (forced) {
    try {
      grammar = toolCallGrammar({
        format: format!, tools: tools!.tools, choice: tools!.choice as 'required' | { name: string }, parallel: tools!.parallel,
        mistralForm: mistralCallForm(template), reasoning: opensThinking ? 'open' : undefined,
      });
    } catch (e) {
      if (e instanceof SchemaError) throw new BadRequest(`tools: ${e.message}`, 'tools');
      if (e instanceof RangeError) throw new BadRequest(e.message, 'tool_choice');
      throw e;
    }
  }
  const keepSpecial = format ? toolMarkerTokens(format, model.tokenizer) : [];
  const split = thinks && parts.separateReasoning;
  const startInThinking = split && opensThinking;
  return {
    text, prompt, format,
    options: { grammar, keepSpecial: keepSpecial.length > 0 ? keepSpecial : undefined },
    reader: () => new ChatReplyReader(
      split ? new ReasoningSplitter({ startInThinking }) : undefined,
      tools && format ? new ToolCallParser({ format, tools: tools.tools }) : undefined,
    ),
  };
}

/** Reads one reply as it streams: reasoning first, then content with any tool calls taken out. */
export class ChatReplyReader {
  /** Every call read so far (their number is the next call's index). */
  readonly calls: ToolCall[] = [];

  constructor(private readonly reasoning: ReasoningSplitter | undefined, private readonly tools: ToolCallParser | undefined) {}

  push(text: string): ReplyPiece {
    const r = this.reasoning ? this.reasoning.push(text) : { reasoning: '', content: text };
    return this.content(r.reasoning, r.content, false);
  }

  flush(): ReplyPiece {
    const r = this.reasoning ? this.reasoning.flush() : { reasoning: '', content: '' };
    return this.content(r.reasoning, r.content, true);
  }

  private content(reasoning: string, text: string, last: boolean): ReplyPiece {
    if (!this.tools) return { reasoning, content: text, calls: [] };
    const a = this.tools.push(text);
    const b = last ? this.tools.flush() : { content: '', calls: [] };
    const calls = [...a.calls, ...b.calls];
    this.calls.push(...calls);
    return { reasoning, content: a.content + b.content, calls };
  }
}

/** Two pieces as one (a last push and the flush). */
export function joinPieces(a: ReplyPiece, b: ReplyPiece): ReplyPiece {
  return { content: a.content + b.content, reasoning: a.reasoning + b.reasoning, calls: [...a.calls, ...b.calls] };
}
