// minerva run <model> "<prompt>"
import { Model } from '../engine/model.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import { generateOptions, loadOptions, noteChatTemplate, type ModelCliOptions } from './generation-options.js';
import { loadProgressBar } from './progress.js';
import { streamToStdout } from './stream.js';

export async function runCommand(
  modelPath: string, prompt: string, o: ModelCliOptions & { chat?: boolean; system?: string },
): Promise<void> {
  const progress = loadProgressBar('loading');
  let model: Model;
  try {
    model = await Model.load(modelPath, { ...(await loadOptions(o)), onProgress: progress.update });
  } finally {
    progress.stop();
  }
  try {
    const gen = generateOptions(o);
    let chunks;
    if (o.chat) {
      const messages: ChatMessage[] = [];
      if (o.system !== undefined) messages.push({ role: 'system', content: o.system });
      messages.push({ role: 'user', content: prompt });
      noteChatTemplate(model, modelPath);
      chunks = model.chat(messages, gen);
    } else {
      chunks = model.generate(prompt, gen);
    }
    await streamToStdout(chunks, o.verbose ?? false);
    process.stdout.write('\n');
  } finally {
    model.dispose();
  }
}
