// Where RateLimiterTollgate keeps its points: per-key records of a duration, as
// rate-limiter-flexible's stores keep them. Two kinds: tollgate's own tables (in process, shared
// memory) and rate-limiter-flexible's own Redis format (peer-formats/rlf-redis-store.ts).
import type { MaybePromise } from '../limiters/rate-limiter.js';

export interface Hit {
  /** Points the key holds (0 while blocked: see `blocked`; below 0 after rewards, in rate-limiter-flexible's Redis format). */
  readonly consumed: number;
  /** ms until its record (or block) ends; -1 for never. */
  readonly ms: number;
  /** Whether this call made the record. */
  readonly created: boolean;
  /** The key is blocked (block(), blockDuration): refused without counting, by every process sharing the table. */
  readonly blocked?: boolean;
}

export interface HitStore {
  /** The key as this store holds it, from `keyPrefix:key`. */
  key(text: string): string;
  incr(key: string, points: number, durationMs: number): MaybePromise<Hit>;
  get(key: string): MaybePromise<Hit | null>;
  set(key: string, points: number, durationMs: number): MaybePromise<Hit>;
  /**
   * Takes points back from the key's record; null when it holds none. Tables keep its duration and
   * never go below zero; rate-limiter-flexible's format counts down as it does (a new record of
   * `durationMs` included).
   */
  decr(key: string, points: number, durationMs: number): MaybePromise<Hit | null>;
  delete(key: string): MaybePromise<boolean>;
  /**
   * Refuses the key for `ms` (0: for ever), seen by every process sharing the store. `points`: what
   * the key then holds where the store keeps blocks as counts (rate-limiter-flexible's format).
   */
  block(key: string, ms: number, points: number): MaybePromise<unknown>;
  close(): void;
}
