// Limiter's options, read once into the configuration its constructor builds from: every check,
// default and unknown key in one place, so the class holds none.
import type { ManualClock } from '../common/clock.js';
import { checkClock } from '../common/clock.js';
import { DEFAULT_TOP_KEYS_PERIOD_MS, MAX_CAPACITY, MAX_SHARDS } from '../common/constants.js';
import { invalidArgument } from '../common/errors.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { policyParams, type Policy, type PolicyParams } from '../common/policies.js';
import { checkInteger, checkObject } from '../common/validate.js';
import type { EngineChoice } from '../engine/select-engine.js';
import { isSharedMemoryStore, type SharedMemoryStore } from '../engine/shared-memory.js';
import { checkLimiterName } from './limiter-base.js';

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
   * When a new key finds its probe window full of live keys at capacity: 'evict' the entry nearest
   * to expiry (the default; counted in stats().evictions) or 'refuse' the new key (denied, counted
   * in stats().refused, retryAfterMs until room frees up). Below capacity a table grows instead.
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

/**
 * Internal: tables whose processes use other windows on purpose (the adapters' hit counters, one
 * window per route or duration, their keys apart) do not warn about it. A symbol, so no user
 * option can name it.
 */
export const QUIET_POLICY_MISMATCH = Symbol('tollgate.quietPolicyMismatch');

export const DEFAULT_CAPACITY = 1_000_000;
/** Keys a growing table has room for at first. */
export const INITIAL_CAPACITY = 1024;

/** What a Limiter is built from. */
export interface LimiterConfig {
  readonly name: string;
  readonly policy: Policy;
  readonly params: PolicyParams;
  readonly store: SharedMemoryStore | undefined;
  readonly capacity: number;
  /** 0: chosen from the capacity. */
  readonly shards: number;
  readonly evict: boolean;
  readonly engine: EngineChoice;
  readonly preallocate: boolean;
  /** Keys the first generation has room for (the capacity when preallocated or shared). */
  readonly initialCapacity: number;
  readonly clock: ManualClock | undefined;
  readonly topKeys: { readonly on: boolean; readonly periodMs: number };
  readonly quietPolicyMismatch: boolean;
}

export const LIMITER_OPTIONS = ['policy', 'store', 'capacity', 'onFull', 'engine', 'preallocate', 'shards', 'clock', 'topKeys', 'name'];

export function parseLimiterOptions(options: unknown): LimiterConfig {
  const o = checkObject(options, 'options');
  checkKnownKeys(o, LIMITER_OPTIONS, 'Limiter options');
  const params = policyParams(o.policy);
  const name = checkLimiterName(o.name, 'default');
  const store = o.store as SharedMemoryStore | undefined;
  if (store !== undefined && !isSharedMemoryStore(store)) throw invalidArgument('store', 'a store from sharedMemory()', store);
  let capacity = o.capacity === undefined ? DEFAULT_CAPACITY : checkInteger(o.capacity, 'capacity', 1, MAX_CAPACITY);
  let shards = o.shards === undefined ? 0 : checkInteger(o.shards, 'shards', 1, MAX_SHARDS);
  if (store !== undefined) {
    if (o.capacity !== undefined || o.shards !== undefined) {
      throw invalidArgument('capacity', 'no capacity or shards beside a store (give them to sharedMemory())', o.capacity ?? o.shards);
    }
    if (store.capacity === undefined) throw invalidArgument('capacity', "a capacity in sharedMemory({ name, capacity }) for a Limiter's table", undefined);
    capacity = store.capacity;
    shards = store.shards ?? 0;
  }
  if (o.onFull !== undefined && o.onFull !== 'evict' && o.onFull !== 'refuse') throw invalidArgument('onFull', "'evict' or 'refuse'", o.onFull);
  const engine = (o.engine ?? 'auto') as EngineChoice;
  if (engine !== 'native' && engine !== 'js' && engine !== 'auto') throw invalidArgument('engine', "'native', 'js' or 'auto'", o.engine);
  // A shared table exists only natively: without the addon, fail rather than count per process.
  if (store !== undefined && engine === 'js') throw invalidArgument('engine', "'native' or 'auto' with a shared-memory store", o.engine);
  if (o.preallocate !== undefined && typeof o.preallocate !== 'boolean') throw invalidArgument('preallocate', 'a boolean', o.preallocate);
  // Shared segments are committed when created unless told otherwise (no page fault later).
  const preallocate = store !== undefined ? o.preallocate !== false : o.preallocate === true;
  return {
    name,
    policy: o.policy as Policy,
    params,
    store,
    capacity,
    shards,
    evict: o.onFull !== 'refuse',
    engine: store !== undefined ? 'native' : engine,
    preallocate,
    // A table that grows starts with room for 1,024 keys (a few dozen KiB); preallocated, whole.
    initialCapacity: o.preallocate === true || store !== undefined ? capacity : Math.min(capacity, INITIAL_CAPACITY),
    clock: checkClock(o.clock),
    topKeys: parseTopKeys(o.topKeys),
    quietPolicyMismatch: (o as { [QUIET_POLICY_MISMATCH]?: boolean })[QUIET_POLICY_MISMATCH] === true,
  };
}

function parseTopKeys(value: unknown): LimiterConfig['topKeys'] {
  if (value === undefined || value === false) return { on: false, periodMs: DEFAULT_TOP_KEYS_PERIOD_MS };
  if (value === true) return { on: true, periodMs: DEFAULT_TOP_KEYS_PERIOD_MS };
  const t = checkObject(value, 'topKeys');
  checkKnownKeys(t, ['periodMs'], 'topKeys');
  return { on: true, periodMs: t.periodMs === undefined ? DEFAULT_TOP_KEYS_PERIOD_MS : checkInteger(t.periodMs, 'topKeys.periodMs', 1, 2 ** 40) };
}
