// Limits that hold across machines: decisions in Lua on Redis (or Redis Cluster), batched so that
// many decisions share one round trip, each limiter in its own namespace, every call bounded by a
// deadline Redis itself enforces, a breaker per node, a local deny cache, and a policy for Redis
// failing.
import { monotonicMs, type ManualClock } from '../common/clock.js';
import { MAX_BLOCK_MS } from '../common/constants.js';
import { combineDecisions, type Decision } from '../common/decision.js';
import { closedError, redisError, type RedisErrorCode } from '../common/errors.js';
import { PolicyCode, type PolicyParams } from '../common/policies.js';
import { checkKey, checkPositiveInteger, isKey } from '../common/validate.js';
import { Breaker, type BreakerOptions, type BreakerState, type BreakerTransitions } from '../redis/breaker.js';
import { keySlot } from '../redis/key-slot.js';
import { BLOCK_LUA, DECIDE_LUA, FIXED_WINDOW_LUA, GIVE_BACK_LUA, LEASE_LUA, PROBE_LUA, RESET_LUA } from '../redis/lua.js';
import { asRedisError, countsTowardBreaker } from '../redis/redis-errors.js';
import { noScriptsError, PROBED_COMMANDS, readProbe, unsupportedError, warnEviction, warnLeasesOff, type ServerProfile } from '../redis/server-probe.js';
import type { RedisTransport } from '../redis/redis-client.js';
import { blockMarker, groupHead, keyGroup, keyTagText, limiterNamespace, policySuffixes } from '../redis/redis-keys.js';
import { ServerClock } from '../redis/server-clock.js';
import { script, type Script } from '../redis/script.js';
import { DenyCache } from './deny-cache.js';
import { Fallback } from './fallback.js';
import { LeaseBook, type LeaseWindow } from './leases.js';
import { LimiterBase } from './limiter-base.js';
import { WindowEnds } from './window-ends.js';
import { parseRedisLimiterOptions, type RedisLimiterEvent, type RedisLimiterOptions } from './redis-limiter-options.js';
import type { CallOptions, MaybePromise, RedisLimiterStats } from './rate-limiter.js';

export type { RedisLimiterStats };
export type { RedisLimiterEvent, RedisLimiterOptions } from './redis-limiter-options.js';
export type { RedisClient, IoRedisClient, NodeRedisClient, NodeRedisCluster, RedisCommandSender } from '../redis/redis-client.js';
export type { BreakerOptions, BreakerState } from '../redis/breaker.js';

interface Pending {
  readonly key: string;
  readonly op: 1 | 2;
  readonly cost: number;
  /** One per policy; 0 = the policy's own limit. */
  readonly overrides: readonly number[];
  /** What the caller gave, for the fallback limiter. */
  readonly options: CallOptions | undefined;
  /** Its first state key, `<base><policy 1's suffix>` (see #names); every other name is made from it when needed. */
  readonly stateKey: string;
  /** Its slot group (0 on a single server): its blocks marker, its slot and its batch. */
  readonly group: number;
  /** Under one fixed window: the window end its batch told the script it knows (see #knownEnds), else 0. */
  knownEnd: number;
  /** When its timeoutMs began, by realNow(); 0 = when its batch is sent (a call that waited for a lease began earlier). */
  readonly startedAt: number;
  /** The limiter's forget count when it was made (see #forgets): a denial is cached only if unchanged. */
  readonly forgets: number;
  readonly resolve: (d: Decision) => void;
  readonly reject: (error: unknown) => void;
}

/** What Redis calls a limiter key, for the calls outside the batches (see #names). */
interface Names {
  /** `<namespace>{<key>}`, or on a Cluster the slot-grouped form: every other name starts with it. */
  readonly base: string;
  /** One state key per policy (base + the policy's suffix). */
  readonly keys: readonly string[];
  /** Its slot group (0 on a single server). */
  readonly group: number;
  /** Its slot on a Cluster (0 on a single server), which picks its node. */
  readonly slot: number;
  /** The blocks marker of its group (see blockMarker): a block on the key is its field `base` there. */
  readonly marker: string;
}

/** One node (or the single server): its breaker, its clock and what it can do. */
interface Node {
  readonly name: string;
  readonly breaker: Breaker | undefined;
  readonly clock: ServerClock;
  /** The probe under way (first contact, or a recheck), shared by the calls that wait for it. */
  probing: Promise<void> | undefined;
  /** What the last probe found (undefined before one answered). */
  profile: ServerProfile | undefined;
  /** While the node lacks what tollgate needs: the error every call rejects with. */
  unsupported: (Error & { code: RedisErrorCode }) | undefined;
  /** When to probe again (Infinity once nothing is missing). */
  probeAt: number;
  /** The server's words when a call was refused a command since the last probe. */
  refused: string | undefined;
  /** When a call was last routed here (a node that no longer serves a slot stops being asked). */
  lastUsed: number;
  /** The scripts this node has run for this limiter (later calls send their SHA). */
  readonly scripts: Set<Script>;
  /** On a Cluster: the slots routed here lately, with when. */
  readonly slots: Map<number, number>;
  /** Slots whose last call here timed out, since a call of theirs last answered. */
  readonly failingSlots: Set<number>;
}

/** How often a node that lacks a command is probed again (an operator may fix its ACL meanwhile). */
const PROBE_AGAIN_MS = 10_000;

/** Thrown by #run to the lease path when the node cannot serve leases: the consume goes to Redis as a plain one. */
const LEASES_OFF = Symbol('leases off');

/**
 * Window ends remembered: up to 2^16 slots (1 MB, and the keys they hold) whatever the key count,
 * from 256 slots as keys arrive (a limiter per tenant stays small). It
 * spares Redis a PTTL per decision on the keys that recur (0.2-0.3 µs of its CPU at 10k and 100k
 * keys); a 2^20 table saved nothing more at 1M keys (bench/RESULTS.md, issue 34).
 */
const WINDOW_ENDS_BITS = 16;

/** A node not routed to for this long no longer counts in stats().openNodes, and is forgotten soon after. */
const NODE_IDLE_MS = 5000;

const DECIDE = script(DECIDE_LUA);
/** Plain consumes under one fixed window: DECIDE is loaded on a node only when a batch needs it. */
const FIXED_WINDOW = script(FIXED_WINDOW_LUA);
const BLOCK = script(BLOCK_LUA);
const RESET = script(RESET_LUA);
const PROBE = script(PROBE_LUA);
const LEASE = script(LEASE_LUA);
const GIVE_BACK = script(GIVE_BACK_LUA);
/** Local time for deadlines and the breaker: real and monotonic, whatever clock decides. */
const realNow = () => performance.now();

export class RedisLimiter extends LimiterBase {
  readonly #redis: RedisTransport;
  readonly #params: readonly PolicyParams[];
  readonly #policyArgs: readonly string[];
  readonly #suffixes: readonly string[];
  /** Slot groups on a Cluster; 0 on a single server (one group, the limiter's). */
  readonly #groups: number;
  /** Per slot group: what its keys' names start with, up to the key's text (`<namespace>{`, `<prefix>{<name>~<group>}{`). */
  readonly #opens: readonly string[];
  /** What a first state key ends with after the key's text: `}` and policy 1's suffix. */
  readonly #close: string;
  /** Per slot group: its blocks marker (see blockMarker). */
  readonly #markers: readonly string[];
  /** Per slot group: its slot (0 on a single server). */
  readonly #slots: readonly number[];
  /** What every script that decides is told first: the policy count, the length of policy 1's suffix, the policies. */
  readonly #decideArgs: readonly string[];
  readonly #timeoutMs: number;
  readonly #fallbackDecider: Fallback;
  readonly #onEvent: ((event: RedisLimiterEvent) => void) | undefined;
  readonly #breaker: BreakerOptions | undefined;
  readonly #denyCache: DenyCache | undefined;
  /** Hot keys' leases; switched off (undefined) when a node cannot serve them. */
  #leases: LeaseBook | undefined;
  /** Lease calls under way, per key: the consumes that arrive meanwhile wait for it. */
  readonly #leasing = new Map<string, Promise<unknown>>();
  readonly #maxBatch: number;
  /** One fixedWindow policy: plain batches tell the script which windows' ends they know. */
  readonly #oneFixedWindow: boolean;
  /**
   * Under one fixed window: when keys' current windows end by Redis' clock, as replies last showed.
   * While that is surely after a call's deadline, the script is told it need not read the window's
   * TTL (see #knownEnds).
   */
  readonly #ends: WindowEnds | undefined;
  readonly #clock: ManualClock | undefined;
  readonly #nodes = new Map<string, Node>();
  /** 0 for every policy: the policies' own limits (the identity marks a call without a tier). */
  readonly #noOverrides: readonly number[];
  /** Requests waiting for their call, per slot group (one queue, under group 0, on a single server). */
  readonly #queues = new Map<number, Pending[]>();
  #scheduled = false;
  /** Batches sent and not yet answered: close() rejects their requests at once. */
  readonly #inFlight = new Set<Pending[]>();
  /** Other calls not yet settled (refund, block, reset, an asynchronous fallback): close() rejects them at once. */
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
    shortCircuited: 0,
    stateMismatches: 0,
    lateRefused: 0,
    lateExecuted: 0,
    leaseCalls: 0,
  };

  constructor(options: RedisLimiterOptions) {
    const c = parseRedisLimiterOptions(options);
    super(c.name, c.policies);
    this.#redis = c.redis;
    this.#params = c.params;
    this.#policyArgs = c.params.flatMap((p) => [p.code, p.limit, p.windowMs, p.rateTokens, p.rateIntervalMs].map(String));
    this.#noOverrides = Object.freeze(c.params.map(() => 0));
    this.#suffixes = policySuffixes(c.params);
    // A group's head is the part of its names before the key's own braces: the names a request
    // needs are made from it, the key's text and a suffix, with no hashing but the group's.
    this.#groups = c.redis.cluster ? c.slotGroups : 0;
    const heads = c.redis.cluster ? Array.from({ length: c.slotGroups }, (_, g) => groupHead(c.prefix, c.name, g)) : [limiterNamespace(c.prefix, c.name)];
    this.#opens = heads.map((head) => `${head}{`);
    this.#close = `}${this.#suffixes[0] as string}`;
    this.#markers = heads.map((head) => blockMarker(`${head}{}`, c.redis.cluster));
    this.#slots = heads.map((head) => (c.redis.cluster ? keySlot(head) : 0));
    // The script finds a request's base (its field in the blocks marker) by cutting policy 1's suffix off its first key.
    this.#decideArgs = [String(c.params.length), String((this.#suffixes[0] as string).length), ...this.#policyArgs];
    this.#timeoutMs = c.timeoutMs;
    this.#fallbackDecider = new Fallback(c.onError);
    this.#onEvent = c.onEvent;
    this.#breaker = c.breaker;
    this.#maxBatch = c.maxBatch;
    this.#oneFixedWindow = c.params.length === 1 && (c.params[0] as PolicyParams).code === PolicyCode.FixedWindow;
    this.#ends = this.#oneFixedWindow ? new WindowEnds(WINDOW_ENDS_BITS) : undefined;
    this.#clock = c.clock;
    this.#denyCache = c.denyCache === undefined ? undefined : new DenyCache(c.denyCache, (c.params[0] as PolicyParams).limit, c.clock);
    this.#leases = c.leases === undefined ? undefined : new LeaseBook(c.leases, () => this.#clockNow(), (key, units, window) => this.#giveBack(key, units, window));
  }

  /** The slot group of a key's text (see keyGroup): 0 on a single server. */
  #groupOf(text: string): number {
    return this.#groups === 0 ? 0 : keyGroup(text, this.#groups);
  }

  /**
   * A key's first state key, `<base><policy 1's suffix>` (base: `<namespace>{<key>}`, or on a
   * Cluster `<prefix>{<name>~<group>}{<key>}`, as keyBase and groupedKeyBase make them): one
   * concatenation per request, no cache to keep.
   */
  #stateKey(text: string, group: number): string {
    return (this.#opens[group] as string) + text + this.#close;
  }

  /** Every state key of a request, from its first: one per policy. */
  #stateKeys(stateKey: string): string[] {
    if (this.#suffixes.length === 1) return [stateKey];
    const base = this.#baseOf(stateKey);
    return this.#suffixes.map((suffix, i) => (i === 0 ? stateKey : base + suffix));
  }

  /** The base of a first state key (policy 1's suffix cut off): a block's field in the marker. */
  #baseOf(stateKey: string): string {
    return stateKey.slice(0, stateKey.length - (this.#suffixes[0] as string).length);
  }

  /** A key's Redis names, for the calls outside the batches. */
  #names(key: string): Names {
    const text = keyTagText(key);
    const group = this.#groupOf(text);
    const stateKey = this.#stateKey(text, group);
    return { base: this.#baseOf(stateKey), keys: this.#stateKeys(stateKey), group, slot: this.#slots[group] as number, marker: this.#markers[group] as string };
  }

  /** A pending request's names (for a state mismatch). */
  #namesOf(p: Pending): Names {
    return { base: this.#baseOf(p.stateKey), keys: this.#stateKeys(p.stateKey), group: p.group, slot: this.#slots[p.group] as number, marker: this.#markers[p.group] as string };
  }

  /** The node that serves `slot` (the single server: any), with its breaker and clock. */
  #node(slot: number): Node {
    const name = this.#redis.cluster ? this.#redis.nodeOf(slot) : '';
    const now = realNow();
    let node = this.#nodes.get(name);
    if (node === undefined) {
      // A new node (a promoted replica, a resharding): forget those long unused (a failed master).
      for (const [other, state] of this.#nodes) if (now - state.lastUsed > 12 * NODE_IDLE_MS) this.#nodes.delete(other);
      const breaker = this.#breaker === undefined ? undefined : new Breaker(this.#breaker, this.#transitions);
      node = { name, breaker, clock: new ServerClock(), probing: undefined, profile: undefined, unsupported: undefined, probeAt: 0, refused: undefined, lastUsed: now, scripts: new Set(), slots: new Map(), failingSlots: new Set() };
      this.#nodes.set(name, node);
    }
    node.lastUsed = now;
    if (this.#redis.cluster) node.slots.set(slot, now);
    return node;
  }

  /** One limit per policy for this call (0 = the policy's own), validated. */
  #overrides(options: CallOptions | undefined): readonly number[] {
    const limits = this.callLimits(options);
    return limits === undefined ? this.#noOverrides : this.#params.map((_, i) => limits[i] ?? 0);
  }

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

  /** Local time for leases: the test clock's, else the monotonic clock. */
  #clockNow(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
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
    return this.#decide(key, cost, options, 1);
  }

  /**
   * A consume that arrived while the key's lease call was out: spent from the new lease when it
   * covers it, else decided by Redis with the others the lease could not serve (one batch, not one
   * call each), all within timeoutMs of its arrival; past that, onError decides, as for a timeout.
   */
  #afterLease(waiting: Promise<unknown>, key: string, cost: number): Promise<Decision> {
    const arrivedAt = realNow();
    return this.#tracked(
      new Promise<Decision>((resolve, reject) => {
        let settled = false;
        const timer = setTimeout(() => {
          if (settled || this.closed) return;
          settled = true;
          this.#stats.decisions++;
          this.#stats.timeouts++;
          const names = this.#names(key);
          this.#fallBack({ key, op: 1, cost, overrides: this.#noOverrides, options: undefined, stateKey: names.keys[0] as string, group: names.group, knownEnd: 0, startedAt: arrivedAt, forgets: this.#forgets, resolve, reject });
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
          } else this.#decide(key, cost, undefined, 1, arrivedAt).then(resolve, reject);
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
    const cached = this.#denyCache?.answer(key);
    if (cached !== undefined) {
      this.#stats.denyCacheHits++;
      this.#stats.denied++;
      return Promise.resolve(cached);
    }
    this.#stats.leaseCalls++;
    const params = this.#params[0] as PolicyParams;
    const names = this.#names(key);
    const args = [String(want), String(params.limit), String(params.windowMs), String(leases.share), String(cost), names.base];
    // The lease's window is counted from here: Redis ran the call after this.
    const sentAt = this.#clockNow();
    const forgets = this.#forgets;
    // One policy: the keys are the blocks marker and the window's.
    const decided = this.#tracked(this.#direct(names, LEASE, [names.marker, names.keys[0] as string], args)).then(
      (reply) => this.#leased(leases, key, names, cost, params.limit, reply, sentAt, forgets),
      (error: unknown) => {
        if (this.closed) throw error;
        if (error === LEASES_OFF) {
          // Counted again by #decide.
          this.#stats.decisions--;
          return this.#decide(key, cost, undefined, 1);
        }
        if ((error as { code?: string }).code === 'TOLLGATE_REDIS_UNSUPPORTED') throw error;
        // Redis could not lease: onError decides, as for any consume it could not decide.
        return new Promise<Decision>((resolve, reject) => {
          this.#fallBack({ key, op: 1, cost, overrides: this.#noOverrides, options: undefined, stateKey: names.keys[0] as string, group: names.group, knownEnd: 0, startedAt: 0, forgets: this.#forgets, resolve, reject });
        });
      },
    );
    const done = () => this.#leasing.delete(key);
    this.#leasing.set(key, decided);
    decided.then(done, done);
    return decided;
  }

  #leased(leases: LeaseBook, key: string, names: Names, cost: number, limit: number, reply: readonly unknown[], sentAt: number, forgets: number): Decision {
    const granted = Number(reply[2]);
    if (granted < 0) throw this.#mismatch(names, 1, 'counted');
    const count = Number(reply[3]);
    // What Redis measured when it ran, less the time since the call was sent (a slow reply path).
    const reset = Math.max(0, Number(reply[4]) - (this.#clockNow() - sentAt));
    if (granted >= cost) {
      leases.keep(key, granted - cost, limit, limit - count, Number(reply[4]), { expiresAt: Number(reply[5]), countAfter: count }, sentAt);
      this.#stats.allowed++;
      return { allowed: true, limit, remaining: granted - cost + (limit - count), resetMs: reset, retryAfterMs: 0 };
    }
    // Blocked (count -1: the reset is the block's), or not even `cost` left in this window.
    const blocked = count < 0;
    const retryAfterMs = blocked || cost <= limit ? reset : Infinity;
    const decision: Decision = { allowed: false, limit, remaining: blocked ? 0 : Math.max(0, limit - count), resetMs: reset, retryAfterMs };
    if (cost === 1 && forgets === this.#forgets && Number.isFinite(retryAfterMs) && retryAfterMs > 0) this.#denyCache?.remember(key, decision);
    this.#stats.denied++;
    return decision;
  }

  /**
   * Hands a lease's unspent units back to the window they were taken from (see GIVE_BACK_LUA),
   * also after close(): nobody waits for it, and a failure leaves them counted, as a lease that
   * runs out its window would.
   */
  #giveBack(key: string, units: number, window: LeaseWindow): void {
    const names = this.#names(key);
    this.#direct(names, GIVE_BACK, [names.keys[0] as string], [String(units), String(window.expiresAt), String(window.countAfter)]).catch(() => undefined);
  }

  /** What consume would decide, spending nothing. */
  peek(key: string, cost = 1, options?: CallOptions): Promise<Decision> {
    return this.#decide(key, cost, options, 2);
  }

  #decide(key: string, cost: number, options: CallOptions | undefined, op: 1 | 2, startedAt = 0): Promise<Decision> {
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
    const cached = overrides === this.#noOverrides ? this.#denyCache?.answer(key) : undefined;
    if (cached !== undefined) {
      this.#stats.denyCacheHits++;
      if (op === 1) this.#stats.denied++;
      return Promise.resolve(cached);
    }
    // No closure of its own (the executor is the limiter's) and no registry entry per request:
    // close() finds it in its queue or its batch in flight.
    const promise = new Promise<Decision>(this.#capture);
    const resolve = this.#captured.resolve;
    const reject = this.#captured.reject;
    try {
      const text = keyTagText(key);
      const group = this.#groupOf(text);
      const pending: Pending = { key, op, cost, overrides, options, stateKey: this.#stateKey(text, group), group, knownEnd: 0, startedAt, forgets: this.#forgets, resolve, reject };
      // On a Cluster a call holds the keys of one slot group (one slot, one blocks marker):
      // requests wait per group, a full batch goes at once.
      let queue = this.#queues.get(group);
      if (queue === undefined) {
        queue = [];
        this.#queues.set(group, queue);
      }
      queue.push(pending);
      if (queue.length >= this.#maxBatch) {
        this.#queues.delete(group);
        this.#dispatch(this.#node(this.#slots[group] as number), queue);
      } else if (!this.#scheduled) {
        this.#scheduled = true;
        // Nothing in flight: a lone call goes at once, after this turn's synchronous calls (which
        // share it); it must not wait an event-loop turn for a batch to fill. With calls in
        // flight, wait for the loop's turn instead: what arrives meanwhile shares one call.
        if (this.#inFlight.size === 0) queueMicrotask(this.#flushNow);
        else setImmediate(this.#flushNow);
      }
    } catch (error) {
      // As a throw in an executor would: the call rejects (a client's nodeOf that throws).
      reject(error);
    }
    return promise;
  }

  /** The settling functions of the promise #capture last ran for (read at once after it). */
  readonly #captured: { resolve: (d: Decision) => void; reject: (error: unknown) => void } = { resolve: () => undefined, reject: () => undefined };

  /** One promise executor for every request: it hands the settling functions to #captured. */
  readonly #capture = (resolve: (d: Decision) => void, reject: (error: unknown) => void): void => {
    this.#captured.resolve = resolve;
    this.#captured.reject = reject;
  };

  readonly #flushNow = () => this.#flush();

  /** Sends every waiting request: a call per slot group that has some. */
  #flush(): void {
    this.#scheduled = false;
    for (const [group, queue] of this.#queues) this.#dispatch(this.#node(this.#slots[group] as number), queue);
    this.#queues.clear();
  }

  /**
   * Sends a batch to its node, unless the node's breaker says it is down: then onError decides at
   * once. A batch of plain consumes under one fixed window goes to FIXED_WINDOW, unless it is what
   * FIXED_WINDOW sent back (see #settle): then `resentFrom` is when the first batch began, and it
   * goes to DECIDE.
   */
  #dispatch(node: Node, batch: Pending[], resentFrom?: number): void {
    if (node.breaker?.admit(realNow()) === 'skip') {
      const error = redisError(`Redis ${node.name || 'server'} is down (its breaker is open); decided by onError`, 'TOLLGATE_REDIS_UNAVAILABLE');
      this.#stats.shortCircuited += batch.length;
      for (const p of batch) this.#fallBack(p);
      return;
    }
    // Every request of a batch shares its slot group (its limiter, on a single server): one marker.
    const group = (batch[0] as Pending).group;
    const keys: string[] = [this.#markers[group] as string];
    const args: string[] = [this.#now(), ...this.#decideArgs, 'c'];
    let plain = true;
    const one = this.#suffixes.length === 1;
    for (const p of batch) {
      if (one) keys.push(p.stateKey);
      else for (const name of this.#stateKeys(p.stateKey)) keys.push(name);
      if (p.op !== 1 || p.cost !== 1 || p.overrides !== this.#noOverrides) plain = false;
    }
    // A batch of plain consumes (the common case) sends nothing per request but, under one fixed
    // window, which windows' ends it knows; any other batch sends all of it.
    const fixed = plain && this.#oneFixedWindow && resentFrom === undefined;
    if (plain) {
      if (fixed) args.push(this.#knownEnds(node, batch));
    } else {
      args[args.length - 1] = 'x';
      for (const p of batch) {
        args.push(String(p.op), String(p.cost));
        for (const limit of p.overrides) args.push(String(limit));
      }
    }
    // The batch's timeoutMs began with its earliest request (one that waited for a lease), else now.
    let startedAt = resentFrom ?? realNow();
    for (const p of batch) if (p.startedAt !== 0 && p.startedAt < startedAt) startedAt = p.startedAt;
    this.#inFlight.add(batch);
    this.#run(node, fixed ? FIXED_WINDOW : DECIDE, keys, args, this.#slots[group] as number, startedAt).then(
      (reply) => {
        this.#inFlight.delete(batch);
        const resend = this.#settle(batch, reply);
        // Within the batch's own timeoutMs: the resent requests keep when it began.
        if (resend !== undefined) this.#dispatch(this.#node(this.#slots[group] as number), resend, startedAt);
      },
      (error: unknown) => {
        this.#inFlight.delete(batch);
        // close() has rejected the batch already: nothing decides for it now (the failure itself
        // was counted and reported by #run).
        if (this.closed) return;
        // A node that lacks what tollgate needs is an error to fix, not a failure to decide around.
        if ((error as { code?: string }).code === 'TOLLGATE_REDIS_UNSUPPORTED') for (const p of batch) p.reject(error);
        else for (const p of batch) this.#fallBack(p);
      },
    );
  }

  /** Settles a request with its decision, counting a consume's outcome. */
  #answer(p: Pending, d: Decision): void {
    if (p.op === 1) {
      if (d.allowed) this.#stats.allowed++;
      else this.#stats.denied++;
    }
    p.resolve(d);
  }

  /** Settles a call Redis did not decide, by onError. */
  #fallBack(p: Pending): void {
    try {
      // An asynchronous fallback (another RedisLimiter, a user's limiter) is a pending call
      // too: close() must reject it at once.
      const decided = this.#fallback(p);
      if (decided instanceof Promise) {
        this.#tracked(decided).then(
          (d) => this.#answer(p, d),
          (error: unknown) => p.reject(error),
        );
      } else this.#answer(p, decided);
    } catch (fallbackError) {
      p.reject(fallbackError);
    }
  }

  /**
   * One character per request of a plain batch under one fixed window: '1' where the key's window
   * surely outlasts the call (it ends after the latest time by Redis' clock at which the script may
   * run, the call's deadline), so the script need not read its TTL and answers -2 for "the end you
   * know"; '0' elsewhere. A window restarted since (a reset() elsewhere, an eviction) with a count
   * above 1 would show the old end until then: the decision is Redis' own either way.
   */
  #knownEnds(node: Node, batch: Pending[]): string {
    const now = realNow();
    // At or after the deadline #run gives this call (the same clock, a later start, less a margin).
    const latest = node.clock.deadline(now + this.#timeoutMs, now);
    const ends = this.#ends;
    if (latest === 0 || ends === undefined) return '';
    // Up to the last known end only: the script reads a missing character as '0'. At many keys
    // most batches know none, and send ''.
    let known = '';
    let upTo = 0;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending;
      const end = ends.get(p.key);
      if (end > latest) {
        p.knownEnd = end;
        known += i > upTo ? `${'0'.repeat(i - upTo)}1` : '1';
        upTo = i + 1;
      }
    }
    return known;
  }

  /**
   * Settles a batch from its script's reply; returns the requests FIXED_WINDOW sent back (status
   * 3, a blocked key: nothing was counted for them) for DECIDE, if any.
   */
  #settle(batch: Pending[], reply: readonly unknown[]): Pending[] | undefined {
    // close() has rejected the batch already, and the deny cache is gone.
    if (this.closed) return undefined;
    let resend: Pending[] | undefined;
    const single = this.#params.length === 1;
    const width = single ? 4 : 1 + 5 * this.#params.length;
    const clock = Number(reply[1]);
    for (let r = 0; r < batch.length; r++) {
      const p = batch[r] as Pending;
      const status = Number(reply[2 + r * width]);
      if (status === 2) {
        p.reject(this.#mismatch(this.#namesOf(p), Number(reply[2 + r * width + 1]), 'counted'));
        continue;
      }
      if (status === 3) {
        (resend ??= []).push(p);
        continue;
      }
      if (single) {
        // status (allowed), remaining, reset, retry; the limit is the call's own or the policy's.
        const at = 2 + r * width;
        let reset = Number(reply[at + 2]);
        let retry = Number(reply[at + 3]);
        if (this.#oneFixedWindow) {
          // -2: the window's end this process knows (see #knownEnds). Else learn it from a consume
          // Redis allowed: the key then holds a window with that TTL (a peek or a denial may show
          // a window that does not exist, or a block's end).
          if (reset === -2) {
            reset = p.knownEnd - clock;
            if (retry === -2) retry = reset;
          } else if (reset > 0 && status === 1 && p.op === 1) this.#ends?.set(p.key, clock + reset);
        }
        this.#decided(p, {
          allowed: status === 1,
          limit: p.overrides[0] || (this.#params[0] as PolicyParams).limit,
          remaining: Number(reply[at + 1]),
          resetMs: reset,
          retryAfterMs: retry < 0 ? Infinity : retry,
        });
        continue;
      }
      const decisions: Decision[] = [];
      for (let i = 0; i < this.#params.length; i++) {
        const at = 2 + r * width + 1 + i * 5;
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
      this.#decided(p, combineDecisions(decisions));
    }
    return resend;
  }

  /**
   * reset() and refund() calls made through this limiter: a denial of a request made before one of
   * them may have been decided by Redis before it, and cached after it would deny, for the rest of
   * the old window, a key Redis has room for again. Such a denial answers its request, uncached.
   */
  #forgets = 0;

  /** A request Redis decided: a denial remembered by the deny cache, then the answer. */
  #decided(p: Pending, decision: Decision): void {
    // Only a cost-1 denial is cached: it implies every larger cost is denied at least as long.
    if (!decision.allowed && p.cost === 1 && p.overrides === this.#noOverrides && p.forgets === this.#forgets && Number.isFinite(decision.retryAfterMs) && decision.retryAfterMs > 0) {
      this.#denyCache?.remember(p.key, decision);
    }
    this.#answer(p, decision);
  }

  /** State of another shape under policy `index` (1-based) of a key: counted, reported, and the error to reject with. */
  #mismatch(names: Names, index: number, what: 'counted' | 'refunded'): Error & { code: RedisErrorCode } {
    const stateKey = names.keys[index - 1] ?? names.base;
    this.#stats.stateMismatches++;
    const error = redisError(
      `Redis key '${stateKey}' holds a value RedisLimiter '${this.name}' did not write (another program's, or one from another tool under this prefix); nothing was ${what}. Delete the key, or give this limiter another name or prefix.`,
      'TOLLGATE_REDIS_STATE_MISMATCH',
    );
    this.#emit({ type: 'error', error, node: this.#node(names.slot).name });
    return error;
  }

  #fallback(p: Pending): MaybePromise<Decision> {
    const limit = p.overrides[0] || (this.#params[0] as PolicyParams).limit;
    return this.#fallbackDecider.decide(p.op === 1 ? 'consume' : 'peek', p.key, p.cost, p.options, limit);
  }

  /** A call for `slot` failed: counted, reported, and the node's breaker told when the failure is the node's. */
  #failed(node: Node, error: Error & { code: RedisErrorCode }, slot: number): void {
    if (error.code === 'TOLLGATE_REDIS_TIMEOUT') this.#stats.timeouts++;
    else this.#stats.errors++;
    this.#emit({ type: 'error', error, node: node.name });
    // A command refused during a call (an ACL changed since the probe): probe again at the next
    // call, which then rejects with the command's name rather than deciding around it for ever.
    if (error.code === 'TOLLGATE_REDIS_NO_PERMISSION') {
      node.probeAt = 0;
      node.refused = (error as { reply?: string }).reply ?? error.message;
    }
    if (!countsTowardBreaker(error.code)) {
      // An answer that says nothing against the node (a refused command, a slot on the move).
      this.#trialEnded(node, true);
      return;
    }
    const before = node.breaker?.state;
    // A trial's failure always counts; another only when it speaks for the whole node.
    if (before === 'half-open' || this.#nodeFailing(node, error.code, slot)) node.breaker?.failure(realNow());
    this.#breakerMoved(node, before);
  }

  /**
   * A call that may have been the breaker's trial ended without a plain success or failure: it
   * reports whether the node was found up. A trial must have an outcome, else the breaker waits
   * half-open for ever and every call goes to onError; outside a trial this changes nothing.
   */
  #trialEnded(node: Node, up: boolean): void {
    if (node.breaker?.state !== 'half-open') return;
    if (up) node.breaker.success();
    else node.breaker.failure(realNow());
    this.#breakerMoved(node, 'half-open');
  }

  /**
   * Whether a failure of `slot` speaks for its whole node. On a Cluster, a slot that times out
   * while the node's other slots answer is being migrated (its client retrying TRYAGAIN until the
   * move ends), not dead: a timeout counts once calls of two slots of the node are timing out, or
   * when the node served no other slot lately.
   */
  #nodeFailing(node: Node, code: RedisErrorCode, slot: number): boolean {
    if (!this.#redis.cluster || code !== 'TOLLGATE_REDIS_TIMEOUT') return true;
    node.failingSlots.add(slot);
    if (node.failingSlots.size >= 2) return true;
    const now = realNow();
    for (const [other, usedAt] of node.slots) {
      if (other !== slot && now - usedAt <= NODE_IDLE_MS) return false;
    }
    return true;
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
   * Runs `script` on the node with the call's deadline in front of `args`; resolves with the whole
   * reply, its {status, clock} head included. Settles within timeoutMs of `startedAt` (a first call to a node
   * reads its clock first, within the same budget). Redis refuses to act once the deadline has
   * passed by its own clock; a reply that comes after the timeout is dropped (and counted).
   */
  async #run(node: Node, s: Script, keys: readonly string[], args: string[], slot: number, startedAt = realNow()): Promise<readonly unknown[]> {
    if (!node.clock.known || startedAt >= node.probeAt) await this.#probe(node, keys[0] as string, slot, startedAt);
    const unsupported = node.unsupported;
    if (unsupported !== undefined || (s === LEASE && node.profile?.leases === false)) {
      // Nothing is sent; the node answered its probe, so it is up.
      this.#trialEnded(node, true);
      // Found on the probe (which reported it): every call rejects with it until a probe finds it fixed.
      if (unsupported !== undefined) throw unsupported;
      this.#leasesOff(node);
    }
    try {
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
      node.failingSlots.delete(slot);
      const before = node.breaker?.state;
      node.breaker?.success();
      this.#breakerMoved(node, before);
      return reply;
    } catch (error) {
      const coded = error as Error & { code: RedisErrorCode };
      // A late refusal is an answer: the node is up, but too slow for this call. It does not
      // count toward the breaker, except as a trial's outcome: that trial failed, the next comes later.
      if (coded.code === 'TOLLGATE_REDIS_LATE') {
        this.#emit({ type: 'error', error: coded, node: node.name });
        this.#trialEnded(node, false);
        throw error;
      }
      this.#failed(node, coded, slot);
      throw error;
    }
  }

  /**
   * Reads the node's clock and what it can do (see server-probe.ts), once on first contact and
   * again while something is missing; shared by the calls that arrive meanwhile, within the budget
   * from `startedAt`. A failure to probe is the node's failure, as any call's.
   */
  #probe(node: Node, key: string, slot: number, startedAt: number): Promise<void> {
    node.probing ??= (async () => {
      try {
        const giveUpAt = startedAt + this.#timeoutMs;
        const reply = await this.#bounded(this.#eval(PROBE, [key], ['0', ...PROBED_COMMANDS], node, giveUpAt), giveUpAt - realNow());
        const profile = readProbe(reply);
        node.profile = profile;
        // A refusal the probe cannot name (Redis 6 has no ACL check for scripts; a key outside
        // the user's patterns) is reported in the server's words; one that leases explain (their
        // command refused since) only switches them off, at the next lease call.
        const refused = node.refused;
        node.refused = undefined;
        const leasesExplain = !profile.leases && this.#leases !== undefined;
        if (profile.missing.length > 0) node.unsupported = unsupportedError(node.name, profile.missing);
        else node.unsupported = refused === undefined || leasesExplain ? undefined : noScriptsError(node.name, refused);
        node.probeAt = node.unsupported === undefined ? Infinity : realNow() + PROBE_AGAIN_MS;
        if (node.unsupported !== undefined) this.#emit({ type: 'error', error: node.unsupported, node: node.name });
        if (profile.evicting !== undefined) warnEviction(node.name, { ...profile, evicting: profile.evicting });
      } catch (error) {
        const coded = error as Error & { code: RedisErrorCode; reply?: string };
        if (coded.code === 'TOLLGATE_REDIS_NO_PERMISSION') {
          // Not even the scripts may run: the same as a missing command.
          node.unsupported = noScriptsError(node.name, coded.reply ?? coded.message);
          node.probeAt = realNow() + PROBE_AGAIN_MS;
          this.#emit({ type: 'error', error: node.unsupported, node: node.name });
          return;
        }
        this.#failed(node, coded, slot);
        throw error;
      } finally {
        node.probing = undefined;
      }
    })();
    return node.probing;
  }

  /** A node cannot serve leases (see server-probe.ts): they stop for this limiter, with one warning. */
  #leasesOff(node: Node): never {
    if (this.#leases !== undefined) {
      this.#leases.clear();
      this.#leases = undefined;
      warnLeasesOff(this.name, node.name, node.profile?.version ?? 0);
    }
    throw LEASES_OFF;
  }

  /**
   * EVALSHA, sending the script itself on NOSCRIPT (after a restart, a failover or SCRIPT FLUSH).
   * A reply seen (whenever it comes) feeds the node's clock; one that says Redis acted, or refused
   * as late, after the caller gave up is counted.
   */
  #eval(s: Script, keys: readonly string[], args: readonly string[], node: Node, giveUpAt: number): Promise<readonly unknown[]> {
    this.#stats.redisCalls++;
    const sentAt = realNow();
    // A script's first call to a node sends its text (which loads it there): one round trip, where
    // EVALSHA would first meet NOSCRIPT on a node that never ran it. The probe runs once a node.
    const first = s === PROBE || !node.scripts.has(s);
    const attempt = first
      ? this.#redis.eval(s.lua, keys, args)
      : this.#redis.evalsha(s.sha, keys, args).catch((error: unknown) => {
          if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
          this.#stats.redisCalls++;
          return this.#redis.eval(s.lua, keys, args);
        });
    return attempt.then((raw) => {
      const reply = raw as readonly unknown[];
      if (!Array.isArray(reply)) throw new Error(`unexpected reply ${String(raw)}`);
      const receivedAt = realNow();
      if (first) node.scripts.add(s);
      node.clock.observe(Number(reply[1]), sentAt, receivedAt);
      if (receivedAt > giveUpAt) {
        if (Number(reply[0]) === 0) this.#stats.lateRefused++;
        else if (s !== PROBE) this.#stats.lateExecuted++;
      }
      return reply;
    });
  }

  /** Gives back up to `amount` on every policy; a key Redis does not hold is left alone. */
  async refund(key: string, amount = 1, options?: CallOptions): Promise<void> {
    this.live();
    checkKey(key);
    checkPositiveInteger(amount, 'amount');
    const overrides = this.#overrides(options);
    this.#forgets++;
    this.#denyCache?.forget(key);
    const names = this.#names(key);
    const reply = await this.#tracked(this.#direct(names, DECIDE, [names.marker, ...names.keys], [this.#now(), ...this.#decideArgs, 'x', '3', String(amount), ...overrides.map(String)]));
    if (Number(reply[2]) === 2) throw this.#mismatch(names, Number(reply[3]), 'refunded');
  }

  /** Denies the key everywhere for `durationMs` (a shorter block never cuts a longer one). Resolves with true. */
  async block(key: string, durationMs: number): Promise<boolean> {
    this.live();
    checkKey(key);
    checkPositiveInteger(durationMs, 'durationMs');
    const duration = Math.min(durationMs, MAX_BLOCK_MS);
    this.#leases?.drop(key);
    this.#denyCache?.block(key, duration);
    const names = this.#names(key);
    await this.#tracked(this.#direct(names, BLOCK, [names.marker], [String(duration), names.base]));
    return true;
  }

  /** Forgets the key on Redis (counters and block) and in the deny cache. Returns whether Redis held it. */
  async reset(key: string): Promise<boolean> {
    this.live();
    checkKey(key);
    this.#leases?.drop(key);
    this.#forgets++;
    this.#denyCache?.forget(key);
    const names = this.#names(key);
    this.#ends?.forget(key);
    const reply = await this.#tracked(this.#direct(names, RESET, [names.marker, ...names.keys], [names.base]));
    return Number(reply[2]) > 0;
  }

  /**
   * One call outside the batches (refund, block, reset, leases): refused at once while the node's
   * breaker is open. Consumes made before it and still waiting for their batch are sent first, so
   * that calls reach Redis in the order they were made (on one connection, in order).
   */
  #direct(names: Pick<Names, 'slot'>, s: Script, keys: readonly string[], args: string[]): Promise<readonly unknown[]> {
    if (this.#queues.size > 0) this.#flush();
    const node = this.#node(names.slot);
    if (node.breaker?.admit(realNow()) === 'skip') {
      this.#stats.shortCircuited++;
      return Promise.reject(redisError(`Redis ${node.name || 'server'} is down (its breaker is open)`, 'TOLLGATE_REDIS_UNAVAILABLE'));
    }
    return this.#run(node, s, keys, args, names.slot);
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
          reject(asRedisError(e));
        },
      );
    });
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
      leasedDecisions: this.#leases?.spent ?? 0,
      failedOpen: this.#fallbackDecider.failedOpen,
      failedClosed: this.#fallbackDecider.failedClosed,
      fallbackDecisions: this.#fallbackDecider.decisions,
      breakerOpened: this.#transitions.opened,
      breakerHalfOpened: this.#transitions.halfOpened,
      breakerClosed: this.#transitions.closed,
      openNodes,
    };
  }

  /**
   * Frees the deny cache; the Redis client is left to its owner. Every call not yet settled
   * (queued, in flight, or waiting in acquire()) rejects at once with code TOLLGATE_CLOSED; answers
   * that arrive later are dropped.
   */
  protected release(): void {
    const error = closedError();
    for (const queue of this.#queues.values()) for (const p of queue) p.reject(error);
    this.#queues.clear();
    for (const batch of this.#inFlight) for (const p of batch) p.reject(error);
    this.#inFlight.clear();
    for (const reject of [...this.#unsettled]) reject(error);
    this.#unsettled.clear();
    this.#denyCache?.close();
    this.#leases?.clear();
  }
}
