// A @nestjs/throttler `ThrottlerStorage` whose counting is tollgate's: in this process, or in shared
// memory so every worker of a Nest app counts against one limit. Declared structurally: importing
// tollgate never needs @nestjs/throttler installed.
import type { Limiter } from '../limiter.js';
import { adapterLimiter, type AdapterTableOptions } from './adapter-limiter.js';
import { fixedWindow } from '../policies.js';
import { checkOptions, MAX_PRODUCT } from '../validate.js';

/** What @nestjs/throttler's storage returns (its ThrottlerStorageRecord). */
export interface NestThrottlerRecord {
  totalHits: number;
  /** Seconds until the key's window ends. */
  timeToExpire: number;
  isBlocked: boolean;
  /** Seconds until a blocked key may try again (0 when not blocked). */
  timeToBlockExpire: number;
}

export type NestThrottlerStorageOptions = AdapterTableOptions;

/**
 * `ThrottlerModule.forRoot({ throttlers: [...], storage: new NestThrottlerStorage() })`. Each key
 * gets a fixed window of `ttl` from its first request, and refused requests are not counted (as
 * Nest's own storage); with `blockDuration`, a key over its limit is blocked that long and then
 * starts afresh. NOTE: Nest's in-memory storage expires each hit `ttl` after it was made; here the
 * whole window ends `ttl` after its first hit.
 */
export class NestThrottlerStorage {
  readonly #options: NestThrottlerStorageOptions;
  readonly #byTtl = new Map<number, Limiter>();

  constructor(options?: NestThrottlerStorageOptions) {
    this.#options = (checkOptions(options) ?? {}) as NestThrottlerStorageOptions;
  }

  #limiter(ttl: number): Limiter {
    let limiter = this.#byTtl.get(ttl);
    if (limiter === undefined) {
      // Every call gives its throttler's limit; the policy's own is never used.
      limiter = adapterLimiter(this.#options, fixedWindow({ limit: 1, windowMs: ttl }));
      this.#byTtl.set(ttl, limiter);
    }
    return limiter;
  }

  /** Called by ThrottlerGuard once per request and throttler; ttl and blockDuration in ms. */
  async increment(key: string, ttl: number, limit: number, blockDuration: number, throttlerName: string): Promise<NestThrottlerRecord> {
    const limiter = this.#limiter(ttl);
    const stored = `${throttlerName}:${key}`;
    const d = limiter.consume(stored, 1, { limit });
    if (d.allowed) {
      return { totalHits: limit - d.remaining, timeToExpire: Math.ceil(d.resetMs / 1000), isBlocked: false, timeToBlockExpire: 0 };
    }
    // Refused by the limit, or by a block already in force? A block refuses even a limit nobody
    // reaches, which the policy never does (and peek counts nothing).
    if (blockDuration > 0 && limiter.peek(stored, 1, { limit: Math.floor(MAX_PRODUCT / ttl) }).allowed) {
      // Over the limit, not blocked yet: blocked for blockDuration, then counted afresh.
      limiter.reset(stored);
      limiter.block(stored, blockDuration);
      const seconds = Math.ceil(blockDuration / 1000);
      return { totalHits: limit + 1, timeToExpire: seconds, isBlocked: true, timeToBlockExpire: seconds };
    }
    const wait = Number.isFinite(d.retryAfterMs) ? Math.ceil(d.retryAfterMs / 1000) : Math.ceil(d.resetMs / 1000);
    return { totalHits: limit + 1, timeToExpire: Math.ceil(d.resetMs / 1000), isBlocked: true, timeToBlockExpire: wait };
  }

  /** Closes every table (Nest calls it on shutdown when registered as a provider). */
  onApplicationShutdown(): void {
    for (const limiter of this.#byTtl.values()) limiter.close();
    this.#byTtl.clear();
  }
}
