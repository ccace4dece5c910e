// The options of an adapter store that counts on Redis in its library's own format
// (ExpressRateLimitStore, FastifyRateLimitStore), read once into what the store runs with.
import { invalidArgument, isRedisFailure as isRedisCode, type RedisErrorCode } from '../../common/errors.js';
import { checkInteger } from '../../common/validate.js';
import { DEFAULT_TIMEOUT_MS, parseBreaker } from '../../limiters/redis-limiter-options.js';
import type { BreakerOptions } from '../../redis/breaker.js';
import { redisTransport, type RedisClient } from '../../redis/redis-client.js';
import { ScriptRunner } from '../../redis/script-runner.js';

/** What a store answers when Redis fails: as if the hit were the client's first, or as over the limit; or asked per failure. */
export type PeerOnError = 'allow' | 'deny' | ((error: Error & { readonly code: RedisErrorCode }, key: string) => 'allow' | 'deny');

export interface PeerRedisOptions {
  /** ioredis 5/6 or iovalkey, node-redis 4+, or a RedisCommandSender (as RedisLimiter's `redis`); its lifecycle stays yours. */
  readonly redis: RedisClient;
  /** Whether `redis` is a Redis Cluster client; detected for ioredis, iovalkey and node-redis. */
  readonly cluster?: boolean;
  /** Bound on every Redis call, in ms; default 250. Redis refuses to act on a call past it. */
  readonly timeoutMs?: number;
  /**
   * When Redis errs, times out or is known down (default 'allow'): 'allow' answers a count of 1,
   * 'deny' one over the limit, a function chooses per failure (what it throws is the call's error).
   * A key holding another program's value is an error (TOLLGATE_REDIS_STATE_MISMATCH), never onError's.
   */
  readonly onError?: PeerOnError;
  /** As RedisLimiter's: after `afterFailures` failed calls (default 1) calls go straight to onError; false sends every call. */
  readonly breaker?: false | Partial<BreakerOptions>;
}

/** The keys every such store takes, besides its own (prefix, ...). */
export const PEER_REDIS_KEYS = ['redis', 'cluster', 'timeoutMs', 'onError', 'breaker'] as const;

export interface PeerRedisConfig {
  readonly runner: ScriptRunner;
  readonly onError: PeerOnError;
}

export function parsePeerRedisOptions(o: Record<string, unknown>): PeerRedisConfig {
  if (o.cluster !== undefined && typeof o.cluster !== 'boolean') throw invalidArgument('cluster', 'a boolean', o.cluster);
  const redis = redisTransport(o.redis, o.cluster as boolean | undefined);
  const timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkInteger(o.timeoutMs, 'timeoutMs', 1, 600_000);
  const onError = o.onError ?? 'allow';
  if (onError !== 'allow' && onError !== 'deny' && typeof onError !== 'function') throw invalidArgument('onError', "'allow', 'deny' or a function (error, key) => 'allow' | 'deny'", onError);
  return { runner: new ScriptRunner(redis, { timeoutMs, breaker: parseBreaker(o.breaker) }), onError: onError as PeerOnError };
}

/** A prefix option: any string (the libraries put it in front of the key as it is); `fallback` when absent. */
export function parsePrefix(value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw invalidArgument(name, 'a string', value);
  return value;
}

/** onError's verdict on a failed call; throws what a function onError throws, or a TypeError for what it should not return. */
export function verdict(onError: PeerOnError, error: Error & { readonly code: RedisErrorCode }, key: string): 'allow' | 'deny' {
  if (typeof onError !== 'function') return onError;
  const answer = onError(error, key);
  if (answer !== 'allow' && answer !== 'deny') throw invalidArgument('the return value of onError', "'allow' or 'deny'", answer);
  return answer;
}

/**
 * Errors that are no outage for onError to ride out but a setup to fix: a key holding another
 * program's value, and a Redis user not allowed a command the store runs (an ACL without EVAL,
 * EVALSHA or a command of the script). Answered as an outage, an ACL mistake would let every
 * request through, for ever, without a sign; rejected, the framework answers 500 with the reason.
 */
const SETUP_ERRORS: ReadonlySet<string> = new Set(['TOLLGATE_REDIS_STATE_MISMATCH', 'TOLLGATE_REDIS_NO_PERMISSION', 'TOLLGATE_REDIS_UNSUPPORTED']);

/** Whether a failure is onError's to decide: every Redis failure but a setup error (SETUP_ERRORS). */
export function isRedisFailure(error: unknown): error is Error & { readonly code: RedisErrorCode } {
  const code = (error as { code?: unknown } | null)?.code;
  return isRedisCode(code) && !SETUP_ERRORS.has(code);
}
