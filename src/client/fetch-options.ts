// limitedFetch's options, checked once into the configuration its calls read.
import { invalidArgument } from '../common/errors.js';
import { checkInteger, checkObject } from '../common/validate.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { MAX_BLOCK_MS } from '../common/constants.js';
import { retryPolicy, type RetryOptions } from './backoff.js';
import type { PlacesProblem } from './upstream-places.js';

/** limitedFetch's retries: the queue's, and which methods may be sent again. */
export interface FetchRetryOptions extends RetryOptions {
  /**
   * Methods sent again after a failure (a retryable status or a network error), as ky's
   * retry.methods; case-insensitive; replaces the default GET, HEAD, OPTIONS, PUT, DELETE, TRACE
   * (the idempotent ones). Others (POST, PATCH) are sent once unless listed: the upstream may
   * have acted on them already.
   */
  readonly methods?: readonly string[];
}

/** What limitedFetch reports to `onEvent`. */
export type LimitedFetchEvent =
  /** An upstream-announced wait (Retry-After, a reset) longer than maxUpstreamWaitMs, cut to it. */
  | { readonly type: 'wait-capped'; readonly announcedMs: number; readonly cappedMs: number }
  /**
   * A response arrived but adapting the local limiters to it failed; the response is returned all
   * the same. Status 0: giving back what a request never sent was charged failed.
   */
  | { readonly type: 'adapt-failed'; readonly status: number; readonly error: unknown }
  /** `upstream.store` failed a call, or this process's lease there lapsed (see PlacesProblem). */
  | PlacesProblem;

/** The idempotent methods (RFC 9110 §9.2.2): sending one again does what sending it once did. */
export const IDEMPOTENT_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'];

const RETRY_KEYS = ['maxAttempts', 'baseDelayMs', 'maxDelayMs', 'deadlineMs', 'random', 'methods'];
export const LIMITED_FETCH_KEYS = ['fetch', 'requests', 'tokens', 'upstream', 'key', 'concurrency', 'maxSize', 'retry', 'onDeadLetter', 'maxUpstreamWaitMs', 'onEvent'];

export interface FetchConfig {
  /** The queue's retry options (methods taken out), or false. */
  readonly retry: RetryOptions | false | undefined;
  /** Upper-case methods that may be sent again. */
  readonly retryMethods: ReadonlySet<string>;
  readonly maxUpstreamWaitMs: number;
  readonly onEvent: ((event: LimitedFetchEvent) => void) | undefined;
}

/** Checks every key's name, and retry's deadline, maxUpstreamWaitMs and onEvent (the caller checks the rest). */
export function fetchConfig(o: Record<string, unknown>): FetchConfig {
  checkKnownKeys(o, LIMITED_FETCH_KEYS, 'limitedFetch');
  let retry: RetryOptions | false | undefined;
  let methods = IDEMPOTENT_METHODS;
  if (o.retry === false || o.retry === undefined) retry = o.retry;
  else {
    const r = checkObject(o.retry, 'retry');
    checkKnownKeys(r, RETRY_KEYS, 'retry');
    const { methods: given, ...rest } = r;
    if (given !== undefined) {
      if (!Array.isArray(given) || !given.every((m) => typeof m === 'string')) throw invalidArgument('retry.methods', 'an array of method names', given);
      methods = given as string[];
    }
    retry = rest as RetryOptions;
  }
  // Unless told otherwise, no upstream makes us wait longer than we would retry for.
  const deadlineMs = retryPolicy(retry === false ? undefined : retry).deadlineMs;
  const maxUpstreamWaitMs = o.maxUpstreamWaitMs === undefined ? deadlineMs : checkInteger(o.maxUpstreamWaitMs, 'maxUpstreamWaitMs', 0, MAX_BLOCK_MS);
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') throw invalidArgument('onEvent', 'a function', o.onEvent);
  return {
    retry,
    retryMethods: new Set(methods.map((m) => m.toUpperCase())),
    maxUpstreamWaitMs,
    onEvent: o.onEvent as ((event: LimitedFetchEvent) => void) | undefined,
  };
}
