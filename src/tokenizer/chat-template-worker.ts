// The thread that renders chat templates for chat-template-sandbox.ts. A template is code from a
// downloaded file: here it runs with a heap of its own (the Worker's resourceLimits), so a template
// that loops or builds huge strings exhausts this thread, never the server's.
//
// Protocol: one job at a time on `port`; the answer is posted, then `signal[DONE]` is set and
// notified, since the caller waits synchronously (Atomics.wait) and reads the answer with
// receiveMessageOnPort.
import { workerData, type MessagePort } from 'node:worker_threads';
import { Template } from '@huggingface/jinja';
import { DONE, READY, type RenderAnswer, type RenderJob } from './chat-template-sandbox.js';

const { port, signal } = workerData as { port: MessagePort; signal: Int32Array };

/** Parsed templates by source: a chat session renders the same template every turn. */
const parsed = new Map<string, Template>();
const PARSED_KEPT = 16;

function render(job: RenderJob): RenderAnswer {
  let template = parsed.get(job.source);
  if (!template) {
    try {
      template = new Template(job.source);
    } catch (e) {
      return { error: (e as Error).message, parse: true };
    }
    if (parsed.size >= PARSED_KEPT) parsed.delete(parsed.keys().next().value!);
    parsed.set(job.source, template);
  }
  let output: string;
  try {
    output = template.render(job.variables);
  } catch (e) {
    // A template that recurses forever ends here too, as V8's RangeError.
    return { error: e instanceof Error ? e.message : String(e) };
  }
  if (output.length > job.maxOutputChars) {
    return { error: `its output is ${output.length} characters, more than the ${job.maxOutputChars} allowed for these messages` };
  }
  return { output };
}

port.on('message', (job: RenderJob) => {
  port.postMessage(render(job));
  Atomics.store(signal, DONE, 1);
  Atomics.notify(signal, DONE);
});
Atomics.store(signal, READY, 1);
Atomics.notify(signal, READY);
