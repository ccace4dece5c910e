// The result of asking a limiter about one request.

/**
 * What a limiter decided. Times are milliseconds from now.
 * - `limit`: the limit that applied (window limit, bucket capacity or GCRA burst).
 * - `remaining`: what the key may still spend now, counted after this request when it was
 *   consumed; rounded down.
 * - `resetMs`: until the key is back to a fresh key's full allowance; rounded up.
 * - `retryAfterMs`: 0 when allowed; when denied, the exact wait until a request of the same cost
 *   could pass if nothing else is spent; `Infinity` when it never can (cost above the limit).
 *
 * Several limits decided together (allOf, an array, a multi-policy RedisLimiter) give one
 * Decision whose fields all describe one limit, the one that binds: when denied, the limit that
 * denied with the longest wait; when allowed, the limit with the least left. `policyIndex` says
 * which (its position among the limits); it is absent for a single limit.
 */
export interface Decision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;
  readonly policyIndex?: number;
}

/**
 * A per-call limit (a tier, e.g. a paid API key): a number replaces the limit of the first
 * policy; with several policies, an array gives one per policy (undefined keeps that policy's).
 */
export type LimitOverride = number | readonly (number | undefined)[];
