// A small seeded PRNG (xoshiro128**, seeded through splitmix32) so that a seed reproduces a
// sample exactly, on any machine and any backend.

export class Rng {
  private s0: number; private s1: number; private s2: number; private s3: number;

  constructor(seed: number) {
    let x = seed >>> 0;
    const next = () => {
      // splitmix32
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next();
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return result;
  }

  /** A uniform float in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A seed for callers that gave none. */
export function randomSeed(): number {
  return (Math.random() * 4294967296) >>> 0;
}

/**
 * The seed of choice `index` of a request seeded with `seed` (several choices from one prompt):
 * choice 0 keeps the seed, so it samples as the same request alone; the others get murmur3's
 * finalizer of seed ^ index·φ, a bijection of the index, so no two of them share a seed, and
 * their draws are unrelated (seed + index would not do: splitmix32 seeded with seed + k·φ
 * starts k steps into the same stream).
 */
export function choiceSeed(seed: number, index: number): number {
  if (index === 0) return seed >>> 0;
  let z = (seed ^ Math.imul(index, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}
