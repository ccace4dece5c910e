// Types of scripts/mock-upstream.mjs for the TypeScript tests.
export interface StrictUpstreamTerms {
  /** Requests accepted arriving in any `windowMs`. */
  readonly limit: number;
  readonly windowMs: number;
  /** Requests in flight at once, refused ones included (default: no limit). */
  readonly concurrency?: number;
  /** ms before an accepted request is answered (default 0: at once). */
  readonly answerMs?: number;
}
export class StrictUpstream {
  constructor(terms: StrictUpstreamTerms);
  /** Requests arrived and not yet answered or closed. */
  readonly inFlight: number;
  /** The most `inFlight` has been since the last resetCounts(). */
  readonly mostInFlight: number;
  /** Requests refused with a 429. */
  readonly tooMany: number;
  /** Requests answered 200. */
  readonly ok: number;
  /** Requests to /hang accepted (and never answered). */
  readonly hung: number;
  /** Listens on 127.0.0.1 at a free port; resolves with the base URL (ending in '/'). */
  listen(): Promise<string>;
  /** Zeroes the counters between contenders (the window empties only with time). */
  resetCounts(): void;
  /** Closes the server and every connection still open. */
  close(): Promise<void>;
}
/** What BucketUpstream needs of its limiter (a tollgate Limiter has it). */
export interface BucketUpstreamLimiter {
  consume(key: string): { readonly allowed: boolean; readonly limit: number; readonly remaining: number; readonly resetMs: number; readonly retryAfterMs: number };
}
export class BucketUpstream {
  constructor(limiter: BucketUpstreamLimiter);
  /** Replace it to change the upstream's terms while it runs. */
  limiter: BucketUpstreamLimiter;
  /** Requests answered 200. */
  readonly ok: number;
  /** Requests refused with a 429. */
  readonly tooMany: number;
  /** Listens on 127.0.0.1 at a free port; resolves with the base URL (ending in '/'). */
  listen(): Promise<string>;
  /** Closes the server and every connection still open. */
  close(): Promise<void>;
}
/** fetch over a network of 0 to `maxDelayMs` (default 40) of seeded delay each way. */
export function jitteryFetch(seed: number, maxDelayMs?: number): typeof fetch;
