// Stop strings: text is held back while it could still be the start of a stop string, so a
// caller never sees part of one, and generation ends where the first one appears.

export class StopMatcher {
  private pending = '';
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Adds generated text; returns what is safe to show and whether a stop string was hit. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    this.pending += text;
    let first = -1;
    for (const s of this.stops) {
      if (s.length === 0) continue;
      const i = this.pending.indexOf(s);
      if (i !== -1 && (first === -1 || i < first)) first = i;
    }
    if (first !== -1) {
      const out = this.pending.slice(0, first);
      this.pending = '';
      return { text: out, stopped: true };
    }
    // Keep the longest tail that is a prefix of some stop string.
    let keep = 0;
    for (let len = Math.min(this.longest - 1, this.pending.length); len > 0; len--) {
      const tail = this.pending.slice(this.pending.length - len);
      if (this.stops.some((s) => s.startsWith(tail))) { keep = len; break; }
    }
    const out = this.pending.slice(0, this.pending.length - keep);
    this.pending = this.pending.slice(this.pending.length - keep);
    return { text: out, stopped: false };
  }

  /** Text held back when generation ends for another reason. */
  flush(): string {
    const out = this.pending;
    this.pending = '';
    return out;
  }
}
