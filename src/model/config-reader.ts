// Lenient, typed reading of loosely-typed config objects (config.json, GGUF metadata): each
// getter names the file and the key when a value is present but of the wrong kind.

export class ConfigError extends Error {
  constructor(readonly file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export class ConfigReader {
  /**
   * @param get looks a key up
   * @param prefix names a nested object's keys in messages ("rope_scaling.")
   */
  constructor(readonly file: string, private readonly get: (key: string) => unknown, private readonly prefix = '') {}

  static fromObject(file: string, raw: unknown): ConfigReader {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new ConfigError(file, 'expected a JSON object');
    }
    const obj = raw as Record<string, unknown>;
    return new ConfigReader(file, (key) => (Object.hasOwn(obj, key) ? obj[key] : undefined));
  }

  has(key: string): boolean {
    const v = this.get(key);
    return v !== undefined && v !== null;
  }

  raw(key: string): unknown {
    return this.get(key);
  }

  fail(problem: string): never {
    throw new ConfigError(this.file, problem);
  }

  /** A finite number, or `fallback` when absent; an integer if `integer`; > 0 if `positive`. */
  number(key: string, fallback?: number, opts: { integer?: boolean; positive?: boolean } = {}): number {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(`missing "${this.name(key)}"`);
      return fallback;
    }
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) this.fail(`"${this.name(key)}" must be a number, got ${describe(v)}`);
    if (opts.integer && !Number.isInteger(n)) this.fail(`"${this.name(key)}" must be an integer, got ${n}`);
    if (opts.positive && !(n > 0)) this.fail(`"${this.name(key)}" must be positive, got ${n}`);
    return n;
  }

  /** A positive integer no larger than `max`. */
  count(key: string, fallback?: number, max = 2 ** 31): number {
    const n = this.number(key, fallback, { integer: true, positive: true });
    if (n > max) this.fail(`"${this.name(key)}" is ${n}, larger than the supported ${max}`);
    return n;
  }

  optionalNumber(key: string): number | undefined {
    return this.has(key) ? this.number(key) : undefined;
  }

  string(key: string, fallback?: string): string {
    const v = this.get(key);
    if (v === undefined || v === null) {
      if (fallback === undefined) this.fail(`missing "${this.name(key)}"`);
      return fallback;
    }
    if (typeof v !== 'string') this.fail(`"${this.name(key)}" must be a string, got ${describe(v)}`);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(`"${this.name(key)}" must be true or false, got ${describe(v)}`);
    return v;
  }

  /** A nested object, read with the same file name and "parent.child" keys in messages. */
  object(key: string): ConfigReader | undefined {
    const v = this.get(key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(`"${this.name(key)}" must be an object, got ${describe(v)}`);
    const obj = v as Record<string, unknown>;
    return new ConfigReader(this.file, (k) => (Object.hasOwn(obj, k) ? obj[k] : undefined), `${this.name(key)}.`);
  }

  /** The key as messages show it. */
  private name(key: string): string {
    return this.prefix + key;
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  return typeof v === 'object' ? 'an object' : String(v);
}
