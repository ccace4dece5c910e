// The pure-TypeScript table: a Map of per-key state with the native table's expiry and capacity rules.
import { monotonicMs } from '../../clock.js';
import { Detail, PROBE_WINDOW, plannedCapacity, type TableConfig, type TableEngine, type TableStats } from '../table-engine.js';
import { decide, freshState, refund, type CounterState, type PolicyView, type Verdict } from './algorithms.js';
import { TopKeysSummary } from './top-keys.js';
import type { RawTopKey } from '../table-engine.js';

/** A key's state, live until expiresAt, and its block, if any, in force until blockedUntil (as the native table's two entries). */
interface Entry extends CounterState {
  expiresAt: number;
  blockedUntil: number;
}

/** When nothing of the entry is left: its state has expired and its block has ended. */
function endOf(entry: Entry): number {
  return Math.max(entry.expiresAt, entry.blockedUntil);
}

/**
 * NOTE: decisions match the native table exactly for every key it holds. What differs is which
 * entry a full table gives up: the native table looks at the 8 entries of the new key's two
 * buckets (after trying to move one of them aside), this one at the next 8 entries of a rotating
 * cursor; both take an expired entry
 * first, then the one nearest to expiry.
 */
export class JsTable implements TableEngine {
  readonly #map = new Map<string, Entry>();
  readonly #policy: PolicyView;
  readonly #capacity: number;
  readonly #limit: number;
  readonly #evict: boolean;
  readonly #detail: Float64Array;
  readonly #clock: Float64Array | undefined;
  readonly #verdict: Verdict = { allowed: false, limit: 0, remaining: 0, resetMs: 0, retryMs: 0 };
  readonly #fresh: CounterState = { a: 0, b: 0, c: 0 };
  #cursor: Iterator<[string, Entry]> | undefined;
  #evictions = 0;
  #refused = 0;
  #swept = 0;
  readonly #top: TopKeysSummary | undefined;
  #allowed = 0;
  #denied = 0;
  #deniedBlocked = 0;
  #nearLimit = 0;

  constructor(config: TableConfig) {
    this.#policy = {
      code: config.kind,
      windowMs: config.windowMs,
      rateTokens: config.rateTokens,
      rateIntervalMs: config.rateIntervalMs,
    };
    this.#capacity = plannedCapacity(config.capacity, config.shards).capacity;
    this.#limit = config.limit;
    this.#top = config.topKeys === true ? new TopKeysSummary(256, config.topKeysPeriodMs ?? 60_000) : undefined;
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

  #decide(key: string, cost: number, limit: number, now: number, commit: boolean): Verdict {
    const entry = this.#map.get(key);
    const live = entry !== undefined && entry.expiresAt > now;
    const state = live ? entry : freshState(this.#policy, limit, now, this.#fresh);
    if (entry !== undefined && entry.blockedUntil > now) {
      if (commit) {
        this.#deniedBlocked++;
        this.#top?.record(key, true, now);
      }
      const v = decide(this.#policy, limit, state, now, cost, false, this.#verdict);
      v.allowed = false;
      v.remaining = 0;
      v.resetMs = Math.max(live ? entry.expiresAt : 0, entry.blockedUntil) - now;
      v.retryMs = cost > limit ? Infinity : Math.max(v.retryMs, entry.blockedUntil - now);
      return v;
    }
    // A new key is decided on the scratch state: a denial must not write anything.
    const v = decide(this.#policy, limit, state, now, cost, commit, this.#verdict);
    if (!commit) return v;
    // As the native table: the policy's verdict, recorded before a full table may refuse the key.
    this.#top?.record(key, !v.allowed, now);
    if (!v.allowed) {
      this.#denied++;
      return v;
    }
    let target = entry;
    if (target === undefined) {
      target = this.#claim(key, now);
      if (target === undefined) return v; // #claim rewrote the verdict as refused
    }
    this.#allowed++;
    if (v.remaining * 5 <= v.limit) this.#nearLimit++;
    if (!live) {
      target.a = this.#fresh.a;
      target.b = this.#fresh.b;
      target.c = this.#fresh.c;
    }
    target.expiresAt = now + v.resetMs;
    return v;
  }

  /** Room for a new key: a free place, else an expired or the nearest-to-expiry sampled entry. */
  #claim(key: string, now: number): Entry | undefined {
    this.#reclaimStep(now);
    const map = this.#map;
    if (map.size >= this.#capacity) {
      let victim: string | undefined;
      let victimExpiry = Infinity;
      for (let j = 0; j < PROBE_WINDOW; j++) {
        const next = this.#next();
        if (next === undefined) break;
        const [k, e] = next;
        const end = endOf(e);
        if (end <= now) {
          victim = k;
          victimExpiry = end;
          break;
        }
        if (end < victimExpiry) {
          victim = k;
          victimExpiry = end;
        }
      }
      if (victimExpiry <= now) {
        this.#swept++;
      } else if (this.#evict) {
        this.#evictions++;
      } else {
        this.#refused++;
        const v = this.#verdict;
        v.allowed = false;
        v.remaining = 0;
        v.resetMs = 0;
        v.retryMs = victimExpiry - now;
        return undefined;
      }
      map.delete(victim as string);
    }
    const entry: Entry = { a: 0, b: 0, c: 0, expiresAt: 0, blockedUntil: 0 };
    map.set(key, entry);
    return entry;
  }

  #next(): [string, Entry] | undefined {
    for (let attempt = 0; attempt < 2; attempt++) {
      this.#cursor ??= this.#map.entries();
      const r = this.#cursor.next();
      if (!r.done) return r.value;
      this.#cursor = undefined;
    }
    return undefined;
  }

  #reclaimStep(now: number): void {
    for (let k = 0; k < 2; k++) {
      const next = this.#next();
      if (next === undefined) return;
      if (endOf(next[1]) <= now) {
        this.#map.delete(next[0]);
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
    const entry = this.#map.get(key);
    if (entry === undefined || entry.expiresAt <= now) return;
    entry.expiresAt = now + refund(this.#policy, limit, entry, now, amount);
  }

  block(key: string, durationMs: number): boolean {
    const now = this.#now();
    const until = now + durationMs;
    // The key's counters are left as they are: a block is kept beside them, never in them.
    const entry = this.#map.get(key) ?? this.#claim(key, now);
    if (entry === undefined) return false;
    entry.blockedUntil = Math.max(entry.blockedUntil, until);
    return true;
  }

  reset(key: string): boolean {
    const entry = this.#map.get(key);
    if (entry === undefined) return false;
    this.#map.delete(key);
    return endOf(entry) > this.#now();
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
    let count = 0;
    for (const [key, entry] of this.#map) {
      if (endOf(entry) <= now) {
        this.#map.delete(key);
        count++;
      }
    }
    this.#swept += count;
    return count;
  }

  stats(): TableStats {
    return {
      entries: this.#map.size,
      capacity: this.#capacity,
      shards: 1,
      evictions: this.#evictions,
      refused: this.#refused,
      swept: this.#swept,
      lockRecoveries: 0,
      memoryBytes: 0,
      allowed: this.#allowed,
      denied: this.#denied,
      deniedBlocked: this.#deniedBlocked,
      nearLimit: this.#nearLimit,
      lockContended: 0,
      maxShardEntries: this.#map.size,
      lockTimeouts: 0,
    };
  }

  topKeys(): RawTopKey[] {
    return this.#top?.collect(this.#now()) ?? [];
  }

  close(): void {
    this.#map.clear();
    this.#cursor = undefined;
  }
}
