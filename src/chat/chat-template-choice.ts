// Which chat template a model renders its chat prompts with: the model's own; else one named or
// given by the user (--chat-template, or a <model>.jinja file beside the model in the server's
// folder); else ChatML, as llama.cpp does for a model that ships none.
import { readFile, stat } from 'node:fs/promises';
import { BUILTIN_CHAT_TEMPLATES, DEFAULT_CHAT_TEMPLATE } from './builtin-templates.js';
import { ChatTemplateError, checkChatTemplate } from '../tokenizer/chat-template.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface ChatTemplateChoice {
  /** Jinja source rendered for chat prompts. */
  source: string;
  /**
   * "model": the model's own files; "override": chosen by the user; "default": the model has
   * none, so ChatML.
   */
  origin: 'model' | 'override' | 'default';
  /** For messages: "the model's", a built-in name, or the file it was read from. */
  label: string;
}

/** Largest template file read (real ones are a few KiB; Mistral's biggest are under 20 KiB). */
const MAX_TEMPLATE_BYTES = 1 << 20;

/** A chat template as given to --chat-template or LoadModelOptions.chatTemplate: a built-in name, else Jinja source. */
export function chatTemplateFromOption(value: string, label = 'the chat template given'): ChatTemplateChoice {
  const builtin = BUILTIN_CHAT_TEMPLATES[value];
  if (builtin !== undefined) return { source: builtin, origin: 'override', label: value };
  try {
    checkChatTemplate(value);
  } catch (e) {
    throw new ChatTemplateError(`${label}: ${(e as Error).message}`, { cause: e });
  }
  return { source: value, origin: 'override', label };
}

/**
 * `--chat-template <file.jinja | name>`: a built-in name (chatml, llama3, …), else a file of Jinja
 * source, checked to parse. Errors name the argument and say which names exist.
 */
export async function readChatTemplateArg(arg: string): Promise<ChatTemplateChoice> {
  if (BUILTIN_CHAT_TEMPLATES[arg] !== undefined) return chatTemplateFromOption(arg);
  let size: number;
  try {
    size = (await stat(arg)).size;
  } catch {
    throw new ChatTemplateError(`--chat-template ${JSON.stringify(arg)} is neither a file nor a built-in template `
      + `(${Object.keys(BUILTIN_CHAT_TEMPLATES).join(', ')})`);
  }
  if (size > MAX_TEMPLATE_BYTES) throw new ChatTemplateError(`${arg}: a chat template of ${size} bytes is too large (at most ${MAX_TEMPLATE_BYTES})`);
  return chatTemplateFromOption(await readFile(arg, 'utf8'), arg);
}

/** Where a model's own override lives: `qwen.jinja` beside `qwen.gguf`, `qwen.jinja` beside the folder `qwen/`. */
export function chatTemplateFileFor(modelPath: string): string {
  return `${modelPath.replace(/[/\\]+$/, '').replace(/\.(gguf|bin)$/i, '')}.jinja`;
}

/** The template beside a model (chatTemplateFileFor), if there is one; a file that does not parse is an error. */
export async function chatTemplateBeside(modelPath: string): Promise<ChatTemplateChoice | undefined> {
  const file = chatTemplateFileFor(modelPath);
  try {
    if ((await stat(file)).isFile()) return await readChatTemplateArg(file);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw e;
  }
  return undefined;
}

/** The template a model uses: the override if any, else its own, else the default. */
export function chooseChatTemplate(tokenizer: Tokenizer, override?: ChatTemplateChoice): ChatTemplateChoice {
  if (override) return override;
  if (tokenizer.chatTemplate !== undefined) return { source: tokenizer.chatTemplate, origin: 'model', label: "the model's" };
  return { source: BUILTIN_CHAT_TEMPLATES[DEFAULT_CHAT_TEMPLATE]!, origin: 'default', label: DEFAULT_CHAT_TEMPLATE };
}

/** One line for logs, `minerva info` and /api/show. */
export function describeChatTemplate(c: Pick<ChatTemplateChoice, 'origin' | 'label'>): string {
  switch (c.origin) {
    case 'model': return "the model's own";
    case 'override': return `${c.label} (chosen with --chat-template or a .jinja file beside the model)`;
    case 'default': return `${c.label} (the model has no chat template; the default is used)`;
  }
}
