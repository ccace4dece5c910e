// Limits that hold across machines: decisions in Lua on Redis (or Redis Cluster), batched so that
// many decisions share one round trip (redis-batches.ts), each limiter in its own namespace
// (limiter-keys.ts), every call bounded by a deadline Redis itself enforces and a breaker per node
// (the transport, script-runner.ts), in the wire format of protocol.ts; here the decisions
// themselves: the local deny cache, leases on hot keys, and a policy for Redis failing.
import { monotonicMs, type ManualClock } from '../common/clock.js';
import { MAX_BLOCK_MS } from '../common/constants.js';
import type { Decision } from '../common/decision.js';
import { closedError, type RedisErrorCode } from '../common/errors.js';
import type { PolicyParams } from '../common/policies.js';
import { checkKey, checkPositiveInteger, isKey } from '../common/validate.js';
import { LimiterKeys, type KeyNames } from '../redis/limiter-keys.js';
import { BLOCK_LUA, DECIDE_LUA, GIVE_BACK_LUA, LEASE_LUA, RESET_LUA } from '../redis/lua.js';
import { DecideProtocol, foreignStateError, LeaseReply, Op } from '../redis/protocol.js';
import { LEASES_OFF, realNow, ScriptRunner, unavailable } from '../redis/script-runner.js';
import { warnLeasesOff } from '../redis/server-probe.js';
import { keyTagText } from '../redis/redis-keys.js';
import { script, type Script } from '../redis/script.js';
import { Batches, type BatchOutcomes, type Pending } from './redis-batches.js';
import { denyCacheFor, type DenyCache } from './deny-cache.js';
import { Fallback } from './fallback.js';
import { LeaseBook, type LeaseWindow } from './leases.js';
import { LimiterBase } from './limiter-base.js';
import { Unsettled } from './unsettled.js';
import { WindowEnds } from './window-ends.js';
import { parseRedisLimiterOptions, type RedisLimiterEvent, type RedisLimiterOptions } from './redis-limiter-options.js';
import type { CallOptions, RedisLimiterStats } from './rate-limiter.js';
import { newLimiterCounts, redisLimiterStats } from './redis-limiter-stats.js';

export type { RedisLimiterStats, RedisLimiterEvent, RedisLimiterOptions };

/**
 * Window ends remembered: up to 2^16 slots (1 MB, and the keys they hold) whatever the key count,
 * from 256 slots as keys arrive (a limiter per tenant stays small). It spares Redis a PTTL per
 * decision on the keys that recur; a larger table saved nothing more at 1M keys (bench/FINDINGS.md,
 * "Node's CPU per decision").
 */
const WINDOW_ENDS_BITS = 16;

const DECIDE = script(DECIDE_LUA);
const BLOCK = script(BLOCK_LUA);
const RESET = script(RESET_LUA);
const LEASE = script(LEASE_LUA);
const GIVE_BACK = script(GIVE_BACK_LUA);

export class RedisLimiter extends LimiterBase {
  readonly #runner: ScriptRunner;
  readonly #protocol: DecideProtocol;
  readonly #keys: LimiterKeys;
  readonly #batches: Batches;
  readonly #params: readonly PolicyParams[];
  readonly #timeoutMs: number;
  readonly #fallback: Fallback;
  readonly #onEvent: ((event: RedisLimiterEvent) => void) | undefined;
  readonly #denyCache: DenyCache | undefined;
  /** Hot keys' leases; switched off (undefined) when a node cannot serve them. */
  #leases: LeaseBook | undefined;
  /** Lease calls under way, per key: the consumes that arrive meanwhile wait for it. */
  readonly #leasing = new Map<string, Promise<unknown>>();
  /**
   * Under one fixed window: when keys' current windows end by Redis' clock, as replies last showed.
   * While that is surely after a call's deadline, the script is told it need not read the window's
   * TTL (see Batches' knownEnds).
   */
  readonly #ends: WindowEnds | undefined;
  readonly #clock: ManualClock | undefined;
  /** 0 for every policy: the policies' own limits (the identity marks a call without a tier). */
  readonly #noOverrides: readonly number[];
  /** Calls not settled by the batches (refund, block, reset, leases, an asynchronous fallback): close() rejects them at once. */
  readonly #unsettled = new Unsettled();
  /**
   * reset(), refund() and block() calls made through this limiter: a denial of a request made
   * before one of them may have been decided by Redis before it, and cached after it would answer
   * for a key whose state Redis has changed. Such a denial answers its request, uncached.
   */
  #forgets = 0;
  /** Counted here; the Redis calls' own counts are the transport's. */
  #stats = newLimiterCounts();

  constructor(options: RedisLimiterOptions) {
    const c = parseRedisLimiterOptions(options);
    super(c.name, c.policies);
    this.#params = c.params;
    this.#noOverrides = Object.freeze(c.params.map(() => 0));
    this.#keys = new LimiterKeys(c.prefix, c.name, c.params, c.redis.cluster, c.slotGroups);
    this.#clock = c.clock;
    this.#protocol = new DecideProtocol(c.params, this.#keys.firstSuffixLength, c.clock);
    this.#timeoutMs = c.timeoutMs;
    this.#fallback = new Fallback(c.onError);
    this.#onEvent = c.onEvent;
    this.#runner = new ScriptRunner(c.redis, {
      timeoutMs: c.timeoutMs,
      breaker: c.breaker,
      onEvent: (event) => this.#emit(event),
      probe: { leasesWanted: () => this.#leases !== undefined },
    });
    this.#ends = this.#protocol.oneFixedWindow ? new WindowEnds(WINDOW_ENDS_BITS) : undefined;
    this.#batches = new Batches(this.#runner, this.#protocol, this.#keys, { maxBatch: c.maxBatch, timeoutMs: c.timeoutMs, noOverrides: this.#noOverrides, ends: this.#ends }, this.#outcomes);
    this.#denyCache = denyCacheFor(c.denyCache, c.params, c.clock);
    const giveBack = (key: string, units: number, window: LeaseWindow) => this.#giveBack(key, units, window);
    this.#leases = c.leases === undefined ? undefined : new LeaseBook(c.leases, () => this.#decisionsNow(), giveBack);
  }

  /** What the batches do with each request (see BatchOutcomes). */
  readonly #outcomes: BatchOutcomes = {
    decided: (p, d) => this.#decided(p, d),
    foreign: (p, index) => p.reject(this.#mismatch(this.#keys.namesOf(p.stateKey, p.group), index, 'counted')),
    windowEnds: (p, end) => this.#ends?.set(p.key, end),
    fallBack: (p) => this.#fallBack(p),
    shortCircuited: (node, batch) => {
      this.#stats.shortCircuited += batch.length;
      this.#emit({ type: 'error', error: unavailable(node, '; decided by onError'), node: node.name });
      for (const p of batch) this.#fallBack(p);
    },
    isClosed: () => this.closed,
  };

  /** The decisions' clock in this process (leases, and when a lease call was sent): the test clock, else the monotonic clock. */
  #decisionsNow(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
  }

  /** One limit per policy for this call (0 = the policy's own), validated. */
  #overrides(options: CallOptions | undefined): readonly number[] {
    const limits = this.callLimits(options);
    return limits === undefined ? this.#noOverrides : this.#params.map((_, i) => limits[i] ?? 0);
  }

  #emit(event: RedisLimiterEvent): void {
    if (this.#onEvent === undefined) return;
    try {
      this.#onEvent(event);
    } catch (error) {
      process.emitWarning(`tollgate RedisLimiter '${this.name}': onEvent threw: ${(error as Error)?.message ?? String(error)}`, { code: 'TOLLGATE_CALLBACK_ERROR' });
    }
  }

  /**
   * Spends `cost` if every policy allows it; one round trip at most, none when the deny cache
   * answers. `options.limit` serves a tier: a number replaces the first policy's limit, an array
   * gives one per policy.
   */
  consume(key: string, cost = 1, options?: CallOptions): Promise<Decision> {
    // With leases, a call under the policy's own limit on a valid key may be answered here.
    if (this.#leases !== undefined && options === undefined && !this.closed && isKey(key) && Number.isSafeInteger(cost) && cost >= 1) {
      const local = this.#leases.spend(key, cost);
      if (local !== undefined) {
        this.#stats.decisions++;
        this.#stats.allowed++;
        return Promise.resolve(local);
      }
      const waiting = this.#leasing.get(key);
      if (waiting !== undefined) {
        // The waiting demand sizes the next lease too.
        this.#leases.want(key, cost);
        return this.#afterLease(waiting, key, cost);
      }
      const want = this.#leases.want(key, cost);
      if (want > 0) return this.#lease(this.#leases, key, cost, want);
    }
    return this.#decide(key, cost, options, Op.Consume);
  }

  /** What consume would decide, spending nothing. */
  peek(key: string, cost = 1, options?: CallOptions): Promise<Decision> {
    return this.#decide(key, cost, options, Op.Peek);
  }

  /** A plain consume that Redis could not decide, for onError (a lease call that failed, a wait for one that ran out). */
  #plainConsume(key: string, cost: number, startedAt: number, resolve: (d: Decision) => void, reject: (error: unknown) => void): Pending {
    const text = keyTagText(key);
    const group = this.#keys.groupOf(text);
    return {
      key,
      op: Op.Consume,
      cost,
      overrides: this.#noOverrides,
      options: undefined,
      stateKey: this.#keys.stateKey(text, group),
      group,
      knownEnd: 0,
      startedAt,
      forgets: this.#forgets,
      resolve,
      reject,
    };
  }

  /**
   * A consume that arrived while the key's lease call was out: spent from the new lease when it
   * covers it, else decided by Redis with the others the lease could not serve (one batch, not one
   * call each), all within timeoutMs of its arrival; past that, onError decides, as for a timeout.
   */
  #afterLease(waiting: Promise<unknown>, key: string, cost: number): Promise<Decision> {
    const arrivedAt = realNow();
    return this.#unsettled.track(
      new Promise<Decision>((resolve, reject) => {
        let settled = false;
        const timer = setTimeout(() => {
          if (settled || this.closed) return;
          settled = true;
          this.#stats.decisions++;
          this.#stats.timeouts++;
          this.#fallBack(this.#plainConsume(key, cost, arrivedAt, resolve, reject));
        }, this.#timeoutMs);
        timer.unref?.();
        const next = () => {
          if (settled || this.closed) return;
          settled = true;
          clearTimeout(timer);
          const local = this.#leases?.spend(key, cost);
          if (local !== undefined) {
            this.#stats.decisions++;
            this.#stats.allowed++;
            resolve(local);
          } else this.#decide(key, cost, undefined, Op.Consume, arrivedAt).then(resolve, reject);
        };
        waiting.then(next, next);
      }),
    );
  }

  /**
   * A consume on a hot key: takes a lease of up to `want` units from Redis, spends `cost` of it and
   * keeps the rest; denied as Redis would deny it when not even `cost` is left.
   */
  #lease(leases: LeaseBook, key: string, cost: number, want: number): Promise<Decision> {
    this.#stats.decisions++;
    const cached = this.#denyCache?.answer(key, cost);
    if (cached !== undefined) {
      this.#stats.denyCacheHits++;
      this.#stats.denied++;
      return Promise.resolve(cached);
    }
    this.#stats.leaseCalls++;
    const names = this.#keys.names(key);
    // The lease's window is counted from here: Redis ran the call after this.
    const sentAt = this.#decisionsNow();
    const forgets = this.#forgets;
    // One policy: the keys are the blocks marker and the window's.
    const call = this.#direct(names, LEASE, [names.marker, names.keys[0] as string], this.#protocol.leaseArgs(want, leases.share, cost, names.base), true);
    const decided = this.#unsettled.track(call).then(
      (reply) => this.#leased(leases, key, names, cost, reply, sentAt, forgets),
      (error: unknown) => {
        if (this.closed) throw error;
        if (error === LEASES_OFF) {
          this.#leasesOff(names.slot);
          // Counted again by #decide.
          this.#stats.decisions--;
          return this.#decide(key, cost, undefined, Op.Consume);
        }
        if ((error as { code?: string }).code === 'TOLLGATE_REDIS_UNSUPPORTED') throw error;
        // Redis could not lease: onError decides, as for any consume it could not decide.
        return new Promise<Decision>((resolve, reject) => this.#fallBack(this.#plainConsume(key, cost, 0, resolve, reject)));
      },
    );
    const done = () => this.#leasing.delete(key);
    this.#leasing.set(key, decided);
    decided.then(done, done);
    return decided;
  }

  #leased(leases: LeaseBook, key: string, names: KeyNames, cost: number, reply: readonly unknown[], sentAt: number, forgets: number): Decision {
    const limit = (this.#params[0] as PolicyParams).limit;
    const { granted, count, resetMs, expiresAt } = this.#protocol.readLease(reply);
    if (granted === LeaseReply.Foreign) throw this.#mismatch(names, 1, 'counted');
    // What Redis measured when it ran, less the time since the call was sent (a slow reply path).
    const reset = Math.max(0, resetMs - (this.#decisionsNow() - sentAt));
    if (granted >= cost) {
      leases.keep(key, granted - cost, limit, limit - count, resetMs, { expiresAt, countAfter: count }, sentAt);
      this.#stats.allowed++;
      return { allowed: true, limit, remaining: granted - cost + (limit - count), resetMs: reset, retryAfterMs: 0 };
    }
    // Blocked (its reset is the block's alone, not the decide script's: not cached), or not even `cost` left.
    const blocked = count === LeaseReply.Blocked;
    const retryAfterMs = cost <= limit ? reset : Infinity;
    const decision: Decision = { allowed: false, limit, remaining: blocked ? 0 : Math.max(0, limit - count), resetMs: reset, retryAfterMs };
    if (cost === 1 && !blocked && forgets === this.#forgets && retryAfterMs > 0) this.#denyCache?.remember(key, decision);
    this.#stats.denied++;
    return decision;
  }

  /** A node cannot serve leases (see server-probe.ts): they stop for this limiter, with one warning. */
  #leasesOff(slot: number): void {
    if (this.#leases === undefined) return;
    this.#leases.clear();
    this.#leases = undefined;
    const node = this.#runner.node(slot);
    warnLeasesOff(this.name, node.name, node.profile?.version ?? 0);
  }

  /**
   * Hands a lease's unspent units back to the window they were taken from (see GIVE_BACK_LUA),
   * also after close(): nobody waits for it, and a failure leaves them counted, as a lease that
   * runs out its window would. Room given back: the key's waiters ask again once Redis answers.
   */
  #giveBack(key: string, units: number, window: LeaseWindow): void {
    const names = this.#keys.names(key);
    this.givingBack(key, () => this.#direct(names, GIVE_BACK, [names.keys[0] as string], [String(units), String(window.expiresAt), String(window.countAfter)])).catch(() => undefined);
  }

  #decide(key: string, cost: number, options: CallOptions | undefined, op: Pending['op'], startedAt = 0): Promise<Decision> {
    let overrides: readonly number[];
    try {
      this.live();
      checkKey(key);
      if (cost !== 1) checkPositiveInteger(cost, 'cost');
      overrides = this.#overrides(options);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#stats.decisions++;
    // The cache holds denials of calls under the policies' own limits; a call with a per-call
    // limit (a tier) may be allowed where those were denied, so only Redis can answer it.
    const cached = overrides === this.#noOverrides ? this.#denyCache?.answer(key, cost) : undefined;
    if (cached !== undefined) {
      this.#stats.denyCacheHits++;
      if (op === Op.Consume) this.#stats.denied++;
      return Promise.resolve(cached);
    }
    return this.#batches.request(key, op, cost, overrides, options, startedAt, this.#forgets);
  }

  /** Drops the key's cached denial, and any denial of a request sent before now (see #forgets). */
  #forget(key: string): void {
    this.#forgets++;
    this.#denyCache?.forget(key);
  }

  /** Settles a request with its decision, counting a consume's outcome. */
  #answer(p: Pending, d: Decision): void {
    if (p.op === Op.Consume) {
      if (d.allowed) this.#stats.allowed++;
      else this.#stats.denied++;
    }
    p.resolve(d);
  }

  /** A request Redis decided: a denial remembered by the deny cache, then the answer. */
  #decided(p: Pending, decision: Decision): void {
    // A spend allowed under a per-call limit may follow a denial the cache holds under the policies' own: stale now.
    if (decision.allowed && p.op === Op.Consume && p.overrides !== this.#noOverrides) this.#forget(p.key);
    // Only a cost-1 denial is kept: the cache answers cost 1 with it, and what it can derive (see DenyCache.answer).
    if (!decision.allowed && p.cost === 1 && p.overrides === this.#noOverrides && p.forgets === this.#forgets && Number.isFinite(decision.retryAfterMs) && decision.retryAfterMs > 0) {
      this.#denyCache?.remember(p.key, decision);
    }
    this.#answer(p, decision);
  }

  /** Settles a request Redis did not decide, by onError. */
  #fallBack(p: Pending): void {
    try {
      const limit = p.overrides[0] || (this.#params[0] as PolicyParams).limit;
      const decided = this.#fallback.decide(p.op === Op.Consume ? 'consume' : 'peek', p.key, p.cost, p.options, limit);
      // An asynchronous fallback (another RedisLimiter, a user's limiter) is a pending call
      // too: close() must reject it at once.
      if (decided instanceof Promise) {
        this.#unsettled.track(decided).then(
          (d) => this.#answer(p, d),
          (error: unknown) => p.reject(error),
        );
      } else this.#answer(p, decided);
    } catch (fallbackError) {
      p.reject(fallbackError);
    }
  }

  /** State of another shape under policy `index` (1-based) of a key: counted, reported, and the error to reject with. */
  #mismatch(names: KeyNames, index: number, what: 'counted' | 'refunded'): Error & { code: RedisErrorCode } {
    this.#stats.stateMismatches++;
    const error = foreignStateError(names.keys[index - 1] ?? names.base, this.name, what);
    this.#emit({ type: 'error', error, node: this.#runner.node(names.slot).name });
    return error;
  }

  /** Gives back up to `amount` on every policy (not to a key Redis does not hold), then wakes the key's waiters here (LimiterBase.givingBack). */
  async refund(key: string, amount = 1, options?: CallOptions): Promise<void> {
    this.live();
    checkKey(key);
    checkPositiveInteger(amount, 'amount');
    const overrides = this.#overrides(options);
    this.#forget(key);
    const names = this.#keys.names(key);
    const reply = await this.givingBack(key, () => this.#unsettled.track(this.#direct(names, DECIDE, [names.marker, ...names.keys], this.#protocol.refundArgs(amount, overrides))));
    const foreign = this.#protocol.refundForeign(reply);
    if (foreign !== 0) throw this.#mismatch(names, foreign, 'refunded');
  }

  /** Denies the key everywhere for `durationMs` (a shorter block never cuts a longer one). Resolves with true. */
  async block(key: string, durationMs: number): Promise<boolean> {
    this.live();
    checkKey(key);
    checkPositiveInteger(durationMs, 'durationMs');
    const duration = Math.min(durationMs, MAX_BLOCK_MS);
    this.#leases?.drop(key);
    // A blocked key's wait is the later of the block's end and its own, which only Redis knows.
    this.#forget(key);
    const names = this.#keys.names(key);
    await this.#unsettled.track(this.#direct(names, BLOCK, [names.marker], [String(duration), names.base]));
    return true;
  }

  /** Forgets the key's counters and block, waking its waiters as refund() does; whether it was live (a block, or a state not yet a fresh key's). */
  async reset(key: string): Promise<boolean> {
    this.live();
    checkKey(key);
    this.#leases?.drop(key);
    this.#forget(key);
    const names = this.#keys.names(key);
    this.#ends?.forget(key);
    const reply = await this.givingBack(key, () => this.#unsettled.track(this.#direct(names, RESET, [names.marker, ...names.keys], this.#protocol.resetArgs(names.base))));
    return Number(reply[2]) > 0;
  }

  /**
   * One call outside the batches (refund, block, reset, leases): refused at once while the node's
   * breaker is open. Consumes made before it and still waiting for their batch are sent first, so
   * that calls reach Redis in the order they were made (on one connection, in order).
   */
  #direct(names: Pick<KeyNames, 'slot'>, s: Script, keys: readonly string[], args: string[], needsLeases = false): Promise<readonly unknown[]> {
    if (this.#batches.waiting) this.#batches.flush();
    const node = this.#runner.node(names.slot);
    if (!this.#runner.admit(node)) {
      this.#stats.shortCircuited++;
      return Promise.reject(unavailable(node));
    }
    return this.#runner.send(node, s, keys, args, names.slot, realNow(), needsLeases);
  }

  stats(): RedisLimiterStats {
    return redisLimiterStats(this.name, this.#stats, this.#runner, this.#leases?.spent ?? 0, this.#fallback);
  }

  /**
   * Frees the deny cache; the Redis client is left to its owner. Every call not yet settled
   * (queued, in flight, or waiting in acquire()) rejects at once with code TOLLGATE_CLOSED; answers
   * that arrive later are dropped.
   */
  protected release(): void {
    const error = closedError();
    this.#batches.rejectAll(error);
    this.#unsettled.rejectAll(error);
    this.#denyCache?.close();
    this.#leases?.clear();
  }
}
