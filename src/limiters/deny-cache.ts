// A local memory of denials: a key a remote store (Redis) denied is answered here, with no round
// trip, until its retry time, with the same fields the store gave, counted down. Any limiter whose
// decisions are remote can keep one; the cache itself is a tollgate table (in process, or shared
// memory for every process of a host).
import { monotonicMs, type ManualClock } from '../common/clock.js';
import { makeRoom } from '../common/bounded-map.js';
import type { Decision } from '../common/decision.js';
import { fixedWindow } from '../common/policies.js';
import type { SharedMemoryStore } from '../engine/shared-memory.js';
import { Limiter } from './limiter.js';

/** Where the cache's table lives: `capacity` keys in this process, or a shared-memory store. */
export type DenyCacheConfig = { readonly capacity: number; readonly store?: undefined } | { readonly store: SharedMemoryStore; readonly capacity?: undefined };

/** Denials whose full Decision is kept (oldest forgotten first); the table itself holds more. */
const MAX_REMEMBERED_DENIALS = 10_000;

interface Denial {
  /** When the denial ends, on the cache's clock. */
  readonly until: number;
  /** What the store said, and when, for answers with its fields; undefined after a block(). */
  readonly decision: Decision | undefined;
  readonly at: number;
}

export class DenyCache {
  /**
   * Shared between processes: a tollgate table in shared memory, at a limit no request reaches, so
   * it only ever answers through block(). In process there is none: the Map below is the cache
   * (a Map lookup per request is cheaper than a table's).
   */
  readonly #table: Limiter | undefined;
  readonly #capacity: number;
  readonly #clock: ManualClock | undefined;
  /**
   * This process' denials, oldest first: in process, the cache itself (bounded by its capacity);
   * with a shared table, what the store said when it denied a key, so that an answer carries the
   * same fields (limit, remaining, reset, which policy). A denial cached by another process
   * through a shared table is not here: it is answered with `fallbackLimit` and its retry time as
   * the reset.
   */
  readonly #denials = new Map<string, Denial>();
  readonly #fallbackLimit: number;

  constructor(config: DenyCacheConfig, fallbackLimit: number, clock: ManualClock | undefined) {
    const policy = fixedWindow({ limit: 2 ** 30, windowMs: 1000 });
    this.#table = config.store === undefined ? undefined : new Limiter({ policy, store: config.store, ...(clock === undefined ? {} : { clock }) });
    this.#capacity = config.store === undefined ? config.capacity : MAX_REMEMBERED_DENIALS;
    this.#clock = clock;
    this.#fallbackLimit = fallbackLimit;
  }

  #now(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
  }

  /** The cached denial of `key`, or undefined when the key is not known to be denied now. */
  answer(key: string): Decision | undefined {
    const now = this.#now();
    let retryAfterMs: number;
    const own = this.#denials.get(key);
    if (this.#table === undefined) {
      if (own === undefined) return undefined;
      if (own.until <= now) {
        this.#denials.delete(key);
        return undefined;
      }
      retryAfterMs = own.until - now;
    } else {
      retryAfterMs = this.#table.waitFor(key);
      if (retryAfterMs === 0) return undefined;
    }
    const d = own?.decision;
    if (own !== undefined && d !== undefined) {
      const elapsed = now - own.at;
      // The same denial if the cache's retry time is the one the store gave, counted down.
      if (Math.abs(d.retryAfterMs - elapsed - retryAfterMs) <= 1) {
        const out: Decision = { allowed: false, limit: d.limit, remaining: d.remaining, resetMs: Math.max(0, d.resetMs - elapsed), retryAfterMs };
        return d.policyIndex === undefined ? out : { ...out, policyIndex: d.policyIndex };
      }
    }
    return { allowed: false, limit: this.#fallbackLimit, remaining: 0, resetMs: retryAfterMs, retryAfterMs };
  }

  #set(key: string, denial: Denial): void {
    this.#denials.delete(key);
    makeRoom(this.#denials, this.#capacity);
    this.#denials.set(key, denial);
  }

  /** Remembers a denial (of cost 1 under the policies' own limits) until its retry time. */
  remember(key: string, decision: Decision): void {
    const now = this.#now();
    this.#table?.block(key, decision.retryAfterMs);
    const until = Math.max(now + decision.retryAfterMs, this.#denials.get(key)?.until ?? 0);
    this.#set(key, { until, decision, at: now });
  }

  /** Denies `key` for `durationMs` (the limiter's own block()); a shorter block never cuts a longer one. */
  block(key: string, durationMs: number): void {
    const now = this.#now();
    this.#table?.block(key, durationMs);
    const previous = this.#denials.get(key);
    const until = Math.max(now + durationMs, previous?.until ?? 0);
    this.#set(key, { until, decision: previous?.decision, at: previous?.at ?? now });
  }

  /** Forgets `key` (after a refund or a reset). */
  forget(key: string): void {
    this.#table?.reset(key);
    this.#denials.delete(key);
  }

  close(): void {
    this.#table?.close();
    this.#denials.clear();
  }
}
