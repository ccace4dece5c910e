// A rate written as a decimal number (tokens per second) turned into the exact fraction the
// algorithms use (tokens per interval of whole milliseconds), never faster than asked.

/** Longest interval a rate given per second turns into: 2^31 ms, about 24.8 days. */
export const MAX_RATE_INTERVAL_MS = 2 ** 31;

/**
 * How much slower than asked a rate with no exact fraction runs, at most, as a share of it: one
 * part in 10^9 (a token a day at a million a second).
 */
export const RATE_TOLERANCE = 1e-9;

// A few units of double rounding: a fraction this close to the number is the one meant
// (1/3600 per second is 1 per 3,600,000 ms, however the division rounded).
const SAME = 4e-16;

/**
 * tokens per intervalMs for `perMs` tokens per millisecond: the fraction with the smallest terms
 * (and an interval of at most MAX_RATE_INTERVAL_MS) between perMs × (1 − RATE_TOLERANCE) and
 * perMs itself (within double rounding). So a number that denotes a fraction becomes that
 * fraction (1/3600 per second is 1 per 3,600,000 ms), and one that denotes none (π, √2) the
 * simplest fraction at most a billionth slower: terms whose product is about 10^9, far below the
 * engines' 2^50, so a capacity of a million or more still fits beside them. Only rates within a
 * factor of about two of the slowest find no such fraction; they get the largest fraction below
 * them with an allowed interval. A limiter may be slower than asked, never faster. [0, 1] when
 * even one token per MAX_RATE_INTERVAL_MS is faster than asked.
 */
export function rateFraction(perMs: number): [tokens: number, intervalMs: number] {
  // Continued-fraction convergents h/k of perMs; successive ones lie on alternate sides of it.
  // Between two convergents on one side lie the semiconvergents (h0 + t × h1) / (k0 + t × k1),
  // t = 1..a, approaching perMs from that side. The simplest fraction in a range beside perMs is
  // one of them (or a convergent), and the walk meets them in order of growing interval.
  let h0 = 0;
  let k0 = 1;
  let h1 = 1;
  let k1 = 0;
  let below: [number, number] = [0, 1];
  const lowest = perMs * (1 - RATE_TOLERANCE);
  let rest = perMs;
  for (let step = 0; step < 64; step++) {
    const a = Math.floor(rest);
    const h2 = a * h1 + h0;
    const k2 = a * k1 + k0;
    // h1/k1 above perMs (or 1/0): this step's semiconvergents are below it.
    if (k1 === 0 || h1 / k1 > perMs) {
      const close = closeBelow(h0, k0, h1, k1, a, lowest);
      if (close !== undefined) return lowestTerms(...close);
    }
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

/**
 * The first (simplest) of the semiconvergents (h0 + t × h1) / (k0 + t × k1), t = 1..a, at or
 * above `floor`, with an allowed interval; undefined when none is. They rise with t.
 */
function closeBelow(h0: number, k0: number, h1: number, k1: number, a: number, floor: number): [number, number] | undefined {
  // The first step (from 1/0): every candidate t/1 has the interval 1, so the simplest is the
  // closest, a = floor(perMs) per ms (an integer rate stays exact: 10^9 per ms, not 999,999,999).
  if (k1 === 0) return a >= floor && a >= 1 && a <= Number.MAX_SAFE_INTEGER ? [a, 1] : undefined;
  const at = (t: number): number => (h0 + t * h1) / (k0 + t * k1);
  // (h0 + t h1) >= floor (k0 + t k1)  <=>  t >= (floor k0 - h0) / (h1 - floor k1); then exact
  // steps, which correct the division's rounding: a few at most, so a walk that runs on means the
  // doubles cannot tell the candidates apart, and none is taken.
  let t = Math.max(1, Math.ceil((floor * k0 - h0) / (h1 - floor * k1)));
  if (!Number.isFinite(t)) return undefined;
  let steps = 0;
  while (t > 1 && at(t - 1) >= floor && steps++ < MAX_ROUNDING_STEPS) t--;
  while (t <= a && at(t) < floor && steps++ < MAX_ROUNDING_STEPS) t++;
  if (steps >= MAX_ROUNDING_STEPS || t > a || at(t) < floor || k0 + t * k1 > MAX_RATE_INTERVAL_MS || h0 + t * h1 > Number.MAX_SAFE_INTEGER) return undefined;
  return [h0 + t * h1, k0 + t * k1];
}

/** Steps closeBelow takes to correct its estimate before giving up on a step of the walk. */
const MAX_ROUNDING_STEPS = 64;

/** tokens per intervalMs in lowest terms ([0, 1] for no tokens). */
export function lowestTerms(tokens: number, intervalMs: number): [number, number] {
  let a = tokens;
  let b = intervalMs;
  while (b !== 0) [a, b] = [b, a % b];
  return a === 0 ? [0, 1] : [tokens / a, intervalMs / a];
}
