// An express-rate-limit (v7, v8) `Store` whose counting is tollgate's: in this process, or in shared
// memory so every worker of a cluster counts against one limit. express-rate-limit keeps its own
// options, handler and headers. Its types are declared here structurally, so importing tollgate
// never needs express-rate-limit installed.
import { invalidArgument } from '../common/errors.js';
import type { Limiter } from '../limiters/limiter.js';
import { ADAPTER_TABLE_KEYS, hitCounter, type AdapterTableOptions } from './adapter-limiter.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { checkOptions } from '../common/validate.js';
import { libraryKey } from '../common/keys.js';

/** What express-rate-limit's `increment` and `get` return. */
export interface ExpressRateLimitInfo {
  totalHits: number;
  resetTime: Date | undefined;
}

export type ExpressRateLimitStoreOptions = AdapterTableOptions;

/**
 * `rateLimit({ windowMs, limit, store: new ExpressRateLimitStore() })`. As express-rate-limit's own
 * MemoryStore, each client's window of `windowMs` starts at its first hit, and every hit is counted,
 * the refused ones too (that is express-rate-limit's model: it compares the count to `limit`).
 * NOTE: with a `clock` (tests), decisions follow it but `resetTime` stays on Date.now()'s clock.
 */
export class ExpressRateLimitStore {
  /** Counts in shared memory are seen by other processes: express-rate-limit's double-count check must not assume otherwise. */
  readonly localKeys: boolean;
  readonly prefix = 'tollgate:';
  readonly #options: ExpressRateLimitStoreOptions;
  #limiter: Limiter | undefined;
  #windowMs = 60_000;
  #ceiling = 0;  // see hitCounter

  constructor(options?: ExpressRateLimitStoreOptions) {
    const o = checkOptions(options) ?? {};
    checkKnownKeys(o, ADAPTER_TABLE_KEYS, 'ExpressRateLimitStore options');
    this.#options = o as ExpressRateLimitStoreOptions;
    this.localKeys = o.store === undefined;
  }

  /** Called by express-rate-limit with its options, once, before any request. */
  init(options: { windowMs: number }): void {
    const windowMs = options.windowMs;
    if (typeof windowMs !== 'number' || !Number.isInteger(windowMs) || windowMs < 1) throw invalidArgument('windowMs', 'a positive integer', windowMs);
    this.#limiter?.close();
    this.#windowMs = windowMs;
    ({ limiter: this.#limiter, ceiling: this.#ceiling } = hitCounter(this.#options, windowMs));
  }

  #live(): Limiter {
    if (this.#limiter === undefined) this.init({ windowMs: this.#windowMs });
    return this.#limiter as Limiter;
  }

  #info(remaining: number, resetMs: number): ExpressRateLimitInfo {
    return { totalHits: this.#ceiling - remaining, resetTime: new Date(Date.now() + resetMs) };
  }

  increment(key: string): ExpressRateLimitInfo {
    const d = this.#live().consume(libraryKey(key));
    return this.#info(d.remaining, d.resetMs);
  }

  decrement(key: string): void {
    this.#live().refund(libraryKey(key), 1);
  }

  resetKey(key: string): void {
    this.#live().reset(libraryKey(key));
  }

  get(key: string): ExpressRateLimitInfo | undefined {
    const d = this.#live().peek(libraryKey(key));
    return d.remaining === this.#ceiling ? undefined : this.#info(d.remaining, d.resetMs);
  }

  /**
   * In process: forgets every client. A shared table is not cleared from one process (others are
   * counting in it): this throws `TOLLGATE_SHARED_MEMORY`; use destroySharedMemory(name) once no
   * process has it open.
   */
  resetAll(): void {
    if (this.#options.store !== undefined) {
      throw Object.assign(new Error('A shared-memory count is not reset from one process: destroySharedMemory(name) once none has it open'), {
        code: 'TOLLGATE_SHARED_MEMORY' as const,
      });
    }
    this.init({ windowMs: this.#windowMs });
  }

  shutdown(): void {
    this.#limiter?.close();
    this.#limiter = undefined;
  }
}
