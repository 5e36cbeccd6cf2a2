// Parsers for CLI option values: each rejects bad input with a message naming the option.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { parseConcurrencyList } from '../bench/concurrency.js';
import type { Grammar } from '../engine/grammar.js';
import { SchemaError, jsonObjectGrammar, jsonSchemaGrammar } from '../engine/json-schema-grammar.js';

export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in ${min}..${max}, got "${value}"`);
    }
    return n;
  };
}

export function floatArg(min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number in ${min}..${max === Infinity ? '∞' : max}, got "${value}"`);
    }
    return n;
  };
}

/** Repeatable string option: --stop a --stop b. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** A size: bytes, or a number with K/M/G/T (powers of 1024; "GiB", "GB" and "G" alike). */
export function bytesArg(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a size such as 8G, 512MiB or 1073741824, got "${value}"`);
  const scale = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.floor(Number(m[1]) * scale);
}

/** A duration: seconds, or a number with ms/s/m/h; negative = forever (Infinity). Returns ms. */
export function durationArg(value: string): number {
  const m = /^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`expected a duration such as 30s, 5m, 1h or -1 (forever), got "${value}"`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return ms < 0 ? Infinity : ms;
}

/** `--format json` (any JSON object) or `--format <schema.json>` (a JSON schema file): the grammar. */
export function formatArg(value: string): Grammar {
  if (value === 'json') return jsonObjectGrammar();
  let schema: unknown;
  try {
    schema = JSON.parse(readFileSync(value, 'utf8'));
  } catch (e) {
    throw new InvalidArgumentError(`expected "json" or a JSON schema file; ${value}: ${(e as Error).message}`);
  }
  try {
    return jsonSchemaGrammar(schema);
  } catch (e) {
    if (e instanceof SchemaError) throw new InvalidArgumentError(`${value}: ${e.message}`);
    throw e;
  }
}

/** `--concurrency 1,4,8,16`. */
export function concurrencyArg(value: string): number[] {
  try {
    return parseConcurrencyList(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message.replace(/^--concurrency: /, ''));
  }
}

/** An http(s) URL. */
export function urlArg(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`expected a URL such as http://127.0.0.1:11434, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`expected an http or https URL, got "${value}"`);
  return url.toString();
}
