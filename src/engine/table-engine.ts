// The one interface both engines implement; also the typed shape of what the native addon exports.
import { BUCKET_SLOTS, Detail, HEADROOM_DEN, HEADROOM_NUM, KEYS_PER_AUTO_SHARD, MAX_AUTO_SHARDS } from '../common/constants.js';

/** Raw table statistics, as both engines report them. */
export interface TableStats {
  /** Occupied entries (keys, and blocks), including expired ones not yet reclaimed. */
  readonly entries: number;
  /**
   * Entries the table has room for now: an eighth more than the keys it holds at most, in whole
   * buckets. A native table in process grows its slots up to that as keys arrive; the TS engine
   * plans the same slots and grows its arrays instead (memoryBytes says what is used).
   */
  readonly slots: number;
  readonly shards: number;
  readonly evictions: number;
  readonly refused: number;
  readonly swept: number;
  readonly lockRecoveries: number;
  readonly memoryBytes: number;
  /** Consuming decisions (consume, tryConsume, consumeMany; not peek) allowed. */
  readonly allowed: number;
  /** ... denied by the policy's limit. */
  readonly denied: number;
  /** ... denied because the key was blocked. */
  readonly deniedBlocked: number;
  /** ... allowed with at most a fifth of the limit left (80% or more used). */
  readonly nearLimit: number;
  /** Lock acquisitions that waited for another thread or process (0 in the TS engine). */
  readonly lockContended: number;
  /** Entries in the fullest shard. */
  readonly maxShardEntries: number;
  /**
   * Shared memory: calls of this process that gave up waiting for a shard lock (another process
   * stopped while holding it) and were decided by onLockTimeout. Always 0 in process.
   */
  readonly lockTimeouts: number;
}

/**
 * One table of per-key state. Arguments are validated by the caller; decisions are written into
 * the `detail` Float64Array given at creation: [allowed, limit, remaining, resetMs, retryAfterMs].
 */
export interface TableEngine {
  /** cost defaults to 1 and limit to the policy's: the hot path passes neither. */
  consume(key: string, cost?: number, limit?: number): boolean;
  /** consume without writing the detail. */
  tryConsume(key: string, cost?: number, limit?: number): boolean;
  peek(key: string, cost: number, limit: number): boolean;
  refund(key: string, amount: number, limit: number): void;
  block(key: string, durationMs: number): boolean;
  reset(key: string): boolean;
  /** Writes 1/0 per key into out; returns how many were allowed. */
  consumeMany(keys: readonly string[], cost: number, limit: number, out: Uint8Array): number;
  sweep(): number;
  stats(): TableStats;
  /** Every heavy-hitter entry, unsorted; empty when the table keeps none. */
  topKeys(): RawTopKey[];
  close(): void;
  /** Shared tables: whether this process created the segment (false: attached). */
  readonly created?: boolean;
  /** Shared tables: the policy parameters of the process that created it. */
  readonly creatorPolicy?: PolicyRecord;
}

/**
 * The key text of a heavy hitter as the addon reports it: `units` (UTF-16 code units) when the key
 * had characters beyond Latin-1, else `key`.
 */
export function topKeyText(raw: RawTopKey & { readonly units?: Uint16Array }): RawTopKey {
  if (raw.units === undefined) return raw;
  let key = '';
  for (let i = 0; i < raw.units.length; i += 4096) key += String.fromCharCode(...raw.units.subarray(i, i + 4096));
  return { key, length: raw.length, count: raw.count, denied: raw.denied, error: raw.error };
}

/** One heavy hitter as a table reports it. */
export interface RawTopKey {
  /** The key (its first 96 bytes in the native engine). */
  readonly key: string;
  /** The key's full length in UTF-16 code units (more than key.length when it was cut short). */
  readonly length: number;
  readonly count: number;
  readonly denied: number;
  /** count over-counts by at most this much (Space-Saving). */
  readonly error: number;
}

/** A policy as the native header records it. */
export interface PolicyRecord {
  readonly kind: number;
  readonly limit: number;
  readonly windowMs: number;
  readonly rateTokens: number;
  readonly rateIntervalMs: number;
}

export interface TableConfig {
  /** A PolicyCode (the addon refuses any other number). */
  readonly kind: number;
  readonly limit: number;
  readonly windowMs: number;
  readonly rateTokens: number;
  readonly rateIntervalMs: number;
  readonly capacity: number;
  /** 0 lets the table choose. */
  readonly shards: number;
  readonly evict: boolean;
  /** Commit the table's memory at creation (native only). */
  readonly preallocate: boolean;
  /** In process: keys the table has room for at first; it doubles as keys arrive, up to capacity. */
  readonly initialCapacity?: number;
  readonly detail: Float64Array;
  readonly clock?: Float64Array | undefined;
  /** Put the table in this shared-memory segment (native only). */
  readonly shared?:
    | {
        readonly name: string;
        readonly mode: number;
        /** -1 waits for ever. */
        readonly lockTimeoutMs: number;
        /** true: a decision whose lock was not had in time allows; false: denies. */
        readonly onLockTimeout: boolean;
      }
    | undefined;
  /** Keep heavy-hitter summaries, halving every topKeysPeriodMs. */
  readonly topKeys?: boolean;
  readonly topKeysPeriodMs?: number;
  /**
   * @internal Adds test-only functions (holdShardLock); the crash tests build a NativeTable with it.
   * No Limiter option reaches it, and stripInternal keeps it out of the published declarations.
   */
  readonly testHooks?: boolean;
}

/** A native table as createTable gives it: the handle its functions take first. */
export interface NativeTableHandle {
  readonly self: object;
  readonly created: boolean;
  readonly creatorPolicy: PolicyRecord;
}

/**
 * The addon's table functions, one set per addon (see native/binding/table_binding.h): each takes
 * a table's `self`, then the arguments of its TableEngine method.
 */
export interface NativeTableFunctions {
  consume(self: object, key: string, cost?: number, limit?: number): boolean;
  tryConsume(self: object, key: string, cost?: number, limit?: number): boolean;
  peek(self: object, key: string, cost: number, limit: number): boolean;
  refund(self: object, key: string, amount: number, limit: number): void;
  block(self: object, key: string, durationMs: number): boolean;
  reset(self: object, key: string): boolean;
  consumeMany(self: object, keys: readonly string[], cost: number, limit: number, out: Uint8Array): number;
  sweep(self: object): number;
  stats(self: object): TableStats;
  topKeys(self: object): (RawTopKey & { readonly units?: Uint16Array })[];
  close(self: object): void;
  /** @internal Tables made with testHooks only: takes the key's shard lock and never gives it back. */
  holdShardLock(self: object, key: string): void;
}

/**
 * The addon's places functions (native/binding/places_binding.h): an upstream account's places in a
 * shared-memory segment. Each but openPlaces takes openPlaces' handle first; `now` is the store's
 * clock, given by the caller.
 */
export interface NativePlacesFunctions {
  /** Creates or attaches the segment places.<name>; throws TOLLGATE_STORE_MISMATCH on other terms. */
  openPlaces(name: string, mode: number, limit: number, windowMs: number, concurrency: number, leaseMs: number): object;
  /** The place (a string) when granted, else wakeAt (-1 for Infinity). */
  placesAcquire(handle: object, now: number, holder: string, waitingSince: number): string | number;
  placesRelease(handle: object, now: number, holder: string, place: string): boolean;
  placesRenew(handle: object, now: number, holder: string): boolean;
  placesLeave(handle: object, now: number, holder: string): void;
  /** [inFlight, cooling, waiting, holders] */
  placesCounts(handle: object, now: number): [number, number, number, number];
  /** Grows whenever a place may have been freed or the queue moved; read without the lock. */
  placesVersion(handle: object): number;
  /** Unmaps the segment; later calls on the handle throw TOLLGATE_CLOSED. */
  placesClose(handle: object): void;
  /**
   * The terms and counts of the live segment places.<name>, without a handle: attaches only if it
   * exists, and counts as any call does (under the lock, waited for at most 100 ms).
   */
  inspectPlaces(name: string): SharedPlacesReport;
}

/** What inspecting a live places segment reports: the creator's terms, and the counts now. */
export interface SharedPlacesReport {
  readonly limit: number;
  readonly windowMs: number;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly inFlight: number;
  readonly cooling: number;
  readonly waiting: number;
  readonly holders: number;
}

/** Everything build/Release/tollgate.node exports. Nothing else in the code sees its type. */
export interface NativeAddon extends NativePlacesFunctions {
  readonly abiVersion: number;
  createTable(config: TableConfig): NativeTableHandle;
  readonly tableFunctions: NativeTableFunctions;
  destroySharedMemory(name: string): boolean;
  inspectSharedMemory(name: string): RawSharedTableReport;
  /** The values the core shares with this code (src/common/constants.ts), for the test that compares them. */
  readonly constants: Readonly<Record<string, unknown>>;
}

export { Detail };

/** Entries in a new key's two buckets; the JS engine samples as many eviction candidates. */
export const PROBE_WINDOW = 2 * BUCKET_SLOTS;

/**
 * Total slots for a requested capacity, as the native layout plans them: an eighth of headroom,
 * in whole buckets of BUCKET_SLOTS entries per shard.
 */
export function plannedCapacity(capacity: number, shards: number): { capacity: number; shards: number } {
  let count = shards;
  if (count === 0) {
    count = 1;
    while (count < MAX_AUTO_SHARDS && count * KEYS_PER_AUTO_SHARD <= capacity) count *= 2;
  }
  const wanted = Math.ceil(Math.floor((capacity * HEADROOM_NUM) / HEADROOM_DEN) / count);
  const perShard = Math.max(1, Math.ceil(wanted / BUCKET_SLOTS)) * BUCKET_SLOTS;
  return { capacity: perShard * count, shards: count };
}

/** inspectSharedMemory as the addon answers it (the policy as recorded: a code and integers). */
export interface RawSharedTableReport {
  readonly capacity: number;
  readonly shards: number;
  readonly evict: boolean;
  readonly policy: PolicyRecord;
  readonly topKeys: boolean;
  readonly topKeysPeriodMs: number;
  readonly stats: Omit<TableStats, 'shards'>;
  readonly top: RawTopKey[];
}
