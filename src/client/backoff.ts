// Retrying politely: exponential backoff with full jitter, never sooner than the upstream asked.
import { checkInteger, checkObject } from '../common/validate.js';
import { invalidArgument, outOfRange } from '../common/errors.js';
import { checkKnownKeys } from '../common/option-keys.js';

export interface RetryOptions {
  /** Attempts in all, the first included; default 5. */
  readonly maxAttempts?: number;
  /** The first backoff's ceiling; default 200 ms. Each attempt doubles it, up to maxDelayMs. */
  readonly baseDelayMs?: number;
  /** Default 30 s. */
  readonly maxDelayMs?: number;
  /** No attempt starts later than this after the first; default 120 s. */
  readonly deadlineMs?: number;
  /** For tests: the jitter's source of [0, 1) numbers; default Math.random. */
  readonly random?: () => number;
}

export interface RetryPolicy {
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly deadlineMs: number;
  readonly random: () => number;
}

export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  const o = options === undefined ? {} : checkObject(options, 'retry');
  checkKnownKeys(o, ['maxAttempts', 'baseDelayMs', 'maxDelayMs', 'deadlineMs', 'random'], 'retry');
  if (o.random !== undefined && typeof o.random !== 'function') throw invalidArgument('retry.random', 'a function', o.random);
  return {
    maxAttempts: o.maxAttempts === undefined ? 5 : checkInteger(o.maxAttempts, 'retry.maxAttempts', 1, 1000),
    baseDelayMs: o.baseDelayMs === undefined ? 200 : checkInteger(o.baseDelayMs, 'retry.baseDelayMs', 0, 3_600_000),
    maxDelayMs: o.maxDelayMs === undefined ? 30_000 : checkInteger(o.maxDelayMs, 'retry.maxDelayMs', 0, 86_400_000),
    deadlineMs: o.deadlineMs === undefined ? 120_000 : checkInteger(o.deadlineMs, 'retry.deadlineMs', 0, 86_400_000),
    random: (o.random as (() => number) | undefined) ?? Math.random,
  };
}

/**
 * The wait before attempt `attempt` (2 for the first retry): a uniform draw from [0, ceiling]
 * ("full jitter", so a crowd of clients spreads out), and at least `floorMs` (Retry-After).
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, floorMs = 0): number {
  const p = checkObject(policy, 'policy') as Partial<RetryPolicy>;
  if (typeof p.random !== 'function') throw invalidArgument('policy', 'a RetryPolicy (made by retryPolicy())', policy);
  checkInteger(p.baseDelayMs, 'policy.baseDelayMs', 0, Number.MAX_SAFE_INTEGER);
  checkInteger(p.maxDelayMs, 'policy.maxDelayMs', 0, Number.MAX_SAFE_INTEGER);
  checkInteger(attempt, 'attempt', 1, Number.MAX_SAFE_INTEGER);
  if (typeof floorMs !== 'number') throw invalidArgument('floorMs', 'a number of ms', floorMs);
  if (!(floorMs >= 0 && floorMs < Infinity)) throw outOfRange('floorMs', 'a finite number of ms, 0 or more', floorMs);
  const delay = jitteredDelay(policy, attempt, floorMs);
  if (!Number.isFinite(delay)) throw outOfRange('policy.random', 'a function returning numbers in [0, 1)', delay);
  return delay;
}

/** backoffDelay for arguments already checked (the queue's own). */
export function jitteredDelay(policy: RetryPolicy, attempt: number, floorMs: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 2));
  return Math.max(floorMs, Math.floor(policy.random() * ceiling));
}
