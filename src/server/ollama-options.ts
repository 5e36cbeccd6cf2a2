// Ollama's generation `options`, shared by /api/generate and /api/chat requests and by the
// `parameters` a model is created with (/api/create), which become that model's defaults.
import type { GenerateOptions } from '../index.js';
import { optInt, optNumber, optStops } from './params.js';

export type GenerateLoad = { contextLength?: number };

/** Ollama's `options` (or a created model's `parameters`), checked, as generation and load options; `at` names the field in errors. */
export function ollamaOptions(o: Record<string, unknown>, at: string): { options: GenerateOptions; load: GenerateLoad } {
  const numPredict = optInt(o, 'num_predict', -2, 1 << 20, `${at}.num_predict`);
  const numCtx = optInt(o, 'num_ctx', 16, 1 << 20, `${at}.num_ctx`);
  const seed = optInt(o, 'seed', -1, 2 ** 32 - 1, `${at}.seed`); // -1: random, as in Ollama
  return {
    load: numCtx === undefined ? {} : { contextLength: numCtx },
    options: {
      maxTokens: numPredict === undefined || numPredict < 0 ? undefined : numPredict, // -1: no limit, -2: fill the context
      temperature: optNumber(o, 'temperature', 0, 100, `${at}.temperature`),
      topK: optInt(o, 'top_k', 0, 1 << 20, `${at}.top_k`),
      topP: optNumber(o, 'top_p', Number.MIN_VALUE, 1, `${at}.top_p`),
      minP: optNumber(o, 'min_p', 0, 1, `${at}.min_p`),
      seed: seed === -1 ? undefined : seed,
      stop: optStops(o, 'stop', `${at}.stop`),
      repeatPenalty: optNumber(o, 'repeat_penalty', Number.MIN_VALUE, 100, `${at}.repeat_penalty`),
      repeatLastN: optInt(o, 'repeat_last_n', -1, 1 << 20, `${at}.repeat_last_n`),
      presencePenalty: optNumber(o, 'presence_penalty', -100, 100, `${at}.presence_penalty`),
      frequencyPenalty: optNumber(o, 'frequency_penalty', -100, 100, `${at}.frequency_penalty`),
    },
  };
}
