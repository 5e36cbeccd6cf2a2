// Parsers for CLI option values: each rejects bad input with a message naming the option.
import { InvalidArgumentError } from 'commander';

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
