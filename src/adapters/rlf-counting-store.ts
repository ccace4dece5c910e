// rate-limiter-flexible's counts over tollgate tables: a hit-counting limiter per duration, and
// which duration each key given another one (customDuration, set) lives under.
import { makeRoom } from '../common/bounded-map.js';
import type { Decision } from '../common/decision.js';
import { storedKey } from '../common/keys.js';
import type { MaybePromise, RateLimiter } from '../limiters/rate-limiter.js';
import type { Hit, HitStore } from './rlf-hit-store.js';

/** `next` of a value that may be a promise, without making one when it is not. */
export function andThen<T, U>(value: MaybePromise<T>, next: (v: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** "Never expires": a record of about two years (a fixed window's limit times its length stays within 2^50). */
export const FOREVER_MS = 2 ** 36;
/** A block "for ever": as long as a table keeps one (2^50 ms); reported as -1. */
export const FOREVER_BLOCK_MS = 2 ** 50;
/** Keys given another duration than the limiter's own (customDuration, set) remembered at most. */
export const MAX_OTHER_DURATIONS = 100_000;

/** A counter for one duration: a hit-counting limiter (in process or shared memory) and its limit nobody reaches. */
export interface Counter {
  readonly counter: RateLimiter;
  readonly ceiling: number;
}

/**
 * A counter per duration (a fixed window whose limit nobody reaches: see hitCounter), and which
 * duration each key given another one lives under. `make(windowMs)` makes the counters.
 */
export class CountingStore implements HitStore {
  readonly #defaultMs: number;
  readonly #tables = new Map<number, Counter>();
  readonly #otherDuration = new Map<string, number>();
  readonly #make: (windowMs: number) => Counter;

  constructor(defaultMs: number, make: (windowMs: number) => Counter) {
    this.#defaultMs = defaultMs;
    this.#make = make;
  }

  #table(durationMs: number) {
    const windowMs = durationMs === 0 ? FOREVER_MS : durationMs;
    let table = this.#tables.get(windowMs);
    if (table === undefined) {
      table = this.#make(windowMs);
      this.#tables.set(windowMs, table);
    }
    return table;
  }

  #hit(table: Counter, d: Decision, durationMs: number, created: boolean): Hit {
    // Refused by a table whose limit nobody reaches: only a block does that.
    if (!d.allowed) return { consumed: 0, ms: d.retryAfterMs >= FOREVER_BLOCK_MS / 2 ? -1 : d.retryAfterMs, created: false, blocked: true };
    return { consumed: table.ceiling - d.remaining, ms: durationMs === 0 ? -1 : d.resetMs, created };
  }

  #durationOf(key: string): number {
    // Most limiters never give a key another duration: no lookup then.
    return this.#otherDuration.size === 0 ? this.#defaultMs : (this.#otherDuration.get(key) ?? this.#defaultMs);
  }

  #remember(key: string, durationMs: number): void {
    if (durationMs === this.#defaultMs) {
      this.#otherDuration.delete(key);
      return;
    }
    makeRoom(this.#otherDuration, MAX_OTHER_DURATIONS);
    this.#otherDuration.set(key, durationMs);
  }

  incr(key: string, points: number, durationMs: number): MaybePromise<Hit> {
    const current = this.#durationOf(key);
    if (points === 0) {
      // consume(key, 0): the key as it is. A key holding nothing answers as a new record of
      // `durationMs` would (as RateLimiterRedis' SET NX), but none is kept: see set(key, 0).
      const table = this.#table(current);
      return andThen(table.counter.peek(key), (d) =>
        d.allowed && table.ceiling - d.remaining === 0 ? { consumed: 0, ms: durationMs === 0 ? -1 : durationMs, created: true } : this.#hit(table, d, current, false),
      );
    }
    // The common case: the limiter's own duration for a key never given another.
    if (current === durationMs && current === this.#defaultMs) {
      const table = this.#table(current);
      return andThen(table.counter.consume(key, points), (d) => this.#hit(table, d, current, table.ceiling - d.remaining === points));
    }
    // A record of another duration: added to while it lives; else a new one of `durationMs`.
    const held = this.#table(current);
    return andThen(held.counter.peek(key), (p) => {
      if (!p.allowed) return this.#hit(held, p, current, false);
      const live = held.ceiling - p.remaining > 0;
      const target = live ? current : durationMs;
      if (!live) this.#remember(key, durationMs);
      const table = this.#table(target);
      return andThen(table.counter.consume(key, points), (d) => this.#hit(table, d, target, !live));
    });
  }

  key(text: string): string {
    return storedKey(text);
  }

  get(key: string): MaybePromise<Hit | null> {
    const duration = this.#durationOf(key);
    const table = this.#table(duration);
    return andThen(table.counter.peek(key), (d) => (d.allowed && table.ceiling - d.remaining === 0 ? null : this.#hit(table, d, duration, false)));
  }

  decr(key: string, points: number): MaybePromise<Hit | null> {
    const duration = this.#durationOf(key);
    const table = this.#table(duration);
    // The counter's own refund: the record keeps its window (and a block stays).
    return andThen(table.counter.refund(key, points), () => andThen(table.counter.peek(key), (d) => (d.allowed && table.ceiling - d.remaining === 0 ? null : this.#hit(table, d, duration, false))));
  }

  block(key: string, ms: number): MaybePromise<unknown> {
    return andThen(this.delete(key), () => this.#table(this.#defaultMs).counter.block(key, ms === 0 ? FOREVER_BLOCK_MS : ms));
  }

  set(key: string, points: number, durationMs: number): MaybePromise<Hit> {
    return andThen(this.delete(key), () => {
      this.#remember(key, durationMs);
      const table = this.#table(durationMs);
      if (points === 0) return { consumed: 0, ms: durationMs === 0 ? -1 : durationMs, created: true };
      return andThen(table.counter.consume(key, points), (d) => this.#hit(table, d, durationMs, true));
    });
  }

  delete(key: string): MaybePromise<boolean> {
    const table = this.#table(this.#durationOf(key));
    this.#otherDuration.delete(key);
    return table.counter.reset(key);
  }

  close(): void {
    for (const { counter } of this.#tables.values()) counter.close();
    this.#tables.clear();
  }
}
