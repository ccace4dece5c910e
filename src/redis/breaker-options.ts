// The `breaker` option every Redis-backed store takes (RedisLimiter, the adapter stores, RedisPlaces),
// read once into BreakerOptions: here, beside the breaker, so every layer above can share it.
import { checkKnownKeys } from '../common/option-keys.js';
import { checkInteger, checkObject } from '../common/validate.js';
import type { BreakerOptions } from './breaker.js';

/** One failed call opens a node's breaker; trials from 100 ms, doubling up to 2 s. */
export const DEFAULT_BREAKER: BreakerOptions = { afterFailures: 1, retryMs: 100, maxRetryMs: 2000 };

/** `false`: no breaker (every call is sent); undefined or `true`: the default; else its fields over the default's. */
export function parseBreaker(option: unknown): BreakerOptions | undefined {
  if (option === false) return undefined;
  if (option === undefined || option === true) return DEFAULT_BREAKER;
  const spec = checkObject(option, 'breaker');
  checkKnownKeys(spec, ['afterFailures', 'retryMs', 'maxRetryMs'], 'breaker');
  const afterFailures = spec.afterFailures === undefined ? DEFAULT_BREAKER.afterFailures : checkInteger(spec.afterFailures, 'breaker.afterFailures', 1, 1_000_000);
  const retryMs = spec.retryMs === undefined ? DEFAULT_BREAKER.retryMs : checkInteger(spec.retryMs, 'breaker.retryMs', 1, 3_600_000);
  const maxRetryMs = spec.maxRetryMs === undefined ? Math.max(retryMs, DEFAULT_BREAKER.maxRetryMs) : checkInteger(spec.maxRetryMs, 'breaker.maxRetryMs', retryMs, 3_600_000);
  return { afterFailures, retryMs, maxRetryMs };
}
