// The synchronous Limiter: validates in TypeScript, decides in the chosen engine, on a table in
// this process or in shared memory.
import { checkClock, clockBuffer } from './clock.js';
import { MAX_BLOCK_MS, MAX_CAPACITY, MAX_SHARDS } from './constants.js';
import type { Decision } from './decision.js';
import { closedError, invalidArgument } from './errors.js';
import { createTable, resolveEngine, type EngineChoice, type EngineName } from './engine/select-engine.js';
import { Detail, type TableEngine } from './engine/table-engine.js';
import { policyParams, type Policy, type PolicyParams } from './policies.js';
import { checkInteger, checkKey, checkObject, checkPositiveInteger, isKey, splitLimits } from './validate.js';
import { destroySharedMemory, isSharedMemoryStore, type SharedMemoryStore } from './stores/shared-memory.js';
import { WaitingLines } from './waiting-lines.js';
import type { ManualClock } from './clock.js';
import type { AcquireOptions, CallOptions, LimiterStats, RateLimiter } from './rate-limiter.js';
import { checkKnownKeys } from './option-keys.js';

export type { CallOptions, LimiterStats };

export interface LimiterOptions {
  readonly policy: Policy;
  /**
   * Where the table lives: in this process (the default), or `sharedMemory({ name, capacity })`,
   * one table for every process on the host that opens the same name (native engine only).
   */
  readonly store?: SharedMemoryStore;
  /** Keys the table can hold, at most (it grows up to this in process). Default 1,000,000. */
  readonly capacity?: number;
  /**
   * When a new key finds its probe window full of live keys: 'evict' the entry nearest to expiry
   * (the default; counted in stats().evictions) or 'refuse' the new key (denied, counted in
   * stats().refused, retryAfterMs until room frees up).
   */
  readonly onFull?: 'evict' | 'refuse';
  /** 'auto' (default): native when the addon loads, else TypeScript with one warning. */
  readonly engine?: EngineChoice;
  /**
   * In process, a table starts small (room for 1,024 keys, a few dozen KiB) and doubles as keys
   * arrive, up to `capacity`, moving entries a few slots per call so that no call waits for a
   * rehash (the default, false). true builds the whole table at creation and commits its memory
   * (huge pages, no page fault ever): resident memory is then the full table from the start.
   * A shared-memory table always has its whole capacity (its size is fixed when it is created).
   */
  readonly preallocate?: boolean;
  /** Lock shards; default chosen from the capacity (1 to 256). */
  readonly shards?: number;
  /** A manual clock for tests; by default the host's monotonic clock. */
  readonly clock?: ManualClock;
  /**
   * Keep heavy hitters for topKeys(): true, or { periodMs } (default 60,000: counts halve this
   * often, so they describe recent traffic). Off by default: it costs a few nanoseconds per call.
   * On a shared-memory table every process must agree.
   */
  readonly topKeys?: boolean | { readonly periodMs?: number };
  /** How metrics and the CLI label this limiter; default 'default'. */
  readonly name?: string;
}

/** A heavy hitter: one of the keys with the most consuming decisions (or denials) lately. */
export interface TopKey {
  readonly key: string;
  /** Decisions counted (halved every period); over-counts by at most `error`. */
  readonly count: number;
  readonly denied: number;
  readonly error: number;
  /** The native engine keeps a key's first 48 characters (UTF-16 code units): true when `key` was cut short. */
  readonly truncated: boolean;
}

export { MAX_CAPACITY };
const DEFAULT_CAPACITY = 1_000_000;
const INITIAL_CAPACITY = 1024;

/**
 * Internal: tables whose processes use other windows on purpose (the adapters' hit counters, one
 * window per route or duration, their keys apart) do not warn about it. A symbol, so no user
 * option can name it.
 */
export const QUIET_POLICY_MISMATCH = Symbol('tollgate.quietPolicyMismatch');

/** A policy as a person reads it: "fixedWindow 5 per 60000 ms". */
function describeRecord(r: { readonly limit: number; readonly windowMs: number; readonly rateTokens: number; readonly rateIntervalMs: number }): string {
  return r.windowMs > 0 ? `a window of ${r.limit} per ${r.windowMs} ms` : `a bucket of ${r.limit}, ${r.rateTokens} per ${r.rateIntervalMs} ms`;
}

// testHooks: the crash tests' own switch, not documented.
const LIMITER_OPTIONS = ['policy', 'store', 'capacity', 'onFull', 'engine', 'preallocate', 'shards', 'clock', 'topKeys', 'name', 'testHooks'];

export class Limiter implements RateLimiter {
  /** The label of this limiter's metrics. */
  readonly name: string;
  /** Which engine decides: 'native' or 'js'. */
  readonly engine: EngineName;
  readonly policy: Policy;
  /** [policy], as every RateLimiter lists its policies. */
  readonly policies: readonly Policy[];
  /** 'sharedMemory' when the table is shared by every process that opens its name. */
  readonly store: 'memory' | 'sharedMemory';
  /** Whether this limiter made its table (always true in memory; false when it attached to a segment). */
  readonly created: boolean;
  readonly #sharedName: string | undefined;
  #table: TableEngine | null;
  readonly #params: PolicyParams;
  readonly #detail = new Float64Array(Detail.Size);
  readonly #capacity: number;
  #batchOut = new Uint8Array(0);

  readonly #quietPolicyMismatch: boolean;

  constructor(options: LimiterOptions) {
    const o = checkObject(options, 'options');
    checkKnownKeys(o, LIMITER_OPTIONS, 'Limiter options');
    this.#quietPolicyMismatch = (o as { [QUIET_POLICY_MISMATCH]?: boolean })[QUIET_POLICY_MISMATCH] === true;
    this.#params = policyParams(o.policy);
    this.policy = o.policy as Policy;
    this.policies = Object.freeze([this.policy]);
    if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0)) throw invalidArgument('name', 'a non-empty string', o.name);
    this.name = (o.name as string | undefined) ?? 'default';
    const store = o.store as SharedMemoryStore | undefined;
    if (store !== undefined && !isSharedMemoryStore(store)) throw invalidArgument('store', 'a store from sharedMemory()', store);
    let capacity = o.capacity === undefined ? DEFAULT_CAPACITY : checkInteger(o.capacity, 'capacity', 1, MAX_CAPACITY);
    let shards = o.shards === undefined ? 0 : checkInteger(o.shards, 'shards', 1, MAX_SHARDS);
    if (store !== undefined) {
      if (o.capacity !== undefined || o.shards !== undefined) {
        throw invalidArgument('capacity', 'no capacity or shards beside a store (give them to sharedMemory())', o.capacity ?? o.shards);
      }
      capacity = store.capacity;
      shards = store.shards ?? 0;
    }
    if (o.onFull !== undefined && o.onFull !== 'evict' && o.onFull !== 'refuse') {
      throw invalidArgument('onFull', "'evict' or 'refuse'", o.onFull);
    }
    if (o.engine !== undefined && o.engine !== 'native' && o.engine !== 'js' && o.engine !== 'auto') {
      throw invalidArgument('engine', "'native', 'js' or 'auto'", o.engine);
    }
    if (o.preallocate !== undefined && typeof o.preallocate !== 'boolean') {
      throw invalidArgument('preallocate', 'a boolean', o.preallocate);
    }
    const clock: ManualClock | undefined = checkClock(o.clock);
    if (store !== undefined && o.engine === 'js') {
      throw invalidArgument('engine', "'native' or 'auto' with a shared-memory store", o.engine);
    }
    const topKeys = (() => {
      if (o.topKeys === undefined || o.topKeys === false) return { on: false, periodMs: 60_000 };
      if (o.topKeys === true) return { on: true, periodMs: 60_000 };
      const t = checkObject(o.topKeys, 'topKeys');
      checkKnownKeys(t, ['periodMs'], 'topKeys');
      return { on: true, periodMs: t.periodMs === undefined ? 60_000 : checkInteger(t.periodMs, 'topKeys.periodMs', 1, 2 ** 40) };
    })();
    // A shared table exists only natively: without the addon, fail rather than count per process.
    this.engine = resolveEngine(store !== undefined ? 'native' : ((o.engine as EngineChoice | undefined) ?? 'auto'));
    this.store = store === undefined ? 'memory' : 'sharedMemory';
    this.#sharedName = store?.name;
    this.#table = createTable(this.engine, {
      kind: this.#params.code,
      limit: this.#params.limit,
      windowMs: this.#params.windowMs,
      rateTokens: this.#params.rateTokens,
      rateIntervalMs: this.#params.rateIntervalMs,
      capacity,
      shards,
      evict: o.onFull !== 'refuse',
      // Shared segments are committed when created unless told otherwise (no page fault later).
      preallocate: store !== undefined ? o.preallocate !== false : o.preallocate === true,
      // A table that grows starts with room for 1,024 keys (a few dozen KiB); preallocated, whole.
      initialCapacity: o.preallocate === true || store !== undefined ? capacity : Math.min(capacity, INITIAL_CAPACITY),
      detail: this.#detail,
      clock: clock === undefined ? undefined : clockBuffer(clock),
      shared:
        store === undefined
          ? undefined
          : { name: store.name, mode: store.mode, lockTimeoutMs: store.lockTimeoutMs, onLockTimeout: store.onLockTimeout === 'allow' },
      testHooks: (o as { testHooks?: unknown }).testHooks === true,
      topKeys: topKeys.on,
      topKeysPeriodMs: topKeys.periodMs,
    });
    this.created = this.#table.created ?? true;
    this.#capacity = capacity;
    this.#topKeysOn = topKeys.on;
    this.#warnOnPolicyMismatch();
  }

  /** A shared table made under other policy parameters is used, not refused: say so once. */
  #warnOnPolicyMismatch(): void {
    const creator = this.#table?.creatorPolicy;
    if (creator === undefined || this.created) return;
    const p = this.#params;
    const differs = (['limit', 'windowMs', 'rateTokens', 'rateIntervalMs'] as const).some((field) => creator[field] !== p[field]);
    if (!differs || this.#quietPolicyMismatch) return;
    process.emitWarning(
      `Shared memory segment '${this.#sharedName}' was created for ${describeRecord(creator)}; this process uses ${describeRecord(p)}. ` +
        'Each process decides with its own parameters on the shared state: give this limiter another segment name if that is not meant.',
      { code: 'TOLLGATE_POLICY_MISMATCH' },
    );
  }

  #live(): TableEngine {
    if (this.#table === null) throw closedError();
    return this.#table;
  }

  /** @internal Throws as consume() would for this per-call limit; used to check a tier before spending anywhere. */
  checkLimit(limit: unknown): number {
    return checkInteger(limit, 'limit', 1, this.#params.maxLimit);
  }

  /** The call's limit: the policy's, or the tier asked for (an array's first entry: one policy here). */
  #limit(options: CallOptions | undefined): number {
    const limit = splitLimits(options, 1)?.[0];
    return limit === undefined ? this.#params.limit : checkInteger(limit, 'limit', 1, this.#params.maxLimit);
  }

  #decision(): Decision {
    const d = this.#detail;
    return {
      allowed: d[Detail.Allowed] === 1,
      limit: d[Detail.Limit] as number,
      remaining: d[Detail.Remaining] as number,
      resetMs: d[Detail.ResetMs] as number,
      retryAfterMs: d[Detail.RetryAfterMs] as number,
    };
  }

  /** Spends `cost` (default 1) from the key if the policy allows it, and says what happened. */
  consume(key: string, cost = 1, options?: CallOptions): Decision {
    const table = this.#live();
    if (!isKey(key)) checkKey(key);
    if (cost === 1 && options === undefined) {
      table.consume(key);
    } else {
      checkPositiveInteger(cost, 'cost');
      table.consume(key, cost, this.#limit(options));
    }
    return this.#decision();
  }

  /** consume() that returns only whether it was allowed, allocating nothing. */
  tryConsume(key: string, cost = 1, options?: CallOptions): boolean {
    const table = this.#live();
    if (!isKey(key)) checkKey(key);
    if (cost === 1 && options === undefined) return table.tryConsume(key);
    checkPositiveInteger(cost, 'cost');
    return table.tryConsume(key, cost, this.#limit(options));
  }

  /** What consume() would decide for `cost`, without spending; `remaining` is what is left now. */
  peek(key: string, cost = 1, options?: CallOptions): Decision {
    const table = this.#live();
    checkKey(key);
    if (cost !== 1) checkPositiveInteger(cost, 'cost');
    table.peek(key, cost, this.#limit(options));
    return this.#decision();
  }

  /**
   * Gives `amount` back to a key (e.g. the upstream call failed), never beyond a fresh key's
   * allowance. A key the table does not hold is left alone.
   */
  refund(key: string, amount = 1, options?: CallOptions): void {
    const table = this.#live();
    checkKey(key);
    checkPositiveInteger(amount, 'amount');
    table.refund(key, amount, this.#limit(options));
  }

  /** Forgets the key (its counters and any block). Returns whether it was live. */
  reset(key: string): boolean {
    const table = this.#live();
    checkKey(key);
    return table.reset(key);
  }

  /**
   * Denies every request for the key for `durationMs`. A shorter block never cuts a longer one
   * short (use reset()). Returns false only when a full table in 'refuse' mode had no room.
   */
  block(key: string, durationMs: number): boolean {
    const table = this.#live();
    checkKey(key);
    checkPositiveInteger(durationMs, 'durationMs');
    return table.block(key, Math.min(durationMs, MAX_BLOCK_MS));
  }

  /**
   * consume() for many keys in one boundary crossing. Returns 1 (allowed) or 0 per key in `out`
   * (reused between calls when not given: copy it if you keep it). Every key is read once and
   * checked before any is decided: a bad key rejects the whole call, spending nothing.
   */
  consumeMany(keys: readonly string[], cost = 1, out?: Uint8Array): Uint8Array {
    this.#live();
    if (!Array.isArray(keys)) throw invalidArgument('keys', 'an array of strings', keys);
    if (cost !== 1) checkPositiveInteger(cost, 'cost');
    if (out !== undefined && !(out instanceof Uint8Array)) throw invalidArgument('out', 'a Uint8Array', out);
    // Read each key exactly once (a getter or a Proxy runs here, and only here) into a plain array.
    const count = keys.length;
    const batch = this.#batchKeys;
    batch.length = count;
    for (let i = 0; i < count; i++) {
      const key = keys[i];
      if (!isKey(key)) {
        batch.length = 0;
        checkKey(key, `keys[${i}]`);
      }
      batch[i] = key;
    }
    // Whatever those reads ran may have closed this limiter or detached `out`: check after them.
    const table = this.#live();
    let target = out;
    if (target === undefined) {
      if (this.#batchOut.length < count) this.#batchOut = new Uint8Array(Math.max(count, 2 * this.#batchOut.length));
      target = this.#batchOut.subarray(0, count);
    } else if (target.length < count) {
      batch.length = 0;
      throw invalidArgument('out', `a Uint8Array of length at least ${count}`, target);
    }
    try {
      table.consumeMany(batch, cost, this.#params.limit, target);
    } finally {
      batch.length = 0;
    }
    return target;
  }

  readonly #batchKeys: string[] = [];

  /** Reclaims every expired entry now; returns how many. Expired entries are also reclaimed as operations pass. */
  sweep(): number {
    return this.#live().sweep();
  }

  stats(): LimiterStats {
    return { name: this.name, engine: this.engine, store: this.store, capacity: this.#capacity, ...this.#live().stats() };
  }

  #lines: WaitingLines | undefined;
  #topKeysOn = false;

  /**
   * The `k` keys with the most consuming decisions lately (`by: 'denials'`: the most denied), from
   * a bounded Space-Saving summary: native tables keep 16 per shard (any key with more than
   * 1/16 of its shard's recent decisions is certain to appear), the TS engine 256 in all.
   * Requires the topKeys option. On shared memory: host-wide.
   */
  topKeys(k = 10, by: 'requests' | 'denials' = 'requests'): TopKey[] {
    const table = this.#live();
    checkInteger(k, 'k', 1, 100_000);
    if (by !== 'requests' && by !== 'denials') throw invalidArgument('by', "'requests' or 'denials'", by);
    if (!this.#topKeysOn) throw invalidArgument('topKeys', 'a limiter created with the topKeys option', undefined);
    const field = by === 'requests' ? 'count' : 'denied';
    return table
      .topKeys()
      .filter((t) => t[field] > 0)
      .sort((a, b) => b[field] - a[field] || b.count - a.count)
      .slice(0, k)
      .map((t) => ({ key: t.key, count: t.count, denied: t.denied, error: t.error, truncated: t.key.length < t.length }));
  }

  /**
   * Waits until `cost` can be spent for `key`, then spends it: resolves with the allowing
   * Decision. Waiters on one key are served first come, first served, the first waiting exactly
   * the time the policy names (one timer per key, no polling). Rejects with code
   * TOLLGATE_ACQUIRE_TIMEOUT or TOLLGATE_ACQUIRE_ABORTED, having spent nothing, or with a
   * RangeError when the cost can never fit.
   */
  acquire(key: string, options?: AcquireOptions): Promise<Decision> {
    this.#lines ??= new WaitingLines(this);
    return this.#lines.acquire(key, options);
  }

  /**
   * Releases the table. Waiters in acquire() reject at once with code TOLLGATE_CLOSED; further
   * calls throw a TypeError with that code; close() again is a no-op.
   */
  close(): void {
    if (this.#table === null) return;
    this.#table.close();
    this.#table = null;
    this.#lines?.close(closedError());
    for (const listener of this.#closeListeners) listener();
    this.#closeListeners.clear();
  }

  readonly #closeListeners = new Set<() => void>();

  /** @internal Runs `listener` once when this limiter closes (a composite's waiters go too); returns the removal. */
  onClose(listener: () => void): () => void {
    if (this.#table === null) {
      listener();
      return () => {};
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /**
   * close(), and for a shared-memory table also remove its name, so the next process to open it
   * starts a fresh table. Processes still attached keep deciding on the old one until they close.
   * Returns whether a segment was removed.
   */
  destroy(): boolean {
    this.close();
    return this.#sharedName === undefined ? false : destroySharedMemory(this.#sharedName);
  }

  get closed(): boolean {
    return this.#table === null;
  }
}

