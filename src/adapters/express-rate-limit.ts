// An express-rate-limit (v7, v8) `Store` whose counting is tollgate's: in this process, in shared
// memory so every worker of a cluster counts against one limit, or on Redis in rate-limit-redis'
// format so every host does (and rate-limit-redis processes on the same prefix share the count).
// express-rate-limit keeps its own options, handler and headers. Its types are declared here
// structurally, so importing tollgate never needs express-rate-limit installed.
import { invalidArgument } from '../common/errors.js';
import type { Limiter } from '../limiters/limiter.js';
import { checkStoreOptions, hitCounter, type AdapterTableOptions } from './adapter-limiter.js';
import { checkOptions } from '../common/validate.js';
import { libraryKey } from '../common/keys.js';
import { parsePeerRedisOptions, parsePrefix, PEER_REDIS_KEYS, type PeerRedisOptions } from './peer-formats/peer-redis-options.js';
import { RateLimitRedisCounts, type HitInfo } from './peer-formats/rate-limit-redis-counts.js';
import type { RedisClient } from '../redis/redis-client.js';

/** What express-rate-limit's `increment` and `get` return. */
export type ExpressRateLimitInfo = HitInfo;

/** Counting on Redis, in rate-limit-redis' format. */
export interface ExpressRateLimitRedisOptions extends PeerRedisOptions {
  /** Put in front of every key on Redis; default 'rl:', rate-limit-redis' own. Give the prefix your rate-limit-redis stores use. */
  readonly prefix?: string;
  /** Every hit starts the window again (rate-limit-redis 4-5's option of that name); default false, as rate-limit-redis 6. */
  readonly resetExpiryOnChange?: boolean;
}

export type ExpressRateLimitStoreOptions = AdapterTableOptions | ExpressRateLimitRedisOptions;

const REDIS_KEYS = [...PEER_REDIS_KEYS, 'prefix', 'resetExpiryOnChange'];

/** What a method returns for a store given redis client `R`: a promise on Redis, the value itself in a table (R undefined). */
export type ExpressRateLimitResult<R, T> = R extends undefined ? T : Promise<T>;

/**
 * `rateLimit({ windowMs, limit, store: new ExpressRateLimitStore() })`. As express-rate-limit's own
 * MemoryStore, each client's window of `windowMs` starts at its first hit, and every hit is counted,
 * the refused ones too (that is express-rate-limit's model: it compares the count to `limit`).
 * With `{ redis }` the counts are on Redis, in rate-limit-redis' format (its keys `<prefix><key>`,
 * its windows): the methods then return promises, and Redis failures go to onError.
 * NOTE: with a `clock` (tests), decisions follow it but `resetTime` stays on Date.now()'s clock.
 */
export class ExpressRateLimitStore<R extends RedisClient | undefined = undefined> {
  /** Counts in shared memory or on Redis are seen by other processes: express-rate-limit's double-count check must not assume otherwise. */
  readonly localKeys: boolean;
  /** In front of the keys (on Redis: of every Redis key; express-rate-limit tells stores apart by it). */
  readonly prefix: string;
  readonly #options: AdapterTableOptions;
  /** Set when counting on Redis (then no table is made). */
  readonly #redis: RateLimitRedisCounts | undefined;
  #limiter: Limiter | undefined;
  #windowMs = 60_000;
  #ceiling = 0; // see hitCounter

  constructor(options?: AdapterTableOptions | (ExpressRateLimitRedisOptions & { readonly redis: R })) {
    const o = checkOptions(options) ?? {};
    if (checkStoreOptions(o, REDIS_KEYS, 'ExpressRateLimitStore options')) {
      if (o.resetExpiryOnChange !== undefined && typeof o.resetExpiryOnChange !== 'boolean') throw invalidArgument('resetExpiryOnChange', 'a boolean', o.resetExpiryOnChange);
      this.prefix = parsePrefix(o.prefix, 'prefix', 'rl:');
      this.#redis = new RateLimitRedisCounts(parsePeerRedisOptions(o), this.prefix, o.resetExpiryOnChange === true);
      this.#options = {};
      this.localKeys = false;
    } else {
      this.prefix = 'tollgate:';
      this.#redis = undefined;
      this.#options = o as AdapterTableOptions;
      this.localKeys = o.store === undefined;
    }
  }

  /** Called by express-rate-limit with its options, once, before any request. */
  init(options: { windowMs: number; limit?: unknown }): void {
    const windowMs = options.windowMs;
    if (typeof windowMs !== 'number' || !Number.isInteger(windowMs) || windowMs < 1) throw invalidArgument('windowMs', 'a positive integer', windowMs);
    this.#windowMs = windowMs;
    if (this.#redis !== undefined) {
      this.#redis.windowMs = windowMs;
      this.#redis.limit = typeof options.limit === 'number' ? options.limit : undefined;
      return;
    }
    this.#limiter?.close();
    ({ limiter: this.#limiter, ceiling: this.#ceiling } = hitCounter(this.#options, windowMs));
  }

  #live(): Limiter {
    if (this.#limiter === undefined) this.init({ windowMs: this.#windowMs });
    return this.#limiter as Limiter;
  }

  #info(remaining: number, resetMs: number): ExpressRateLimitInfo {
    return { totalHits: this.#ceiling - remaining, resetTime: new Date(Date.now() + resetMs) };
  }

  increment(key: string): ExpressRateLimitResult<R, ExpressRateLimitInfo> {
    if (this.#redis !== undefined) return this.#redis.increment(key) as ExpressRateLimitResult<R, ExpressRateLimitInfo>;
    const d = this.#live().consume(libraryKey(key));
    return this.#info(d.remaining, d.resetMs) as ExpressRateLimitResult<R, ExpressRateLimitInfo>;
  }

  decrement(key: string): ExpressRateLimitResult<R, void> {
    if (this.#redis !== undefined) return this.#redis.decrement(key) as ExpressRateLimitResult<R, void>;
    this.#live().refund(libraryKey(key), 1);
    return undefined as ExpressRateLimitResult<R, void>;
  }

  resetKey(key: string): ExpressRateLimitResult<R, void> {
    if (this.#redis !== undefined) return this.#redis.resetKey(key) as ExpressRateLimitResult<R, void>;
    this.#live().reset(libraryKey(key));
    return undefined as ExpressRateLimitResult<R, void>;
  }

  get(key: string): ExpressRateLimitResult<R, ExpressRateLimitInfo | undefined> {
    if (this.#redis !== undefined) return this.#redis.get(key) as ExpressRateLimitResult<R, ExpressRateLimitInfo | undefined>;
    const d = this.#live().peek(libraryKey(key));
    return (d.remaining === this.#ceiling ? undefined : this.#info(d.remaining, d.resetMs)) as ExpressRateLimitResult<R, ExpressRateLimitInfo | undefined>;
  }

  /**
   * In process: forgets every client. A shared table is not cleared from one process (others are
   * counting in it): this throws `TOLLGATE_SHARED_MEMORY`; use destroySharedMemory(name) once no
   * process has it open. Nor are Redis counts (rate-limit-redis has no resetAll either): this
   * throws `TOLLGATE_REDIS_UNSUPPORTED`; delete the keys under the prefix.
   */
  resetAll(): void {
    if (this.#redis !== undefined) {
      throw Object.assign(new Error(`Redis counts are not reset from one process (other hosts count in them): delete the keys under '${this.prefix}' on Redis`), {
        code: 'TOLLGATE_REDIS_UNSUPPORTED' as const,
      });
    }
    if (this.#options.store !== undefined) {
      throw Object.assign(new Error('A shared-memory count is not reset from one process: destroySharedMemory(name) once none has it open'), {
        code: 'TOLLGATE_SHARED_MEMORY' as const,
      });
    }
    this.init({ windowMs: this.#windowMs });
  }

  /**
   * Frees the table (a later call makes a new one). On Redis, ends the store: a call still out
   * rejects at once with TOLLGATE_CLOSED, as does every later one; the client stays yours.
   */
  shutdown(): void {
    this.#redis?.close();
    this.#limiter?.close();
    this.#limiter = undefined;
  }
}
