// Limits that hold across machines: decisions in Lua on Redis (or Redis Cluster), batched so that
// many decisions share one round trip, with a local deny cache and a policy for Redis failing.
import type { ManualClock } from '../../clock.js';
import type { Decision } from '../../decision.js';
import { combineDecisions } from '../../decisions.js';
import { closedError, invalidArgument, outOfRange, redisError } from '../../errors.js';
import { Limiter } from '../../limiter.js';
import { fixedWindow, policyParams, type Policy, type PolicyParams } from '../../policies.js';
import { checkInteger, checkKey, checkObject, checkPositiveInteger, splitLimits } from '../../validate.js';
import { checkClock, monotonicMs } from '../../clock.js';
import { MAX_BLOCK_MS, MAX_CAPACITY } from '../../constants.js';
import { redisKeyText } from './key-text.js';
import type { SharedMemoryStore } from '../shared-memory.js';
import { keySlot } from './key-slot.js';
import { BLOCK_LUA, DECIDE_LUA } from './lua.js';
import { createHash } from 'node:crypto';
import { WaitingLines } from '../../waiting-lines.js';
import { isRateLimiter, type AcquireOptions, type CallOptions, type MaybePromise, type RateLimiter, type RedisLimiterStats } from '../../rate-limiter.js';

export type { RedisLimiterStats };

/** What tollgate needs of an ioredis `Redis` or `Cluster`. */
export interface RedisClientLike {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  del(...keys: string[]): Promise<number>;
}

export interface RedisLimiterOptions {
  /** An ioredis `Redis` or `Cluster` (anything with evalsha/eval/del). Its lifecycle stays yours. */
  readonly redis: RedisClientLike;
  /** One policy, or several decided all-or-nothing (e.g. 10 per second and 1,000 per hour). */
  readonly policy: Policy | readonly Policy[];
  /** Prepended to every Redis key; default 'tollgate:'. No braces (they would break hash tags). */
  readonly prefix?: string;
  /** Bound on every Redis call, in ms; default 250. */
  readonly timeoutMs?: number;
  /**
   * When Redis errs or times out: 'allow' (fail open, the default), 'deny', or another limiter
   * that decides instead (typically an in-process or shared-memory Limiter, or allOf(...)).
   */
  readonly onError?: 'allow' | 'deny' | RateLimiter;
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
  /** How metrics label this limiter; default 'default'. */
  readonly name?: string;
  /** For tests: decide at this clock's time instead of Redis TIME (fixed windows still expire on Redis' clock). */
  readonly clock?: ManualClock;
}

interface Pending {
  readonly key: string;
  readonly op: 1 | 2;
  readonly cost: number;
  /** One per policy; 0 = the policy's own limit. */
  readonly overrides: readonly number[];
  /** `prefix{key}`, made once: the batch's keys and, on a cluster, its slot come from it. */
  readonly base: string;
  readonly resolve: (d: MaybePromise<Decision>) => void;
  readonly reject: (error: unknown) => void;
}

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');
const DECIDE_SHA = sha1(DECIDE_LUA);
const BLOCK_SHA = sha1(BLOCK_LUA);
const FAIL_CLOSED_RETRY_MS = 1000;
const MAX_REMEMBERED_DENIALS = 10_000;

export class RedisLimiter implements RateLimiter {
  readonly policies: readonly Policy[];
  readonly name: string;
  readonly #redis: RedisClientLike;
  readonly #params: readonly PolicyParams[];
  readonly #policyArgs: readonly number[];
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #onError: 'allow' | 'deny' | RateLimiter;
  readonly #denyCache: Limiter | undefined;
  readonly #maxBatch: number;
  readonly #clock: ManualClock | undefined;
  readonly #cluster: boolean;
  #queue: Pending[] = [];
  #scheduled = false;
  #closed = false;
  /** Every call not yet settled (queued, in flight, refund/block/reset): close() rejects them at once. */
  readonly #unsettled = new Set<(error: unknown) => void>();
  #stats = { allowed: 0, denied: 0, decisions: 0, denyCacheHits: 0, redisCalls: 0, errors: 0, timeouts: 0, failedOpen: 0, failedClosed: 0, fallbackDecisions: 0 };

  constructor(options: RedisLimiterOptions) {
    const o = checkObject(options, 'options');
    const redis = o.redis as RedisClientLike | undefined;
    if (typeof redis !== 'object' || redis === null || typeof redis.evalsha !== 'function' || typeof redis.eval !== 'function') {
      throw invalidArgument('redis', 'an ioredis Redis or Cluster', redis);
    }
    this.#redis = redis;
    if (o.name !== undefined && (typeof o.name !== 'string' || o.name.length === 0)) throw invalidArgument('name', 'a non-empty string', o.name);
    this.name = (o.name as string | undefined) ?? 'default';
    this.#cluster = typeof (redis as { nodes?: unknown }).nodes === 'function';
    const policies = Array.isArray(o.policy) ? (o.policy as Policy[]) : [o.policy as Policy];
    if (policies.length === 0 || policies.length > 8) throw outOfRange('policy', 'one policy or an array of 1 to 8', o.policy);
    this.#params = policies.map((p) => policyParams(p));
    this.policies = Object.freeze([...policies]);
    this.#policyArgs = this.#params.flatMap((p) => [p.code, p.limit, p.windowMs, p.rateTokens, p.rateIntervalMs]);
    this.#noOverrides = Object.freeze(this.#params.map(() => 0));
    const prefix = o.prefix === undefined ? 'tollgate:' : o.prefix;
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw invalidArgument('prefix', 'a string without braces', prefix);
    this.#prefix = prefix;
    this.#timeoutMs = o.timeoutMs === undefined ? 250 : checkInteger(o.timeoutMs, 'timeoutMs', 1, 600_000);
    const onError = o.onError ?? 'allow';
    if (onError !== 'allow' && onError !== 'deny' && !isRateLimiter(onError)) {
      throw invalidArgument('onError', "'allow', 'deny' or a limiter (Limiter, allOf(...))", onError);
    }
    this.#onError = onError as 'allow' | 'deny' | RateLimiter;
    this.#maxBatch = o.maxBatch === undefined ? 32 : checkInteger(o.maxBatch, 'maxBatch', 1, 10_000);
    this.#clock = checkClock(o.clock);
    this.#denyCache = this.#makeDenyCache(o.denyCache);
  }

  #makeDenyCache(option: unknown): Limiter | undefined {
    if (option === false) return undefined;
    const spec = option === undefined || option === true ? {} : checkObject(option, 'denyCache');
    // A limit no request reaches: the cache only ever answers through block().
    const policy = fixedWindow({ limit: 2 ** 30, windowMs: 1000 });
    const clock = this.#clock === undefined ? {} : { clock: this.#clock };
    if (spec.store !== undefined) return new Limiter({ policy, store: spec.store as SharedMemoryStore, ...clock });
    const capacity = spec.capacity === undefined ? 100_000 : checkInteger(spec.capacity, 'denyCache.capacity', 1, MAX_CAPACITY);
    return new Limiter({ policy, capacity, ...clock });
  }

  /** `prefix{key}`: the hash tag keeps every Redis key of one limiter key in one cluster slot. */
  #base(key: string): string {
    return `${this.#prefix}{${redisKeyText(key)}}`;
  }

  #keys(key: string, base = this.#base(key)): string[] {
    return [`${base}:b`, ...this.#params.map((_, i) => `${base}:${i}`)];
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
    if (!this.#cluster) {
      this.#send(queue);
      return;
    }
    const bySlot = new Map<number, Pending[]>();
    for (const p of queue) {
      const slot = keySlot(p.base);
      const group = bySlot.get(slot);
      if (group === undefined) bySlot.set(slot, [p]);
      else group.push(p);
    }
    for (const group of bySlot.values()) this.#send(group);
  }

  #send(batch: Pending[]): void {
    const keys: string[] = [];
    const args: (string | number)[] = [this.#now(), this.#params.length, ...this.#policyArgs];
    for (const p of batch) {
      keys.push(...this.#keys(p.key, p.base));
      args.push(p.op, p.cost, ...p.overrides);
    }
    this.#call(DECIDE_SHA, DECIDE_LUA, keys, args).then(
      (reply) => this.#settle(batch, reply as number[]),
      (error: unknown) => {
        // close() has rejected the batch already: nothing decides for it now.
        if (this.#closed) return;
        for (const p of batch) {
          try {
            // An asynchronous fallback (another RedisLimiter, a user's limiter) is a pending call
            // too: close() must reject it at once.
            const decided = this.#fallback(p, error);
            p.resolve(decided instanceof Promise ? this.#tracked(decided) : decided);
          } catch (fallbackError) {
            p.reject(fallbackError);
          }
        }
      },
    );
  }

  #settle(batch: Pending[], reply: number[]): void {
    // close() has rejected the batch already, and the deny cache is gone.
    if (this.#closed) return;
    const width = 1 + 5 * this.#params.length;
    batch.forEach((p, r) => {
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

  #fallback(p: Pending, error: unknown): MaybePromise<Decision> {
    const limit = p.overrides[0] || (this.#params[0] as PolicyParams).limit;
    if ((error as { code?: string }).code === 'TOLLGATE_REDIS_TIMEOUT') this.#stats.timeouts++;
    else this.#stats.errors++;
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
    return p.op === 1 ? onError.consume(p.key, p.cost) : onError.peek(p.key, p.cost);
  }

  /** EVALSHA, loading the script on NOSCRIPT (after a restart or SCRIPT FLUSH); bounded by timeoutMs. */
  #call(sha: string, lua: string, keys: string[], args: (string | number)[]): Promise<unknown> {
    this.#stats.redisCalls++;
    const attempt = this.#redis.evalsha(sha, keys.length, ...keys, ...args).catch((error: unknown) => {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
      this.#stats.redisCalls++;
      return this.#redis.eval(lua, keys.length, ...keys, ...args);
    });
    return this.#bounded(attempt);
  }

  /** Gives back up to `amount` on every policy; a key Redis does not hold is left alone. */
  async refund(key: string, amount = 1, options?: CallOptions): Promise<void> {
    if (this.#closed) throw closedError();
    checkKey(key);
    checkPositiveInteger(amount, 'amount');
    const overrides = this.#overrides(options);
    this.#denyCache?.reset(key);
    this.#denials.delete(key);
    await this.#tracked(this.#call(DECIDE_SHA, DECIDE_LUA, this.#keys(key), [this.#now(), this.#params.length, ...this.#policyArgs, 3, amount, ...overrides]));
  }

  /** Denies the key everywhere for `durationMs` (a shorter block never cuts a longer one). Resolves with true. */
  async block(key: string, durationMs: number): Promise<boolean> {
    if (this.#closed) throw closedError();
    checkKey(key);
    checkPositiveInteger(durationMs, 'durationMs');
    const duration = Math.min(durationMs, MAX_BLOCK_MS);
    this.#denyCache?.block(key, duration);
    await this.#tracked(this.#call(BLOCK_SHA, BLOCK_LUA, [this.#keys(key)[0] as string], [duration]));
    return true;
  }

  /** Forgets the key on Redis (counters and block) and in the deny cache. Returns whether Redis held it. */
  async reset(key: string): Promise<boolean> {
    if (this.#closed) throw closedError();
    checkKey(key);
    this.#denyCache?.reset(key);
    this.#denials.delete(key);
    const removed = await this.#tracked(this.#bounded(this.#redis.del(...this.#keys(key))));
    return removed > 0;
  }

  /** Settles within timeoutMs, with a TOLLGATE_REDIS_* error on failure; the late answer is dropped. */
  #bounded<T>(promise: Promise<T>): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(redisError(`Redis did not answer within ${this.#timeoutMs} ms`, 'TOLLGATE_REDIS_TIMEOUT')), this.#timeoutMs);
      timer.unref?.();
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(timer);
          reject(redisError(`Redis failed: ${(e as Error)?.message ?? String(e)}`, 'TOLLGATE_REDIS_ERROR', e));
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
    return { name: this.name, store: 'redis', ...this.#stats };
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
