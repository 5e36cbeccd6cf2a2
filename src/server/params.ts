// Checking request bodies at the border: every field a route reads is checked here for type and
// range, and a bad one becomes a BadRequest naming the field and what was wrong with it.

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

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return typeof v === 'object' ? 'an object' : String(v);
}
