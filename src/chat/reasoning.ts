// Reasoning apart from the answer, as the text streams: models such as Qwen3 and DeepSeek-R1 open
// their reply with <think>…</think> and answer after it. The splitter gives, per chunk, the
// reasoning text and the content text it now knows; a marker split across chunks is held back
// until it is whole. The whitespace just inside the markers and just after </think> is dropped
// (Qwen3 writes "<think>\n…\n</think>\n\n"). Some templates open <think> at the end of the
// prompt (DeepSeek-R1, Qwen3 thinking variants): the reply then starts inside the reasoning
// (see promptOpensThinking). A <think> is recognised only at the start of the reply; later, the
// text is content, whatever it holds.
import { prefixTail } from './marker-prefix.js';

export interface ReasoningSplitterOptions {
  /** The reply starts inside the reasoning (the prompt ends with an open <think>). Default false. */
  startInThinking?: boolean;
  /** The markers. Default "<think>" and "</think>". */
  open?: string;
  close?: string;
}

/** What one push (or the flush) gives. */
export interface ReasoningOutput {
  reasoning: string;
  content: string;
}

/** Whether a rendered prompt leaves a <think> open, so that the reply starts inside it. */
export function promptOpensThinking(prompt: string, open = '<think>', close = '</think>'): boolean {
  const i = prompt.lastIndexOf(open);
  return i !== -1 && prompt.indexOf(close, i + open.length) === -1;
}

export class ReasoningSplitter {
  private readonly open: string;
  private readonly close: string;
  private state: 'start' | 'thinking' | 'content';
  private buf = '';
  /** Trailing whitespace of the reasoning, held back: it is dropped if </think> follows. */
  private pendingWs = '';
  /** Whitespace is dropped until the first other character (after <think>, after </think>). */
  private skipWs = false;
  private out: ReasoningOutput = { reasoning: '', content: '' };

  constructor(options: ReasoningSplitterOptions = {}) {
    this.open = options.open ?? '<think>';
    this.close = options.close ?? '</think>';
    if (this.open === '' || this.close === '') throw new RangeError('reasoning markers must not be empty');
    this.state = options.startInThinking ? 'thinking' : 'start';
    this.skipWs = this.state === 'thinking';
  }

  /** Adds generated text; returns the reasoning and content it completes. */
  push(text: string): ReasoningOutput {
    this.buf += text;
    this.run(false);
    return this.take();
  }

  /** At the end of generation: what is still held back (an unclosed reasoning stays reasoning). */
  flush(): ReasoningOutput {
    this.run(true);
    this.pendingWs = '';
    return this.take();
  }

  private take(): ReasoningOutput {
    const out = this.out;
    this.out = { reasoning: '', content: '' };
    return out;
  }

  private run(final: boolean): void {
    for (;;) {
      const state = this.state;
      this.step(final);
      if (state === this.state) return;
    }
  }

  private step(final: boolean): void {
    switch (this.state) {
      case 'start': {
        const t = this.buf.trimStart();
        if (t.startsWith(this.open)) {
          this.buf = t.slice(this.open.length);
          this.state = 'thinking';
          this.skipWs = true;
        } else if (final || !(t === '' || this.open.startsWith(t))) {
          this.state = 'content';
        }
        return;
      }
      case 'thinking': {
        const i = this.buf.indexOf(this.close);
        if (i !== -1) {
          this.reasoning(this.buf.slice(0, i));
          this.buf = this.buf.slice(i + this.close.length);
          this.pendingWs = '';
          this.state = 'content';
          this.skipWs = true;
          return;
        }
        const keep = final ? 0 : prefixTail(this.buf, this.close);
        this.reasoning(this.buf.slice(0, this.buf.length - keep));
        this.buf = this.buf.slice(this.buf.length - keep);
        return;
      }
      case 'content': {
        let text = this.buf;
        this.buf = '';
        if (this.skipWs) {
          text = text.trimStart();
          if (text === '') return;
          this.skipWs = false;
        }
        this.out.content += text;
      }
    }
  }

  private reasoning(text: string): void {
    if (this.skipWs) {
      text = text.trimStart();
      if (text === '') return;
      this.skipWs = false;
    }
    const ws = /\s+$/.exec(text);
    const body = ws ? text.slice(0, ws.index) : text;
    if (body !== '') {
      this.out.reasoning += this.pendingWs + body;
      this.pendingWs = '';
    }
    if (ws) this.pendingWs += ws[0];
  }
}

/** Splits a whole reply at once (push and flush). */
export function splitReasoning(text: string, options: ReasoningSplitterOptions = {}): ReasoningOutput {
  const s = new ReasoningSplitter(options);
  const a = s.push(text), b = s.flush();
  return { reasoning: a.reasoning + b.reasoning, content: a.content + b.content };
}

