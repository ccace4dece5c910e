// Shared-memory stores: a table in a named POSIX shared-memory segment, one per host, used by
// every process (and worker thread) that opens a Limiter on the same name.
import { invalidArgument, nativeUnavailable, outOfRange } from '../errors.js';
import { loadNative } from '../engine/load-native.js';
import type { SharedTableReport } from '../engine/table-engine.js';
import { checkInteger, checkObject } from '../validate.js';

/** Names are 1 to 200 of [A-Za-z0-9._-], not starting with '.': never a path. */
export const SHARED_MEMORY_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

export interface SharedMemoryOptions {
  /** The segment's name; on Linux it is /dev/shm/tollgate.<name>. */
  readonly name: string;
  /** Live keys the table must hold; every process attaching must give the same. */
  readonly capacity: number;
  /** Permission bits of a new segment; default 0o600 (this user only). Must include 0o600. */
  readonly mode?: number;
  /** Lock shards; default chosen from the capacity. Every process must give the same. */
  readonly shards?: number;
}

export interface SharedMemoryStore {
  readonly kind: 'sharedMemory';
  readonly name: string;
  readonly capacity: number;
  readonly mode: number;
  readonly shards: number | undefined;
}

function checkName(name: unknown): string {
  if (typeof name !== 'string') throw invalidArgument('name', 'a string', name);
  if (!SHARED_MEMORY_NAME.test(name)) {
    throw outOfRange('name', "1 to 200 of the characters A-Z a-z 0-9 . _ - (not starting with '.')", name);
  }
  return name;
}

/** Describes a shared-memory table for `new Limiter({ policy, store })`. */
export function sharedMemory(options: SharedMemoryOptions): SharedMemoryStore {
  const o = checkObject(options, 'sharedMemory options');
  const name = checkName(o.name);
  const capacity = checkInteger(o.capacity, 'capacity', 1, 2 ** 27);
  const mode = o.mode === undefined ? 0o600 : checkInteger(o.mode, 'mode', 0, 0o777);
  if ((mode & 0o600) !== 0o600) throw outOfRange('mode', 'permission bits that include 0o600 (owner read and write)', mode);
  const shards = o.shards === undefined ? undefined : checkInteger(o.shards, 'shards', 1, 4096);
  return Object.freeze({ kind: 'sharedMemory', name, capacity, mode, shards });
}

export function isSharedMemoryStore(value: unknown): value is SharedMemoryStore {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'sharedMemory';
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
  return addon.inspectSharedMemory(name);
}
