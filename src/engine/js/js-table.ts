// The pure-TypeScript table: per-key state in typed arrays behind Maps, with the native table's
// expiry and capacity rules.
import { monotonicMs } from '../../common/clock.js';
import { DEFAULT_TOP_KEYS_PERIOD_MS } from '../../common/constants.js';
import { fnv1a } from '../../common/fnv.js';
import { PolicyCode } from '../../common/policies.js';
import { Detail, PROBE_WINDOW, plannedCapacity, type TableConfig, type TableEngine, type TableStats } from '../table-engine.js';
import { decide, freshState, refund, type PolicyView, type Verdict } from './algorithms.js';
import { newState, type CounterState } from './counter-state.js';
import { KeyIndex } from './key-index.js';
import { SlotStore } from './slot-store.js';
import { TopKeysSummary } from './top-keys.js';
import type { RawTopKey } from '../table-engine.js';

/**
 * NOTE: decisions match the native table exactly for every key it holds. What differs is which
 * entries a full table weighs for a new key: the native table the 8 entries of the key's two
 * buckets (after trying to move one of them aside), this one 8 slots (see #makeRoom); both take
 * an expired entry first, then the one nearest to expiry (to evict it, or to say when a refused
 * key finds room). Neither can look where the other does (the native buckets follow a hash seeded
 * at random per table), so at capacity with onFull 'evict' the engines may decide differently for
 * a key one of them evicted, and only for such a key; with 'refuse' nothing is forgotten, and in a
 * table of at most 8 slots, where both look at every entry, the engines decide alike call for call
 * (docs/api.md, onFull; held by test/table.test.ts 'both engines at capacity' and
 * test/differential.test.ts).
 *
 * Layout: a KeyIndex (many small Maps) from key to slot, the slot's state and expiry in a
 * SlotStore's typed arrays. A block takes a slot of its own beside the key's counters, as it takes
 * an entry of its own in the native table, so that a full table counts it, reclaims it when it
 * ends and weighs its end against the counters' when a new key looks for room, as the native
 * table does; blocks, which are rare, are found through a Map of their own.
 */
export class JsTable implements TableEngine {
  readonly #index: KeyIndex;
  readonly #slots: SlotStore;
  // Blocked keys and their block's slot (whose expiry is the block's end).
  readonly #blocks = new Map<string, number>();
  readonly #policy: PolicyView;
  readonly #capacity: number;
  readonly #limit: number;
  readonly #evict: boolean;
  readonly #detail: Float64Array;
  readonly #clock: Float64Array | undefined;
  readonly #verdict: Verdict = { allowed: false, limit: 0, remaining: 0, resetMs: 0, retryMs: 0, expiresMs: 0 };
  // The state being decided on, copied out of (and back into) its slot.
  readonly #state: CounterState;
  #cursor = 0;
  // The last key decided and its slot: a hot key (one global limit, one busy client) skips its Map
  // lookup, as the native table skips its hash. Forgotten when that slot is released.
  #hotKey: string | undefined;
  #hotSlot = -1;
  #evictions = 0;
  #refused = 0;
  #swept = 0;
  readonly #top: TopKeysSummary | undefined;
  #allowed = 0;
  #denied = 0;
  #deniedBlocked = 0;
  #nearLimit = 0;

  constructor(config: TableConfig) {
    const code = config.kind as PolicyCode; // as policyParams made it
    this.#policy = {
      code,
      windowMs: config.windowMs,
      rateTokens: config.rateTokens,
      rateIntervalMs: config.rateIntervalMs,
    };
    this.#state = newState(code);
    this.#capacity = plannedCapacity(config.capacity, config.shards).capacity;
    this.#index = new KeyIndex(this.#capacity);
    this.#slots = new SlotStore(this.#capacity);
    this.#limit = config.limit;
    this.#top = config.topKeys === true ? new TopKeysSummary(256, config.topKeysPeriodMs ?? DEFAULT_TOP_KEYS_PERIOD_MS) : undefined;
    this.#evict = config.evict;
    this.#detail = config.detail;
    this.#clock = config.clock;
  }

  #now(): number {
    return this.#clock === undefined ? monotonicMs() : (this.#clock[0] as number);
  }

  #write(v: Verdict): boolean {
    const d = this.#detail;
    d[Detail.Allowed] = v.allowed ? 1 : 0;
    d[Detail.Limit] = v.limit;
    d[Detail.Remaining] = v.remaining;
    d[Detail.ResetMs] = v.resetMs;
    d[Detail.RetryAfterMs] = v.retryMs;
    return v.allowed;
  }

  /** When the key's block ends, or 0 when it has none in force (an ended one waits to be reclaimed). */
  #blockedUntil(key: string, now: number): number {
    const slot = this.#blocks.get(key);
    if (slot === undefined) return 0;
    const until = this.#slots.expiry(slot);
    return until > now ? until : 0;
  }

  #decide(key: string, cost: number, limit: number, now: number, commit: boolean): Verdict {
    let slot = key === this.#hotKey ? this.#hotSlot : this.#lookup(key);
    const state = this.#state;
    const slots = this.#slots;
    let expires = 0;
    if (slot !== undefined) {
      expires = slots.expiry(slot);
      if (expires > now) slots.load(slot, state);
    }
    const live = expires > now;
    if (!live) freshState(this.#policy, limit, now, state);
    if (this.#blocks.size !== 0) {
      const until = this.#blockedUntil(key, now);
      if (until !== 0) {
        if (commit) {
          this.#deniedBlocked++;
          this.#top?.record(key, true, now);
        }
        const v = decide(this.#policy, limit, state, now, cost, false, this.#verdict);
        v.allowed = false;
        v.remaining = 0;
        // As the native table: the later of the block's end and the reset the state shows.
        const shown = !live ? 0 : this.#policy.code === PolicyCode.SlidingWindow ? now + v.resetMs : expires;
        v.resetMs = Math.max(shown, until) - now;
        v.retryMs = cost > limit ? Infinity : Math.max(v.retryMs, until - now);
        return v;
      }
    }
    const v = decide(this.#policy, limit, state, now, cost, commit, this.#verdict);
    if (!commit) return v;
    // As the native table: the policy's verdict, recorded before a full table may refuse the key.
    this.#top?.record(key, !v.allowed, now);
    if (!v.allowed) {
      this.#denied++;
      return v;
    }
    if (slot === undefined) {
      slot = this.#claim(key, this.#index.mapOf(key), now);
      if (slot < 0) return v; // #claim rewrote the verdict as refused
      this.#hotKey = key;
      this.#hotSlot = slot;
    }
    this.#allowed++;
    if (v.remaining * 5 <= v.limit) this.#nearLimit++;
    slots.store(slot, state, now + v.expiresMs);
    return v;
  }

  /** The key's slot from the index (undefined when it has none); remembered as the hot key's. */
  #lookup(key: string): number | undefined {
    const slot = this.#index.mapOf(key).get(key);
    if (slot !== undefined) {
      this.#hotKey = key;
      this.#hotSlot = slot;
    }
    return slot;
  }

  /**
   * A slot for a new entry of `key`, entered in `map` (the index's, for its counters; #blocks, for
   * its block); -1 (and the verdict rewritten) when refused.
   */
  #claim(key: string, map: Map<string, number>, now: number): number {
    if (!this.#makeRoom(key, now)) return -1;
    const slot = this.#slots.take();
    this.#slots.setExpiry(slot, 0);
    this.#slots.setKey(slot, key);
    map.set(key, slot);
    return slot;
  }

  /**
   * Whether one more entry of `key` fits, after reclaiming (or, when full, evicting) as the
   * table's rules say.
   */
  #makeRoom(key: string, now: number): boolean {
    this.#reclaimStep(now);
    const slots = this.#slots;
    if (slots.used < this.#capacity) return true;
    // Full, so every slot handed out is in use. A new key's candidates are 8 slots, counters and
    // blocks alike (as the native table's are the 8 entries of its two buckets; in a table of at
    // most 8 slots, the whole table): the first expired one, else the one nearest to expiry.
    // Refusing, they are the 8 its hash points at, fixed per key, so that a key refused until a
    // candidate expires finds that candidate free when it comes back then; evicting, where any 8
    // give a victim, the next 8 of the reclaimer's cursor, whose walk in order costs less.
    const allocated = slots.allocated;
    const first = this.#evict ? this.#cursor : (fnv1a(key) >>> 0) % allocated;
    let victim = -1;
    let victimExpiry = Infinity;
    let looked = 0;
    while (looked < PROBE_WINDOW && looked < allocated) {
      const slot = first + looked < allocated ? first + looked : first + looked - allocated;
      looked++;
      const expiry = slots.expiry(slot);
      if (expiry < victimExpiry) {
        victim = slot;
        victimExpiry = expiry;
        if (expiry <= now) break;
      }
    }
    if (this.#evict) this.#cursor = first + looked < allocated ? first + looked : first + looked - allocated;
    if (victimExpiry <= now) {
      this.#swept++;
    } else if (this.#evict) {
      this.#evictions++;
    } else {
      return this.#refuse(victimExpiry, now);
    }
    this.#release(victim);
    return true;
  }

  #refuse(earliestExpiry: number, now: number): false {
    this.#refused++;
    const v = this.#verdict;
    v.allowed = false;
    v.remaining = 0;
    v.resetMs = 0;
    v.retryMs = earliestExpiry - now;
    return false;
  }

  /** The next slot number of the rotating cursor. */
  #advance(): number {
    const slot = this.#cursor;
    this.#cursor = slot + 1 >= this.#slots.allocated ? 0 : slot + 1;
    return slot;
  }

  /** Frees a slot in use: its key's counters or its key's block. */
  #release(slot: number): void {
    if (slot === this.#hotSlot) this.#hotKey = undefined;
    const key = this.#slots.keyOf(slot) as string;
    if (this.#blocks.get(key) === slot) this.#blocks.delete(key);
    else this.#index.mapOf(key).delete(key);
    this.#slots.give(slot);
  }

  /** Two slots looked at per insert: expired ones are reclaimed without a timer. */
  #reclaimStep(now: number): void {
    const slots = this.#slots;
    for (let k = 0; k < 2 && slots.allocated > 0; k++) {
      const slot = this.#advance();
      if (slots.keyOf(slot) !== undefined && slots.expiry(slot) <= now) {
        this.#release(slot);
        this.#swept++;
      }
    }
  }

  consume(key: string, cost = 1, limit = this.#limit): boolean {
    return this.#write(this.#decide(key, cost, limit, this.#now(), true));
  }

  tryConsume(key: string, cost = 1, limit = this.#limit): boolean {
    return this.#decide(key, cost, limit, this.#now(), true).allowed;
  }

  peek(key: string, cost: number, limit: number): boolean {
    return this.#write(this.#decide(key, cost, limit, this.#now(), false));
  }

  refund(key: string, amount: number, limit: number): void {
    const now = this.#now();
    const slot = this.#index.mapOf(key).get(key);
    if (slot === undefined || this.#slots.expiry(slot) <= now) return;
    const state = this.#state;
    this.#slots.load(slot, state);
    const reset = refund(this.#policy, limit, state, now, amount);
    this.#slots.store(slot, state, now + reset);
  }

  block(key: string, durationMs: number): boolean {
    const now = this.#now();
    const until = now + durationMs;
    // The key's counters are left as they are: a block is kept beside them, never in them.
    const current = this.#blocks.get(key);
    if (current !== undefined) {
      this.#slots.setExpiry(current, Math.max(this.#slots.expiry(current), until));
      return true;
    }
    const slot = this.#claim(key, this.#blocks, now);
    if (slot < 0) return false;
    this.#slots.setExpiry(slot, until);
    return true;
  }

  reset(key: string): boolean {
    const now = this.#now();
    let live = false;
    for (const slot of [this.#index.mapOf(key).get(key), this.#blocks.get(key)]) {
      if (slot === undefined) continue;
      live ||= this.#slots.expiry(slot) > now;
      this.#release(slot);
    }
    return live;
  }

  consumeMany(keys: readonly string[], cost: number, limit: number, out: Uint8Array): number {
    const now = this.#now();
    let allowed = 0;
    for (let i = 0; i < keys.length; i++) {
      const ok = this.#decide(keys[i] as string, cost, limit, now, true).allowed;
      out[i] = ok ? 1 : 0;
      if (ok) allowed++;
    }
    return allowed;
  }

  sweep(): number {
    const now = this.#now();
    const slots = this.#slots;
    let count = 0;
    for (let slot = 0; slot < slots.allocated; slot++) {
      if (slots.keyOf(slot) !== undefined && slots.expiry(slot) <= now) {
        this.#release(slot);
        count++;
      }
    }
    this.#swept += count;
    return count;
  }

  stats(): TableStats {
    const entries = this.#slots.used;
    return {
      entries,
      slots: this.#capacity,
      shards: 1,
      evictions: this.#evictions,
      refused: this.#refused,
      swept: this.#swept,
      lockRecoveries: 0,
      // An estimate: the typed arrays exactly, plus about 40 bytes per entry for the Maps' own.
      memoryBytes: this.#slots.bytes + entries * 40,
      allowed: this.#allowed,
      denied: this.#denied,
      deniedBlocked: this.#deniedBlocked,
      nearLimit: this.#nearLimit,
      lockContended: 0,
      maxShardEntries: entries,
      lockTimeouts: 0,
    };
  }

  topKeys(): RawTopKey[] {
    return this.#top?.collect(this.#now()) ?? [];
  }

  close(): void {
    this.#hotKey = undefined;
    this.#index.clear();
    this.#slots.clear();
    this.#blocks.clear();
    this.#cursor = 0;
  }
}
