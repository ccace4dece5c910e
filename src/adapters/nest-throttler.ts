// A @nestjs/throttler `ThrottlerStorage` whose counting is tollgate's: in this process, or in shared
// memory so every worker of a Nest app counts against one limit. Declared structurally: importing
// tollgate never needs @nestjs/throttler installed.
import type { Limiter } from '../limiters/limiter.js';
import { ADAPTER_TABLE_KEYS, adapterLimiter, type AdapterTableOptions } from './adapter-limiter.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { fixedWindow, maxLimitFor } from '../common/policies.js';
import { checkOptions } from '../common/validate.js';
import { keyText, storedKey } from '../common/keys.js';
import { monotonicMs } from '../common/clock.js';

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

/** Tables of distinct ttls kept at most at once. */
const MAX_TTL_TABLES = 256;
const SWEEP_EVERY_MS = 1000;

/**
 * `ThrottlerModule.forRoot({ throttlers: [...], storage: new NestThrottlerStorage() })`. Each key
 * gets a fixed window of `ttl` from its first request, and refused requests are not counted (as
 * Nest's own storage); with `blockDuration`, a key over its limit is blocked that long and then
 * starts afresh. NOTE: Nest's in-memory storage expires each hit `ttl` after it was made; here the
 * whole window ends `ttl` after its first hit.
 */
export class NestThrottlerStorage {
  readonly #options: NestThrottlerStorageOptions;
  /**
   * One table per ttl, each kept while a window or block it holds may still be running
   * (`keepUntil`): a table nobody has used for longer than its ttl and blocks holds only expired
   * state, so closing it loses nothing. Bounded besides, so ttls that change per request cannot
   * grow memory without end.
   */
  readonly #byTtl = new Map<number, { readonly limiter: Limiter; keepUntil: number }>();
  #nextSweep = 0;

  constructor(options?: NestThrottlerStorageOptions) {
    const o = checkOptions(options) ?? {};
    checkKnownKeys(o, ADAPTER_TABLE_KEYS, 'NestThrottlerStorage options');
    this.#options = o as NestThrottlerStorageOptions;
  }

  /** How many ttl tables are open now (for monitoring; tables of ttls unused past their windows are closed). */
  get tables(): number {
    return this.#byTtl.size;
  }

  #now(): number {
    return this.#options.clock?.now() ?? monotonicMs();
  }

  #limiter(ttl: number, now: number): { readonly limiter: Limiter; keepUntil: number } {
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
      table = { limiter: adapterLimiter(this.#options, fixedWindow({ limit: 1, windowMs: ttl }), true), keepUntil: now + ttl };
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
    const now = this.#now();
    const table = this.#limiter(ttl, now);
    table.keepUntil = Math.max(table.keepUntil, now + ttl, now + blockDuration);
    const limiter = table.limiter;
    const stored = storedKey(`${throttlerName}:${keyText(key)}`);
    const d = limiter.consume(stored, 1, { limit });
    if (d.allowed) {
      return { totalHits: limit - d.remaining, timeToExpire: Math.ceil(d.resetMs / 1000), isBlocked: false, timeToBlockExpire: 0 };
    }
    // Refused by the limit, or by a block already in force? A block refuses even a limit nobody
    // reaches, which the policy never does (and peek counts nothing).
    if (blockDuration > 0 && limiter.peek(stored, 1, { limit: maxLimitFor(ttl) }).allowed) {
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
    for (const table of this.#byTtl.values()) table.limiter.close();
    this.#byTtl.clear();
  }
}
