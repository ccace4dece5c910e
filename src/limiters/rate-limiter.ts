// The one interface every limiter implements — Limiter, allOf(...) and RedisLimiter — and that
// everything taking a limiter accepts: the HTTP middleware, the adapters, the queue, limitedFetch,
// the metrics, RedisLimiter's fallback.
import type { Decision, LimitOverride } from '../common/decision.js';
import type { EngineName } from '../engine/select-engine.js';
import type { TableStats } from '../engine/table-engine.js';
import type { Policy } from '../common/policies.js';

/** A value now (in-process limiters) or later (Redis). */
export type MaybePromise<T> = T | Promise<T>;

/** Whether a MaybePromise is the later kind (any thenable). */
export function isPromise<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}

/** Per-call options of every limiter. */
export interface CallOptions {
  /**
   * This call's limit (its tier, e.g. a paid API key), replacing the policy's limit (the window
   * limit, the bucket capacity or the GCRA burst; windows and rates stay the policy's). A number
   * replaces the first policy's; an array gives one per policy (undefined keeps that policy's).
   */
  readonly limit?: LimitOverride;
}

export interface AcquireOptions extends CallOptions {
  /** What to spend; default 1. */
  readonly cost?: number;
  /** Give up after this many ms (rejects with code TOLLGATE_ACQUIRE_TIMEOUT). */
  readonly timeoutMs?: number;
  /** Give up when aborted (rejects with code TOLLGATE_ACQUIRE_ABORTED, cause = the signal's reason). */
  readonly signal?: AbortSignal;
}

/** A table's counters (Limiter.stats()). */
export interface LimiterStats extends TableStats {
  readonly name: string;
  /** Live keys the table holds at most: the `capacity` option (or the shared table's). */
  readonly capacity: number;
  readonly engine: EngineName;
  readonly store: 'memory' | 'sharedMemory';
}

/** A RedisLimiter's counters, for this process. */
export interface RedisLimiterStats {
  readonly name: string;
  readonly store: 'redis';
  /** Decisions returned (consume and peek). */
  readonly decisions: number;
  /** consume() decisions allowed and denied (from Redis, the deny cache or onError). */
  readonly allowed: number;
  readonly denied: number;
  /** Decisions answered by the deny cache, with no round trip. */
  readonly denyCacheHits: number;
  /** EVALSHA/EVAL calls sent (a NOSCRIPT recovery counts twice). */
  readonly redisCalls: number;
  readonly errors: number;
  readonly timeouts: number;
  /** Decisions made by onError: allowed blindly, denied blindly, or by the fallback limiter. */
  readonly failedOpen: number;
  readonly failedClosed: number;
  readonly fallbackDecisions: number;
  /** Decisions sent to onError without trying Redis, because their node's breaker was open. */
  readonly shortCircuited: number;
  /** Calls that met a Redis key of another shape (rejected with TOLLGATE_REDIS_STATE_MISMATCH). */
  readonly stateMismatches: number;
  /** Calls Redis refused to act on because they reached it after their deadline. */
  readonly lateRefused: number;
  /** Calls Redis acted on in time whose reply came after the caller's timeout (counted there, decided by onError here). */
  readonly lateExecuted: number;
  /** Breaker transitions, summed over the nodes: to open, to half-open (a trial call), back to closed. */
  readonly breakerOpened: number;
  readonly breakerHalfOpened: number;
  readonly breakerClosed: number;
  /** consume() decisions made in this process from a lease (the `leases` option), and the Redis calls that took leases. */
  readonly leasedDecisions: number;
  readonly leaseCalls: number;
  /** Nodes whose breaker is open or half-open now, among those routed to in the last 5 s (a failed master replaced by its replica drops out). */
  readonly openNodes: number;
}

/** allOf(...)'s counters: those of the limiters it combines, each under its own name. */
export interface CombinedLimiterStats {
  readonly name: string;
  readonly store: 'combined';
  readonly limiters: readonly LimiterStats[];
}

/** What stats() returns; `store` tells which. */
export type RateLimiterStats = LimiterStats | RedisLimiterStats | CombinedLimiterStats;

/**
 * A rate limiter. `Limiter` and `allOf(...)` answer synchronously (their methods return values,
 * and their own types say so); `RedisLimiter` answers with promises. Code that takes any limiter
 * awaits what it gets.
 */
export interface RateLimiter {
  /** How metrics, logs and headers label this limiter. */
  readonly name: string;
  /** The policies decided, all-or-nothing, in order (one for a Limiter). */
  readonly policies: readonly Policy[];
  /** True once close() was called (or, for allOf(...), once any limiter it combines closed). */
  readonly closed: boolean;
  /** Spends `cost` (default 1) from the key if every policy allows it, and says what happened. */
  consume(key: string, cost?: number, options?: CallOptions): MaybePromise<Decision>;
  /** What consume() would decide, spending nothing. */
  peek(key: string, cost?: number, options?: CallOptions): MaybePromise<Decision>;
  /** Gives `amount` back (never beyond a fresh key's allowance); a key not held is left alone. */
  refund(key: string, amount?: number, options?: CallOptions): MaybePromise<void>;
  /** Denies the key for `durationMs` (a shorter block never cuts a longer one); false if there was no room. */
  block(key: string, durationMs: number): MaybePromise<boolean>;
  /** Forgets the key (counters and block); whether it was held. */
  reset(key: string): MaybePromise<boolean>;
  /**
   * Waits until `cost` can be spent, then spends it (first come, first served per key). A refund or
   * reset of the key through this limiter wakes its waiters in this process at once.
   */
  acquire(key: string, options?: AcquireOptions): Promise<Decision>;
  stats(): RateLimiterStats;
  /** Stops deciding; pending waiters reject at once with code TOLLGATE_CLOSED. */
  close(): void;
}

const METHODS = ['consume', 'peek', 'refund', 'block', 'reset', 'acquire', 'stats', 'close'] as const;

/** Whether `value` has the shape of a RateLimiter (checked once, where a limiter is given). */
export function isRateLimiter(value: unknown): value is RateLimiter {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return METHODS.every((m) => typeof v[m] === 'function') && Array.isArray(v.policies) && typeof v.name === 'string';
}
