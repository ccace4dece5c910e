// A @fastify/rate-limit `store` whose counting is tollgate's: in this process, or in shared memory
// so every worker counts against one limit. @fastify/rate-limit keeps its own options, hooks,
// headers and 429 body. Declared structurally: importing tollgate never needs the plugin installed.
import { invalidArgument } from '../common/errors.js';
import { ADAPTER_TABLE_KEYS, hitCounter, type AdapterTableOptions, type HitCounter } from './adapter-limiter.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { checkOptions } from '../common/validate.js';
import { keyText, storedKey } from '../common/keys.js';

/** What @fastify/rate-limit's store callbacks receive. */
export interface FastifyRateLimitCount {
  current: number;
  ttl: number;
}

export type FastifyRateLimitCallback = (error: Error | null, result?: FastifyRateLimitCount) => void;

export type FastifyRateLimitStoreOptions = AdapterTableOptions;

/** The plugin's settings (global or a route's) a store is made with: only two are looked at. */
function checkPluginParams(params: unknown): void {
  if (typeof params !== 'object' || params === null) return;
  const p = params as Record<string, unknown>;
  if (p.continueExceeding === true) throw invalidArgument('continueExceeding', 'false with FastifyRateLimitStore', true);
  if (p.exponentialBackoff === true) throw invalidArgument('exponentialBackoff', 'false with FastifyRateLimitStore', true);
}

// The counters of one configured store and all its route children, one Limiter per time window.
class Counters {
  readonly #options: FastifyRateLimitStoreOptions;
  readonly #byWindow = new Map<number, HitCounter>();
  #children = 0;

  constructor(options: FastifyRateLimitStoreOptions) {
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
const configured = new WeakMap<object, Counters>();
let joining: { counters: Counters; namespace: number } | undefined;

/**
 * Pass the class: `fastify.register(rateLimit, { max: 100, timeWindow: 60_000, store:
 * FastifyRateLimitStore })`, or `FastifyRateLimitStore.with({ store: sharedMemory(...) })` for a
 * configured one. As the plugin's own store, every hit is counted (the refused ones too), each
 * client's window starts at its first hit, and a route with its own rateLimit config counts apart.
 * NOTE: `continueExceeding` and `exponentialBackoff` are refused (TOLLGATE_INVALID_ARGUMENT).
 */
export class FastifyRateLimitStore {
  readonly #counters: Counters;
  readonly #namespace: string;

  /** A store class counting with these options. */
  static with(options: FastifyRateLimitStoreOptions): typeof FastifyRateLimitStore {
    const o = (checkOptions(options) ?? {}) as FastifyRateLimitStoreOptions;
    checkKnownKeys(o, ADAPTER_TABLE_KEYS, 'FastifyRateLimitStore.with options');
    const Configured = class ConfiguredFastifyRateLimitStore extends FastifyRateLimitStore {};
    configured.set(Configured, new Counters(o));
    return Configured;
  }

  /** Called by @fastify/rate-limit with its settings. */
  constructor(params?: unknown) {
    checkPluginParams(params);
    const join = joining;
    joining = undefined;
    this.#counters = join?.counters ?? configured.get(new.target) ?? new Counters({});
    this.#namespace = `${join?.namespace ?? 0}:`;
  }

  incr(key: string, callback: FastifyRateLimitCallback, timeWindow: number): void {
    this.#answer(key, callback, timeWindow, true);
  }

  /** The count without a hit (the plugin's `{ increment: false }`). */
  read(key: string, callback: FastifyRateLimitCallback, timeWindow: number): void {
    this.#answer(key, callback, timeWindow, false);
  }

  // The key's count after a hit (or without one), to the callback; errors too, never thrown.
  #answer(key: string, callback: FastifyRateLimitCallback, timeWindow: number, hit: boolean): void {
    let result: FastifyRateLimitCount;
    try {
      const { limiter, ceiling } = this.#counters.for(timeWindow);
      const stored = storedKey(this.#namespace + keyText(key));
      const d = hit ? limiter.consume(stored) : limiter.peek(stored);
      result = !hit && d.remaining === ceiling ? { current: 0, ttl: 0 } : { current: ceiling - d.remaining, ttl: d.resetMs };
    } catch (error) {
      callback(error as Error);
      return;
    }
    callback(null, result);
  }

  /** A route's own store: the same table, counted apart. */
  child(routeOptions?: unknown): FastifyRateLimitStore {
    joining = { counters: this.#counters, namespace: this.#counters.nextNamespace() };
    try {
      return new FastifyRateLimitStore(routeOptions);
    } finally {
      joining = undefined;
    }
  }

  /** Closes every table of this configured store (all its route stores). */
  close(): void {
    this.#counters.close();
  }
}
