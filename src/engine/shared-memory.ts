// Shared-memory stores: a table in a named POSIX shared-memory segment, one per host, used by
// every process (and worker thread) that opens a Limiter on the same name.
import { invalidArgument, nativeUnavailable, outOfRange } from '../common/errors.js';
import { loadNative } from './load-native.js';
import { topKeyText, type RawSharedTableReport } from './table-engine.js';
import { isHitCounterPolicy, policyFromRecord, type Policy } from '../common/policies.js';

/** What inspectSharedMemory reports of a live shared table. */
export interface SharedTableReport extends Omit<RawSharedTableReport, 'policy'> {
  /** The policy of the process that created the table (each process decides with its own). */
  readonly policy: Policy;
  /**
   * Whether the table is a store adapter's hit counter (ExpressRateLimitStore, FastifyRateLimitStore,
   * RateLimiterTollgate): its fixed window's limit is one no client reaches, so `stats.allowed`
   * counts every hit, the ones the library refused included, and the library's own limit and
   * refusals are not recorded in the table.
   */
  readonly hitCounter: boolean;
}
import { checkInteger, checkObject } from '../common/validate.js';
import { MAX_CAPACITY, MAX_SHARDS } from '../common/constants.js';
import { checkKnownKeys } from '../common/option-keys.js';

/** Names are 1 to 200 of [A-Za-z0-9._-], not starting with '.' (never a path) nor holding '.init-' (kept for tables being created). */
export const SHARED_MEMORY_NAME = /^(?!.*\.init-)[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

export interface SharedMemoryOptions {
  /** The segment's name; on Linux it is /dev/shm/tollgate.<name>. */
  readonly name: string;
  /**
   * Live keys the table must hold; every process attaching must give the same. Needed by a
   * Limiter's table; an upstream account's places (limitedFetch's `upstream.store`) take none.
   */
  readonly capacity?: number;
  /** Permission bits of a new segment; default 0o600 (this user only). Must include 0o600. */
  readonly mode?: number;
  /** Lock shards; default chosen from the capacity. Every process must give the same. */
  readonly shards?: number;
  /**
   * How long a call waits for a shard lock that another process holds, in ms; default 100. A
   * lock is held for well under a microsecond, so only a stopped or stuck process (SIGSTOP, a
   * debugger) makes a call wait this long. Then the call gives up, decides by onLockTimeout and
   * counts it in stats().lockTimeouts. 0 gives up at once; Infinity waits for ever.
   */
  readonly lockTimeoutMs?: number;
  /** What a decision is when the lock was not had in time: 'allow' (the default) or 'deny'. */
  readonly onLockTimeout?: 'allow' | 'deny';
}

export interface SharedMemoryStore {
  readonly kind: 'sharedMemory';
  readonly name: string;
  /** undefined when not given (a Limiter then refuses the store). */
  readonly capacity: number | undefined;
  readonly mode: number;
  readonly shards: number | undefined;
  /** -1 for no bound. */
  readonly lockTimeoutMs: number;
  readonly onLockTimeout: 'allow' | 'deny';
}

/** Stores made by sharedMemory(): a hand-made object is refused, so every store was validated. */
const stores = new WeakSet<object>();

/** A segment's name; `maxLength` below 200 leaves room for a prefix the caller puts before it. */
export function checkSharedName(name: unknown, maxLength = 200): string {
  if (typeof name !== 'string') throw invalidArgument('name', 'a string', name);
  if (!SHARED_MEMORY_NAME.test(name) || name.length > maxLength) {
    throw outOfRange('name', `1 to ${maxLength} of the characters A-Z a-z 0-9 . _ - (not starting with '.')`, name);
  }
  return name;
}

const checkName = (name: unknown): string => checkSharedName(name);

/**
 * Describes a shared-memory segment: a table for `new Limiter({ policy, store })` (capacity
 * needed), or an upstream account's places for `limitedFetch({ upstream: { store } })`.
 */
export function sharedMemory(options: SharedMemoryOptions): SharedMemoryStore {
  const o = checkObject(options, 'sharedMemory options');
  checkKnownKeys(o, ['name', 'capacity', 'mode', 'shards', 'lockTimeoutMs', 'onLockTimeout'], 'sharedMemory');
  const name = checkName(o.name);
  const capacity = o.capacity === undefined ? undefined : checkInteger(o.capacity, 'capacity', 1, MAX_CAPACITY);
  const mode = o.mode === undefined ? 0o600 : checkInteger(o.mode, 'mode', 0, 0o777);
  if ((mode & 0o600) !== 0o600) throw outOfRange('mode', 'permission bits that include 0o600 (owner read and write)', mode);
  const shards = o.shards === undefined ? undefined : checkInteger(o.shards, 'shards', 1, MAX_SHARDS);
  const lockTimeoutMs = o.lockTimeoutMs === undefined ? 100 : o.lockTimeoutMs === Infinity ? -1 : checkInteger(o.lockTimeoutMs, 'lockTimeoutMs', 0, 2 ** 31);
  const onLockTimeout = o.onLockTimeout ?? 'allow';
  if (onLockTimeout !== 'allow' && onLockTimeout !== 'deny') throw invalidArgument('onLockTimeout', "'allow' or 'deny'", onLockTimeout);
  const store: SharedMemoryStore = Object.freeze({ kind: 'sharedMemory', name, capacity, mode, shards, lockTimeoutMs, onLockTimeout });
  stores.add(store);
  return store;
}

export function isSharedMemoryStore(value: unknown): value is SharedMemoryStore {
  return typeof value === 'object' && value !== null && stores.has(value);
}

/**
 * Removes the named segment. Processes still attached keep deciding on it until they close; the
 * next process to open the name creates a fresh table. Returns whether a segment was removed.
 */
export function destroySharedMemory(name: string): boolean {
  checkName(name);
  const { addon, failures } = loadNative();
  if (addon === undefined) throw nativeUnavailable(failures.join('\n'));
  return addon.destroySharedMemory(name);
}

/**
 * Options, counters and heavy hitters of the live table named `name`, without attaching a
 * Limiter (no policy or capacity needed): what `npx tollgate inspect` prints.
 */
export function inspectSharedMemory(name: string): SharedTableReport {
  checkName(name);
  const { addon, failures } = loadNative();
  if (addon === undefined) throw nativeUnavailable(failures.join('\n'));
  const report = addon.inspectSharedMemory(name);
  const policy = policyFromRecord(report.policy);
  return { ...report, policy, hitCounter: isHitCounterPolicy(policy), top: report.top.map(topKeyText) };
}
