// rate-limiter-flexible's API (consume, penalty, reward, get, set, block, delete and its result
// object) over a tollgate table, so its users change one import, and with sharedMemory every
// process of a host counts together without RateLimiterCluster's IPC or Redis.
import { invalidArgument, outOfRange } from '../errors.js';
import type { Limiter } from '../limiter.js';
import { ADAPTER_TABLE_KEYS, hitCounter, type AdapterTableOptions } from './adapter-limiter.js';
import { checkKnownKeys } from '../option-keys.js';
import { checkInteger, checkObject, MAX_PRODUCT } from '../validate.js';
import { storedKey } from '../keys.js';

/** What rate-limiter-flexible resolves and rejects with (its RateLimiterRes, field for field). */
export class RateLimiterResult {
  constructor(
    /** Points left in the current duration. */
    readonly remainingPoints: number,
    /** ms until the duration (or a block) ends; -1 for never. */
    readonly msBeforeNext: number,
    /** Points consumed in the current duration. */
    readonly consumedPoints: number,
    /** Whether this call started the duration. */
    readonly isFirstInDuration: boolean,
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

export interface RateLimiterTollgateOptions extends AdapterTableOptions {
  /** Points per duration (default 4, as rate-limiter-flexible). */
  readonly points?: number;
  /** Seconds (default 1); 0: points never expire. */
  readonly duration?: number;
  /** Seconds a key is blocked once it consumes more than `points` (default 0: not blocked). */
  readonly blockDuration?: number;
  /** Prepended to keys (default 'rlflx'), so limiters on one table count apart. */
  readonly keyPrefix?: string;
}

// "Never expires": a window of about 35 years.
const FOREVER_MS = 2 ** 40;

/**
 * `new RateLimiterTollgate({ points: 10, duration: 1 })` in place of `new RateLimiterMemory(...)`.
 * Each key's duration starts at its first point, as rate-limiter-flexible's. Differences: during a
 * block, rejections report `consumedPoints` of points + 1 (rate-limiter-flexible keeps adding);
 * `set()` takes the limiter's own duration only; `execEvenly`, `storeClient` and insurance
 * limiters are not supported (refused with TOLLGATE_INVALID_ARGUMENT).
 */
export class RateLimiterTollgate {
  readonly points: number;
  readonly duration: number;
  readonly blockDuration: number;
  readonly keyPrefix: string;
  readonly #limiter: Limiter;
  readonly #prefix: string;
  readonly #ceiling: number;
  readonly #windowMs: number;

  constructor(options: RateLimiterTollgateOptions = {}) {
    const o = checkObject(options, 'options');
    for (const unsupported of ['execEvenly', 'storeClient', 'insuranceLimiter', 'inMemoryBlockOnConsumed']) {
      if (o[unsupported] !== undefined && o[unsupported] !== false) throw invalidArgument(unsupported, 'not set with RateLimiterTollgate', o[unsupported]);
    }
    checkKnownKeys(o, ['points', 'duration', 'blockDuration', 'keyPrefix', ...ADAPTER_TABLE_KEYS], 'RateLimiterTollgate options');
    this.points = o.points === undefined ? 4 : checkInteger(o.points, 'points', 1, 2 ** 40);
    this.duration = o.duration === undefined ? 1 : checkInteger(o.duration, 'duration', 0, 2 ** 30);
    this.blockDuration = o.blockDuration === undefined ? 0 : checkInteger(o.blockDuration, 'blockDuration', 0, 2 ** 30);
    this.keyPrefix = o.keyPrefix === undefined ? 'rlflx' : String(o.keyPrefix);
    this.#prefix = this.keyPrefix.length > 0 ? `${this.keyPrefix}:` : '';
    this.#windowMs = this.duration === 0 ? FOREVER_MS : this.duration * 1000;
    // Every point is counted, past `points` too (see hitCounter).
    const ceiling = Math.floor(MAX_PRODUCT / this.#windowMs);
    if (ceiling < 2 * this.points) throw outOfRange('points', `at most ${Math.floor(ceiling / 2)} with this duration`, this.points);
    ({ limiter: this.#limiter, ceiling: this.#ceiling } = hitCounter(o as RateLimiterTollgateOptions, this.#windowMs));
  }

  /** The key as stored: `keyPrefix:key`, as rate-limiter-flexible's getKey() (hashed past 256 characters). */
  getKey(key: string | number): string {
    return storedKey(this.#prefix + String(key));
  }

  #ms(resetMs: number): number {
    return this.duration === 0 ? -1 : resetMs;
  }

  // Whether a call of n points started its key's duration: all the key holds is these n points.
  // NOTE: a key rewarded back to 0 points counts as new here (rate-limiter-flexible keeps its record).
  #started(consumed: number, n: number): boolean {
    return consumed === n;
  }

  #result(consumed: number, resetMs: number, first: boolean): RateLimiterResult {
    return new RateLimiterResult(Math.max(this.points - consumed, 0), this.#ms(resetMs), consumed, first);
  }

  /** Adds `points` to the key: resolves while within `points`, rejects (with the result) beyond. */
  consume(key: string | number, points = 1): Promise<RateLimiterResult> {
    // Written out, not through #settle: this is the call made per request.
    try {
      const n = points === 1 ? 1 : checkInteger(points, 'points', 1, this.points * 2);
      const stored = this.getKey(key);
      const d = this.#limiter.consume(stored, n);
      if (!d.allowed) return Promise.reject(new RateLimiterResult(0, d.retryAfterMs, this.points + 1, false));
      const consumed = this.#ceiling - d.remaining;
      if (consumed <= this.points) return Promise.resolve(this.#result(consumed, d.resetMs, this.#started(consumed, n)));
      if (this.blockDuration > 0 && consumed - n <= this.points) {
        // Crossed the limit with this call: blocked for blockDuration, counted afresh afterwards.
        this.#limiter.reset(stored);
        this.#limiter.block(stored, this.blockDuration * 1000);
        return Promise.reject(new RateLimiterResult(0, this.blockDuration * 1000, consumed, false));
      }
      return Promise.reject(this.#result(consumed, d.resetMs, false));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Adds points without rejecting. */
  penalty(key: string | number, points = 1): Promise<RateLimiterResult> {
    return this.#settle(() => {
      const n = checkInteger(points, 'points', 1, this.points * 2);
      const d = this.#limiter.consume(this.getKey(key), n);
      const consumed = d.allowed ? this.#ceiling - d.remaining : this.points + 1;
      return { reject: false, result: this.#result(consumed, d.allowed ? d.resetMs : d.retryAfterMs, d.allowed && this.#started(consumed, n)) };
    });
  }

  /** Takes points back (never below zero). */
  reward(key: string | number, points = 1): Promise<RateLimiterResult> {
    return this.#settle(() => {
      const n = checkInteger(points, 'points', 1, 2 ** 40);
      const stored = this.getKey(key);
      this.#limiter.refund(stored, n);
      const d = this.#limiter.peek(stored);
      return { reject: false, result: this.#result(this.#ceiling - d.remaining, d.resetMs, false) };
    });
  }

  /** The key's result, or null when it has consumed nothing in the current duration. */
  get(key: string | number): Promise<RateLimiterResult | null> {
    return this.#settle(() => {
      const d = this.#limiter.peek(this.getKey(key));
      if (!d.allowed) return { reject: false, result: new RateLimiterResult(0, d.retryAfterMs, this.points + 1, false) };
      const consumed = this.#ceiling - d.remaining;
      return { reject: false, result: consumed === 0 ? null : this.#result(consumed, d.resetMs, false) };
    });
  }

  /** Sets the key's consumed points (secDuration: the limiter's duration; other values are refused). */
  set(key: string | number, points: number, secDuration = this.duration): Promise<RateLimiterResult> {
    return this.#settle(() => {
      if (secDuration !== this.duration) throw outOfRange('secDuration', `the limiter's duration (${this.duration})`, secDuration);
      const n = checkInteger(points, 'points', 0, this.#ceiling);
      const stored = this.getKey(key);
      this.#limiter.reset(stored);
      if (n > 0) this.#limiter.consume(stored, n);
      return { reject: false, result: new RateLimiterResult(Math.max(this.points - n, 0), this.#ms(this.#windowMs), n, false) };
    });
  }

  /** Blocks the key for secDuration seconds; afterwards it starts afresh. */
  block(key: string | number, secDuration: number): Promise<RateLimiterResult> {
    return this.#settle(() => {
      const seconds = checkInteger(secDuration, 'secDuration', 1, 2 ** 40);
      const stored = this.getKey(key);
      this.#limiter.reset(stored);
      this.#limiter.block(stored, seconds * 1000);
      return { reject: false, result: new RateLimiterResult(0, seconds * 1000, this.points + 1, false) };
    });
  }

  /** Forgets the key; true if it held anything. */
  delete(key: string | number): Promise<boolean> {
    return this.#settle(() => ({ reject: false, result: this.#limiter.reset(this.getKey(key)) }));
  }

  /** Closes the table (pending calls have all settled: every call settles synchronously). */
  close(): void {
    this.#limiter.close();
  }

  // Every outcome as a settled promise, errors included (bad arguments, a closed limiter): nothing throws synchronously.
  #settle<T>(run: () => { reject: boolean; result: T }): Promise<T> {
    try {
      const { reject, result } = run();
      return reject ? Promise.reject(result) : Promise.resolve(result);
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
