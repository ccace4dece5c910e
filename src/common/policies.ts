// Policy factories: validated, frozen descriptions of a limit, with rates kept as exact rationals.
import { invalidArgument, outOfRange } from './errors.js';
import { checkObject, checkPositiveInteger } from './validate.js';
import { MAX_PRODUCT } from './constants.js';
import { lowestTerms, MAX_RATE_INTERVAL_MS, rateFraction } from './rate-fraction.js';
import { checkKnownKeys } from './option-keys.js';

export interface FixedWindowPolicy {
  readonly kind: 'fixedWindow';
  readonly limit: number;
  readonly windowMs: number;
}

export interface SlidingWindowPolicy {
  readonly kind: 'slidingWindow';
  readonly limit: number;
  readonly windowMs: number;
}

export interface TokenBucketPolicy {
  readonly kind: 'tokenBucket';
  readonly capacity: number;
  /** The refill rate as an exact fraction: refillTokens every refillIntervalMs. */
  readonly refillTokens: number;
  readonly refillIntervalMs: number;
}

export interface LeakyBucketPolicy {
  readonly kind: 'leakyBucket';
  readonly burst: number;
  /** The drain rate as an exact fraction: rateTokens every rateIntervalMs. */
  readonly rateTokens: number;
  readonly rateIntervalMs: number;
}

export type Policy = FixedWindowPolicy | SlidingWindowPolicy | TokenBucketPolicy | LeakyBucketPolicy;

function perSecond(value: unknown, name: string): [number, number] {
  if (typeof value !== 'number') throw invalidArgument(name, 'a positive number', value);
  if (!Number.isFinite(value) || value <= 0) throw outOfRange(name, 'a positive finite number', value);
  // The engines keep tokens × interval within 2^50, so no rate past 2^50 per ms can be kept.
  if (value / 1000 > MAX_PRODUCT) throw outOfRange(name, `at most ${MAX_PRODUCT * 1000} per second (2^50 per ms)`, value);
  // Any positive rate, as the exact fraction it denotes (1/3600 is 1 per 3,600,000 ms), or else
  // the simplest fraction at most a billionth below it (see rateFraction): a limiter may run
  // slower than asked, never faster.
  const [tokens, intervalMs] = rateFraction(value / 1000);
  if (tokens === 0) {
    throw outOfRange(name, `at least one token per ${MAX_RATE_INTERVAL_MS} ms (for slower rates give tokens and intervalMs)`, value);
  }
  if (tokens * intervalMs > MAX_PRODUCT) throw outOfRange(name, `a rate whose tokens times interval is at most 2^50 (${tokens} per ${intervalMs} ms is not)`, value);
  return [tokens, intervalMs];
}

function checkProduct(limitName: string, limit: number, per: number, perName: string): void {
  if (limit * per > MAX_PRODUCT) {
    throw outOfRange(limitName, `a value whose product with ${perName} (${per}) is at most 2^50`, limit);
  }
}

function windowPolicy<K extends 'fixedWindow' | 'slidingWindow'>(kind: K, options: unknown) {
  const o = checkObject(options, `${kind} options`);
  checkKnownKeys(o, ['limit', 'windowMs'], kind);
  const limit = checkPositiveInteger(o.limit, 'limit');
  const windowMs = checkPositiveInteger(o.windowMs, 'windowMs');
  checkProduct('limit', limit, windowMs, 'windowMs');
  return Object.freeze({ kind, limit, windowMs });
}

/** At most `limit` per window; each key's window starts at its first allowed request. */
export function fixedWindow(options: { limit: number; windowMs: number }): FixedWindowPolicy {
  return windowPolicy('fixedWindow', options);
}

/**
 * The weighted two-window counter: windows aligned to multiples of windowMs; the previous
 * window's count weighs in proportion to how much of it the sliding window still covers.
 */
export function slidingWindow(options: { limit: number; windowMs: number }): SlidingWindowPolicy {
  return windowPolicy('slidingWindow', options);
}

function rateOf(o: Record<string, unknown>, perSecondName: string): [number, number] {
  if (o[perSecondName] !== undefined) {
    // Two ways of giving the rate: which one was meant is not ours to guess.
    const other = o.tokens !== undefined ? 'tokens' : o.intervalMs !== undefined ? 'intervalMs' : undefined;
    if (other !== undefined) {
      throw Object.assign(new TypeError(`Expected either ${perSecondName} or tokens and intervalMs, not both, but received ${perSecondName} and ${other}`), {
        code: 'TOLLGATE_INVALID_ARGUMENT' as const,
      });
    }
    return perSecond(o[perSecondName], perSecondName);
  }
  if (o.tokens === undefined && o.intervalMs === undefined) {
    throw invalidArgument(perSecondName, 'a positive number (or tokens and intervalMs)', undefined);
  }
  const [tokens, intervalMs] = lowestTerms(checkPositiveInteger(o.tokens, 'tokens'), checkPositiveInteger(o.intervalMs, 'intervalMs'));
  // The engines multiply the rate's two terms too (the native one refuses a policy past this).
  checkProduct('tokens', tokens, intervalMs, 'the reduced interval');
  return [tokens, intervalMs];
}

/**
 * A bucket of `capacity` tokens, full at first, refilled at refillPerSecond (or `tokens` every
 * `intervalMs`, exactly: 10 per 13 s never drifts).
 */
export function tokenBucket(
  options: { capacity: number; refillPerSecond: number; tokens?: never; intervalMs?: never } | { capacity: number; tokens: number; intervalMs: number; refillPerSecond?: never },
): TokenBucketPolicy {
  const o = checkObject(options, 'tokenBucket options');
  checkKnownKeys(o, ['capacity', 'refillPerSecond', 'tokens', 'intervalMs'], 'tokenBucket');
  const capacity = checkPositiveInteger(o.capacity, 'capacity');
  const [refillTokens, refillIntervalMs] = rateOf(o, 'refillPerSecond');
  checkProduct('capacity', capacity, refillIntervalMs, 'the reduced refill interval');
  return Object.freeze({ kind: 'tokenBucket', capacity, refillTokens, refillIntervalMs });
}

/**
 * GCRA: requests drain at ratePerSecond (or `tokens` every `intervalMs`), and up to `burst` may
 * arrive at once.
 */
export function leakyBucket(
  options: { ratePerSecond: number; burst: number; tokens?: never; intervalMs?: never } | { tokens: number; intervalMs: number; burst: number; ratePerSecond?: never },
): LeakyBucketPolicy {
  const o = checkObject(options, 'leakyBucket options');
  checkKnownKeys(o, ['burst', 'ratePerSecond', 'tokens', 'intervalMs'], 'leakyBucket');
  const burst = checkPositiveInteger(o.burst, 'burst');
  const [rateTokens, rateIntervalMs] = rateOf(o, 'ratePerSecond');
  checkProduct('burst', burst, rateIntervalMs, 'the reduced rate interval');
  return Object.freeze({ kind: 'leakyBucket', burst, rateTokens, rateIntervalMs });
}

/**
 * The native side's PolicyKind values: the internal name of each kind, beside the public policy it
 * implements. Gcra is leakyBucket (a leaky bucket used as a meter is GCRA, computed as such).
 */
export const PolicyCode = {
  /** fixedWindow */
  FixedWindow: 1,
  /** slidingWindow */
  SlidingWindow: 2,
  /** tokenBucket */
  TokenBucket: 3,
  /** leakyBucket */
  Gcra: 4,
} as const;
export type PolicyCode = (typeof PolicyCode)[keyof typeof PolicyCode];

/** The integer parameters both engines run on (the native side's `Policy`). */
export interface PolicyParams {
  readonly code: PolicyCode;
  /** fixedWindow's and slidingWindow's limit, tokenBucket's capacity, leakyBucket's burst. */
  readonly limit: number;
  /** Window policies only (else 0). */
  readonly windowMs: number;
  /** The rate's tokens: tokenBucket's refillTokens, leakyBucket's rateTokens (else 0). */
  readonly rateTokens: number;
  /** The rate's interval: tokenBucket's refillIntervalMs, leakyBucket's rateIntervalMs (else 0). */
  readonly rateIntervalMs: number;
  /** The largest per-call limit override that keeps the arithmetic exact. */
  readonly maxLimit: number;
}

/**
 * The largest limit (a policy's, or a per-call one) that keeps the arithmetic exact with a window
 * or refill interval of `perMs`.
 */
export function maxLimitFor(perMs: number): number {
  return Math.floor(MAX_PRODUCT / perMs);
}

/**
 * A fixed window that counts hits rather than limiting them: its limit is the largest the window
 * allows, one no client reaches, so every hit is counted (as allowed) and a key's count so far is
 * `limit - remaining`. The store adapters whose libraries compare counts with their own limit
 * (express-rate-limit, @fastify/rate-limit, rate-limiter-flexible) keep their tables so.
 */
export function hitCounterPolicy(windowMs: number): FixedWindowPolicy {
  return fixedWindow({ limit: maxLimitFor(windowMs), windowMs });
}

/** Whether `policy` is a hit counter's (see hitCounterPolicy): what `tollgate inspect` reports it as. */
export function isHitCounterPolicy(policy: Policy): boolean {
  return policy.kind === 'fixedWindow' && policy.limit === maxLimitFor(policy.windowMs);
}

export function policyParams(policy: unknown): PolicyParams {
  const p = checkObject(policy, 'policy') as Partial<Policy> & Record<string, unknown>;
  switch (p.kind) {
    case 'fixedWindow':
    case 'slidingWindow': {
      const checked = windowPolicy(p.kind, { limit: p.limit, windowMs: p.windowMs });
      return {
        code: p.kind === 'fixedWindow' ? PolicyCode.FixedWindow : PolicyCode.SlidingWindow,
        limit: checked.limit,
        windowMs: checked.windowMs,
        rateTokens: 0,
        rateIntervalMs: 0,
        maxLimit: maxLimitFor(checked.windowMs),
      };
    }
    case 'tokenBucket': {
      const c = tokenBucket({ capacity: p.capacity as number, tokens: p.refillTokens as number, intervalMs: p.refillIntervalMs as number });
      return {
        code: PolicyCode.TokenBucket,
        limit: c.capacity,
        windowMs: 0,
        rateTokens: c.refillTokens,
        rateIntervalMs: c.refillIntervalMs,
        maxLimit: maxLimitFor(c.refillIntervalMs),
      };
    }
    case 'leakyBucket': {
      const c = leakyBucket({ burst: p.burst as number, tokens: p.rateTokens as number, intervalMs: p.rateIntervalMs as number });
      return {
        code: PolicyCode.Gcra,
        limit: c.burst,
        windowMs: 0,
        rateTokens: c.rateTokens,
        rateIntervalMs: c.rateIntervalMs,
        maxLimit: maxLimitFor(c.rateIntervalMs),
      };
    }
    default:
      throw invalidArgument('policy', 'a policy from fixedWindow(), slidingWindow(), tokenBucket() or leakyBucket()', policy);
  }
}

/**
 * The policy a table records (its code and integer parameters), as the factories make it: what a
 * shared table's creator decided with, in the names users write.
 */
export function policyFromRecord(record: { readonly kind: number; readonly limit: number; readonly windowMs: number; readonly rateTokens: number; readonly rateIntervalMs: number }): Policy {
  switch (record.kind) {
    case PolicyCode.FixedWindow:
      return Object.freeze({ kind: 'fixedWindow', limit: record.limit, windowMs: record.windowMs });
    case PolicyCode.SlidingWindow:
      return Object.freeze({ kind: 'slidingWindow', limit: record.limit, windowMs: record.windowMs });
    case PolicyCode.TokenBucket:
      return Object.freeze({ kind: 'tokenBucket', capacity: record.limit, refillTokens: record.rateTokens, refillIntervalMs: record.rateIntervalMs });
    case PolicyCode.Gcra:
      return Object.freeze({ kind: 'leakyBucket', burst: record.limit, rateTokens: record.rateTokens, rateIntervalMs: record.rateIntervalMs });
    default:
      throw outOfRange('policy', 'a recorded policy kind from 1 to 4', record.kind);
  }
}

/** A policy as a person reads it, in logs, warnings and the CLI: `fixedWindow 5 per 60000 ms`. */
export function describePolicy(p: Policy): string {
  policyParams(p); // a coded TypeError/RangeError for anything but a policy, rather than "undefined per undefined"
  switch (p.kind) {
    case 'fixedWindow':
    case 'slidingWindow':
      return `${p.kind} ${p.limit} per ${p.windowMs} ms`;
    case 'tokenBucket':
      return `tokenBucket capacity ${p.capacity}, ${p.refillTokens} per ${p.refillIntervalMs} ms`;
    default:
      return `leakyBucket burst ${p.burst}, ${p.rateTokens} per ${p.rateIntervalMs} ms`;
  }
}
