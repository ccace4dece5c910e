// The pure-TypeScript table: per-key state in typed arrays behind Maps, with the native table's
// expiry and capacity rules.
import { monotonicMs } from '../../common/clock.js';
import { DEFAULT_TOP_KEYS_PERIOD_MS } from '../../common/constants.js';
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
 * entry a full table gives up: the native table looks at the 8 entries of the new key's two
 * buckets (after trying to move one of them aside), this one at the next 8 slots of a rotating
 * cursor; both take an expired entry first, then the one nearest to expiry. Neither order can be
 * the other's (the native one follows a hash seeded at random per table), so at capacity with
 * onFull 'evict' the engines may decide differently for a key one of them evicted, and only for
 * such a key (docs/api.md, onFull; held by test/table.test.ts 'both engines at capacity').
 *
 * Layout: a KeyIndex (many small Maps) from key to slot, the slot's state and expiry in a
 * SlotStore's typed arrays, and blocks, which are rare, in a Map of their own (as the native table
 * keeps a block in an entry beside the key's counters).
 */
export class JsTable implements TableEngine {
  readonly #index: KeyIndex;
  readonly #slots: SlotStore;
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
  #blockCursor: Iterator<[string, number]> | undefined;
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

  /** When the key's block ends, or 0 when it has none in force (an ended one is forgotten). */
  #blockedUntil(key: string, now: number): number {
    const until = this.#blocks.get(key);
    if (until === undefined) return 0;
    if (until > now) return until;
    this.#blocks.delete(key);
    return 0;
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

  /** A slot for a new key, entered in `map`; -1 (and the verdict rewritten) when refused. */
  #claim(key: string, map: Map<string, number>, now: number): number {
    if (!this.#makeRoom(now)) return -1;
    const slot = this.#slots.take();
    this.#slots.setExpiry(slot, 0);
    this.#slots.setKey(slot, key);
    map.set(key, slot);
    return slot;
  }

  /** Whether one more entry fits, after reclaiming (or, when full, evicting) as the table's rules say. */
  #makeRoom(now: number): boolean {
    this.#reclaimStep(now);
    if (this.#slots.used + this.#blocks.size < this.#capacity) return true;
    // Full: the first expired or else the nearest-to-expiry of the next 8 slots in use.
    const slots = this.#slots;
    let victim = -1;
    let victimExpiry = Infinity;
    for (let seen = 0, tries = 0; seen < PROBE_WINDOW && tries < slots.allocated; tries++) {
      const slot = this.#advance();
      if (slots.keyOf(slot) === undefined) continue;
      seen++;
      const expiry = slots.expiry(slot);
      if (expiry < victimExpiry) {
        victim = slot;
        victimExpiry = expiry;
        if (expiry <= now) break;
      }
    }
    if (victim < 0) {
      // Every place is taken by blocks: refuse (or evict one block).
      if (!this.#evict || this.#blocks.size === 0) return this.#refuse(Infinity, now);
      const first = this.#blocks.keys().next().value as string;
      this.#blocks.delete(first);
      this.#evictions++;
      return true;
    }
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

  #release(slot: number): void {
    if (slot === this.#hotSlot) this.#hotKey = undefined;
    const key = this.#slots.keyOf(slot) as string;
    this.#index.mapOf(key).delete(key);
    this.#slots.give(slot);
  }

  /** Two slots (and one block) looked at per insert: expired ones are reclaimed without a timer. */
  #reclaimStep(now: number): void {
    const slots = this.#slots;
    for (let k = 0; k < 2 && slots.allocated > 0; k++) {
      const slot = this.#advance();
      if (slots.keyOf(slot) !== undefined && slots.expiry(slot) <= now) {
        this.#release(slot);
        this.#swept++;
      }
    }
    if (this.#blocks.size !== 0) {
      this.#blockCursor ??= this.#blocks.entries();
      const next = this.#blockCursor.next();
      if (next.done === true) this.#blockCursor = undefined;
      else if (next.value[1] <= now) {
        this.#blocks.delete(next.value[0]);
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
    if (current === undefined && !this.#makeRoom(now)) return false;
    this.#blocks.set(key, Math.max(current ?? 0, until));
    return true;
  }

  reset(key: string): boolean {
    const now = this.#now();
    const map = this.#index.mapOf(key);
    const slot = map.get(key);
    let live = false;
    if (slot !== undefined) {
      live = this.#slots.expiry(slot) > now;
      this.#release(slot);
    }
    const until = this.#blocks.get(key);
    if (until !== undefined) {
      live ||= until > now;
      this.#blocks.delete(key);
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
    for (const [key, until] of this.#blocks) {
      if (until <= now) {
        this.#blocks.delete(key);
        count++;
      }
    }
    this.#swept += count;
    return count;
  }

  stats(): TableStats {
    const entries = this.#slots.used + this.#blocks.size;
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
    this.#blockCursor = undefined;
  }
}
