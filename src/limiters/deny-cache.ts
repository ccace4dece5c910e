// A local memory of denials: a key a remote store (Redis) denied is answered here, with no round
// trip, until its retry time, with the same fields the store gave, counted down. Any limiter whose
// decisions are remote can keep one; the cache itself is a tollgate table (in process, or shared
// memory for every process of a host).
import { monotonicMs, type ManualClock } from '../common/clock.js';
import type { Decision } from '../common/decision.js';
import { fixedWindow } from '../common/policies.js';
import type { SharedMemoryStore } from '../engine/shared-memory.js';
import { Limiter } from './limiter.js';

/** Where the cache's table lives: `capacity` keys in this process, or a shared-memory store. */
export type DenyCacheConfig = { readonly capacity: number; readonly store?: undefined } | { readonly store: SharedMemoryStore; readonly capacity?: undefined };

/** Denials whose full Decision is kept (oldest forgotten first); the table itself holds more. */
const MAX_REMEMBERED_DENIALS = 10_000;

export class DenyCache {
  /** A limit no request reaches: the table only ever answers through block(). */
  readonly #table: Limiter;
  readonly #clock: ManualClock | undefined;
  /**
   * What the store said when it denied a key, so that an answer from the cache carries the same
   * fields (limit, remaining, reset, which policy). A denial cached by another process through a
   * shared table is not here: it is answered with `fallbackLimit` and its retry time as the reset.
   */
  readonly #denials = new Map<string, { readonly decision: Decision; readonly at: number }>();
  readonly #fallbackLimit: number;

  constructor(config: DenyCacheConfig, fallbackLimit: number, clock: ManualClock | undefined) {
    const policy = fixedWindow({ limit: 2 ** 30, windowMs: 1000 });
    const clockOption = clock === undefined ? {} : { clock };
    this.#table =
      config.store !== undefined ? new Limiter({ policy, store: config.store, ...clockOption }) : new Limiter({ policy, capacity: config.capacity, ...clockOption });
    this.#clock = clock;
    this.#fallbackLimit = fallbackLimit;
  }

  #now(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
  }

  /** The cached denial of `key`, or undefined when the key is not known to be denied now. */
  answer(key: string): Decision | undefined {
    const retryAfterMs = this.#table.waitFor(key);
    if (retryAfterMs === 0) return undefined;
    const remembered = this.#denials.get(key);
    if (remembered !== undefined) {
      const elapsed = this.#now() - remembered.at;
      const d = remembered.decision;
      // The same denial if the cache's retry time is the one the store gave, counted down.
      if (Math.abs(d.retryAfterMs - elapsed - retryAfterMs) <= 1) {
        const out: Decision = { allowed: false, limit: d.limit, remaining: d.remaining, resetMs: Math.max(0, d.resetMs - elapsed), retryAfterMs };
        return d.policyIndex === undefined ? out : { ...out, policyIndex: d.policyIndex };
      }
    }
    return { allowed: false, limit: this.#fallbackLimit, remaining: 0, resetMs: retryAfterMs, retryAfterMs };
  }

  /** Remembers a denial (of cost 1 under the policies' own limits) until its retry time. */
  remember(key: string, decision: Decision): void {
    this.#table.block(key, decision.retryAfterMs);
    if (this.#denials.size >= MAX_REMEMBERED_DENIALS) {
      const oldest = this.#denials.keys().next();
      if (!oldest.done) this.#denials.delete(oldest.value);
    }
    this.#denials.delete(key);
    this.#denials.set(key, { decision, at: this.#now() });
  }

  /** Denies `key` for `durationMs` (the limiter's own block()). */
  block(key: string, durationMs: number): void {
    this.#table.block(key, durationMs);
  }

  /** Forgets `key` (after a refund or a reset). */
  forget(key: string): void {
    this.#table.reset(key);
    this.#denials.delete(key);
  }

  close(): void {
    this.#table.close();
    this.#denials.clear();
  }
}
