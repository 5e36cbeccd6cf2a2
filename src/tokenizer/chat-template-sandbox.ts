// Renders a chat template in a thread of its own, bounded in time, memory and output size, and
// waits for it synchronously, so renderChatTemplate keeps its synchronous signature.
//
// Why a thread: a chat template is Jinja code that arrives inside a downloaded model file.
// @huggingface/jinja reaches no globals, prototypes or files, but nothing bounds what a template
// computes: `range(10**9)` or nested loops would block the server's event loop for good or exhaust
// its heap, which kills the process. The worker has its own small heap (an exhausted one ends the
// worker, not the process) and the caller stops waiting after RENDER_TIME_LIMIT_MS and discards
// the worker. The main thread is blocked while a template renders, as it was when rendering ran
// in-line: a real template renders in well under a millisecond, and a hostile one at most for the
// time limit.
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

export interface RenderJob {
  source: string;
  variables: Record<string, unknown>;
  /** Longest output accepted, characters. */
  maxOutputChars: number;
}
export type RenderAnswer = { output: string } | { error: string; parse?: boolean };

/** Indexes into the Int32Array the caller and the worker share. */
export const READY = 0;
export const DONE = 1;

/** Longest a template may render. */
export const RENDER_TIME_LIMIT_MS = 2000;
/** The worker's heap: messages are at most a request body (4 MiB by default), a rendering a few times that. */
export const RENDER_HEAP_MB = 256;
/** Output allowed beyond OUTPUT_PER_INPUT_CHAR characters per character of the messages and tools. */
const OUTPUT_BASE_CHARS = 1 << 20;
const OUTPUT_PER_INPUT_CHAR = 8;
/** Longest wait for a new worker to start (module loading on a busy machine). */
const START_LIMIT_MS = 30_000;

/** Why a rendering failed: the template's own error, or a bound it crossed. */
export class RenderFailure extends Error {
  constructor(message: string, readonly parse = false) {
    super(message);
    this.name = 'RenderFailure';
  }
}

interface Sandbox { worker: Worker; port: MessagePort; signal: Int32Array }
let sandbox: Sandbox | undefined;

function start(): Sandbox {
  const signal = new Int32Array(new SharedArrayBuffer(8)); // [READY, DONE]
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./chat-template-worker.js', import.meta.url), {
    workerData: { port: port2, signal },
    transferList: [port2],
    resourceLimits: { maxOldGenerationSizeMb: RENDER_HEAP_MB, maxYoungGenerationSizeMb: 16 },
  });
  // The worker must never keep a process alive, nor crash it by dying.
  worker.unref();
  port1.unref();
  worker.on('error', () => { if (sandbox?.worker === worker) sandbox = undefined; });
  if (Atomics.wait(signal, READY, 0, START_LIMIT_MS) === 'timed-out') {
    void worker.terminate();
    throw new RenderFailure(`the template thread did not start within ${START_LIMIT_MS} ms`);
  }
  return { worker, port: port1, signal };
}

/** Output allowed for these variables: the bound on output size. */
export function maxOutputChars(variables: Record<string, unknown>): number {
  return OUTPUT_BASE_CHARS + OUTPUT_PER_INPUT_CHAR * JSON.stringify(variables).length;
}

/** Renders `source` with `variables`; throws RenderFailure. */
export function renderInSandbox(source: string, variables: Record<string, unknown>): string {
  sandbox ??= start();
  const { worker, port, signal } = sandbox;
  Atomics.store(signal, DONE, 0);
  const job: RenderJob = { source, variables, maxOutputChars: maxOutputChars(variables) };
  try {
    port.postMessage(job);
  } catch (e) {
    throw new RenderFailure(`its variables cannot be passed to a template: ${(e as Error).message}`);
  }
  const waited = Atomics.wait(signal, DONE, 0, RENDER_TIME_LIMIT_MS);
  const answer = receiveMessageOnPort(port)?.message as RenderAnswer | undefined;
  if (waited === 'timed-out' || !answer) {
    // Still running, or ended by its heap limit: either way this worker is done.
    sandbox = undefined;
    void worker.terminate();
    throw new RenderFailure(`rendering did not finish within ${RENDER_TIME_LIMIT_MS} ms and ${RENDER_HEAP_MB} MiB`);
  }
  if ('error' in answer) throw new RenderFailure(answer.error, answer.parse);
  return answer.output;
}
