// limitedFetch's options, checked once into the configuration its calls read.
import { invalidArgument } from '../common/errors.js';
import { checkInteger } from '../common/validate.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { MAX_BLOCK_MS } from '../common/constants.js';
import { retryPolicy, type RetryOptions } from './backoff.js';

/** What limitedFetch reports to `onEvent`. */
export type LimitedFetchEvent =
  /** An upstream-announced wait (Retry-After, a reset) longer than maxUpstreamWaitMs, cut to it. */
  { readonly type: 'wait-capped'; readonly announcedMs: number; readonly cappedMs: number };

export const LIMITED_FETCH_KEYS = ['fetch', 'requests', 'tokens', 'upstream', 'key', 'concurrency', 'maxSize', 'retry', 'onDeadLetter', 'maxUpstreamWaitMs', 'onEvent'];

export interface FetchConfig {
  /** The queue's retry options, or false. */
  readonly retry: RetryOptions | false | undefined;
  readonly maxUpstreamWaitMs: number;
  readonly onEvent: ((event: LimitedFetchEvent) => void) | undefined;
}

/** Checks every key's name, and retry's deadline, maxUpstreamWaitMs and onEvent (the caller checks the rest). */
export function fetchConfig(o: Record<string, unknown>): FetchConfig {
  checkKnownKeys(o, LIMITED_FETCH_KEYS, 'limitedFetch');
  const retry = o.retry as RetryOptions | false | undefined;
  // Unless told otherwise, no upstream makes us wait longer than we would retry for.
  const deadlineMs = retryPolicy(retry === false ? undefined : retry).deadlineMs;
  const maxUpstreamWaitMs = o.maxUpstreamWaitMs === undefined ? deadlineMs : checkInteger(o.maxUpstreamWaitMs, 'maxUpstreamWaitMs', 0, MAX_BLOCK_MS);
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') throw invalidArgument('onEvent', 'a function', o.onEvent);
  return {
    retry,
    maxUpstreamWaitMs,
    onEvent: o.onEvent as ((event: LimitedFetchEvent) => void) | undefined,
  };
}
