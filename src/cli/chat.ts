// minerva chat <model>: an interactive chat in the terminal. Ctrl-D or /exit ends it; /reset
// forgets the conversation.
import { createInterface } from 'node:readline/promises';
import { Model } from '../engine/model.js';
import type { ChatMessage } from '../tokenizer/tokenizer.js';
import { generateOptions, loadOptions, noteChatTemplate, type ModelCliOptions } from './generation-options.js';
import { loadProgressBar } from './progress.js';
import { streamToStdout } from './stream.js';

export async function chatCommand(modelPath: string, o: ModelCliOptions & { system?: string }): Promise<void> {
  const progress = loadProgressBar('loading');
  let model: Model;
  try {
    model = await Model.load(modelPath, { ...(await loadOptions(o)), onProgress: progress.update });
  } finally {
    progress.stop();
  }
  noteChatTemplate(model, modelPath);
  const start: ChatMessage[] = o.system !== undefined ? [{ role: 'system', content: o.system }] : [];
  let messages = [...start];
  // Lines are read as a stream (not rl.question), so piped input loses no line.
  const rl = createInterface({ input: process.stdin, terminal: false });
  const gen = generateOptions(o);
  const prompt = () => process.stdout.write('> ');
  try {
    if (process.stdin.isTTY) process.stdout.write('Type a message; /reset starts over, /exit or Ctrl-D quits.\n');
    prompt();
    for await (const line of rl) {
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/reset') { messages = [...start]; prompt(); continue; }
      if (text === '') { prompt(); continue; }
      messages.push({ role: 'user', content: text });
      let reply = '';
      const last = await streamToStdout(
        (async function* () {
          for await (const c of model.chat(messages, gen)) { reply += c.text; yield c; }
        })(),
        o.verbose ?? false,
      );
      process.stdout.write('\n');
      messages.push({ role: 'assistant', content: reply });
      if (last?.finishReason === 'length') process.stderr.write('(reply cut at the token limit)\n');
      prompt();
    }
  } finally {
    rl.close();
    model.dispose();
  }
}
