// rate-limiter-flexible's API (consume, penalty, reward, get, set, block, delete, its RateLimiterRes,
// execEvenly, customDuration, forever, insurance and in-memory blocks) over tollgate tables, so its
// users change one import; with sharedMemory every process of a host counts together without
// RateLimiterCluster's IPC, and with storeClient the count lives on Redis in rate-limiter-flexible's
// own keys, shared with its RateLimiterRedis.
import { closedError, invalidArgument, outOfRange } from '../common/errors.js';
import { makeRoom } from '../common/bounded-map.js';
import { maxLimitFor } from '../common/policies.js';
import { redisTransport, type RedisClient } from '../redis/redis-client.js';
import { ScriptRunner } from '../redis/script-runner.js';
import { DEFAULT_TIMEOUT_MS, parseBreaker } from '../limiters/redis-limiter-options.js';
import type { MaybePromise } from '../limiters/rate-limiter.js';
import type { Hit, HitStore } from './rlf-hit-store.js';
import { andThen, CountingStore, FOREVER_MS, MAX_OTHER_DURATIONS } from './rlf-counting-store.js';
import { RlfRedisStore } from './peer-formats/rlf-redis-store.js';
import { ADAPTER_TABLE_KEYS, hitCounter, refuseTableOptions, type AdapterTableOptions } from './adapter-limiter.js';
import { isRedisFailure } from './peer-formats/peer-redis-options.js';
import { checkInteger, checkObject } from '../common/validate.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { monotonicMs } from '../common/clock.js';
import { sharedMemory } from '../engine/shared-memory.js';

/** What rate-limiter-flexible resolves and rejects with: its RateLimiterRes, field for field. */
export class RateLimiterRes {
  constructor(
    /** Points left in the current duration. */
    public remainingPoints = 0,
    /** ms until the duration (or a block) ends; -1 for never. */
    public msBeforeNext = 0,
    /** Points consumed in the current duration. */
    public consumedPoints = 0,
    /** Whether this call started the duration. */
    public isFirstInDuration = false,
  ) {}

  toJSON(): { remainingPoints: number; msBeforeNext: number; consumedPoints: number; isFirstInDuration: boolean } {
    return {
      remainingPoints: this.remainingPoints,
      msBeforeNext: this.msBeforeNext,
      consumedPoints: this.consumedPoints,
      isFirstInDuration: this.isFirstInDuration,
    };
  }

  toString(): string {
    return JSON.stringify(this.toJSON());
  }
}

/** Anything with rate-limiter-flexible's methods: another RateLimiterTollgate, or one of its own limiters. */
export interface RateLimiterFlexibleLike {
  consume(key: string | number, points?: number, options?: { customDuration?: number }): Promise<unknown>;
  penalty(key: string | number, points?: number, options?: { customDuration?: number }): Promise<unknown>;
  reward(key: string | number, points?: number, options?: { customDuration?: number }): Promise<unknown>;
  get(key: string | number): Promise<unknown>;
  set(key: string | number, points: number, secDuration?: number): Promise<unknown>;
  block(key: string | number, secDuration: number): Promise<unknown>;
  delete(key: string | number): Promise<boolean>;
}

export interface RateLimiterTollgateOptions extends AdapterTableOptions {
  /** Points per duration (default 4, as rate-limiter-flexible); 0 refuses every consume. */
  readonly points?: number;
  /** Seconds (default 1); 0: points never expire. */
  readonly duration?: number;
  /** Seconds a key is blocked once it consumes more than `points` (default 0: not blocked). */
  readonly blockDuration?: number;
  /** Prepended to keys (default 'rlflx'), so limiters on one table count apart. */
  readonly keyPrefix?: string;
  /** Delay each allowed consume so that points spread over the duration (rate-limiter-flexible's formula). */
  readonly execEvenly?: boolean;
  /** The least execEvenly delay, ms (default duration / points). */
  readonly execEvenlyMinDelayMs?: number;
  /**
   * Count on Redis instead (any client RedisLimiter takes), in rate-limiter-flexible's own keys and
   * values: RateLimiterRedis with the same keyPrefix, points and duration shares the count. The
   * table options (`store`, `capacity`, `engine`, `clock`) are then refused: no table is made.
   */
  readonly storeClient?: RedisClient;
  /** When storeClient fails: this limiter answers instead (rate-limiter-flexible's insurance). */
  readonly insuranceLimiter?: RateLimiterFlexibleLike;
  /** A key that reaches this many points is refused in this process, without the store, until its duration ends. */
  readonly inMemoryBlockOnConsumed?: number;
  /** Seconds of that in-process block (default 0: until the key's duration ends). */
  readonly inMemoryBlockDuration?: number;
}

/**
 * consume's points: an integer from 0 (nothing added: the key's state, as rate-limiter-flexible
 * answers it) to 2^40.
 * NOTE: RateLimiterRedis also resolves negative points (its INCRBY takes them back) and digit
 * strings ('2'). Both are refused here, deliberately. A negative consume is a reward that answers
 * as if a request were allowed, and what it does depends on the store (tables never go below zero,
 * Redis does); a cost computed below zero would hand points back silently; reward() says what it
 * does. Strings mean different things within rate-limiter-flexible itself (RateLimiterRedis takes
 * only /^[1-9][0-9]*$/; RateLimiterMemory concatenates them to its count), and are usually a header
 * or query value nobody parsed.
 */
function checkConsumePoints(points: unknown): number {
  if (typeof points !== 'number') throw invalidArgument('points', 'a number (parse a string of points first)', points);
  if (!Number.isInteger(points) || points < 0 || points > 2 ** 40) {
    throw outOfRange('points', `an integer from 0 to ${2 ** 40} (0 reads the key; to take points back, call reward)`, points);
  }
  return points;
}

const OPTIONS = [
  'points',
  'duration',
  'blockDuration',
  'keyPrefix',
  'execEvenly',
  'execEvenlyMinDelayMs',
  'storeClient',
  'insuranceLimiter',
  'inMemoryBlockOnConsumed',
  'inMemoryBlockDuration',
  ...ADAPTER_TABLE_KEYS,
];

/**
 * `new RateLimiterTollgate({ points: 10, duration: 1 })` in place of `new RateLimiterMemory(...)`
 * (or, with `storeClient`, of `RateLimiterRedis`). Each key's duration starts at its first point, as
 * rate-limiter-flexible's. What differs is in docs/switching.md.
 */
export class RateLimiterTollgate {
  readonly points: number;
  readonly duration: number;
  readonly blockDuration: number;
  readonly keyPrefix: string;
  readonly execEvenly: boolean;
  readonly execEvenlyMinDelayMs: number;
  readonly inMemoryBlockOnConsumed: number;
  readonly inMemoryBlockDuration: number;
  readonly #store: HitStore;
  readonly #prefix: string;
  readonly #durationMs: number;
  readonly #insurance: RateLimiterFlexibleLike | undefined;
  /** Keys refused in this process until a time (inMemoryBlockOnConsumed), oldest first. */
  readonly #inMemoryBlocks = new Map<string, number>();
  readonly #now: () => number;
  #closed = false;

  constructor(options: RateLimiterTollgateOptions = {}) {
    const o = checkObject(options, 'options');
    checkKnownKeys(o, OPTIONS, 'RateLimiterTollgate options');
    if (o.storeClient !== undefined) refuseTableOptions(o, 'storeClient', 'RateLimiterTollgate options');
    this.points = o.points === undefined ? 4 : checkInteger(o.points, 'points', 0, 2 ** 40);
    this.duration = o.duration === undefined ? 1 : checkInteger(o.duration, 'duration', 0, 2 ** 30);
    this.blockDuration = o.blockDuration === undefined ? 0 : checkInteger(o.blockDuration, 'blockDuration', 0, 2 ** 30);
    this.keyPrefix = o.keyPrefix === undefined ? 'rlflx' : String(o.keyPrefix);
    this.#prefix = this.keyPrefix.length > 0 ? `${this.keyPrefix}:` : '';
    this.#durationMs = this.duration * 1000;
    if (o.execEvenly !== undefined && typeof o.execEvenly !== 'boolean') throw invalidArgument('execEvenly', 'a boolean', o.execEvenly);
    this.execEvenly = o.execEvenly === true;
    this.execEvenlyMinDelayMs =
      o.execEvenlyMinDelayMs === undefined ? Math.ceil(this.#durationMs / Math.max(1, this.points)) : checkInteger(o.execEvenlyMinDelayMs, 'execEvenlyMinDelayMs', 0, 2 ** 31);
    this.inMemoryBlockOnConsumed = o.inMemoryBlockOnConsumed === undefined ? 0 : checkInteger(o.inMemoryBlockOnConsumed, 'inMemoryBlockOnConsumed', 0, 2 ** 40);
    this.inMemoryBlockDuration = o.inMemoryBlockDuration === undefined ? 0 : checkInteger(o.inMemoryBlockDuration, 'inMemoryBlockDuration', 0, 2 ** 30);
    if (this.inMemoryBlockOnConsumed > 0 && this.inMemoryBlockOnConsumed < this.points) {
      throw outOfRange('inMemoryBlockOnConsumed', `at least points (${this.points}), or 0`, this.inMemoryBlockOnConsumed);
    }
    // A block duration with nothing to start the block would do nothing, silently (rate-limiter-flexible refuses it too).
    if (this.inMemoryBlockDuration > 0 && this.inMemoryBlockOnConsumed === 0) {
      throw invalidArgument('inMemoryBlockDuration', 'a duration only with inMemoryBlockOnConsumed set (the points at which the block starts)', this.inMemoryBlockDuration);
    }
    const insurance = o.insuranceLimiter as RateLimiterFlexibleLike | undefined;
    if (insurance !== undefined && (typeof insurance !== 'object' || insurance === null || typeof insurance.consume !== 'function')) {
      throw invalidArgument('insuranceLimiter', 'a rate-limiter-flexible limiter (or a RateLimiterTollgate)', insurance);
    }
    this.#insurance = insurance;
    const clock = (o as RateLimiterTollgateOptions).clock;
    this.#now = clock === undefined ? monotonicMs : () => clock.now();
    const defaultMs = this.#durationMs;
    if (o.storeClient !== undefined) {
      // Refuses what no RedisLimiter could use, now rather than at the first call.
      const redis = redisTransport(o.storeClient as RedisClient, undefined);
      // NOTE: 0.1 counted in keys of its own (`tollgate:rlf:<keyPrefix>:<ms>{...}`); nothing reads
      // them now. They end with their duration (or block), so upgrading forgets one duration's
      // counts at most, as 0.1's own switch from RateLimiterRedis did.
      // RateLimiterRedis has no timeout or breaker options: RedisLimiter's defaults, as 0.1 had.
      this.#store = new RlfRedisStore(new ScriptRunner(redis, { timeoutMs: DEFAULT_TIMEOUT_MS, breaker: parseBreaker(undefined) }));
    } else {
      // Every point is counted, past `points` too (see hitCounter): a window's count is bounded by
      // 2^50 / its length. (Records of other durations share the bound of theirs: a record "for
      // ever" counts up to 16,384 points.) Redis' counters have no such bound.
      const windowMs = this.#durationMs === 0 ? FOREVER_MS : this.#durationMs;
      if (2 * this.points > maxLimitFor(windowMs)) throw outOfRange('points', `at most ${Math.floor(maxLimitFor(windowMs) / 2)} with this duration`, this.points);
      const tableOptions = o as RateLimiterTollgateOptions;
      const shared = tableOptions.store;
      this.#store = new CountingStore(defaultMs, (windowMs) => {
        // A shared table holds one window: other durations get segments of their own.
        const own =
          shared === undefined || windowMs === (defaultMs === 0 ? FOREVER_MS : defaultMs)
            ? tableOptions
            : {
                ...tableOptions,
                store: sharedMemory({
                  name: `${shared.name}.${windowMs}ms`,
                  ...(shared.capacity === undefined ? {} : { capacity: shared.capacity }),
                  mode: shared.mode,
                  lockTimeoutMs: shared.lockTimeoutMs < 0 ? Infinity : shared.lockTimeoutMs,
                  onLockTimeout: shared.onLockTimeout,
                  ...(shared.shards === undefined ? {} : { shards: shared.shards }),
                }),
              };
        const { limiter, ceiling } = hitCounter(own, windowMs);
        return { counter: limiter, ceiling };
      });
    }
  }

  /**
   * The key as stored: `keyPrefix:key`, as rate-limiter-flexible's getKey() (in tables hashed past
   * 256 characters; on Redis as it is, so that RateLimiterRedis finds it).
   */
  getKey(key: string | number): string {
    return this.#store.key(this.#prefix + String(key));
  }

  /** The key as given, from a stored one (rate-limiter-flexible's parseKey); a hashed long key stays hashed. */
  parseKey(stored: string): string {
    return this.#prefix.length > 0 && stored.startsWith(this.#prefix) ? stored.slice(this.#prefix.length) : stored;
  }

  #secDuration(options: unknown): number {
    const custom = (options as { customDuration?: unknown } | undefined)?.customDuration;
    if (custom === undefined || custom === null || (typeof custom === 'number' && custom < 0)) return this.duration;
    return checkInteger(custom, 'customDuration', 0, 2 ** 30);
  }

  #res(hit: Hit): RateLimiterRes {
    // During a block the key reports points + 1, as block() sets it (see docs/switching.md).
    if (hit.blocked === true) return new RateLimiterRes(0, hit.ms, this.points + 1, false);
    return new RateLimiterRes(Math.max(this.points - hit.consumed, 0), hit.ms, hit.consumed, hit.created);
  }

  /** Runs `call` on the store; when the store (Redis) fails and an insurance limiter is set, it answers instead. */
  #insured<T>(call: () => MaybePromise<T>, insured: (limiter: RateLimiterFlexibleLike) => Promise<unknown>): Promise<T> {
    if (this.#closed) return Promise.reject(closedError('RateLimiterTollgate'));
    let result: MaybePromise<T>;
    try {
      result = call();
    } catch (error) {
      return Promise.reject(error);
    }
    const promise = Promise.resolve(result);
    if (this.#insurance === undefined) return promise;
    const insurance = this.#insurance;
    return promise.catch((error: unknown) => {
      // A key holding another program's value is not Redis failing: it rejects with the mismatch
      // (never fails open, see docs/redis.md), the insurance limiter is not asked.
      if (!isRedisFailure(error)) throw error;
      return insured(insurance) as Promise<T>;
    });
  }

  /**
   * Adds `points` to the key: resolves while within `points`, rejects with the RateLimiterRes beyond.
   * `points` 0 adds nothing and answers with the key as it is (rate-limiter-flexible's peek).
   */
  consume(key: string | number, points = 1, options?: { customDuration?: number }): Promise<RateLimiterRes> {
    let n: number;
    let stored: string;
    let seconds: number;
    try {
      n = points === 1 ? 1 : checkConsumePoints(points);
      stored = this.getKey(key);
      seconds = this.#secDuration(options);
    } catch (error) {
      return Promise.reject(error);
    }
    const blockedUntil = this.inMemoryBlockOnConsumed > 0 ? this.#inMemoryBlock(stored) : 0;
    // As rate-limiter-flexible's: refused without asking the store, so nothing is known but the time left.
    if (blockedUntil > 0) return Promise.reject(new RateLimiterRes(0, blockedUntil - this.#now(), 0, false));
    if (this.#insurance === undefined) {
      // The call made per request: no closures beyond the store's own answer.
      if (this.#closed) return Promise.reject(closedError('RateLimiterTollgate'));
      try {
        const hit = this.#store.incr(stored, n, seconds * 1000);
        const result = hit instanceof Promise ? hit.then((h) => this.#decide(stored, h, n)) : this.#decide(stored, hit, n);
        return result instanceof Promise ? result : Promise.resolve(result);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#insured(
      () => andThen(this.#store.incr(stored, n, seconds * 1000), (hit) => this.#decide(stored, hit, n)),
      (insurance) => insurance.consume(key, points, options),
    ) as Promise<RateLimiterRes>;
  }

  #decide(stored: string, hit: Hit, n: number): MaybePromise<RateLimiterRes> {
    if (hit.blocked === true) throw this.#res(hit);
    const res = this.#res(hit);
    const over = hit.consumed > this.points;
    // In-memory blocks start where rate-limiter-flexible's _afterConsume starts them. Without
    // inMemoryBlockDuration: at inMemoryBlockOnConsumed points, for the rest of the key's duration,
    // the answer as the store gave it (no execEvenly delay).
    if (this.inMemoryBlockOnConsumed > 0 && this.inMemoryBlockDuration === 0 && hit.consumed >= this.inMemoryBlockOnConsumed) {
      if (hit.ms > 0) this.#blockInMemory(stored, this.#now() + hit.ms);
      // NOTE: rate-limiter-flexible then skips blockDuration; the block is kept here, so that the
      // processes sharing the store see it too.
      if (!over) return res;
    }
    if (over) {
      // Blocked only when this call crossed the limit (not again while over it): for blockDuration
      // in the store (every process sharing it sees it), then counted afresh.
      const block = this.blockDuration > 0 && hit.consumed <= this.points + n;
      if (block) res.msBeforeNext = this.blockDuration * 1000;
      // With inMemoryBlockDuration: a consume over `points` at inMemoryBlockOnConsumed blocks the key
      // for that long, and that is the msBeforeNext it reports (as rate-limiter-flexible's).
      if (this.inMemoryBlockOnConsumed > 0 && this.inMemoryBlockDuration > 0 && hit.consumed >= this.inMemoryBlockOnConsumed) {
        res.msBeforeNext = this.inMemoryBlockDuration * 1000;
        this.#blockInMemory(stored, this.#now() + res.msBeforeNext);
      }
      if (block) {
        return andThen(this.#store.block(stored, this.blockDuration * 1000, hit.consumed), () => {
          throw res;
        });
      }
      throw res;
    }
    if (this.execEvenly && res.msBeforeNext > 0 && !res.isFirstInDuration) {
      // rate-limiter-flexible's formula: the time left shared among the points left (+2, so
      // neither the start nor the end of the duration is delayed), at least the minimum delay.
      let delay = Math.ceil(res.msBeforeNext / (res.remainingPoints + 2));
      if (delay < this.execEvenlyMinDelayMs) delay = res.consumedPoints * this.execEvenlyMinDelayMs;
      res.msBeforeNext = Math.max(res.msBeforeNext - delay, 0);
      return new Promise((resolve) => setTimeout(resolve, delay, res));
    }
    return res;
  }

  #inMemoryBlock(stored: string): number {
    const until = this.#inMemoryBlocks.get(stored);
    if (until === undefined) return 0;
    if (until > this.#now()) return until;
    this.#inMemoryBlocks.delete(stored);
    return 0;
  }

  #blockInMemory(stored: string, until: number): void {
    makeRoom(this.#inMemoryBlocks, MAX_OTHER_DURATIONS);
    this.#inMemoryBlocks.set(stored, until);
  }

  /** Adds points without rejecting. */
  penalty(key: string | number, points = 1, options?: { customDuration?: number }): Promise<RateLimiterRes> {
    return this.#insured(
      () => {
        const n = checkInteger(points, 'points', 1, 2 ** 40);
        return andThen(this.#store.incr(this.getKey(key), n, this.#secDuration(options) * 1000), (hit) => this.#res(hit));
      },
      (insurance) => insurance.penalty(key, points, options),
    ) as Promise<RateLimiterRes>;
  }

  /**
   * Takes points back: in tables never below zero (see docs/switching.md); on Redis as
   * RateLimiterRedis does, below zero too (a missing key then starts a record of the duration).
   */
  reward(key: string | number, points = 1, options?: { customDuration?: number }): Promise<RateLimiterRes> {
    return this.#insured(
      () => {
        const n = checkInteger(points, 'points', 1, 2 ** 40);
        const stored = this.getKey(key);
        this.#inMemoryBlocks.delete(stored);
        const seconds = this.#secDuration(options);
        return andThen(this.#store.decr(stored, n, seconds * 1000), (hit) => (hit === null ? new RateLimiterRes(this.points, seconds === 0 ? -1 : 0, 0, false) : this.#res(hit)));
      },
      (insurance) => insurance.reward(key, points, options),
    ) as Promise<RateLimiterRes>;
  }

  /** The key's RateLimiterRes, or null when it holds no points. */
  get(key: string | number): Promise<RateLimiterRes | null> {
    return this.#insured(
      () => andThen(this.#store.get(this.getKey(key)), (hit) => (hit === null ? null : this.#res(hit))),
      (insurance) => insurance.get(key),
    ) as Promise<RateLimiterRes | null>;
  }

  /** Sets the key's points for secDuration seconds (default: the limiter's duration; 0: forever). */
  set(key: string | number, points: number, secDuration?: number): Promise<RateLimiterRes> {
    return this.#insured(
      () => {
        const n = checkInteger(points, 'points', 0, 2 ** 40);
        const seconds = secDuration === undefined || secDuration < 0 ? this.duration : checkInteger(secDuration, 'secDuration', 0, 2 ** 30);
        return andThen(this.#store.set(this.getKey(key), n, seconds * 1000), (hit) => new RateLimiterRes(0, hit.ms, n, false));
      },
      (insurance) => insurance.set(key, points, secDuration),
    ) as Promise<RateLimiterRes>;
  }

  /** Blocks the key for secDuration seconds (0: forever): it holds points + 1 until then, and starts afresh afterwards. */
  block(key: string | number, secDuration: number): Promise<RateLimiterRes> {
    return this.#insured(
      () => {
        const seconds = checkInteger(secDuration, 'secDuration', 0, 2 ** 30);
        return andThen(this.#store.block(this.getKey(key), seconds * 1000, this.points + 1), () => new RateLimiterRes(0, seconds === 0 ? -1 : seconds * 1000, this.points + 1, false));
      },
      (insurance) => insurance.block(key, secDuration),
    ) as Promise<RateLimiterRes>;
  }

  /** Forgets the key; true if it held anything. */
  delete(key: string | number): Promise<boolean> {
    return this.#insured(
      () => {
        const stored = this.getKey(key);
        this.#inMemoryBlocks.delete(stored);
        return this.#store.delete(stored);
      },
      (insurance) => insurance.delete(key),
    );
  }

  /** Closes its tables (or its Redis calls; the client stays yours); later calls reject with TOLLGATE_CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#store.close();
  }
}
