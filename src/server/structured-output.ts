// Structured output requests, as OpenAI and Ollama spell them, turned into the grammar that
// constrained decoding enforces. A schema the grammar cannot enforce is refused with a 400 naming
// the keyword, so that a reply that was asked to validate always does.
import type { Grammar } from '../engine/grammar.js';
import { SchemaError, jsonObjectGrammar, jsonSchemaGrammar } from '../engine/json-schema-grammar.js';
import { BadRequest } from './params.js';

/** OpenAI `response_format`: {type: "text" | "json_object"} or {type: "json_schema", json_schema: {name, schema, strict}}. */
export function openaiResponseFormat(format: Record<string, unknown> | undefined): Grammar | undefined {
  if (format === undefined) return undefined;
  const param = 'response_format';
  switch (format.type) {
    case 'text': return undefined;
    case 'json_object': return jsonObjectGrammar();
    case 'json_schema': {
      const spec = format.json_schema;
      if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
        throw new BadRequest('response_format.json_schema must be an object with "name" and "schema"', param);
      }
      const { name, schema, strict } = spec as Record<string, unknown>;
      if (typeof name !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(name)) {
        throw new BadRequest('response_format.json_schema.name must be 1–64 letters, digits, "_" or "-"', param);
      }
      if (strict !== undefined && strict !== null && typeof strict !== 'boolean') {
        throw new BadRequest('response_format.json_schema.strict must be true or false', param);
      }
      // Without a schema any JSON value is valid; strict or not, the schema is always enforced.
      return schemaGrammar(schema ?? {}, 'response_format.json_schema.schema', param);
    }
    default:
      throw new BadRequest(`response_format.type must be "text", "json_object" or "json_schema", got ${JSON.stringify(format.type)}`, param);
  }
}

/** Ollama `format`: "json" (any JSON object) or a JSON schema object; "" or null: free text. */
export function ollamaFormat(format: unknown): Grammar | undefined {
  if (format === undefined || format === null || format === '') return undefined;
  if (format === 'json') return jsonObjectGrammar();
  if (typeof format === 'object' && !Array.isArray(format)) return schemaGrammar(format, 'format', 'format');
  throw new BadRequest(`format must be "json" or a JSON schema object, got ${JSON.stringify(format)}`, 'format');
}

function schemaGrammar(schema: unknown, field: string, param: string): Grammar {
  try {
    return jsonSchemaGrammar(schema);
  } catch (e) {
    if (e instanceof SchemaError) throw new BadRequest(`${field}: ${e.message}`, param);
    throw e;
  }
}
