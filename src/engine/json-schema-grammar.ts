// JSON Schema → grammar, for structured output (OpenAI's response_format, Ollama's format).
//
// The grammar admits exactly the JSON texts that validate against the schema, for the subset of
// JSON Schema it supports; a schema using an assertion outside that subset is refused with a
// SchemaError naming the keyword and where it is, rather than producing output that might not
// validate. Supported:
//   type (one or several), enum, const, anyOf / oneOf (as alternatives), allOf of one schema,
//   $ref to a local definition ("#", "#/$defs/…", "#/definitions/…", recursion allowed),
//   object: properties (generated in their declared order; required ones always, the others
//     optional), required, additionalProperties (a map when there are no properties; keys beyond
//     the declared properties are never generated),
//   array: items, minItems, maxItems,
//   string: minLength, maxLength, format date / time / date-time / uuid (other formats are
//     annotations and are not enforced),
//   {} or true: any JSON value.
// Annotations (title, description, default, examples, …) are ignored.
//
// Whitespace between tokens is allowed but bounded (a space, or a newline and up to 20 spaces or
// tabs of indentation), so a model cannot get lost in endless whitespace; numbers have at most 16
// digits before and after the point, for the same reason. The text has no whitespace before or
// after the value.
//
// Schemas come from strangers (a request's response_format or format), so compiling one is
// bounded, and each limit is refused with a SchemaError naming what is too big and the limit:
//   nesting: MAX_SCHEMA_DEPTH levels of schemas within schemas ($ref counts as a level), and
//     MAX_VALUE_DEPTH levels within a const or enum value;
//   enum: MAX_ENUM_VALUES values each, and MAX_LITERAL_BYTES bytes of enum and const texts in all;
//   anyOf / oneOf: MAX_ALTERNATIVES alternatives each; an object: MAX_PROPERTIES properties;
//   minLength / maxLength up to MAX_LENGTH_BOUND, minItems / maxItems up to MAX_ITEMS_BOUND;
//   the grammar: MAX_GRAMMAR_SIZE symbols in all (a schema's parts multiply: strings of
//     maxLength 10000 under arrays and anyOf add up), and no "$ref" cycle that reads nothing
//     ({"$ref": "#"}, {"anyOf": [{"$ref": "#"}, …]}).
// Refusal takes well under a second for any schema a request body can hold. Generation under a
// compiled grammar is bounded too (grammar.ts: MAX_STACKS live parse states, MAX_EXPANSIONS per
// byte; token-constraint.ts: MAX_MASK_STEPS per mask): a grammar whose first byte already passes
// those bounds is refused here, and one that passes them later, its alternatives overlapping so
// much that one token costs more, fails that request with a GrammarError rather than stalling
// the server.
import { GrammarBuilder, GrammarError, chars, literal, type Grammar, type Symbol } from './grammar.js';

export class SchemaError extends Error {
  constructor(readonly where: string, readonly problem: string) {
    super(`JSON schema at ${where}: ${problem}`);
    this.name = 'SchemaError';
  }
}

/** Assertions the grammar cannot enforce: refused, so that output never fails validation. */
const UNSUPPORTED = [
  'pattern', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'patternProperties', 'propertyNames', 'minProperties', 'maxProperties', 'dependentRequired',
  'dependentSchemas', 'dependencies', 'if', 'then', 'else', 'not', 'prefixItems', 'contains',
  'minContains', 'maxContains', 'uniqueItems', 'unevaluatedProperties', 'unevaluatedItems', 'additionalItems',
];
/** Keywords that only describe: they change nothing in what is generated. */
const ANNOTATIONS = new Set([
  'title', 'description', 'default', 'examples', 'example', '$schema', '$id', '$comment', '$defs', 'definitions',
  'deprecated', 'readOnly', 'writeOnly', 'contentMediaType', 'contentEncoding', 'strict', 'name',
]);
const TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'];
/** Caps on bounded repetition (each optional repetition is one rule). */
export const MAX_LENGTH_BOUND = 10_000;
export const MAX_ITEMS_BOUND = 1_000;
/** Largest grammar a schema may produce (symbols; building 500,000 takes ~0.2 s). */
export const MAX_GRAMMAR_SIZE = 500_000;
export const MAX_SCHEMA_DEPTH = 64;
/** Nesting of arrays and objects within a const or enum value. */
export const MAX_VALUE_DEPTH = 64;
export const MAX_ENUM_VALUES = 1_000;
/** Bytes of JSON text of all enum values and consts of one schema. */
export const MAX_LITERAL_BYTES = 100_000;
export const MAX_ALTERNATIVES = 1_000;
export const MAX_PROPERTIES = 1_000;

/** The grammar of JSON texts valid against `schema`; throws SchemaError for what it cannot enforce. */
export function jsonSchemaGrammar(schema: unknown): Grammar {
  const rules = new JsonSchemaRules();
  return rules.build(rules.schema(schema));
}

/** Any JSON object (OpenAI's json_object, Ollama's format "json"). */
export function jsonObjectGrammar(): Grammar {
  const rules = new JsonSchemaRules();
  return rules.build(rules.anyObject());
}

/**
 * Several JSON schemas compiled into one grammar (a tool-call grammar holds one per function's
 * arguments, between literal text of the caller's choosing): `schema()` gives the rule of each,
 * `builder` takes the rules around them, `build()` compiles from the chosen root.
 */
export class JsonSchemaRules {
  private readonly c = new SchemaCompiler();

  get builder(): GrammarBuilder {
    return this.c.g;
  }

  /**
   * The rule for JSON texts valid against `schema` (no whitespace around). `where` names the
   * schema in errors; its own "$ref"s resolve within it. Throws SchemaError.
   */
  schema(schema: unknown, where = '#'): string {
    return this.tooLarge(where, () => this.c.compileRoot(schema, where));
  }

  /** The rule for any JSON object. */
  anyObject(): string {
    return this.c.anyObject();
  }

  /**
   * The grammar from `root`; SchemaError when the rules are too large, or so ambiguous that the
   * first byte already passes the bounds on work per step (an anyOf of 1,000 objects: each may
   * begin after "{" in several ways) — refused here rather than failing the request at its first token.
   */
  build(root: string, where = '#'): Grammar {
    return this.tooLarge(where, () => {
      const g = this.c.g.build(root);
      for (let b = 0; b < 256; b++) g.advance(g.initial, b);
      return g;
    });
  }

  private tooLarge<T>(where: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (e instanceof GrammarError) {
        const why = e.message.replace(/^grammar: /, '');
        if (e.message.includes('left recursion')) throw new SchemaError(where, `a "$ref" cycle reads nothing, so it never ends (${why})`);
        if (e.message.includes('ambiguous')) throw new SchemaError(where, `the schema's alternatives overlap too much to enforce: ${why}`);
        throw new SchemaError(where, `the schema is too large to enforce: ${why}`);
      }
      throw e;
    }
  }
}

type Schema = Record<string, unknown>;

class SchemaCompiler {
  readonly g = new GrammarBuilder(MAX_GRAMMAR_SIZE);
  /** The schema whose "$ref"s are being resolved (the one compileRoot() was given). */
  private rootSchema: unknown = {};
  /**
   * Per root schema, the rule compiled for each schema object in it (so $ref recursion
   * terminates and reuse is shared; per root, since the same object may resolve refs differently).
   */
  private readonly memos = new Map<unknown, Map<object, string>>();
  private memo = new Map<object, string>();
  /** Bytes of enum and const texts so far (MAX_LITERAL_BYTES). */
  private literalBytes = 0;
  /** The rule of each bounded string length, shared by every string with the same bounds. */
  private readonly strings = new Map<string, Symbol[]>();

  /** The rule for values valid against `schema`, whose local "$ref"s point into itself. */
  compileRoot(schema: unknown, where: string): string {
    this.rootSchema = schema;
    let memo = this.memos.get(schema);
    if (memo === undefined) this.memos.set(schema, memo = new Map());
    this.memo = memo;
    return this.compile(schema, where, 0);
  }

  /** The rule for values valid against `schema` (no surrounding whitespace). */
  compile(schema: unknown, where: string, depth: number): string {
    if (depth > MAX_SCHEMA_DEPTH) throw new SchemaError(where, `nested more than ${MAX_SCHEMA_DEPTH} levels deep`);
    if (schema === true) return this.anyValue();
    if (schema === false) throw new SchemaError(where, 'the schema false admits no value');
    if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
      throw new SchemaError(where, 'a schema must be an object or a boolean');
    }
    const known = this.memo.get(schema);
    if (known !== undefined) return known;
    const name = this.g.name(ruleHint(where));
    this.memo.set(schema, name);
    this.g.define(name, this.alternatives(schema as Schema, where, depth));
    return name;
  }

  private alternatives(s: Schema, where: string, depth: number): Symbol[][] {
    for (const k of UNSUPPORTED) {
      if (k in s) throw new SchemaError(where, `"${k}" is not supported in structured output`);
    }
    const combinators = ['$ref', 'anyOf', 'oneOf', 'allOf', 'enum', 'const'].filter((k) => k in s);
    if (combinators.length > 1) throw new SchemaError(where, `${combinators.map((k) => `"${k}"`).join(' and ')} together are not supported`);
    const combinator = combinators[0];
    if (combinator !== undefined) {
      const others = Object.keys(s).filter((k) => k !== combinator && !ANNOTATIONS.has(k) && k !== 'type');
      if (others.length > 0) throw new SchemaError(where, `"${combinator}" beside "${others[0]}" is not supported`);
    }
    // "type" beside a combinator must hold too: enum and const values are kept to those of the
    // type; alternatives and references would need the grammars intersected, so they are refused.
    const stated = combinator === undefined ? undefined : this.types(s, where);
    if (stated !== undefined && combinator !== 'const' && combinator !== 'enum') {
      throw new SchemaError(where, `"type" beside "${combinator}" is not supported (state the type inside the schemas it points at)`);
    }
    const ofType = (v: unknown): boolean => stated === undefined || stated.some((t) => valueHasType(v, t));
    switch (combinator) {
      case '$ref': return [[this.compile(this.resolve(s.$ref, where), String(s.$ref), depth + 1)]];
      case 'const': {
        if (!ofType(s.const)) throw new SchemaError(`${where}/const`, `is not of the schema's type ${JSON.stringify(s.type)}, so no value is valid`);
        return [literal(this.literalText(s.const, `${where}/const`))];
      }
      case 'enum': {
        if (!Array.isArray(s.enum) || s.enum.length === 0) throw new SchemaError(`${where}/enum`, 'must be a non-empty array');
        if (s.enum.length > MAX_ENUM_VALUES) throw new SchemaError(`${where}/enum`, `has ${s.enum.length} values, above the limit of ${MAX_ENUM_VALUES}`);
        // Equal values would be two identical alternatives: one is enough.
        const texts = [...new Set(s.enum.map((v, i) => this.literalText(v, `${where}/enum/${i}`)))];
        const kept = texts.filter((t) => ofType(JSON.parse(t)));
        if (kept.length === 0) throw new SchemaError(`${where}/enum`, `has no value of the schema's type ${JSON.stringify(s.type)}, so no value is valid`);
        return kept.map(literal);
      }
      case 'anyOf': case 'oneOf': case 'allOf': {
        const list = s[combinator];
        if (!Array.isArray(list) || list.length === 0) throw new SchemaError(`${where}/${combinator}`, 'must be a non-empty array of schemas');
        if (list.length > MAX_ALTERNATIVES) throw new SchemaError(`${where}/${combinator}`, `has ${list.length} schemas, above the limit of ${MAX_ALTERNATIVES}`);
        // oneOf's "exactly one" is not enforced: alternatives that overlap produce a value both accept.
        if (combinator === 'allOf' && list.length > 1) throw new SchemaError(`${where}/allOf`, 'only a single schema is supported');
        return list.map((sub, i) => [this.compile(sub, `${where}/${combinator}/${i}`, depth + 1)]);
      }
    }
    const types = this.types(s, where);
    if (types === undefined) return [[this.anyValue()]];
    return types.map((t) => this.typed(t, s, where, depth));
  }

  /** The schema's types: stated, or implied by its keywords; undefined: any value. */
  private types(s: Schema, where: string): string[] | undefined {
    const t = s.type;
    if (t === undefined) {
      if ('properties' in s || 'required' in s || 'additionalProperties' in s) return ['object'];
      if ('items' in s || 'minItems' in s || 'maxItems' in s) return ['array'];
      if ('minLength' in s || 'maxLength' in s || 'format' in s) return ['string'];
      return undefined;
    }
    const list = Array.isArray(t) ? t : [t];
    if (list.length === 0) throw new SchemaError(`${where}/type`, 'is an empty list');
    for (const x of list) {
      if (typeof x !== 'string' || !TYPES.includes(x)) throw new SchemaError(`${where}/type`, `${JSON.stringify(x)} is not a JSON Schema type (${TYPES.join(', ')})`);
    }
    return [...new Set(list as string[])];
  }

  private typed(type: string, s: Schema, where: string, depth: number): Symbol[] {
    switch (type) {
      case 'string': return this.string(s, where);
      case 'number': return [this.common('number')];
      case 'integer': return [this.common('integer')];
      case 'boolean': return [this.common('boolean')];
      case 'null': return literal('null');
      case 'array': return this.array(s, where, depth);
      default: return this.object(s, where, depth);
    }
  }

  private string(s: Schema, where: string): Symbol[] {
    const format = s.format;
    if (typeof format === 'string' && Object.hasOwn(FORMATS, format)) {
      if ('minLength' in s || 'maxLength' in s) throw new SchemaError(where, `minLength / maxLength beside format "${format}" are not supported`);
      return [this.common(`format-${format}`)];
    }
    const min = count(s, 'minLength', where, 0, MAX_LENGTH_BOUND) ?? 0;
    const max = count(s, 'maxLength', where, 0, MAX_LENGTH_BOUND) ?? Infinity;
    if (min > max) throw new SchemaError(where, `minLength ${min} is above maxLength ${max}`);
    if (min === 0 && max === Infinity) return [this.common('string')];
    const key = `${min},${max}`;
    let body = this.strings.get(key);
    if (body === undefined) {
      const quote = chars('"');
      body = [this.g.rule('bounded-string', [[quote, ...this.g.repeat('char', [this.common('char')], min, max), quote]])];
      this.strings.set(key, body);
    }
    return body;
  }

  private array(s: Schema, where: string, depth: number): Symbol[] {
    if (Array.isArray(s.items)) throw new SchemaError(`${where}/items`, 'tuple items (an array of schemas) are not supported');
    const item = s.items === undefined ? this.anyValue() : this.compile(s.items, `${where}/items`, depth + 1);
    const min = count(s, 'minItems', where, 0, MAX_ITEMS_BOUND) ?? 0;
    const max = count(s, 'maxItems', where, 0, MAX_ITEMS_BOUND) ?? Infinity;
    if (min > max) throw new SchemaError(where, `minItems ${min} is above maxItems ${max}`);
    const ws = this.common('ws');
    const open = [...literal('['), ws], close = literal(']');
    if (max === 0) return [...open, ...close];
    const first = [item, ws];
    const more = this.g.repeat('item', [...literal(','), ws, item, ws], Math.max(min - 1, 0), max - 1);
    const items = this.g.rule('items', min === 0 ? [[], [...first, ...more]] : [[...first, ...more]]);
    return [...open, items, ...close];
  }

  private object(s: Schema, where: string, depth: number): Symbol[] {
    const props = s.properties ?? {};
    if (typeof props !== 'object' || props === null || Array.isArray(props)) throw new SchemaError(`${where}/properties`, 'must be an object');
    const required = s.required ?? [];
    if (!Array.isArray(required) || !required.every((k) => typeof k === 'string')) {
      throw new SchemaError(`${where}/required`, 'must be an array of property names');
    }
    const extra = s.additionalProperties;
    const entries: [string, unknown][] = Object.entries(props as Schema);
    // Required names without a declared schema take additionalProperties' (or any value); own
    // properties only ("toString" is not declared by every object), each name once.
    for (const k of new Set(required as string[])) {
      if (!Object.hasOwn(props as Schema, k)) {
        if (extra === false) throw new SchemaError(`${where}/required`, `"${k}" is required but additionalProperties is false and it is not in properties`);
        entries.push([k, extra ?? true]);
      }
    }
    if (entries.length > MAX_PROPERTIES) throw new SchemaError(where, `has ${entries.length} properties, above the limit of ${MAX_PROPERTIES}`);
    const ws = this.common('ws');
    const open = [...literal('{'), ws], close = literal('}');
    if (entries.length === 0) {
      if (extra === false) return [...open, ...close];
      const value = extra === undefined || extra === true ? this.anyValue() : this.compile(extra, `${where}/additionalProperties`, depth + 1);
      return [...open, this.members(value), ...close];
    }
    const req = new Set(required as string[]);
    const pairs = entries.map(([k, v]) => [
      ...literal(JSON.stringify(k)), ws, ...literal(':'), ws,
      this.compile(v, `${where}/properties/${escapePointer(k)}`, depth + 1), ws,
    ]);
    // rest(i, first): the properties from i on; `first` when none has been written yet (no comma).
    // Built from the last property back (iteratively: an object may have many properties);
    // rest(i, true) exists only where every property before i is optional.
    const n = entries.length;
    const firstNeeded: boolean[] = [true];
    for (let i = 0; i < n; i++) firstNeeded.push(firstNeeded[i]! && !req.has(entries[i]![0]));
    let after: Symbol[] = [], afterFirst: Symbol[] = [];
    for (let i = n - 1; i >= 0; i--) {
      const optional = !req.has(entries[i]![0]);
      const rule = (first: boolean, skip: Symbol[]): Symbol[] => {
        const take = [...(first ? [] : [...literal(','), ws]), ...pairs[i]!, ...after];
        return [this.g.rule('props', optional ? [take, skip] : [take])];
      };
      const nextAfterFirst = firstNeeded[i] ? rule(true, afterFirst) : [];
      after = rule(false, after);
      afterFirst = nextAfterFirst;
    }
    return [...open, ...afterFirst, ...close];
  }

  /** `( member ("," ws member)* )?` with member = string ws ":" ws value ws. */
  private members(value: string): string {
    const ws = this.common('ws');
    const member = [this.common('string'), ws, ...literal(':'), ws, value, ws];
    const more = this.g.repeat('member', [...literal(','), ws, ...member], 0, Infinity);
    return this.g.rule('members', [[], [...member, ...more]]);
  }

  anyValue(): string {
    return this.common('value');
  }

  anyObject(): string {
    if (!this.g.has('object')) {
      this.g.define('object', []); // reserved: values inside refer back to it
      this.g.define('object', [[...literal('{'), this.common('ws'), this.members(this.anyValue()), ...literal('}')]]);
    }
    return 'object';
  }

  /** The JSON text of a const or enum value, counted against MAX_LITERAL_BYTES. */
  private literalText(v: unknown, where: string): string {
    valueDepth(v, where, 0);
    const text = jsonText(v, where);
    this.literalBytes += Buffer.byteLength(text);
    if (this.literalBytes > MAX_LITERAL_BYTES) throw new SchemaError(where, `the enum and const values add up to more than ${MAX_LITERAL_BYTES} bytes`);
    return text;
  }

  private resolve(ref: unknown, where: string): unknown {
    if (typeof ref !== 'string' || !ref.startsWith('#')) {
      throw new SchemaError(`${where}/$ref`, `only local references ("#/$defs/…") are supported, got ${JSON.stringify(ref)}`);
    }
    let node: unknown = this.rootSchema;
    const parts = ref === '#' ? [] : ref.slice(ref.startsWith('#/') ? 2 : 1).split('/');
    for (const raw of parts) {
      let part: string;
      try {
        part = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      } catch {
        throw new SchemaError(`${where}/$ref`, `${JSON.stringify(ref)} is not a valid URI fragment`);
      }
      if (typeof node !== 'object' || node === null || !Object.hasOwn(node, part)) {
        throw new SchemaError(`${where}/$ref`, `${JSON.stringify(ref)} points at nothing`);
      }
      node = (node as Schema)[part];
    }
    return node;
  }

  /** Rules every grammar shares, defined on first use. */
  private common(name: string): string {
    if (this.g.has(name)) return name;
    const g = this.g;
    const digit = chars(['0', '9']), hex = chars(['0', '9'], ['a', 'f'], ['A', 'F']);
    const range = (lo: number, hi: number): Symbol => ({ bytes: [[lo, hi]] });
    switch (name) {
      case 'ws':
        g.define('ws', [[], literal(' '), [...literal('\n'), ...g.repeat('indent', [chars(' ', '\t')], 0, 20)]]);
        break;
      case 'char': {
        const tail = range(0x80, 0xbf);
        g.define('char', [
          // Printable ASCII but '"' and '\', then every well-formed UTF-8 sequence of 2–4 bytes.
          [{ bytes: [[0x20, 0x21], [0x23, 0x5b], [0x5d, 0x7f]] }],
          [range(0xc2, 0xdf), tail],
          [range(0xe0, 0xe0), range(0xa0, 0xbf), tail], [range(0xe1, 0xec), tail, tail],
          [range(0xed, 0xed), range(0x80, 0x9f), tail], [range(0xee, 0xef), tail, tail],
          [range(0xf0, 0xf0), range(0x90, 0xbf), tail, tail], [range(0xf1, 0xf3), tail, tail, tail],
          [range(0xf4, 0xf4), range(0x80, 0x8f), tail, tail],
          [...literal('\\'), chars('"', '\\', '/', 'b', 'f', 'n', 'r', 't')],
          [...literal('\\u'), hex, hex, hex, hex],
        ]);
        break;
      }
      case 'string':
        g.define('string', [[chars('"'), ...g.repeat('char', [this.common('char')], 0, Infinity), chars('"')]]);
        break;
      case 'integer-part':
        g.define('integer-part', [literal('0'), [chars(['1', '9']), ...g.repeat('digit', [digit], 0, 15)]]);
        break;
      case 'integer':
        g.define('integer', [[...g.repeat('sign', literal('-'), 0, 1), this.common('integer-part')]]);
        break;
      case 'number':
        g.define('number', [[
          this.common('integer'),
          ...g.repeat('fraction', [...literal('.'), digit, ...g.repeat('digit', [digit], 0, 15)], 0, 1),
          ...g.repeat('exponent', [chars('e', 'E'), ...g.repeat('sign', [chars('-', '+')], 0, 1), digit, ...g.repeat('digit', [digit], 0, 2)], 0, 1),
        ]]);
        break;
      case 'boolean':
        g.define('boolean', [literal('true'), literal('false')]);
        break;
      case 'value':
        g.define('value', []); // reserved: the rules below refer back to it
        g.define('value', [
          [this.anyObject()], [this.arrayOfAny()], [this.common('string')], [this.common('number')],
          [this.common('boolean')], literal('null'),
        ]);
        break;
      default: {
        const key = name.slice('format-'.length);
        const format = Object.hasOwn(FORMATS, key) ? FORMATS[key] : undefined;
        if (!format) throw new Error(`json-schema-grammar: no common rule ${name}`);
        g.define(name, [[chars('"'), ...format(g), chars('"')]]);
      }
    }
    return name;
  }

  private arrayOfAny(): string {
    if (!this.g.has('array')) {
      this.g.define('array', []); // reserved: values inside refer back to it
      const ws = this.common('ws'), value = this.anyValue();
      const more = this.g.repeat('item', [...literal(','), ws, value, ws], 0, Infinity);
      const items = this.g.rule('items', [[], [value, ws, ...more]]);
      this.g.define('array', [[...literal('['), ws, items, ...literal(']')]]);
    }
    return 'array';
  }
}

const digit = chars(['0', '9']);
const two = (a: Symbol[], ...alts: Symbol[][]): Symbol[][] => [a, ...alts];
/** Two-digit numbers as texts: "00".."99" filtered. */
const pairs = (keep: (n: number) => boolean): Symbol[][] =>
  Array.from({ length: 100 }, (_, n) => n).filter(keep).map((n) => literal(String(n).padStart(2, '0')));
/**
 * A calendar date: the day must exist in its month, and 29 February only in leap years
 * (validators check this, so the grammar must too). A year is leap when its last two digits are
 * a non-zero multiple of 4, or they are 00 and the first two are a multiple of 4.
 */
function dateRule(g: GrammarBuilder): Symbol[] {
  if (g.has('date')) return ['date'];
  const year = [digit, digit, digit, digit];
  const month31 = g.rule('month31', ['01', '03', '05', '07', '08', '10', '12'].map(literal));
  const month30 = g.rule('month30', ['04', '06', '09', '11'].map(literal));
  const day = (last: number) => g.rule(`day${last}`, pairs((n) => n >= 1 && n <= last));
  const leapYear = g.rule('leap-year', [
    [digit, digit, g.rule('leap-yy', pairs((n) => n > 0 && n % 4 === 0))],
    [g.rule('leap-cc', pairs((n) => n % 4 === 0)), ...literal('00')],
  ]);
  g.define('date', [
    [...year, ...literal('-'), month31, ...literal('-'), day(31)],
    [...year, ...literal('-'), month30, ...literal('-'), day(30)],
    [...year, ...literal('-02-'), day(28)],
    [leapYear, ...literal('-02-29')],
  ]);
  return ['date'];
}
/** RFC 3339 full-time: hh:mm:ss, optional fraction, and a Z or ±hh:mm offset. */
function timeRule(g: GrammarBuilder): Symbol[] {
  if (g.has('time')) return ['time'];
  const hour = g.rule('hour', two([chars('0', '1'), digit], [...literal('2'), chars(['0', '3'])]));
  const minute = [chars(['0', '5']), digit];
  g.define('time', [[
    hour, ...literal(':'), ...minute, ...literal(':'), ...minute,
    ...g.repeat('fraction', [...literal('.'), digit, ...g.repeat('digit', [digit], 0, 8)], 0, 1),
    g.rule('offset', two([chars('Z', 'z')], [chars('+', '-'), hour, ...literal(':'), ...minute])),
  ]]);
  return ['time'];
}
/** String formats the grammar enforces (RFC 3339 date / time, RFC 4122 uuid), without the quotes. */
const FORMATS: Record<string, (g: GrammarBuilder) => Symbol[]> = {
  date: dateRule,
  time: timeRule,
  // RFC 3339 allows "t" and a space for "T", and validators accept them.
  'date-time': (g) => [...dateRule(g), chars('T', 't', ' '), ...timeRule(g)],
  uuid: (g) => {
    const hex = chars(['0', '9'], ['a', 'f'], ['A', 'F']);
    const h = (n: number) => g.repeat('hex', [hex], n, n);
    return [...h(8), ...literal('-'), ...h(4), ...literal('-'), ...h(4), ...literal('-'), ...h(4), ...literal('-'), ...h(12)];
  },
};

function count(s: Schema, key: string, where: string, min: number, max: number): number | undefined {
  const v = s[key];
  if (v === undefined) return undefined;
  if (!(typeof v === 'number' && Number.isInteger(v) && v >= min)) throw new SchemaError(`${where}/${key}`, `must be an integer >= ${min}`);
  if (v > max) throw new SchemaError(`${where}/${key}`, `${v} is above the supported ${max}`);
  return v;
}

/** Whether a JSON value is of a JSON Schema type ("integer": a number with no fraction, as validators judge 1.0). */
function valueHasType(v: unknown, type: string): boolean {
  switch (type) {
    case 'null': return v === null;
    case 'boolean': return typeof v === 'boolean';
    case 'number': return typeof v === 'number';
    case 'integer': return typeof v === 'number' && Number.isInteger(v);
    case 'string': return typeof v === 'string';
    case 'array': return Array.isArray(v);
    default: return typeof v === 'object' && v !== null && !Array.isArray(v);
  }
}

/** Refuses a value nested deeper than MAX_VALUE_DEPTH (JSON.stringify would overflow the stack). */
function valueDepth(v: unknown, where: string, depth: number): void {
  if (typeof v !== 'object' || v === null) return;
  if (depth >= MAX_VALUE_DEPTH) throw new SchemaError(where, `the value is nested more than ${MAX_VALUE_DEPTH} levels deep`);
  for (const x of Array.isArray(v) ? v : Object.values(v)) valueDepth(x, where, depth + 1);
}

function jsonText(v: unknown, where: string): string {
  const text = JSON.stringify(v);
  if (text === undefined) throw new SchemaError(where, 'is not a JSON value');
  return text;
}

function escapePointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** A readable rule name from a schema location ("#/properties/age" → "age"). */
function ruleHint(where: string): string {
  const last = where.split('/').pop() ?? '';
  return /^[A-Za-z0-9_-]{1,32}$/.test(last) ? `s-${last}` : 's';
}
