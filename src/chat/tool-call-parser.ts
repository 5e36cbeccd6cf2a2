// Tool calls out of generated text, as it streams.
//
// The server feeds the text chunk by chunk; the parser gives back, per chunk, the content text it
// now knows is not part of a call and the calls it has completed. Text that might be the start of
// a call marker is held back (as stop-strings.ts holds back stop-string prefixes), and so is
// whitespace right before a possible call and right after a call (the newlines a model writes
// between calls are not content, though text before and after calls keeps the whitespace that
// parted it from the calls). A call that does not parse — bad JSON, no "name", a function
// that was not offered — stays content, marker and all: model output never throws.
//
// Formats (tool-types.ts ToolCallFormat):
// - hermes: <tool_call>{"name": …, "arguments": …}</tool_call> blocks anywhere in the reply;
// - mistral: [TOOL_CALLS] then a JSON array of {"name", "arguments"[, "id"]}, or the newer
//   [TOOL_CALLS]name[ARGS]{…} (with [CALL_ID]id before [ARGS] in the newest);
// - llama3: the reply (after whitespace, maybe after <|python_tag|>) is a JSON object
//   {"name": …, "parameters": …} (or "arguments"), or several separated by ";" or newlines, or
//   an array of them;
// - generic: the reply is one JSON object with "name" and "arguments" (or "parameters"), or an
//   array of them.
// Pushing a text whole or in any chunks gives the same content and calls.
import { randomInt } from 'node:crypto';
import { prefixTail } from './marker-prefix.js';
import type { ToolCall, ToolCallFormat, ToolFunction } from './tool-types.js';

export interface ToolCallParserOptions {
  format: ToolCallFormat;
  /** The functions offered: a call to any other name stays content. Omitted: any name is a call. */
  tools?: readonly ToolFunction[];
  /**
   * Makes the id of a call that has none of its own. Default: "call_" and 24 random letters and
   * digits, or, for "mistral", 9 letters and digits (Mistral's templates refuse any other id when
   * the call comes back in the next request).
   */
  makeId?: () => string;
}

/** What one push (or the flush) gives: content text that is not a call, and completed calls. */
export interface ToolParseOutput {
  content: string;
  calls: ToolCall[];
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `n` random letters and digits. */
export function randomAlnum(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

const HERMES_OPEN = '<tool_call>', HERMES_CLOSE = '</tool_call>';
const MISTRAL_CALLS = '[TOOL_CALLS]', MISTRAL_ARGS = '[ARGS]', MISTRAL_CALL_ID = '[CALL_ID]';
const PYTHON_TAG = '<|python_tag|>';

type State =
  /** hermes / mistral: content, watching for the call marker. */
  | 'text'
  /** hermes: after <tool_call>, before its JSON (or, if none starts, waiting for </tool_call>). */
  | 'hermes-call'
  /** hermes: after the JSON of a block, expecting </tool_call>. */
  | 'hermes-close'
  /** mistral: after [TOOL_CALLS], before knowing which form follows. */
  | 'mistral-marker'
  /** mistral: after [TOOL_CALLS]name[ARGS], before the arguments object. */
  | 'mistral-args'
  /** llama3 / generic: at the start of the reply (calls can only come first). */
  | 'start'
  /** llama3: after <|python_tag|>, before the JSON. */
  | 'python-tag'
  /** llama3: between calls, skipping ";" and whitespace. */
  | 'between'
  /** inside a JSON value (see `json`). */
  | 'json'
  /** content to the end: no call can follow. */
  | 'plain';

export class ToolCallParser {
  private readonly format: ToolCallFormat;
  private readonly names: ReadonlySet<string> | undefined;
  private readonly makeId: () => string;
  private state: State;
  /** Text received and not yet given out or decided. */
  private buf = '';
  /** For the JSON value at the start of `buf`: how far it is scanned, and what it follows. */
  private json: JsonScanner | undefined;
  /** The marker text before the JSON value or the call (given out as content if it fails). */
  private marker = '';
  /** hermes: the JSON of the current block and the calls it holds, until </tool_call> is seen. */
  private block: { raw: string; calls: ToolCall[] | undefined } | undefined;
  /** mistral [ARGS] form: the function name and id read before the arguments. */
  private argsHeader: { name: string; id: string | undefined } | undefined;
  /** Trailing whitespace of the content so far, held back: a call may follow. */
  private pendingWs = '';
  /** The held whitespace a call dropped, restored if the call fails to parse. */
  private wsBeforeCall = '';
  /** Whitespace after a call is not content. */
  private afterCall = false;
  private madeCalls = false;
  /** Some content has been given out. */
  private hadContent = false;
  /** Output of the current push. */
  private out: ToolParseOutput = { content: '', calls: [] };

  constructor(options: ToolCallParserOptions) {
    this.format = options.format;
    this.names = options.tools === undefined ? undefined : new Set(options.tools.map((t) => t.name));
    this.makeId = options.makeId ?? (this.format === 'mistral' ? () => randomAlnum(9) : () => `call_${randomAlnum(24)}`);
    this.state = this.format === 'hermes' || this.format === 'mistral' ? 'text' : 'start';
  }

  /** Adds generated text; returns the content and calls it completes. */
  push(text: string): ToolParseOutput {
    this.buf += text;
    this.run(false);
    return this.take();
  }

  /** At the end of generation: everything still held back, decided. */
  flush(): ToolParseOutput {
    this.run(true);
    if (!this.madeCalls) this.out.content += this.pendingWs;
    this.pendingWs = '';
    return this.take();
  }

  private take(): ToolParseOutput {
    const out = this.out;
    this.out = { content: '', calls: [] };
    return out;
  }

  /** Consumes `buf` as far as it can be decided (all of it when `final`). */
  private run(final: boolean): void {
    for (;;) {
      const before = this.state, length = this.buf.length;
      this.step(final);
      if (this.state === before && this.buf.length === length) return;
    }
  }

  private step(final: boolean): void {
    switch (this.state) {
      case 'text': return this.text(final);
      case 'hermes-call': return this.hermesCall(final);
      case 'hermes-close': return this.hermesClose(final);
      case 'mistral-marker': return this.mistralMarker(final);
      case 'mistral-args': return this.expectJson(final, 'text');
      case 'start': return this.start(final);
      case 'python-tag': return this.expectJson(final, 'plain');
      case 'between': return this.between(final);
      case 'json': return this.jsonValue(final);
      case 'plain':
        this.content(this.buf, false);
        this.buf = '';
    }
  }

  /** hermes / mistral content: give out all but a possible start of the marker. */
  private text(final: boolean): void {
    const open = this.format === 'hermes' ? HERMES_OPEN : MISTRAL_CALLS;
    const i = this.buf.indexOf(open);
    if (i !== -1) {
      this.content(this.buf.slice(0, i), true);
      this.callStarts(open);
      this.buf = this.buf.slice(i + open.length);
      this.state = this.format === 'hermes' ? 'hermes-call' : 'mistral-marker';
      return;
    }
    const keep = final ? 0 : prefixTail(this.buf, open);
    this.content(this.buf.slice(0, this.buf.length - keep), true);
    this.buf = this.buf.slice(this.buf.length - keep);
  }

  private hermesCall(final: boolean): void {
    const t = this.buf.trimStart();
    if (t === '' && !final) return;
    // The JSON is scanned to its end, so that a "</tool_call>" inside one of its strings is text.
    if (t.startsWith('{')) {
      this.marker += this.buf.slice(0, this.buf.length - t.length);
      this.buf = t;
      this.json = new JsonScanner();
      this.state = 'json';
      return;
    }
    const j = this.buf.indexOf(HERMES_CLOSE);
    if (j === -1 && !final) return;
    // Without </tool_call> (generation ended): the block is a call if what it holds is one.
    const inner = j === -1 ? this.buf : this.buf.slice(0, j);
    const raw = j === -1 ? inner : inner + HERMES_CLOSE;
    this.buf = j === -1 ? '' : this.buf.slice(j + HERMES_CLOSE.length);
    this.state = 'text';
    const call = this.toCall(parseJson(inner.trim()), true);
    if (call) this.called([call]);
    else this.failed(raw);
  }

  /** After the JSON of a hermes block: whitespace and </tool_call> (or the end of generation). */
  private hermesClose(final: boolean): void {
    const t = this.buf.trimStart();
    const ws = this.buf.slice(0, this.buf.length - t.length);
    const block = this.block!;
    if (t.startsWith(HERMES_CLOSE)) {
      this.buf = t.slice(HERMES_CLOSE.length);
      this.closeBlock(block, ws + HERMES_CLOSE);
    } else if (final && t === '') {
      this.buf = '';
      this.closeBlock(block, ws);
    } else if (final || !HERMES_CLOSE.startsWith(t)) {
      // Something else after the JSON: not a call; the rest is read as text again.
      this.buf = t;
      this.block = undefined;
      this.state = 'text';
      this.failed(block.raw + ws);
    }
  }

  private closeBlock(block: { raw: string; calls: ToolCall[] | undefined }, tail: string): void {
    this.block = undefined;
    this.state = 'text';
    if (block.calls) this.called(block.calls);
    else this.failed(block.raw + tail);
  }

  /** After [TOOL_CALLS]: a JSON array (or object), or name[ARGS] / name[CALL_ID]id[ARGS]. */
  private mistralMarker(final: boolean): void {
    const t = this.buf.trimStart();
    if (t === '' && !final) return;
    if (t.startsWith('[') || t.startsWith('{')) {
      this.marker += this.buf.slice(0, this.buf.length - t.length);
      this.buf = t;
      this.json = new JsonScanner();
      this.state = 'json';
      return;
    }
    const header = readArgsHeader(t);
    if (header === 'wait' && !final) return;
    if (header === 'wait' || header === 'fail') {
      this.state = 'text';
      return this.failed('');
    }
    const length = this.buf.length - t.length + header.length;
    this.marker += this.buf.slice(0, length);
    this.buf = this.buf.slice(length);
    this.argsHeader = { name: header.name, id: header.id };
    this.state = 'mistral-args';
  }

  /** Whitespace, then a JSON value must start; else the marker was not a call (`otherwise`). */
  private expectJson(final: boolean, otherwise: State): void {
    const t = this.buf.trimStart();
    if (t === '' && !final) return;
    if (t.startsWith('{') || (this.state === 'python-tag' && t.startsWith('['))) {
      this.marker += this.buf.slice(0, this.buf.length - t.length);
      this.buf = t;
      this.json = new JsonScanner();
      this.state = 'json';
      return;
    }
    this.state = otherwise;
    this.argsHeader = undefined;
    this.failed('');
  }

  /** llama3 / generic: a call can only open the reply. */
  private start(final: boolean): void {
    const t = this.buf.trimStart();
    if (t === '' && !final) return;
    // The whitespace before a call is not content (it is, should the call fail).
    const ws = this.buf.slice(0, this.buf.length - t.length);
    // Only what can open a call object is held back: a reply such as "[1] …" streams at once.
    const opens = opensCallObject(t);
    if (opens === 'wait' && !final) return;
    if (opens === 'yes' || opens === 'wait') {
      this.wsBeforeCall = ws;
      this.buf = t;
      this.json = new JsonScanner();
      this.state = 'json';
      return;
    }
    if (this.format === 'llama3') {
      if (t.startsWith(PYTHON_TAG)) {
        this.wsBeforeCall = ws;
        this.marker = PYTHON_TAG;
        this.buf = t.slice(PYTHON_TAG.length);
        this.state = 'python-tag';
        return;
      }
      if (PYTHON_TAG.startsWith(t) && !final) return;
    }
    this.state = 'plain';
  }

  /** llama3: after a call, ";" or newlines may lead to the next. */
  private between(final: boolean): void {
    const t = this.buf.replace(/^[\s;]+/, '');
    if (t === '' && !final) return;
    const opens = opensCallObject(t);
    if (opens === 'wait' && !final) return;
    if (t.startsWith('{') && opens !== 'no') {
      this.buf = t;
      this.json = new JsonScanner();
      this.state = 'json';
      return;
    }
    this.buf = t;
    this.state = 'plain';
  }

  private jsonValue(final: boolean): void {
    const end = this.json!.scan(this.buf);
    if (end === -1 && !final) return;
    const raw = end === -1 ? this.buf : this.buf.slice(0, end);
    this.buf = end === -1 ? '' : this.buf.slice(end);
    this.json = undefined;
    const calls = this.toCalls(parseJson(raw));
    if (this.format === 'hermes') {
      this.block = { raw, calls };
      this.state = 'hermes-close';
      return;
    }
    const next: State = this.format === 'mistral' ? 'text' : this.format === 'llama3' ? 'between' : 'plain';
    this.argsHeader = undefined;
    if (calls) {
      this.called(calls);
      this.state = next;
    } else {
      // A failed call: the rest of a llama3 / generic reply is content too.
      this.state = next === 'between' ? 'plain' : next;
      this.failed(raw);
    }
  }

  /** The calls a complete JSON value holds, or undefined if it is not (all) calls. */
  private toCalls(value: unknown): ToolCall[] | undefined {
    if (this.argsHeader) {
      const { name, id } = this.argsHeader;
      if (!isPlainObject(value)) return undefined;
      const call = this.toCall({ name, arguments: value, ...(id === undefined ? {} : { id }) }, true);
      return call && [call];
    }
    const marked = this.marker !== '';
    if (Array.isArray(value)) {
      if (value.length === 0) return undefined;
      const calls: ToolCall[] = [];
      for (const v of value) {
        const c = this.toCall(v, marked);
        if (!c) return undefined;
        calls.push(c);
      }
      return calls;
    }
    const call = this.toCall(value, marked);
    return call && [call];
  }

  /**
   * A call from a parsed JSON value. `marked`: a call marker came before it, so arguments may be
   * left out (a function without parameters); a bare JSON reply must show both keys.
   */
  private toCall(value: unknown, marked: boolean): ToolCall | undefined {
    if (!isPlainObject(value)) return undefined;
    const { name } = value;
    if (typeof name !== 'string' || name === '') return undefined;
    if (this.names !== undefined && !this.names.has(name)) return undefined;
    // A bare JSON reply is a call only if it holds nothing else (it may be an answer in JSON).
    if (this.format === 'generic' && !Object.keys(value).every((k) => GENERIC_KEYS.has(k))) return undefined;
    let args = value.arguments !== undefined ? value.arguments : value.parameters;
    if (args === undefined) {
      if (!marked) return undefined;
      args = {};
    }
    // Some models write the arguments as a JSON string, as OpenAI's API does.
    if (typeof args === 'string') args = parseJson(args);
    if (!isPlainObject(args)) return undefined;
    const own = value.id;
    const id = this.format === 'mistral' && typeof own === 'string' && /^[A-Za-z0-9]{9}$/.test(own) ? own : this.makeId();
    return { id, name, arguments: args };
  }

  /** Content text; `hold`: keep its trailing whitespace back while a call may follow. */
  private content(text: string, hold: boolean): void {
    if (this.afterCall) {
      text = text.replace(/^\s+/, '');
      if (text === '') return;
      this.afterCall = false;
    }
    if (text === '') return;
    const ws = hold ? /\s+$/.exec(text) : null;
    const body = ws ? text.slice(0, ws.index) : text;
    if (body !== '') {
      this.out.content += this.pendingWs + body;
      this.pendingWs = '';
      this.hadContent = true;
    }
    if (ws) this.pendingWs += ws[0];
  }

  /** A marker was found: the whitespace before it is not content (unless the call fails). */
  private callStarts(marker: string): void {
    this.wsBeforeCall = this.pendingWs;
    this.pendingWs = '';
    this.marker = marker;
  }

  private called(calls: ToolCall[]): void {
    this.out.calls.push(...calls);
    this.madeCalls = true;
    this.afterCall = true;
    // Content before and after the calls stays apart as it was: the whitespace before the calls
    // comes back should more content follow them.
    this.pendingWs = this.hadContent ? this.wsBeforeCall : '';
    this.wsBeforeCall = '';
    this.marker = '';
  }

  /** What looked like a call was not one: the marker and `raw` are content after all. */
  private failed(raw: string): void {
    const text = this.wsBeforeCall + this.marker + raw;
    this.wsBeforeCall = '';
    this.marker = '';
    this.content(text, this.state === 'text');
  }
}

/** Parses a whole reply at once (push and flush). */
export function parseToolCalls(text: string, options: ToolCallParserOptions): ToolParseOutput {
  const p = new ToolCallParser(options);
  const a = p.push(text), b = p.flush();
  return { content: a.content + b.content, calls: [...a.calls, ...b.calls] };
}

const GENERIC_KEYS = new Set(['name', 'arguments', 'parameters', 'id', 'type']);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}


/**
 * Whether `text` can open a JSON call: "{" then '"' (a key), maybe inside "[" — whitespace
 * allowed between. "wait": too short to tell.
 */
function opensCallObject(text: string): 'yes' | 'no' | 'wait' {
  let i = 0;
  const skipWs = (): void => { while (i < text.length && /\s/.test(text[i]!)) i++; };
  if (text[i] === '[') { i++; skipWs(); }
  if (i === text.length) return 'wait';
  if (text[i] !== '{') return 'no';
  i++;
  skipWs();
  if (i === text.length) return 'wait';
  return text[i] === '"' ? 'yes' : 'no';
}

const NAME_CHAR = /[A-Za-z0-9_.-]/, ID_CHAR = /[A-Za-z0-9]/;

/**
 * Mistral's newer header after [TOOL_CALLS]: name[ARGS] or name[CALL_ID]id[ARGS]. "wait": `text`
 * may still become one; "fail": it cannot.
 */
function readArgsHeader(text: string): { name: string; id: string | undefined; length: number } | 'wait' | 'fail' {
  let i = 0;
  while (i < text.length && NAME_CHAR.test(text[i]!)) i++;
  const name = text.slice(0, i);
  if (i === text.length) return 'wait';
  if (name === '') return 'fail';
  let id: string | undefined;
  const rest = text.slice(i);
  if (rest.startsWith(MISTRAL_CALL_ID)) {
    let k = i + MISTRAL_CALL_ID.length;
    const start = k;
    while (k < text.length && ID_CHAR.test(text[k]!)) k++;
    if (k === text.length) return 'wait';
    if (k === start) return 'fail';
    id = text.slice(start, k);
    i = k;
  } else if (MISTRAL_CALL_ID.startsWith(rest) && rest.length < MISTRAL_CALL_ID.length && !MISTRAL_ARGS.startsWith(rest)) {
    return 'wait';
  }
  const tail = text.slice(i);
  if (tail.startsWith(MISTRAL_ARGS)) return { name, id, length: i + MISTRAL_ARGS.length };
  if (MISTRAL_ARGS.startsWith(tail) || (id === undefined && MISTRAL_CALL_ID.startsWith(tail))) return 'wait';
  return 'fail';
}

/** Finds where a JSON object or array ends, across pushes, without parsing it. */
class JsonScanner {
  private pos = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** Scans `text` (which starts with the value) on from where it stopped; the end, or -1. */
  scan(text: string): number {
    for (; this.pos < text.length; this.pos++) {
      const c = text[this.pos];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
      } else if (c === '"') {
        this.inString = true;
      } else if (c === '{' || c === '[') {
        this.depth++;
      } else if (c === '}' || c === ']') {
        if (--this.depth === 0) return ++this.pos;
      }
    }
    return -1;
  }
}
