// A live server on loopback over a models folder holding random-weight models, for the API tests.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createServer, DEFAULTS, type MinervaServer, type ServeOptions } from '../../src/server/server.js';
import { randomSpec, randomWeights, writeGGUFModel, writeHFModel } from './random-model.js';

/** Zephyr/TinyLlama's chat template, written into the random models' tokenizer_config.json. */
export const CHAT_TEMPLATE = "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
  + "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}";

// Untied, so the output depends on the whole context (see scheduler.test.ts).
export const SPEC = randomSpec({ arch: 'llama', dim: 64, nLayers: 2, nHeads: 4, nKVHeads: 2, ffnDim: 96, tied: false });

/** "tiny" (HF folder with a chat template) and "tiny-gguf" (the same weights as Q8_0 GGUF). */
export async function writeModels(dir: string): Promise<void> {
  const weights = randomWeights(SPEC, 4);
  await writeHFModel(path.join(dir, 'tiny'), SPEC, weights);
  const cfgPath = path.join(dir, 'tiny', 'tokenizer_config.json');
  const cfg = JSON.parse(await readFile(cfgPath, 'utf8')) as Record<string, unknown>;
  await writeFile(cfgPath, JSON.stringify({ ...cfg, chat_template: CHAT_TEMPLATE }));
  await writeGGUFModel(path.join(dir, 'tiny-gguf.gguf'), SPEC, weights, { dtype: 'Q8_0' });
}

export async function startServer(modelsDir: string, o: Partial<ServeOptions> = {}): Promise<{ server: MinervaServer; url: string }> {
  const server = await createServer({
    host: '127.0.0.1', port: 0, modelsDir, parallel: 4, maxQueue: 32, maxMemory: 2 ** 30, keepAliveMs: 60_000,
    contextLength: 256, threads: 2, requestTimeoutMs: 60_000, bodyLimit: DEFAULTS.bodyLimit, logger: false, ...o,
  });
  const url = await server.listen();
  return { server, url };
}
