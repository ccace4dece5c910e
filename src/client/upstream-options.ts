// limitedFetch's `upstream` option: the account's terms, checked, and the store its places live in.
import { invalidArgument, outOfRange } from '../common/errors.js';
import { checkInteger, checkObject } from '../common/validate.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { MAX_PLACES, type PlaceTerms } from '../common/places.js';
import type { SharedMemoryStore } from '../engine/shared-memory.js';
import type { RedisPlacesOptions } from '../redis/redis-places-options.js';

/** Where an upstream account's places live when several processes share the account. */
export type UpstreamStore =
  /** Every process on this host: `sharedMemory({ name })` (no capacity needed). */
  | SharedMemoryStore
  /** Every process on every host that uses this Redis: the account's name (one per account), and how calls go. */
  | RedisPlacesOptions;

/** Where the account's places live, and how long a dead process keeps them. */
interface UpstreamPlacement {
  /**
   * With a `store`: how long a process's places outlive it, in ms; default 10,000. Each process
   * renews its lease every leaseMs / 3 while it holds or waits for a place; a process that dies
   * (or stalls longer) has its places taken back, counted as answered then. On shared memory a
   * process found gone (same pid namespace) gives them back at the next call to the store.
   */
  readonly leaseMs?: number;
  /** Default: this process only. */
  readonly store?: UpstreamStore;
}

/** Requests the upstream counts in any `windowMs` (as it counts them: on arrival). */
interface UpstreamWindowTerms {
  readonly limit: number;
  readonly windowMs: number;
  /** Requests in flight to the upstream at once, across every process sharing `store`. */
  readonly concurrency?: number;
}

/** Requests in flight to the upstream at once, across every process sharing `store`, and no window. */
interface UpstreamConcurrencyTerms {
  readonly limit?: undefined;
  readonly windowMs?: undefined;
  readonly concurrency: number;
}

/** An upstream's published terms, as it counts them (a window, a concurrency, or both), and where they are kept. */
export type UpstreamOptions = (UpstreamWindowTerms | UpstreamConcurrencyTerms) & UpstreamPlacement;

export const DEFAULT_LEASE_MS = 10_000;
/** The in-process store's holder cannot outlive its process: its lease is as long as timers go. */
const LOCAL_LEASE_MS = 2 ** 31 - 1;

/** The terms, checked; the store option as given (opened by openUpstreamStore). */
export function upstreamConfig(value: unknown): { readonly terms: PlaceTerms; readonly store: unknown } {
  const u = checkObject(value, 'upstream');
  checkKnownKeys(u, ['limit', 'windowMs', 'concurrency', 'leaseMs', 'store'], 'upstream');
  if ((u.limit === undefined) !== (u.windowMs === undefined)) {
    const [missing, given] = u.limit === undefined ? ['upstream.limit', 'upstream.windowMs'] : ['upstream.windowMs', 'upstream.limit'];
    throw invalidArgument(missing, `a value beside ${given}`, undefined);
  }
  const limit = u.limit === undefined ? 0 : checkInteger(u.limit, 'upstream.limit', 1, MAX_PLACES);
  const windowMs = u.windowMs === undefined ? 0 : checkInteger(u.windowMs, 'upstream.windowMs', 1, 2 ** 31 - 1);
  const concurrency = u.concurrency === undefined ? 0 : checkInteger(u.concurrency, 'upstream.concurrency', 1, MAX_PLACES);
  if (limit === 0 && concurrency === 0) throw invalidArgument('upstream', '{ limit, windowMs }, { concurrency } or both', value);
  if (u.store === undefined && u.leaseMs !== undefined) throw outOfRange('upstream.leaseMs', 'no leaseMs without a store (one process cannot outlive itself)', u.leaseMs);
  const leaseMs = u.store === undefined ? LOCAL_LEASE_MS : u.leaseMs === undefined ? DEFAULT_LEASE_MS : checkInteger(u.leaseMs, 'upstream.leaseMs', 10, 2 ** 31 - 1);
  return { terms: { limit, windowMs, concurrency, leaseMs }, store: u.store };
}
