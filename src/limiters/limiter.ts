// The synchronous Limiter: validates in TypeScript, decides in the chosen engine, on a table in
// this process or in shared memory.
import { clockBuffer } from '../common/clock.js';
import { MAX_BLOCK_MS, MAX_CAPACITY } from '../common/constants.js';
import type { Decision } from '../common/decision.js';
import { closedError, invalidArgument } from '../common/errors.js';
import { describePolicy, policyFromRecord, type Policy, type PolicyParams } from '../common/policies.js';
import { checkInteger, checkKey, checkPositiveInteger, isKey } from '../common/validate.js';
import { createTable, resolveEngine, type EngineName } from '../engine/select-engine.js';
import { destroySharedMemory } from '../engine/shared-memory.js';
import { Detail, type TableEngine } from '../engine/table-engine.js';
import { LimiterBase } from './limiter-base.js';
import { parseLimiterOptions, type LimiterOptions } from './limiter-options.js';
import type { CallOptions, LimiterStats } from './rate-limiter.js';

export { QUIET_POLICY_MISMATCH, type LimiterOptions } from './limiter-options.js';
export type { CallOptions, LimiterStats };

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

/**
 * Where every table of this thread writes a decision's numbers, read back at once: one array for
 * all limiters, since a limiter made per tenant should cost no buffer of its own.
 */
const DECISION_DETAIL = new Float64Array(Detail.Size);
/** The batch buffer a limiter starts with, before its first consumeMany() without `out`. */
const NO_BYTES = new Uint8Array(0);

/** How often acquire() on a shared-memory table asks again while it waits, in ms. */
const SHARED_WAIT_RECHECK_MS = 20;

export class Limiter extends LimiterBase {
  /** Which engine decides: 'native' or 'js'. */
  readonly engine: EngineName;
  readonly policy: Policy;
  /** 'sharedMemory' when the table is shared by every process that opens its name. */
  readonly store: 'memory' | 'sharedMemory';
  /** Whether this limiter made its table (always true in memory; false when it attached to a segment). */
  readonly created: boolean;
  readonly #sharedName: string | undefined;
  #table: TableEngine | null;
  readonly #params: PolicyParams;
  readonly #capacity: number;
  readonly #topKeysOn: boolean;
  readonly #quietPolicyMismatch: boolean;
  #batchOut = NO_BYTES;
  readonly #batchKeys: string[] = [];

  constructor(options: LimiterOptions) {
    const c = parseLimiterOptions(options);
    super(c.name, [c.policy]);
    this.policy = c.policy;
    this.#params = c.params;
    this.#quietPolicyMismatch = c.quietPolicyMismatch;
    this.engine = resolveEngine(c.engine);
    this.store = c.store === undefined ? 'memory' : 'sharedMemory';
    this.#sharedName = c.store?.name;
    this.#table = createTable(this.engine, {
      kind: c.params.code,
      limit: c.params.limit,
      windowMs: c.params.windowMs,
      rateTokens: c.params.rateTokens,
      rateIntervalMs: c.params.rateIntervalMs,
      capacity: c.capacity,
      shards: c.shards,
      evict: c.evict,
      preallocate: c.preallocate,
      initialCapacity: c.initialCapacity,
      detail: DECISION_DETAIL,
      clock: c.clock === undefined ? undefined : clockBuffer(c.clock),
      shared: c.store === undefined ? undefined : { name: c.store.name, mode: c.store.mode, lockTimeoutMs: c.store.lockTimeoutMs, onLockTimeout: c.store.onLockTimeout === 'allow' },
      topKeys: c.topKeys.on,
      topKeysPeriodMs: c.topKeys.periodMs,
    });
    this.created = this.#table.created ?? true;
    this.#capacity = c.capacity;
    this.#topKeysOn = c.topKeys.on;
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
      `Shared memory segment '${this.#sharedName}' was created for ${describePolicy(policyFromRecord(creator))}; this process uses ${describePolicy(this.policy)}. ` +
        'Each process decides with its own parameters on the shared state: give this limiter another segment name if that is not meant.',
      { code: 'TOLLGATE_POLICY_MISMATCH' },
    );
  }

  #live(): TableEngine {
    if (this.#table === null) throw closedError();
    return this.#table;
  }

  /** The call's limit: the policy's, or the tier asked for (an array's first entry: one policy here). */
  #limit(options: CallOptions | undefined): number {
    return this.callLimits(options)?.[0] ?? this.#params.limit;
  }

  #decision(): Decision {
    const d = DECISION_DETAIL;
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
   * @internal peek(key) reduced to its wait: 0 when a request of cost 1 would pass now, else its
   * retryAfterMs. Allocates nothing (a deny cache asks this of every request).
   */
  waitFor(key: string): number {
    const table = this.#live();
    checkKey(key);
    table.peek(key, 1, this.#params.limit);
    return DECISION_DETAIL[Detail.Allowed] === 1 ? 0 : (DECISION_DETAIL[Detail.RetryAfterMs] as number);
  }

  /**
   * Another process's refund or reset on a shared table wakes nobody here: a waiter asks again at
   * least this often (a denied consume changes nothing, so the cost is the call alone).
   */
  protected override get waitRecheckMs(): number {
    return this.store === 'sharedMemory' ? SHARED_WAIT_RECHECK_MS : Infinity;
  }

  /**
   * Gives `amount` back to a key (e.g. the upstream call failed), never beyond a fresh key's
   * allowance. A key the table does not hold is left alone. The key's acquire() waiters in this
   * process ask again at once.
   */
  refund(key: string, amount = 1, options?: CallOptions): void {
    const table = this.#live();
    checkKey(key);
    checkPositiveInteger(amount, 'amount');
    const limit = this.#limit(options);
    this.givingBack(key, () => table.refund(key, amount, limit));
  }

  /** Forgets the key (its counters and any block), waking its acquire() waiters here. Returns whether it was live. */
  reset(key: string): boolean {
    const table = this.#live();
    checkKey(key);
    return this.givingBack(key, () => table.reset(key));
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

  /** Reclaims every expired entry now; returns how many. Expired entries are also reclaimed as operations pass. */
  sweep(): number {
    return this.#live().sweep();
  }

  stats(): LimiterStats {
    return { name: this.name, engine: this.engine, store: this.store, capacity: this.#capacity, ...this.#live().stats() };
  }

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

  /** Releases the table (see LimiterBase.close: waiters reject, further calls throw TOLLGATE_CLOSED). */
  protected release(): void {
    this.#table?.close();
    this.#table = null;
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
}
