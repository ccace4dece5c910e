// A local memory of denials: a key a remote store (Redis) denied at cost 1 is answered here, with
// no round trip, while what the store would answer is known: the fields it gave, counted down. A
// request whose answer is not known that way (another cost, a key whose state may have changed)
// goes to the store. Any limiter whose decisions are remote can keep one; the cache itself is a
// tollgate table (in process, or shared memory for every process of a host).
import { monotonicMs, type ManualClock } from '../common/clock.js';
import { makeRoom } from '../common/bounded-map.js';
import type { Decision } from '../common/decision.js';
import { fixedWindow, PolicyCode, type PolicyParams } from '../common/policies.js';
import type { SharedMemoryStore } from '../engine/shared-memory.js';
import { Limiter } from './limiter.js';

/** Where the cache's table lives: `capacity` keys in this process, or a shared-memory store. */
export type DenyCacheConfig = { readonly capacity: number; readonly store?: undefined } | { readonly store: SharedMemoryStore; readonly capacity?: undefined };

/** Denials whose full Decision is kept (oldest forgotten first); the table itself holds more. */
const MAX_REMEMBERED_DENIALS = 10_000;

interface Denial {
  /** What the store said to a request of cost 1 under the policies' own limits. */
  readonly decision: Decision;
  /** When it said it, on the cache's clock. */
  readonly at: number;
  /** Until when its fields only count down (see remember()), on the cache's clock. */
  readonly until: number;
  /** With a shared table: when the table's entry for the key ended as this process last saw it. */
  readonly tableEnd: number;
}

/**
 * A deny cache for a limiter of `policies`, decided at `clock`'s time (else the store's own), or
 * undefined when `config` is. Its clock is the one the denials' times follow: fixed windows end
 * by the store's real clock (their TTL), the other policies at the decisions' time. A limiter
 * mixing both under a test clock gets none, as no one clock counts its denials down.
 */
export function denyCacheFor(config: DenyCacheConfig | undefined, policies: readonly PolicyParams[], clock: ManualClock | undefined): DenyCache | undefined {
  if (config === undefined) return undefined;
  const fixed = policies.filter((p) => p.code === PolicyCode.FixedWindow).length;
  if (clock !== undefined && fixed > 0 && fixed < policies.length) return undefined;
  return new DenyCache(config, policies, fixed > 0 ? undefined : clock);
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
   * with a shared table, what the store said when it denied a key, which this process answers
   * with while the table's entry is the one it saw (no process of the host forgot the key since).
   */
  readonly #denials = new Map<string, Denial>();
  /**
   * One policy: its limit, above which a request never passes. Such a request's answer is a cost-1
   * denial's with retryAfterMs Infinity. With several, the fields would be the first policy's
   * exceeded, which the combined denial does not give: undefined.
   */
  readonly #neverAbove: number | undefined;
  /**
   * One fixed window: the limit. Its denial's retry time is its reset (the window's end), so a
   * shared table's entry alone (another process's denial) is the whole answer. Undefined for
   * the others: their reset is not in the table.
   */
  readonly #aloneLimit: number | undefined;

  constructor(config: DenyCacheConfig, policies: readonly PolicyParams[], clock: ManualClock | undefined) {
    const policy = fixedWindow({ limit: 2 ** 30, windowMs: 1000 });
    this.#table = config.store === undefined ? undefined : new Limiter({ policy, store: config.store, ...(clock === undefined ? {} : { clock }) });
    this.#capacity = config.store === undefined ? config.capacity : MAX_REMEMBERED_DENIALS;
    this.#clock = clock;
    const only = policies.length === 1 ? (policies[0] as PolicyParams) : undefined;
    this.#neverAbove = only?.limit;
    this.#aloneLimit = only?.code === PolicyCode.FixedWindow ? only.limit : undefined;
  }

  #now(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
  }

  /**
   * What the store would answer a request of `cost` (under the policies' own limits) on `key`, when
   * the cache knows it: a denial. Undefined sends the request to the store. Known: cost 1, as
   * remembered; with one policy, a cost above its limit (the same, never passing). Not any other
   * cost: a larger cost's wait (a token bucket's, a sliding window's, GCRA's) is its own.
   */
  answer(key: string, cost: number): Decision | undefined {
    const never = this.#neverAbove !== undefined && cost > this.#neverAbove;
    if (cost !== 1 && !never) return undefined;
    const now = this.#now();
    let own = this.#denials.get(key);
    if (own !== undefined && own.until <= now) {
      this.#denials.delete(key);
      own = undefined;
    }
    if (this.#table !== undefined) {
      const left = this.#table.waitFor(key);
      if (left === 0) return undefined;
      if (own === undefined || Math.abs(now + left - own.tableEnd) > 1) {
        // Another process's denial (or this one's, since changed there): only its end is known.
        if (this.#aloneLimit === undefined) return undefined;
        return { allowed: false, limit: this.#aloneLimit, remaining: 0, resetMs: left, retryAfterMs: never ? Infinity : left };
      }
    }
    if (own === undefined) return undefined;
    const d = own.decision;
    const elapsed = now - own.at;
    const out: Decision = { allowed: false, limit: d.limit, remaining: d.remaining, resetMs: d.resetMs - elapsed, retryAfterMs: never ? Infinity : d.retryAfterMs - elapsed };
    return d.policyIndex === undefined ? out : { ...out, policyIndex: d.policyIndex };
  }

  /**
   * Remembers the store's denial of a request of cost 1 under the policies' own limits. It holds
   * while each of its fields only counts down: until the request would pass (its retry time), or
   * until the key's state starts again (its reset), whichever is first. A sliding window's wait may
   * run into the next window, whose reset the store then gives; for the other policies the reset
   * is never before the retry time.
   */
  remember(key: string, decision: Decision): void {
    const holds = Math.min(decision.retryAfterMs, decision.resetMs);
    if (!(holds > 0 && Number.isFinite(holds))) return;
    const now = this.#now();
    let tableEnd = 0;
    if (this.#table !== undefined) {
      // A longer entry another process made stays; this process then knows it as the table's.
      this.#table.block(key, holds);
      tableEnd = now + this.#table.waitFor(key);
    }
    this.#denials.delete(key);
    makeRoom(this.#denials, this.#capacity);
    this.#denials.set(key, { decision, at: now, until: now + holds, tableEnd });
  }

  /** Forgets `key` (after a refund, a reset or a block: what the store answers for it changed). */
  forget(key: string): void {
    this.#table?.reset(key);
    this.#denials.delete(key);
  }

  close(): void {
    this.#table?.close();
    this.#denials.clear();
  }
}
