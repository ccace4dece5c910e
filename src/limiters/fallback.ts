// What decides when a limiter's own store cannot (Redis down, slow, or known down): allow, deny, or
// another limiter given the same call. Any limiter whose store can fail can keep one.
import { uncountedDecision, type Decision } from '../common/decision.js';
import { invalidArgument } from '../common/errors.js';
import { isRateLimiter, type CallOptions, type MaybePromise, type RateLimiter } from './rate-limiter.js';

/** The onError option: fail open, fail closed, or ask another limiter. */
export type OnError = 'allow' | 'deny' | RateLimiter;

/** How long a caller denied by 'deny' is told to wait. */
export const FAIL_CLOSED_RETRY_MS = 1000;

export function checkOnError(value: unknown): OnError {
  const onError = value ?? 'allow';
  if (onError !== 'allow' && onError !== 'deny' && !isRateLimiter(onError)) {
    throw invalidArgument('onError', "'allow', 'deny' or a limiter (Limiter, allOf(...))", onError);
  }
  return onError as OnError;
}

export class Fallback {
  readonly #onError: OnError;
  /** Decisions made: allowed blindly, denied blindly, by the other limiter. */
  failedOpen = 0;
  failedClosed = 0;
  decisions = 0;

  constructor(onError: OnError) {
    this.#onError = onError;
  }

  /**
   * Decides the call its limiter could not: `op` 'consume' or 'peek', with `limit` the call's (or
   * its first policy's) limit for the blind answers. A limiter given as onError gets the call as
   * the caller made it, per-call limits (tiers) included.
   */
  decide(op: 'consume' | 'peek', key: string, cost: number, options: CallOptions | undefined, limit: number): MaybePromise<Decision> {
    const onError = this.#onError;
    // The blind answers counted nothing: marked, so that no one reports them as a count.
    if (onError === 'allow') {
      this.failedOpen++;
      return uncountedDecision({ allowed: true, limit, remaining: limit, resetMs: 0, retryAfterMs: 0 });
    }
    if (onError === 'deny') {
      this.failedClosed++;
      return uncountedDecision({ allowed: false, limit, remaining: 0, resetMs: 0, retryAfterMs: FAIL_CLOSED_RETRY_MS });
    }
    this.decisions++;
    return op === 'consume' ? onError.consume(key, cost, options) : onError.peek(key, cost, options);
  }
}
