// Renders a model's Jinja chat template with @huggingface/jinja, the way transformers'
// apply_chat_template does (trim_blocks and lstrip_blocks on, which that library always sets).
import { Template } from '@huggingface/jinja';
import type { ChatMessage } from './tokenizer.js';

export interface RenderChatOptions {
  /** End with the header of an assistant turn. Default true. */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** More variables for the template (e.g. tools, date_string); they cannot replace the above. */
  extra?: Readonly<Record<string, unknown>>;
}

/** The template source could not be parsed, or rendering it failed (including raise_exception). */
export class ChatTemplateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ChatTemplateError';
  }
}

/** Parsed templates by source: a chat session renders the same template for every turn. */
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

export function renderChatTemplate(
  source: string, messages: readonly ChatMessage[], options: RenderChatOptions = {},
): string {
  const template = parseTemplate(source);
  // raise_exception is not passed in: @huggingface/jinja defines it as a global that throws an
  // Error carrying the template's message, and refuses a second definition ("Variable already
  // declared"). Its errors, like every other rendering error, are wrapped below.
  const variables: Record<string, unknown> = {
    ...options.extra,
    messages: messages.map((m) => ({ ...m })),
    add_generation_prompt: options.addGenerationPrompt ?? true,
    bos_token: options.bosToken ?? '',
    eos_token: options.eosToken ?? '',
  };
  try {
    const text = template.render(variables);
    return text;
  } catch (e) {
    throw new ChatTemplateError(`chat template failed: ${(e as Error).message}`, { cause: e });
  }
}
