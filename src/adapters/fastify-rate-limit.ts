// A @fastify/rate-limit `store` whose counting is tollgate's: in this process, in shared memory so
// every worker counts against one limit, or on Redis in the plugin's own RedisStore format so every
// host does (and processes running the plugin's RedisStore on the same nameSpace share the count).
// @fastify/rate-limit keeps its own options, hooks, headers and 429 body. Declared structurally:
// importing tollgate never needs the plugin installed.
import { invalidArgument } from '../common/errors.js';
import { checkStoreOptions, hitCounter, type AdapterTableOptions, type HitCounter } from './adapter-limiter.js';
import { checkOptions } from '../common/validate.js';
import { keyText, storedKey } from '../common/keys.js';
import { FastifyRedisCounts, windowFlags, type FastifyCount } from './peer-formats/fastify-redis-counts.js';
import { parsePeerRedisOptions, parsePrefix, PEER_REDIS_KEYS, type PeerRedisConfig, type PeerRedisOptions } from './peer-formats/peer-redis-options.js';

/** What @fastify/rate-limit's store callbacks receive. */
export type FastifyRateLimitCount = FastifyCount;

export type FastifyRateLimitCallback = (error: Error | null, result?: FastifyRateLimitCount) => void;

/** Counting on Redis, in @fastify/rate-limit's RedisStore format. */
export interface FastifyRateLimitRedisOptions extends PeerRedisOptions {
  /** Put in front of every key on Redis; default 'fastify-rate-limit-', the plugin's own. Give the plugin's `nameSpace` if you set one. */
  readonly prefix?: string;
}

export type FastifyRateLimitStoreOptions = AdapterTableOptions | FastifyRateLimitRedisOptions;

const REDIS_KEYS = [...PEER_REDIS_KEYS, 'prefix'];

/** A configured store on Redis: what its instances count with. */
interface RedisSetup {
  readonly config: PeerRedisConfig;
  readonly prefix: string;
}

/** The plugin's settings (global or a route's) a store is made with: only two are looked at. */
function checkPluginParams(params: unknown): void {
  if (typeof params !== 'object' || params === null) return;
  const p = params as Record<string, unknown>;
  if (p.continueExceeding === true) throw invalidArgument('continueExceeding', 'false with FastifyRateLimitStore', true);
  if (p.exponentialBackoff === true) throw invalidArgument('exponentialBackoff', 'false with FastifyRateLimitStore', true);
}

// The counters of one configured store and all its route children, one Limiter per time window.
class Counters {
  readonly #options: AdapterTableOptions;
  readonly #byWindow = new Map<number, HitCounter>();
  #children = 0;

  constructor(options: AdapterTableOptions) {
    this.#options = options;
  }

  /** A namespace for the next route store: the n-th child, the same in every process that registers its routes in the same order. */
  nextNamespace(): number {
    return ++this.#children;
  }

  for(windowMs: number): HitCounter {
    let counter = this.#byWindow.get(windowMs);
    if (counter === undefined) {
      if (!Number.isInteger(windowMs) || windowMs < 1) throw invalidArgument('timeWindow', 'a positive integer of ms', windowMs);
      counter = hitCounter(this.#options, windowMs);
      this.#byWindow.set(windowMs, counter);
    }
    return counter;
  }

  close(): void {
    for (const { limiter } of this.#byWindow.values()) limiter.close();
    this.#byWindow.clear();
  }
}

// Configured subclasses' counters, and the counters a child() being constructed joins.
const configured = new WeakMap<object, Counters | RedisSetup>();
let joining: { counters: Counters; namespace: number } | { redis: FastifyRedisCounts } | undefined;

/**
 * Pass the class: `fastify.register(rateLimit, { max: 100, timeWindow: 60_000, store:
 * FastifyRateLimitStore })`, or `FastifyRateLimitStore.with({ store: sharedMemory(...) })` for a
 * configured one. As the plugin's own store, every hit is counted (the refused ones too), each
 * client's window starts at its first hit, and a route with its own rateLimit config counts apart.
 * `FastifyRateLimitStore.with({ redis })` counts on Redis in the plugin's RedisStore format (its
 * keys, its windows, continueExceeding and exponentialBackoff included), Redis failures to onError.
 * NOTE: in process or in shared memory, `continueExceeding` and `exponentialBackoff` are refused
 * (TOLLGATE_INVALID_ARGUMENT).
 */
export class FastifyRateLimitStore {
  /** Set when counting in a table (this process or shared memory). */
  readonly #counters: Counters | undefined;
  readonly #namespace: string;
  /** Set when counting on Redis. */
  readonly #redis: FastifyRedisCounts | undefined;

  /** A store class counting with these options. */
  static with(options: FastifyRateLimitStoreOptions): typeof FastifyRateLimitStore {
    const o = checkOptions(options) ?? {};
    const onRedis = checkStoreOptions(o, REDIS_KEYS, 'FastifyRateLimitStore.with options');
    const Configured = class ConfiguredFastifyRateLimitStore extends FastifyRateLimitStore {};
    configured.set(Configured, onRedis ? { config: parsePeerRedisOptions(o), prefix: parsePrefix(o.prefix, 'prefix', 'fastify-rate-limit-') } : new Counters(o as AdapterTableOptions));
    return Configured;
  }

  /** Called by @fastify/rate-limit with its settings. */
  constructor(params?: unknown) {
    const join = joining;
    joining = undefined;
    if (join !== undefined && 'redis' in join) {
      this.#redis = join.redis;
      this.#namespace = '';
      return;
    }
    const setup = join?.counters ?? configured.get(new.target);
    if (setup !== undefined && !(setup instanceof Counters)) {
      this.#redis = new FastifyRedisCounts(setup.config, setup.prefix, windowFlags(params));
      this.#namespace = '';
      return;
    }
    checkPluginParams(params);
    this.#counters = setup ?? new Counters({});
    this.#namespace = `${join?.namespace ?? 0}:`;
  }

  /** One hit for `key` in a window of `timeWindow` ms; the plugin passes its `max` (used on Redis by continueExceeding and exponentialBackoff). */
  incr(key: string, callback: FastifyRateLimitCallback, timeWindow: number, max?: number): void {
    if (this.#redis !== undefined) {
      this.#redis.incr(key, timeWindow, max).then(
        (count) => callback(null, count),
        (error: unknown) => callback(error as Error),
      );
      return;
    }
    this.#answer(key, callback, timeWindow, true);
  }

  /** The count without a hit (the plugin's `{ increment: false }`). */
  read(key: string, callback: FastifyRateLimitCallback, timeWindow: number): void {
    if (this.#redis !== undefined) {
      this.#redis.read(key).then(
        (count) => callback(null, count),
        (error: unknown) => callback(error as Error),
      );
      return;
    }
    this.#answer(key, callback, timeWindow, false);
  }

  // The key's count after a hit (or without one), to the callback; errors too, never thrown.
  #answer(key: string, callback: FastifyRateLimitCallback, timeWindow: number, hit: boolean): void {
    let result: FastifyRateLimitCount;
    try {
      const { limiter, ceiling } = (this.#counters as Counters).for(timeWindow);
      const stored = storedKey(this.#namespace + keyText(key));
      const d = hit ? limiter.consume(stored) : limiter.peek(stored);
      result = !hit && d.remaining === ceiling ? { current: 0, ttl: 0 } : { current: ceiling - d.remaining, ttl: d.resetMs };
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, result);
  }

  /** A route's own store: the same table (or Redis), counted apart. */
  child(routeOptions?: unknown): FastifyRateLimitStore {
    const counters = this.#counters;
    joining = counters === undefined ? { redis: (this.#redis as FastifyRedisCounts).child(routeOptions) } : { counters, namespace: counters.nextNamespace() };
    try {
      return new FastifyRateLimitStore(routeOptions);
    } finally {
      joining = undefined;
    }
  }

  /**
   * Closes every table of this configured store (all its route stores). On Redis, ends this
   * configured store and its route stores: calls still out reject at once with TOLLGATE_CLOSED, as
   * do later ones; the client stays yours.
   */
  close(): void {
    this.#counters?.close();
    this.#redis?.close();
  }
}
