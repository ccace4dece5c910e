// An upstream account's terms (PlaceTerms, src/common/places.ts) checked once, for every place store.
import { invalidArgument, outOfRange } from './errors.js';
import { checkKnownKeys } from './option-keys.js';
import { MAX_PLACES, type PlaceTerms } from './places.js';
import { checkInteger, checkObject } from './validate.js';

/**
 * Longest window and lease, in ms (2^50, about 35,000 years): a ManualClock's time (at most 2^52)
 * plus a lease plus a window then stays an exact double, in TypeScript and in Redis' Lua alike.
 */
export const MAX_PLACE_MS = 2 ** 50;

const TERM_KEYS = ['limit', 'windowMs', 'concurrency', 'leaseMs'];

/** `value` as PlaceTerms (a frozen copy), or a coded TypeError/RangeError naming the term. */
export function checkPlaceTerms(value: unknown): PlaceTerms {
  const o = checkObject(value, 'terms');
  checkKnownKeys(o, TERM_KEYS, 'terms');
  const limit = o.limit === undefined ? 0 : checkInteger(o.limit, 'terms.limit', 0, MAX_PLACES);
  const concurrency = o.concurrency === undefined ? 0 : checkInteger(o.concurrency, 'terms.concurrency', 0, MAX_PLACES);
  if (limit === 0 && concurrency === 0) {
    // Neither given is the wrong shape; both given as 0 is a value out of range.
    const problem = o.limit === undefined && o.concurrency === undefined ? invalidArgument : outOfRange;
    throw problem('terms', 'a limit or a concurrency above 0', value);
  }
  // A window without a limit would mean nothing; a limit without a window is no rate.
  let windowMs = 0;
  if (limit > 0) windowMs = checkInteger(o.windowMs, 'terms.windowMs', 1, MAX_PLACE_MS);
  else if (o.windowMs !== undefined && o.windowMs !== 0) throw invalidArgument('terms.windowMs', '0 or none when terms.limit is 0', o.windowMs);
  const leaseMs = checkInteger(o.leaseMs, 'terms.leaseMs', 1, MAX_PLACE_MS);
  return Object.freeze({ limit, windowMs, concurrency, leaseMs });
}

/** The terms in which `stored` differs from `mine`, as "limit 10 (this store's: 20)"; empty when none. */
export function termDifferences(stored: PlaceTerms, mine: PlaceTerms): string[] {
  const differ: string[] = [];
  for (const key of TERM_KEYS as (keyof PlaceTerms)[]) {
    if (stored[key] !== mine[key]) differ.push(`${key} ${stored[key]} (this store's: ${mine[key]})`);
  }
  return differ;
}
