// RedisLimiter's options, read once into the configuration its constructor builds from: every
// check, default and unknown key in one place, so the class holds none.
import type { ManualClock } from '../common/clock.js';
import { checkClock } from '../common/clock.js';
import { MAX_CAPACITY } from '../common/constants.js';
import { invalidArgument, outOfRange, type RedisErrorCode } from '../common/errors.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { PolicyCode, policyParams, type Policy, type PolicyParams } from '../common/policies.js';
import { checkInteger, checkObject } from '../common/validate.js';
import type { SharedMemoryStore } from '../engine/shared-memory.js';
import type { BreakerOptions, BreakerState } from '../redis/breaker.js';
import { parseBreaker } from '../redis/breaker-options.js';
import { redisTransport, type RedisClient, type RedisTransport } from '../redis/redis-client.js';
import type { DenyCacheConfig } from './deny-cache.js';
import { checkOnError, type OnError } from './fallback.js';
import type { LeaseOptions } from './leases.js';
import { checkLimiterName } from './limiter-base.js';
import type { RateLimiter } from './rate-limiter.js';

/** What RedisLimiter reports to `onEvent`: a failed call, or a node's breaker changing state. */
export type RedisLimiterEvent =
  | { readonly type: 'error'; readonly error: Error & { readonly code: RedisErrorCode; readonly reply?: string }; readonly node: string }
  | { readonly type: 'breaker'; readonly state: BreakerState; readonly node: string };

export interface RedisLimiterOptions {
  /**
   * ioredis 5/6 or iovalkey (`Redis` or `Cluster`), node-redis 4+ (`createClient()` or
   * `createCluster()`), or a RedisCommandSender for any other client. Its lifecycle stays yours.
   */
  readonly redis: RedisClient;
  /**
   * Required: the limiter's namespace on Redis. Limiters with different names never share counters;
   * the processes that must share a limit use the same name and policy.
   */
  readonly name: string;
  /** One policy, or several decided all-or-nothing (e.g. 10 per second and 1,000 per hour). */
  readonly policy: Policy | readonly Policy[];
  /** Prepended to every Redis key; default 'tollgate:'. No braces (they would break hash tags). */
  readonly prefix?: string;
  /** Whether `redis` is a Redis Cluster client; detected for ioredis, iovalkey and node-redis. */
  readonly cluster?: boolean;
  /** Bound on every Redis call, in ms; default 250. Redis refuses to act on a call past it. */
  readonly timeoutMs?: number;
  /**
   * When Redis errs, times out or is known down: 'allow' (fail open, the default), 'deny', or
   * another limiter that decides instead (typically an in-process or shared-memory Limiter, or
   * allOf(...)), given the same key, cost and per-call limit.
   */
  readonly onError?: 'allow' | 'deny' | RateLimiter;
  /**
   * After `afterFailures` failed calls to a node (default 1), calls to it go straight to onError
   * without waiting; one trial call after `retryMs` (default 100, doubling up to `maxRetryMs`,
   * default 2000) finds when it answers again. false sends every call (each then waits its timeout).
   */
  readonly breaker?: false | Partial<BreakerOptions>;
  /** Told of every failed call and every breaker transition (for logs); what it throws is reported as a warning. */
  readonly onEvent?: (event: RedisLimiterEvent) => void;
  /**
   * Remember denials locally until their retry time, answering repeat requests from the same key
   * without a round trip. true (the default) keeps up to 100,000 keys in this process; give
   * { capacity, store } for another size or a shared-memory cache used by every process.
   */
  readonly denyCache?: boolean | { readonly capacity?: number; readonly store?: SharedMemoryStore };
  /**
   * Most decisions sent in one call; default 64. Decisions asked for together share calls of up
   * to this many, and several calls stay in flight, so Redis and this process work in parallel.
   */
  readonly maxBatch?: number;
  /**
   * On a Redis Cluster: how many slots one limiter's keys are spread over; default 16. A batch of
   * decisions costs one call per group its keys fall in, so fewer groups mean fewer calls (16 keeps
   * ~0.06 calls per decision at 256 decisions in flight); more spread one limiter's keys, and its
   * load, over more nodes. Each key always stays in one slot. Ignored on a single server.
   */
  readonly slotGroups?: number;
  /**
   * Hot keys decided in this process, within the global limit (one fixed-window policy only): a key
   * this process consumes often (`hotAfter` units within 100 ms, default 4) takes a share of its
   * remaining quota from Redis in one call (at most `share` of it, default 0.2, and about twice what
   * it used in the last 100 ms) and spends it here with no round trip. Redis counts a lease when it
   * is taken, so the global count never passes the limit; units a lease holds when its window ends
   * are not admitted, so a limit may under-admit by what is leased and unspent. A lease is spent
   * from for at most `maxAgeMs` (default 1000), so another process' block() or reset() reaches it
   * within that; and never past its Redis window, however late its reply came. Needs
   * PEXPIRETIME (Redis 7): on an older server leases stay off, with a warning. Off by default.
   */
  readonly leases?: boolean | { readonly hotAfter?: number; readonly share?: number; readonly keys?: number; readonly maxAgeMs?: number };
  /**
   * For tests: sliding windows, token buckets and GCRA decide at this clock's time instead of Redis
   * TIME. On Redis' own clock still: fixed windows (a window is its key's TTL), blocks (a block
   * lasts its duration of real time, and reset() reports it while it does), and every key's expiry
   * (a reset's worth, plus slack, of real time after its last write, so a test clock must not run
   * slower than real time by more than that); deadlines stay on real time. See docs/redis.md, "A
   * test clock".
   */
  readonly clock?: ManualClock;
}

/**
 * Decisions per script call unless told: larger batches spread each call's reading, parsing and
 * writing over more decisions, smaller ones leave more calls in flight to overlap; 64 was the
 * best measured (bench/FINDINGS.md, "Redis at the server's speed"), and a call of 64 holds Redis
 * well under a millisecond.
 */
const DEFAULT_MAX_BATCH = 64;

const OPTION_KEYS = ['redis', 'name', 'policy', 'prefix', 'cluster', 'timeoutMs', 'onError', 'breaker', 'onEvent', 'denyCache', 'maxBatch', 'slotGroups', 'leases', 'clock'];
/** The breaker option, read where the breaker lives (src/redis/breaker-options.ts); kept here for this layer's importers. */
export { parseBreaker };

/** The bound on a Redis call when none is given (RedisLimiter's, and the adapter stores' on Redis), in ms. */
export const DEFAULT_TIMEOUT_MS = 250;

/** What a RedisLimiter is built from. */
export interface RedisLimiterConfig {
  readonly redis: RedisTransport;
  readonly name: string;
  readonly policies: readonly Policy[];
  readonly params: readonly PolicyParams[];
  readonly prefix: string;
  readonly timeoutMs: number;
  readonly onError: OnError;
  readonly onEvent: ((event: RedisLimiterEvent) => void) | undefined;
  /** undefined: no breaker (every call is sent). */
  readonly breaker: BreakerOptions | undefined;
  /** undefined: no deny cache. */
  readonly denyCache: DenyCacheConfig | undefined;
  readonly maxBatch: number;
  /** Slots one limiter's keys spread over on a Cluster. */
  readonly slotGroups: number;
  /** undefined: no leases. */
  readonly leases: LeaseOptions | undefined;
  readonly clock: ManualClock | undefined;
}

export function parseRedisLimiterOptions(options: unknown): RedisLimiterConfig {
  const o = checkObject(options, 'options');
  checkKnownKeys(o, OPTION_KEYS, 'RedisLimiter options');
  if (o.cluster !== undefined && typeof o.cluster !== 'boolean') throw invalidArgument('cluster', 'a boolean', o.cluster);
  const redis = redisTransport(o.redis, o.cluster as boolean | undefined);
  const name = checkLimiterName(o.name, undefined, " naming the limiter on Redis (limiters share counters only under one name), e.g. 'login'");
  const policies = Array.isArray(o.policy) ? (o.policy as Policy[]) : [o.policy as Policy];
  if (policies.length === 0 || policies.length > 8) throw outOfRange('policy', 'one policy or an array of 1 to 8', o.policy);
  const params = policies.map((p) => policyParams(p));
  const prefix = o.prefix === undefined ? 'tollgate:' : o.prefix;
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw invalidArgument('prefix', 'a string without braces', prefix);
  const timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkInteger(o.timeoutMs, 'timeoutMs', 1, 600_000);
  const onError = checkOnError(o.onError);
  if (o.onEvent !== undefined && typeof o.onEvent !== 'function') throw invalidArgument('onEvent', 'a function', o.onEvent);
  return {
    redis,
    name,
    policies,
    params,
    prefix,
    timeoutMs,
    onError,
    onEvent: o.onEvent as ((event: RedisLimiterEvent) => void) | undefined,
    breaker: parseBreaker(o.breaker),
    maxBatch: o.maxBatch === undefined ? DEFAULT_MAX_BATCH : checkInteger(o.maxBatch, 'maxBatch', 1, 10_000),
    slotGroups: o.slotGroups === undefined ? 16 : checkInteger(o.slotGroups, 'slotGroups', 1, 16_384),
    leases: parseLeases(o.leases, params),
    clock: checkClock(o.clock),
    denyCache: parseDenyCache(o.denyCache),
  };
}

function parseLeases(option: unknown, params: readonly PolicyParams[]): LeaseOptions | undefined {
  if (option === undefined || option === false) return undefined;
  const spec = option === true ? {} : checkObject(option, 'leases');
  checkKnownKeys(spec, ['hotAfter', 'share', 'keys', 'maxAgeMs'], 'leases');
  if (params.length !== 1 || params[0]?.code !== PolicyCode.FixedWindow) {
    throw invalidArgument('leases', 'leases on a limiter of one fixedWindow policy (the others keep state a lease cannot split)', option);
  }
  const share = spec.share ?? 0.2;
  if (typeof share !== 'number' || !(share > 0 && share <= 1)) throw outOfRange('leases.share', 'a fraction above 0, at most 1', share);
  return {
    hotAfter: spec.hotAfter === undefined ? 4 : checkInteger(spec.hotAfter, 'leases.hotAfter', 1, 1_000_000),
    share,
    keys: spec.keys === undefined ? 10_000 : checkInteger(spec.keys, 'leases.keys', 1, 1_000_000),
    maxAgeMs: spec.maxAgeMs === undefined ? 1000 : checkInteger(spec.maxAgeMs, 'leases.maxAgeMs', 1, 3_600_000),
  };
}

function parseDenyCache(option: unknown): DenyCacheConfig | undefined {
  if (option === false) return undefined;
  const spec = option === undefined || option === true ? {} : checkObject(option, 'denyCache');
  checkKnownKeys(spec, ['capacity', 'store'], 'denyCache');
  if (spec.store !== undefined) return { store: spec.store as SharedMemoryStore };
  return { capacity: spec.capacity === undefined ? 100_000 : checkInteger(spec.capacity, 'denyCache.capacity', 1, MAX_CAPACITY) };
}
