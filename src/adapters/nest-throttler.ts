// A @nestjs/throttler `ThrottlerStorage` whose counting is tollgate's: in this process, in shared
// memory so every worker of a Nest app counts against one limit, or on Redis (a RedisLimiter per
// ttl) so every host does. Declared structurally: importing tollgate never needs @nestjs/throttler
// installed.
import { adapterLimiter, checkStoreOptions, type AdapterTableOptions } from './adapter-limiter.js';
import { fixedWindow, maxLimitFor, type Policy } from '../common/policies.js';
import { checkOptions } from '../common/validate.js';
import { keyText, storedKey } from '../common/keys.js';
import { monotonicMs } from '../common/clock.js';
import type { RateLimiter } from '../limiters/rate-limiter.js';
import { RedisLimiter, type RedisLimiterOptions } from '../limiters/redis-limiter.js';
import { parseRedisLimiterOptions } from '../limiters/redis-limiter-options.js';

/** What @nestjs/throttler's storage returns (its ThrottlerStorageRecord). */
export interface NestThrottlerRecord {
  totalHits: number;
  /** Seconds until the key's window ends. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until a blocked key may try again (0 when not blocked). */
  timeToBlockExpire: number;
}

/**
 * Counting on Redis with RedisLimiter (no Redis format is shared by @nestjs/throttler's stores):
 * these options mean what they mean there. Every storage on one Redis and prefix shares the counts
 * of a throttler name, ttl and key.
 */
export type NestThrottlerRedisOptions = Pick<RedisLimiterOptions, 'redis' | 'prefix' | 'cluster' | 'timeoutMs' | 'onError' | 'breaker' | 'onEvent'>;

export type NestThrottlerStorageOptions = AdapterTableOptions | NestThrottlerRedisOptions;

const REDIS_KEYS = ['redis', 'prefix', 'cluster', 'timeoutMs', 'onError', 'breaker', 'onEvent'];

/** Tables of distinct ttls kept at most at once. */
const MAX_TTL_TABLES = 256;
const SWEEP_EVERY_MS = 1000;

/**
 * `ThrottlerModule.forRoot({ throttlers: [...], storage: new NestThrottlerStorage() })`. Each key
 * gets a fixed window of `ttl` from its first request, and refused requests are not counted (as
 * Nest's own storage); with `blockDuration`, a key over its limit is blocked that long and then
 * starts afresh. With `{ redis }` the windows and blocks are on Redis (RedisLimiter's, on Redis'
 * clock), shared by every storage on that Redis and prefix, and Redis failures go to onError.
 * NOTE: Nest's in-memory storage expires each hit `ttl` after it was made; here the
 * whole window ends `ttl` after its first hit.
 */
export class NestThrottlerStorage {
  readonly #options: AdapterTableOptions;
  /** Set when counting on Redis: what each ttl's RedisLimiter is made with. */
  readonly #redis: NestThrottlerRedisOptions | undefined;
  /**
   * One table per ttl, each kept while a window or block it holds may still be running
   * (`keepUntil`): a table nobody has used for longer than its ttl and blocks holds only expired
   * state, so closing it loses nothing. Bounded besides, so ttls that change per request cannot
   * grow memory without end.
   */
  readonly #byTtl = new Map<number, { readonly limiter: RateLimiter; keepUntil: number }>();
  #nextSweep = 0;

  constructor(options?: NestThrottlerStorageOptions) {
    const o = checkOptions(options) ?? {};
    if (checkStoreOptions(o, REDIS_KEYS, 'NestThrottlerStorage options')) {
      // Refuses what no RedisLimiter could use now, not at the first request.
      parseRedisLimiterOptions({ ...o, name: 'nest-throttler', policy: fixedWindow({ limit: 1, windowMs: 1000 }), denyCache: false });
      this.#redis = o as NestThrottlerRedisOptions;
      this.#options = {};
    } else {
      this.#redis = undefined;
      this.#options = o as AdapterTableOptions;
    }
  }

  /** A table for `policy`: on Redis one RedisLimiter per ttl (its name says which), else the adapter's table. */
  #make(policy: Policy & { readonly windowMs: number }): RateLimiter {
    if (this.#redis === undefined) return adapterLimiter(this.#options, policy, true);
    // No deny cache: every call gives its own limit, which the cache does not serve.
    return new RedisLimiter({ ...this.#redis, name: `nest-throttler:${policy.windowMs}`, policy, denyCache: false });
  }

  /** How many ttl tables are open now (for monitoring; tables of ttls unused past their windows are closed). */
  get tables(): number {
    return this.#byTtl.size;
  }

  #now(): number {
    return this.#options.clock?.now() ?? monotonicMs();
  }

  #limiter(ttl: number, now: number): { readonly limiter: RateLimiter; keepUntil: number } {
    if (now >= this.#nextSweep) {
      this.#nextSweep = now + SWEEP_EVERY_MS;
      for (const [t, table] of this.#byTtl) {
        if (table.keepUntil < now) {
          table.limiter.close();
          this.#byTtl.delete(t);
        }
      }
    }
    let table = this.#byTtl.get(ttl);
    if (table === undefined) {
      if (this.#byTtl.size >= MAX_TTL_TABLES) this.#dropOldest();
      // Every call gives its throttler's limit; the policy's own is never used.
      table = { limiter: this.#make(fixedWindow({ limit: 1, windowMs: ttl })), keepUntil: now + ttl };
      this.#byTtl.set(ttl, table);
    }
    return table;
  }

  /** At the bound: the table whose state runs out first goes (its remaining counts with it). */
  #dropOldest(): void {
    let oldest: number | undefined;
    let until = Infinity;
    for (const [t, table] of this.#byTtl) {
      if (table.keepUntil < until) {
        until = table.keepUntil;
        oldest = t;
      }
    }
    if (oldest === undefined) return;
    this.#byTtl.get(oldest)?.limiter.close();
    this.#byTtl.delete(oldest);
  }

  /** Called by ThrottlerGuard once per request and throttler; ttl and blockDuration in ms. */
  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<NestThrottlerRecord> {
    if (limit === 0) {
      // A throttler whose limit is 0 (a tier switched off) refuses every request, as Nest's own
      // storage does (its first hit is over the limit); a table's limit cannot be 0, so nothing is counted.
      const blockSeconds = Math.ceil((blockDuration > 0 ? blockDuration : ttl) / 1000);
      return { totalHits: 1, timeToExpire: Math.ceil(ttl / 1000), isBlocked: true, timeToBlockExpire: blockSeconds };
    }
    const now = this.#now();
    const table = this.#limiter(ttl, now);
    table.keepUntil = Math.max(table.keepUntil, now + ttl, now + blockDuration);
    const limiter = table.limiter;
    const stored = storedKey(`${throttlerName}:${keyText(key)}`);
    const d = await limiter.consume(stored, 1, { limit });
    if (d.allowed) {
      return { totalHits: limit - d.remaining, timeToExpire: Math.ceil(d.resetMs / 1000), isBlocked: false, timeToBlockExpire: 0 };
    }
    // Refused by the limit, or by a block already in force? A block refuses even a limit nobody
    // reaches, which the policy never does (and peek counts nothing).
    if (blockDuration > 0 && (await limiter.peek(stored, 1, { limit: maxLimitFor(ttl) })).allowed) {
      // Over the limit, not blocked yet: blocked for blockDuration, then counted afresh.
      await limiter.reset(stored);
      await limiter.block(stored, blockDuration);
      const seconds = Math.ceil(blockDuration / 1000);
      return { totalHits: limit + 1, timeToExpire: seconds, isBlocked: true, timeToBlockExpire: seconds };
    }
    const wait = Number.isFinite(d.retryAfterMs) ? Math.ceil(d.retryAfterMs / 1000) : Math.ceil(d.resetMs / 1000);
    return { totalHits: limit + 1, timeToExpire: Math.ceil(d.resetMs / 1000), isBlocked: true, timeToBlockExpire: wait };
  }

  /** Closes every table (Nest calls it on shutdown when registered as a provider). */
  onApplicationShutdown(): void {
    for (const table of this.#byTtl.values()) table.limiter.close();
    this.#byTtl.clear();
  }
}
