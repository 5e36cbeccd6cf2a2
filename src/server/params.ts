// Checking request bodies at the border: every field a route reads is checked here for type and
// range, and a bad one becomes a BadRequest naming the field and what was wrong with it.
import type { ChatMessage } from '../tokenizer/tokenizer.js';

export class BadRequest extends Error {
  constructor(message: string, readonly param?: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

/** A JSON object body (anything else is refused). */
export function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BadRequest('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

type Body = Record<string, unknown>;

export function optString(b: Body, key: string): string | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BadRequest(`${key} must be a string, got ${describe(v)}`, key);
  return v;
}

export function requireString(b: Body, key: string): string {
  const v = optString(b, key);
  if (v === undefined || v === '') throw new BadRequest(`${key} is required (a non-empty string)`, key);
  return v;
}

export function optBool(b: Body, key: string): boolean | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new BadRequest(`${key} must be true or false, got ${describe(v)}`, key);
  return v;
}

export function optNumber(b: Body, key: string, min = -Infinity, max = Infinity, name = key): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BadRequest(`${name} must be a number, got ${describe(v)}`, name);
  if (v < min || v > max) throw new BadRequest(`${name} must be in [${min}, ${max}], got ${v}`, name);
  return v;
}

export function optInt(b: Body, key: string, min = -Infinity, max = Infinity, name = key): number | undefined {
  const v = optNumber(b, key, -Infinity, Infinity, name);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v)) throw new BadRequest(`${name} must be an integer, got ${v}`, name);
  if (v < min || v > max) throw new BadRequest(`${name} must be an integer in [${min}, ${max}], got ${v}`, name);
  return v;
}

/** `stop`: a string or an array of up to 16 strings. */
export function optStops(b: Body, key: string, name = key): string[] | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? [] : [v];
  if (Array.isArray(v) && v.length <= 16 && v.every((s) => typeof s === 'string')) return (v as string[]).filter((s) => s !== '');
  throw new BadRequest(`${name} must be a string or an array of at most 16 strings`, name);
}

export function optObject(b: Body, key: string): Body | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new BadRequest(`${key} must be an object, got ${describe(v)}`, key);
  return v as Body;
}

/**
 * Chat messages, OpenAI- or Ollama-style: a role and content as a string or (OpenAI) an array of
 * text parts. "developer" is OpenAI's newer name for "system".
 */
export function chatMessages(b: Body, key = 'messages'): ChatMessage[] {
  const v = b[key];
  if (!Array.isArray(v) || v.length === 0) throw new BadRequest(`${key} must be a non-empty array of messages`, key);
  if (v.length > 4096) throw new BadRequest(`${key} holds ${v.length} messages; at most 4096`, key);
  return v.map((m, i) => {
    const where = `${key}[${i}]`;
    if (typeof m !== 'object' || m === null) throw new BadRequest(`${where} must be an object with role and content`, where);
    const { role, content } = m as Body;
    if (typeof role !== 'string' || !['system', 'developer', 'user', 'assistant', 'tool'].includes(role)) {
      throw new BadRequest(`${where}.role must be one of system, developer, user, assistant, tool`, `${where}.role`);
    }
    let text: string;
    if (typeof content === 'string') text = content;
    else if (content === null || content === undefined) text = '';
    else if (Array.isArray(content)) {
      text = content.map((part, j) => {
        const p = part as Body | null;
        if (!p || p.type !== 'text' || typeof p.text !== 'string') {
          throw new BadRequest(`${where}.content[${j}]: only text parts ({"type": "text", "text": …}) are supported`, `${where}.content`);
        }
        return p.text;
      }).join('');
    } else throw new BadRequest(`${where}.content must be a string or an array of text parts`, `${where}.content`);
    return { role: role === 'developer' ? 'system' : role, content: text };
  });
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return typeof v === 'object' ? 'an object' : String(v);
}
