// A rate written as a decimal number (tokens per second) turned into the exact fraction the
// algorithms use (tokens per interval of whole milliseconds), never faster than asked.

/** Longest interval a rate given per second turns into: 2^31 ms, about 24.8 days. */
export const MAX_RATE_INTERVAL_MS = 2 ** 31;

// A few units of double rounding: a fraction this close to the number is the one meant
// (1/3600 per second is 1 per 3,600,000 ms, however the division rounded).
const SAME = 4e-16;

/**
 * tokens per intervalMs for `perMs` tokens per millisecond: the fraction the number denotes when
 * one with an interval of at most MAX_RATE_INTERVAL_MS is within rounding of it, else the largest
 * fraction with such an interval that does not exceed it (a limiter may be slower than asked, never
 * faster). [0, 1] when even one token per MAX_RATE_INTERVAL_MS is faster than asked.
 */
export function rateFraction(perMs: number): [tokens: number, intervalMs: number] {
  // Continued-fraction convergents h/k of perMs; successive ones lie on alternate sides of it.
  let h0 = 0;
  let k0 = 1;
  let h1 = 1;
  let k1 = 0;
  let below: [number, number] = [0, 1];
  let rest = perMs;
  for (let step = 0; step < 64; step++) {
    const a = Math.floor(rest);
    const h2 = a * h1 + h0;
    const k2 = a * k1 + k0;
    if (k2 > MAX_RATE_INTERVAL_MS || h2 > Number.MAX_SAFE_INTEGER) {
      // The next convergent's interval is too long. The best fraction below perMs with an
      // allowed interval is a semiconvergent between the last convergent below and the last
      // one above: (below + t × above) for the largest t that keeps the interval allowed.
      if (h1 / k1 <= perMs) return lowestTerms(h1, k1);
      const t = Math.floor((MAX_RATE_INTERVAL_MS - below[1]) / k1);
      const candidate: [number, number] = [below[0] + t * h1, below[1] + t * k1];
      return t >= 1 && candidate[0] / candidate[1] <= perMs ? lowestTerms(...candidate) : lowestTerms(...below);
    }
    [h0, k0, h1, k1] = [h1, k1, h2, k2];
    const value = h1 / k1;
    if (Math.abs(value - perMs) <= perMs * SAME) return lowestTerms(h1, k1);
    if (value < perMs) below = [h1, k1];
    const fraction = rest - a;
    if (fraction <= 0) return lowestTerms(h1, k1);
    rest = 1 / fraction;
  }
  return lowestTerms(...below);
}

/** tokens per intervalMs in lowest terms ([0, 1] for no tokens). */
export function lowestTerms(tokens: number, intervalMs: number): [number, number] {
  let a = tokens;
  let b = intervalMs;
  while (b !== 0) [a, b] = [b, a % b];
  return a === 0 ? [0, 1] : [tokens / a, intervalMs / a];
}
