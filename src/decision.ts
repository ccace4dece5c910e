// The result of asking a limiter about one request.

/**
 * What a limiter decided. Times are milliseconds from now.
 * - `limit`: the limit that applied (window limit, bucket capacity or GCRA burst).
 * - `remaining`: what the key may still spend now, counted after this request when it was
 *   consumed; rounded down.
 * - `resetMs`: until the key is back to a fresh key's full allowance; rounded up.
 * - `retryAfterMs`: 0 when allowed; when denied, the exact wait until a request of the same cost
 *   could pass if nothing else is spent; `Infinity` when it never can (cost above the limit).
 */
export interface Decision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;
}
