// Limits that hold across machines: decisions in Lua on Redis (or Redis Cluster), batched so that
// many decisions share one round trip, each limiter in its own namespace, every call bounded by a
// deadline Redis itself enforces, a breaker per node, a local deny cache, and a policy for Redis
// failing.
import type { ManualClock } from '../../clock.js';
import type { Decision } from '../../decision.js';
import { combineDecisions } from '../../decisions.js';
import { closedError, invalidArgument, outOfRange, redisError, type RedisErrorCode } from '../../errors.js';
import { Limiter } from '../../limiter.js';
import { fixedWindow, policyParams, type Policy, type PolicyParams } from '../../policies.js';
import { checkInteger, checkKey, checkObject, checkPositiveInteger, splitLimits } from '../../validate.js';
import { checkClock, monotonicMs } from '../../clock.js';
import { MAX_BLOCK_MS, MAX_CAPACITY } from '../../constants.js';
import type { SharedMemoryStore } from '../shared-memory.js';
import { keySlot } from './key-slot.js';
import { BLOCK_LUA, CLOCK_LUA, DECIDE_LUA, RESET_LUA } from './lua.js';
import { createHash } from 'node:crypto';
import { WaitingLines } from '../../waiting-lines.js';
import { isRateLimiter, type AcquireOptions, type CallOptions, type MaybePromise, type RateLimiter, type RedisLimiterStats } from '../../rate-limiter.js';
import { BLOCK_SUFFIX, keyBase, limiterNamespace, policySuffixes } from './redis-keys.js';
import { redisTransport, type RedisClient, type RedisTransport } from './redis-client.js';
import { Breaker, type BreakerOptions, type BreakerState, type BreakerTransitions } from './breaker.js';
import { ServerClock } from './server-clock.js';
import { checkKnownKeys } from '../../option-keys.js';

export type { RedisLimiterStats };
export type { RedisClient, IoRedisClient, NodeRedisClient, NodeRedisCluster, RedisCommandSender } from './redis-client.js';
export type { BreakerOptions, BreakerState } from './breaker.js';

/** @deprecated The name of 0.1; RedisClient is what `redis` takes. */
export type RedisClientLike = RedisClient;

/** What RedisLimiter reports to `onEvent`: a failed call, or a node's breaker changing state. */
export type RedisLimiterEvent =
  | { readonly type: 'error'; readonly error: Error & { readonly code: RedisErrorCode }; readonly node: string }
  | { readonly type: 'breaker'; readonly state: BreakerState; readonly node: string };

export interface RedisLimiterOptions {
  /**
   * ioredis 5/6 or iovalkey (`Redis` or `Cluster`), node-redis 4+ (`createClient()` or
   * `createCluster()`), or a RedisCommandSender for any other client. Its lifecycle stays yours.
   */
  readonly redis: RedisClient;
  /**
   * Required: the limiter's namespace on Redis. Limiters with different names never share counters;
   * the processes that must share a limit use the same name and policy.
   */
  readonly name: string;
  /** One policy, or several decided all-or-nothing (e.g. 10 per second and 1,000 per hour). */
  readonly policy: Policy | readonly Policy[];
  /** Prepended to every Redis key; default 'tollgate:'. No braces (they would break hash tags). */
  readonly prefix?: string;
  /** Whether `redis` is a Redis Cluster client; detected for ioredis, iovalkey and node-redis. */
  readonly cluster?: boolean;
  /** Bound on every Redis call, in ms; default 250. Redis refuses to act on a call past it. */
  readonly timeoutMs?: number;
  /**
   * When Redis errs, times out or is known down: 'allow' (fail open, the default), 'deny', or
   * another limiter that decides instead (typically an in-process or shared-memory Limiter, or
   * allOf(...)), given the same key, cost and per-call limit.
   */
  readonly onError?: 'allow' | 'deny' | RateLimiter;
  /**
   * After `afterFailures` failed calls to a node (default 1), calls to it go straight to onError
   * without waiting; one trial call after `retryMs` (default 100, doubling up to `maxRetryMs`,
   * default 2000) finds when it answers again. false sends every call (each then waits its timeout).
   */
  readonly breaker?: false | Partial<BreakerOptions>;
  /** Told of every failed call and every breaker transition (for logs); what it throws is reported as a warning. */
  readonly onEvent?: (event: RedisLimiterEvent) => void;
  /**
   * Remember denials locally until their retry time, answering repeat requests from the same key
   * without a round trip. true (the default) keeps up to 100,000 keys in this process; give
   * { capacity, store } for another size or a shared-memory cache used by every process.
   */
  readonly denyCache?: boolean | { readonly capacity?: number; readonly store?: SharedMemoryStore };
  /**
   * Most decisions sent in one call; default 32. Decisions asked for together share calls of up
   * to this many, and several calls stay in flight, so Redis and this process work in parallel
   * (measured here: 32 beats both 16 and 256 by about 25%).
   */
  readonly maxBatch?: number;
  /** For tests: decide at this clock's time instead of Redis TIME (fixed windows still expire on Redis' clock; deadlines stay on real time). */
  readonly clock?: ManualClock;
}

const OPTION_KEYS = ['redis', 'name', 'policy', 'prefix', 'cluster', 'timeoutMs', 'onError', 'breaker', 'onEvent', 'denyCache', 'maxBatch', 'clock'];

interface Pending {
  readonly key: string;
  readonly op: 1 | 2;
  readonly cost: number;
  /** One per policy; 0 = the policy's own limit. */
  readonly overrides: readonly number[];
  /** What the caller gave, for the fallback limiter. */
  readonly options: CallOptions | undefined;
  /** `<namespace>{key}`, made once: the batch's keys and, on a cluster, its slot come from it. */
  readonly base: string;
  readonly resolve: (d: MaybePromise<Decision>) => void;
  readonly reject: (error: unknown) => void;
}

/** One node (or the single server): its breaker and its clock. */
interface Node {
  readonly name: string;
  readonly breaker: Breaker | undefined;
  readonly clock: ServerClock;
  /** The clock sample under way, shared by the calls that wait for it. */
  sampling: Promise<void> | undefined;
  /** When a call was last routed here (a node that no longer serves a slot stops being asked). */
  lastUsed: number;
}

/** A node not routed to for this long no longer counts in stats().openNodes, and is forgotten soon after. */
const NODE_IDLE_MS = 5000;

interface Script {
  readonly lua: string;
  readonly sha: string;
}

const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') });
const DECIDE = script(DECIDE_LUA);
const BLOCK = script(BLOCK_LUA);
const RESET = script(RESET_LUA);
const CLOCK = script(CLOCK_LUA);
const FAIL_CLOSED_RETRY_MS = 1000;
const MAX_REMEMBERED_DENIALS = 10_000;
const DEFAULT_BREAKER: BreakerOptions = { afterFailures: 1, retryMs: 100, maxRetryMs: 2000 };
/** Local time for deadlines and the breaker: real and monotonic, whatever clock decides. */
const realNow = () => performance.now();

export class RedisLimiter implements RateLimiter {
  readonly policies: readonly Policy[];
  readonly name: string;
  readonly #redis: RedisTransport;
  readonly #params: readonly PolicyParams[];
  readonly #policyArgs: readonly string[];
  readonly #namespace: string;
  readonly #suffixes: readonly string[];
  readonly #timeoutMs: number;
  readonly #onError: 'allow' | 'deny' | RateLimiter;
  readonly #onEvent: ((event: RedisLimiterEvent) => void) | undefined;
  readonly #breaker: BreakerOptions | undefined;
  readonly #denyCache: Limiter | undefined;
  readonly #maxBatch: number;
  readonly #clock: ManualClock | undefined;
  readonly #nodes = new Map<string, Node>();
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;
  /** Every call not yet settled (queued, in flight, refund/block/reset): close() rejects them at once. */
  readonly #unsettled = new Set<(error: unknown) => void>();
  readonly #transitions: BreakerTransitions = { opened: 0, halfOpened: 0, closed: 0 };
  #stats = {
    allowed: 0,
    denied: 0,
    decisions: 0,
    denyCacheHits: 0,
    redisCalls: 0,
    errors: 0,
    timeouts: 0,
    failedOpen: 0,
    failedClosed: 0,
    fallbackDecisions: 0,
    shortCircuited: 0,
    stateMismatches: 0,
    lateRefused: 0,
    lateExecuted: 0,
  };

  constructor(options: RedisLimiterOptions) {
    const o = checkObject(options, 'options');
    checkKnownKeys(o, OPTION_KEYS, 'RedisLimiter options');
    if (o.cluster !== undefined && typeof o.cluster !== 'boolean') throw invalidArgument('cluster', 'a boolean', o.cluster);
    this.#redis = redisTransport(o.redis, o.cluster as boolean | undefined);
    if (typeof o.name !== 'string' || o.name.length === 0 || o.name.length > 256) {
      throw invalidArgument('name', "a string of 1 to 256 characters naming the limiter on Redis (limiters share counters only under one name), e.g. 'login'", o.name);
    }
    this.name = o.name;
    const policies = Array.isArray(o.policy) ? (o.policy as Policy[]) : [o.policy as Policy];
    if (policies.length === 0 || policies.length > 8) throw outOfRange('policy', 'one policy or an array of 1 to 8', o.policy);
    this.#params = policies.map((p) => policyParams(p));
    this.policies = Object.freeze([...policies]);
    this.#policyArgs = this.#params.flatMap((p) => [p.code, p.limit, p.windowMs, p.rateTokens, p.rateIntervalMs].map(String));
    this.#noOverrides = Object.freeze(this.#params.map(() => 0));
    const prefix = o.prefix === undefined ? 'tollgate:' : o.prefix;
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw invalidArgument('prefix', 'a string without braces', prefix);
    this.#namespace = limiterNamespace(prefix, this.name);
    this.#suffixes = [BLOCK_SUFFIX, ...policySuffixes(this.#params)];
    this.#timeoutMs = o.timeoutMs === undefined ? 250 : checkInteger(o.timeoutMs, 'timeoutMs', 1, 600_000);
    const onError = o.onError ?? 'allow';
    if (onError !== 'allow' && onError !== 'deny' && !isRateLimiter(onError)) {
      throw invalidArgument('onError', "'allow', 'deny' or a limiter (Limiter, allOf(...))", onError);
    }
    this.#onError = onError as 'allow' | 'deny' | RateLimiter;
    if (o.onEvent !== undefined && typeof o.onEvent !== 'function') throw invalidArgument('onEvent', 'a function', o.onEvent);
    this.#onEvent = o.onEvent as ((event: RedisLimiterEvent) => void) | undefined;
    this.#breaker = this.#breakerOptions(o.breaker);
    this.#maxBatch = o.maxBatch === undefined ? 32 : checkInteger(o.maxBatch, 'maxBatch', 1, 10_000);
    this.#clock = checkClock(o.clock);
    this.#denyCache = this.#makeDenyCache(o.denyCache);
  }

  #breakerOptions(option: unknown): BreakerOptions | undefined {
    if (option === false) return undefined;
    if (option === undefined || option === true) return DEFAULT_BREAKER;
    const spec = checkObject(option, 'breaker');
    checkKnownKeys(spec, ['afterFailures', 'retryMs', 'maxRetryMs'], 'breaker');
    const afterFailures = spec.afterFailures === undefined ? DEFAULT_BREAKER.afterFailures : checkInteger(spec.afterFailures, 'breaker.afterFailures', 1, 1_000_000);
    const retryMs = spec.retryMs === undefined ? DEFAULT_BREAKER.retryMs : checkInteger(spec.retryMs, 'breaker.retryMs', 1, 3_600_000);
    const maxRetryMs = spec.maxRetryMs === undefined ? Math.max(retryMs, DEFAULT_BREAKER.maxRetryMs) : checkInteger(spec.maxRetryMs, 'breaker.maxRetryMs', retryMs, 3_600_000);
    return { afterFailures, retryMs, maxRetryMs };
  }

  #makeDenyCache(option: unknown): Limiter | undefined {
    if (option === false) return undefined;
    const spec = option === undefined || option === true ? {} : checkObject(option, 'denyCache');
    checkKnownKeys(spec, ['capacity', 'store'], 'denyCache');
    // A limit no request reaches: the cache only ever answers through block().
    const policy = fixedWindow({ limit: 2 ** 30, windowMs: 1000 });
    const clock = this.#clock === undefined ? {} : { clock: this.#clock };
    if (spec.store !== undefined) return new Limiter({ policy, store: spec.store as SharedMemoryStore, ...clock });
    const capacity = spec.capacity === undefined ? 100_000 : checkInteger(spec.capacity, 'denyCache.capacity', 1, MAX_CAPACITY);
    return new Limiter({ policy, capacity, ...clock });
  }

  /** `<namespace>{key}`: the hash tag keeps every Redis key of one limiter key in one cluster slot. */
  #base(key: string): string {
    return keyBase(this.#namespace, key);
  }

  /** The block key, then one state key per policy. */
  #keys(base: string): string[] {
    return this.#suffixes.map((suffix) => base + suffix);
  }

  /** The node that serves `base`'s slot, with its breaker and clock. */
  #node(base: string): Node {
    const name = this.#redis.cluster ? this.#redis.nodeOf(keySlot(base)) : '';
    const now = realNow();
    let node = this.#nodes.get(name);
    if (node === undefined) {
      // A new node (a promoted replica, a resharding): forget those long unused (a failed master).
      for (const [other, state] of this.#nodes) if (now - state.lastUsed > 12 * NODE_IDLE_MS) this.#nodes.delete(other);
      const breaker = this.#breaker === undefined ? undefined : new Breaker(this.#breaker, this.#transitions);
      node = { name, breaker, clock: new ServerClock(), sampling: undefined, lastUsed: now };
      this.#nodes.set(name, node);
    }
    node.lastUsed = now;
    return node;
  }

  /** One limit per policy for this call (0 = the policy's own), validated. */
  #overrides(options: CallOptions | undefined): readonly number[] {
    const limits = splitLimits(options, this.#params.length);
    if (limits === undefined) return this.#noOverrides;
    return this.#params.map((p, i) => {
      const limit = limits[i];
      return limit === undefined ? 0 : checkInteger(limit, 'limit', 1, p.maxLimit);
    });
  }

  readonly #noOverrides: readonly number[];

  /** `promise`, or a TOLLGATE_CLOSED rejection as soon as close() is called, whichever comes first. */
  #tracked<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#unsettled.add(reject);
      promise.then(
        (value) => {
          this.#unsettled.delete(reject);
          resolve(value);
        },
        (error: unknown) => {
          this.#unsettled.delete(reject);
          reject(error);
        },
      );
    });
  }

  #now(): string {
    return this.#clock === undefined ? '' : String(this.#clock.now());
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
    return this.#decide(key, cost, options, 1).then((d) => {
      if (d.allowed) this.#stats.allowed++;
      else this.#stats.denied++;
      return d;
    });
  }

  /** What consume would decide, spending nothing. */
  peek(key: string, cost = 1, options?: CallOptions): Promise<Decision> {
    return this.#decide(key, cost, options, 2);
  }

  #decide(key: string, cost: number, options: CallOptions | undefined, op: 1 | 2): Promise<Decision> {
    let overrides: readonly number[];
    try {
      if (this.#closed) throw closedError();
      checkKey(key);
      if (cost !== 1) checkPositiveInteger(cost, 'cost');
      overrides = this.#overrides(options);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#stats.decisions++;
    // The cache holds denials of calls under the policies' own limits; a call with a per-call
    // limit (a tier) may be allowed where those were denied, so only Redis can answer it.
    const cached = overrides === this.#noOverrides ? this.#denyCache?.peek(key) : undefined;
    if (cached !== undefined && !cached.allowed) {
      this.#stats.denyCacheHits++;
      return Promise.resolve(this.#cachedDenial(key, cached.retryAfterMs));
    }
    return new Promise((resolve, reject) => {
      const pending: Pending = {
        key,
        op,
        cost,
        overrides,
        options,
        base: this.#base(key),
        resolve: (d) => {
          this.#unsettled.delete(pending.reject);
          resolve(d);
        },
        reject: (error) => {
          this.#unsettled.delete(pending.reject);
          reject(error);
        },
      };
      this.#unsettled.add(pending.reject);
      this.#queue.push(pending);
      if (this.#queue.length >= this.#maxBatch) this.#flush();
      else if (!this.#scheduled) {
        this.#scheduled = true;
        // After this turn's microtasks: everything asked for in the meantime shares the call.
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    if (queue.length === 0) return;
    this.#queue = [];
    if (!this.#redis.cluster) {
      this.#dispatch(this.#node(''), queue);
      return;
    }
    const bySlot = new Map<number, Pending[]>();
    for (const p of queue) {
      const slot = keySlot(p.base);
      const group = bySlot.get(slot);
      if (group === undefined) bySlot.set(slot, [p]);
      else group.push(p);
    }
    for (const group of bySlot.values()) this.#dispatch(this.#node((group[0] as Pending).base), group);
  }

  /** Sends a batch to its node, unless the node's breaker says it is down: then onError decides at once. */
  #dispatch(node: Node, batch: Pending[]): void {
    if (node.breaker?.admit(realNow()) === 'skip') {
      const error = redisError(`Redis ${node.name || 'server'} is down (its breaker is open); decided by onError`, 'TOLLGATE_REDIS_UNAVAILABLE');
      this.#stats.shortCircuited += batch.length;
      for (const p of batch) this.#fallBack(p);
      return;
    }
    const keys: string[] = [];
    const args: string[] = [this.#now(), String(this.#params.length), ...this.#policyArgs];
    for (const p of batch) {
      for (const suffix of this.#suffixes) keys.push(p.base + suffix);
      args.push(String(p.op), String(p.cost));
      for (const limit of p.overrides) args.push(String(limit));
    }
    this.#run(node, DECIDE, keys, args).then(
      (reply) => this.#settle(batch, reply),
      () => {
        // close() has rejected the batch already: nothing decides for it now (the failure itself
        // was counted and reported by #run).
        if (this.#closed) return;
        for (const p of batch) this.#fallBack(p);
      },
    );
  }

  /** Settles a call Redis did not decide, by onError. */
  #fallBack(p: Pending): void {
    try {
      // An asynchronous fallback (another RedisLimiter, a user's limiter) is a pending call
      // too: close() must reject it at once.
      const decided = this.#fallback(p);
      p.resolve(decided instanceof Promise ? this.#tracked(decided) : decided);
    } catch (fallbackError) {
      p.reject(fallbackError);
    }
  }

  #settle(batch: Pending[], reply: readonly unknown[]): void {
    // close() has rejected the batch already, and the deny cache is gone.
    if (this.#closed) return;
    const width = 1 + 5 * this.#params.length;
    batch.forEach((p, r) => {
      const status = Number(reply[r * width]);
      if (status === 2) {
        p.reject(this.#mismatch(p.base, Number(reply[r * width + 1]), 'counted'));
        return;
      }
      const decisions: Decision[] = [];
      for (let i = 0; i < this.#params.length; i++) {
        const at = r * width + 1 + i * 5;
        const retry = Number(reply[at + 4]);
        decisions.push({
          allowed: Number(reply[at]) === 1,
          limit: Number(reply[at + 1]),
          remaining: Number(reply[at + 2]),
          resetMs: Number(reply[at + 3]),
          retryAfterMs: retry < 0 ? Infinity : retry,
        });
      }
      // The script decided all-or-nothing, so every policy's own verdict already agrees with it.
      const decision = decisions.length === 1 ? (decisions[0] as Decision) : combineDecisions(decisions);
      // Only a cost-1 denial is cached: it implies every larger cost is denied at least as long.
      if (!decision.allowed && p.cost === 1 && p.overrides === this.#noOverrides && Number.isFinite(decision.retryAfterMs) && decision.retryAfterMs > 0) {
        this.#denyCache?.block(p.key, decision.retryAfterMs);
        this.#rememberDenial(p.key, decision);
      }
      p.resolve(decision);
    });
  }

  /**
   * What Redis said when it denied `key`, so that a denial answered from the cache carries the
   * same fields (limit, remaining, reset, which policy) as Redis' own, counted down since. Bounded
   * (oldest forgotten first); a denial cached by another process through a shared deny cache is
   * not here, and is answered with the first policy's limit and its retry time as the reset.
   */
  readonly #denials = new Map<string, { readonly decision: Decision; readonly at: number }>();

  #clockNow(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
  }

  #rememberDenial(key: string, decision: Decision): void {
    if (this.#denials.size >= MAX_REMEMBERED_DENIALS) {
      const oldest = this.#denials.keys().next();
      if (!oldest.done) this.#denials.delete(oldest.value);
    }
    this.#denials.delete(key);
    this.#denials.set(key, { decision, at: this.#clockNow() });
  }

  #cachedDenial(key: string, retryAfterMs: number): Decision {
    const remembered = this.#denials.get(key);
    if (remembered !== undefined) {
      const elapsed = this.#clockNow() - remembered.at;
      const d = remembered.decision;
      // The same denial if the cache's retry time is the one Redis gave, counted down.
      if (Math.abs(d.retryAfterMs - elapsed - retryAfterMs) <= 1) {
        const out: Decision = { allowed: false, limit: d.limit, remaining: d.remaining, resetMs: Math.max(0, d.resetMs - elapsed), retryAfterMs };
        return d.policyIndex === undefined ? out : { ...out, policyIndex: d.policyIndex };
      }
    }
    const limit = (this.#params[0] as PolicyParams).limit;
    return { allowed: false, limit, remaining: 0, resetMs: retryAfterMs, retryAfterMs };
  }

  /** State of another shape under policy `index` (1-based) of `base`: counted, reported, and the error to reject with. */
  #mismatch(base: string, index: number, what: 'counted' | 'refunded'): Error & { code: RedisErrorCode } {
    const stateKey = base + (this.#suffixes[index] ?? '');
    this.#stats.stateMismatches++;
    const error = redisError(
      `Redis key '${stateKey}' holds a value RedisLimiter '${this.name}' did not write (another program's, or one from another tool under this prefix); nothing was ${what}. Delete the key, or give this limiter another name or prefix.`,
      'TOLLGATE_REDIS_STATE_MISMATCH',
    );
    this.#emit({ type: 'error', error, node: this.#node(base).name });
    return error;
  }

  #fallback(p: Pending): MaybePromise<Decision> {
    const limit = p.overrides[0] || (this.#params[0] as PolicyParams).limit;
    const onError = this.#onError;
    if (onError === 'allow') {
      this.#stats.failedOpen++;
      return { allowed: true, limit, remaining: limit, resetMs: 0, retryAfterMs: 0 };
    }
    if (onError === 'deny') {
      this.#stats.failedClosed++;
      return { allowed: false, limit, remaining: 0, resetMs: 0, retryAfterMs: FAIL_CLOSED_RETRY_MS };
    }
    this.#stats.fallbackDecisions++;
    // The same call as the caller made, per-call limits (tiers) included.
    return p.op === 1 ? onError.consume(p.key, p.cost, p.options) : onError.peek(p.key, p.cost, p.options);
  }

  /** A call failed: counted, reported, and the node's breaker told. */
  #failed(node: Node, error: Error & { code: RedisErrorCode }): void {
    if (error.code === 'TOLLGATE_REDIS_TIMEOUT') this.#stats.timeouts++;
    else this.#stats.errors++;
    this.#emit({ type: 'error', error, node: node.name });
    const before = node.breaker?.state;
    node.breaker?.failure(realNow());
    this.#breakerMoved(node, before);
  }

  #breakerMoved(node: Node, before: BreakerState | undefined): void {
    const after = node.breaker?.state;
    if (after === undefined || after === before) return;
    this.#emit({ type: 'breaker', state: after, node: node.name });
    // A cluster node that stopped answering may have been replaced: have the client look again
    // (at most once a second), so calls move to the promoted replica without waiting for it.
    if (after === 'open' && this.#redis.cluster && realNow() - this.#lastRefresh >= 1000) {
      this.#lastRefresh = realNow();
      try {
        this.#redis.refresh();
      } catch {
        // The client's own refresh failing changes nothing here: its periodic refresh goes on.
      }
    }
  }

  #lastRefresh = -Infinity;

  /**
   * Runs `script` on the node with the call's deadline in front of `args`; resolves with the reply
   * after its {status, clock} head. Settles within timeoutMs of `startedAt` (a first call to a node
   * reads its clock first, within the same budget). Redis refuses to act once the deadline has
   * passed by its own clock; a reply that comes after the timeout is dropped (and counted).
   */
  async #run(node: Node, s: Script, keys: string[], args: string[], startedAt = realNow()): Promise<readonly unknown[]> {
    try {
      if (!node.clock.known) await this.#sampleClock(node, keys[0] as string, startedAt);
      const now = realNow();
      // The reply must be back before the timeout: Redis stops acting a round trip's worth early.
      const margin = Math.min(this.#timeoutMs / 4, 2 * node.clock.roundTripMs + 1);
      const deadline = node.clock.deadline(startedAt + this.#timeoutMs - margin, now);
      const giveUpAt = startedAt + this.#timeoutMs;
      const reply = await this.#bounded(this.#eval(s, keys, [String(deadline), ...args], node, giveUpAt), giveUpAt - now);
      if (Number(reply[0]) === 0) {
        this.#stats.lateRefused++;
        throw redisError(`Redis refused the call as late (past its deadline by Redis' clock)`, 'TOLLGATE_REDIS_LATE');
      }
      const before = node.breaker?.state;
      node.breaker?.success();
      this.#breakerMoved(node, before);
      return reply.slice(2);
    } catch (error) {
      const coded = error as Error & { code: RedisErrorCode };
      // A late refusal is an answer: the node is up.
      if (coded.code === 'TOLLGATE_REDIS_LATE') {
        this.#emit({ type: 'error', error: coded, node: node.name });
        throw error;
      }
      this.#failed(node, coded);
      throw error;
    }
  }

  /** Reads the node's clock once (shared by the calls that arrive meanwhile), within the budget from `startedAt`. */
  #sampleClock(node: Node, key: string, startedAt: number): Promise<void> {
    node.sampling ??= (async () => {
      try {
        const giveUpAt = startedAt + this.#timeoutMs;
        await this.#bounded(this.#eval(CLOCK, [key], ['0'], node, giveUpAt), giveUpAt - realNow());
      } finally {
        node.sampling = undefined;
      }
    })();
    return node.sampling;
  }

  /**
   * EVALSHA, sending the script itself on NOSCRIPT (after a restart, a failover or SCRIPT FLUSH).
   * A reply seen (whenever it comes) feeds the node's clock; one that says Redis acted, or refused
   * as late, after the caller gave up is counted.
   */
  #eval(s: Script, keys: readonly string[], args: readonly string[], node: Node, giveUpAt: number): Promise<readonly unknown[]> {
    this.#stats.redisCalls++;
    const sentAt = realNow();
    const attempt = this.#redis.evalsha(s.sha, keys, args).catch((error: unknown) => {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
      this.#stats.redisCalls++;
      return this.#redis.eval(s.lua, keys, args);
    });
    return attempt.then((raw) => {
      const reply = raw as readonly unknown[];
      if (!Array.isArray(reply)) throw new Error(`unexpected reply ${String(raw)}`);
      const receivedAt = realNow();
      node.clock.observe(Number(reply[1]), sentAt, receivedAt);
      if (receivedAt > giveUpAt) {
        if (Number(reply[0]) === 0) this.#stats.lateRefused++;
        else if (s !== CLOCK) this.#stats.lateExecuted++;
      }
      return reply;
    });
  }

  /** Gives back up to `amount` on every policy; a key Redis does not hold is left alone. */
  async refund(key: string, amount = 1, options?: CallOptions): Promise<void> {
    if (this.#closed) throw closedError();
    checkKey(key);
    checkPositiveInteger(amount, 'amount');
    const overrides = this.#overrides(options);
    this.#denyCache?.reset(key);
    this.#denials.delete(key);
    const base = this.#base(key);
    const reply = await this.#tracked(this.#direct(base, DECIDE, this.#keys(base), [this.#now(), String(this.#params.length), ...this.#policyArgs, '3', String(amount), ...overrides.map(String)]));
    if (Number(reply[0]) === 2) throw this.#mismatch(base, Number(reply[1]), 'refunded');
  }

  /** Denies the key everywhere for `durationMs` (a shorter block never cuts a longer one). Resolves with true. */
  async block(key: string, durationMs: number): Promise<boolean> {
    if (this.#closed) throw closedError();
    checkKey(key);
    checkPositiveInteger(durationMs, 'durationMs');
    const duration = Math.min(durationMs, MAX_BLOCK_MS);
    this.#denyCache?.block(key, duration);
    const base = this.#base(key);
    await this.#tracked(this.#direct(base, BLOCK, [base + BLOCK_SUFFIX], [String(duration)]));
    return true;
  }

  /** Forgets the key on Redis (counters and block) and in the deny cache. Returns whether Redis held it. */
  async reset(key: string): Promise<boolean> {
    if (this.#closed) throw closedError();
    checkKey(key);
    this.#denyCache?.reset(key);
    this.#denials.delete(key);
    const base = this.#base(key);
    const reply = await this.#tracked(this.#direct(base, RESET, this.#keys(base), []));
    return Number(reply[0]) > 0;
  }

  /** One call outside the batches (refund, block, reset): refused at once while the node's breaker is open. */
  #direct(base: string, s: Script, keys: string[], args: string[]): Promise<readonly unknown[]> {
    const node = this.#node(base);
    if (node.breaker?.admit(realNow()) === 'skip') {
      this.#stats.shortCircuited++;
      return Promise.reject(redisError(`Redis ${node.name || 'server'} is down (its breaker is open)`, 'TOLLGATE_REDIS_UNAVAILABLE'));
    }
    return this.#run(node, s, keys, args);
  }

  /** Settles within `ms`, with a TOLLGATE_REDIS_* error on failure; the late answer is dropped. */
  #bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(redisError(`Redis did not answer within ${this.#timeoutMs} ms`, 'TOLLGATE_REDIS_TIMEOUT')), Math.max(0, ms));
      timer.unref?.();
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          const code = (e as { code?: string })?.code;
          reject(code?.startsWith('TOLLGATE_REDIS_') ? e : redisError(`Redis failed: ${(e as Error)?.message ?? String(e)}`, 'TOLLGATE_REDIS_ERROR', e));
        },
      );
    });
  }

  #lines: WaitingLines | undefined;

  /**
   * Waits until every policy allows `cost` for `key`, then spends it. Between attempts it sleeps
   * for the retry time Redis reported (and the deny cache answers in the meantime), so waiting
   * never spins on Redis. See Limiter.acquire.
   */
  acquire(key: string, options?: AcquireOptions): Promise<Decision> {
    this.#lines ??= new WaitingLines(this);
    return this.#lines.acquire(key, options);
  }

  stats(): RedisLimiterStats {
    let openNodes = 0;
    const now = realNow();
    for (const node of this.#nodes.values()) {
      if (node.breaker !== undefined && node.breaker.state !== 'closed' && now - node.lastUsed <= NODE_IDLE_MS) openNodes++;
    }
    return {
      name: this.name,
      store: 'redis',
      ...this.#stats,
      breakerOpened: this.#transitions.opened,
      breakerHalfOpened: this.#transitions.halfOpened,
      breakerClosed: this.#transitions.closed,
      openNodes,
    };
  }

  /**
   * Stops deciding and frees the deny cache; the Redis client is left to its owner. Every call
   * not yet settled (queued, in flight, or waiting in acquire()) rejects at once with code
   * TOLLGATE_CLOSED; answers that arrive later are dropped.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    const error = closedError();
    for (const reject of [...this.#unsettled]) reject(error);
    this.#unsettled.clear();
    this.#lines?.close(error);
    this.#denyCache?.close();
  }

  get closed(): boolean {
    return this.#closed;
  }
}
