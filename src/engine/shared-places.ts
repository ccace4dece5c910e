// An upstream account's places in a shared-memory segment (native/core/places.h), one book for every
// process on the host: the PlaceStore over the native addon. It decides as PlaceBook does, call for
// call (test/shared-places.test.ts compares them).
import { monotonicMs, type ManualClock } from '../common/clock.js';
import { closedError, invalidArgument, nativeUnavailable, outOfRange } from '../common/errors.js';
import { checkPlaceTerms } from '../common/place-terms.js';
import type { PlaceCounts, PlaceReply, PlaceStore, PlaceTerms } from '../common/places.js';
import { checkInteger, checkObject } from '../common/validate.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { loadNative } from './load-native.js';
import { checkSharedName } from './shared-memory.js';
import type { NativeAddon, SharedPlacesReport } from './table-engine.js';

export type { SharedPlacesReport };

export interface SharedPlacesOptions {
  /** The store's name: its segment is places.<name> (on Linux /dev/shm/tollgate.places.<name>). */
  readonly name: string;
  /** Permission bits of a new segment; default 0o600 (this user only). Must include 0o600. */
  readonly mode?: number;
}

/** Put before a store's name, so that a store never opens a rate-limit table of the same name. */
const SEGMENT_PREFIX = 'places.';
/** How often watch() reads the version while a listener is on, in ms. */
const WATCH_POLL_MS = 10;
const HOLDER_ID = /^[0-9a-f]{16}$/;

const checkName = (name: unknown): string => checkSharedName(name, 200 - SEGMENT_PREFIX.length);

function checkHolder(holder: unknown): string {
  if (typeof holder !== 'string' || !HOLDER_ID.test(holder)) throw invalidArgument('holder', '16 lower-case hex digits', holder);
  return holder;
}

function addonOrThrow(): NativeAddon {
  const { addon, failures } = loadNative();
  if (addon === undefined) throw nativeUnavailable(failures.join('\n'));
  return addon;
}

/**
 * An account's places shared by every process that opens the same name with the same terms (a
 * process giving other terms is refused with TOLLGATE_STORE_MISMATCH). Time is the host's
 * CLOCK_MONOTONIC (monotonicMs()), which every process reads alike, or `clock` in tests.
 * NOTE: at most 1024 holders (processes) at once; a holder whose process died (in this pid
 * namespace) lapses at the next call, its places counted as answered then.
 */
export class SharedPlaces implements PlaceStore {
  readonly #addon: NativeAddon;
  readonly #handle: object;
  readonly #clock: ManualClock | undefined;
  readonly #listeners = new Set<() => void>();
  #timer: NodeJS.Timeout | undefined;
  /** The version the listeners were last called for. */
  #seen = 0;
  #closed = false;

  constructor(options: SharedPlacesOptions, terms: PlaceTerms, clock?: ManualClock) {
    const o = checkObject(options, 'SharedPlaces options');
    checkKnownKeys(o, ['name', 'mode'], 'SharedPlaces');
    const name = checkName(o.name);
    const mode = o.mode === undefined ? 0o600 : checkInteger(o.mode, 'mode', 0, 0o777);
    if ((mode & 0o600) !== 0o600) throw outOfRange('mode', 'permission bits that include 0o600 (owner read and write)', mode);
    const t = checkPlaceTerms(terms);
    this.#addon = addonOrThrow();
    this.#handle = this.#addon.openPlaces(name, mode, t.limit, t.windowMs, t.concurrency, t.leaseMs);
    this.#clock = clock;
  }

  now(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
  }

  /** Grows whenever a place may have been freed or the queue moved, by any process; read without the lock. */
  get version(): number {
    return this.#addon.placesVersion(this.#live());
  }

  async acquire(holder: string, waitingSince: number): Promise<PlaceReply> {
    const handle = this.#live();
    checkHolder(holder);
    if (!Number.isSafeInteger(waitingSince)) throw invalidArgument('waitingSince', 'an integer time in ms', waitingSince);
    const reply = this.#addon.placesAcquire(handle, this.now(), holder, waitingSince);
    return typeof reply === 'string' ? { granted: true, place: reply } : { granted: false, wakeAt: reply < 0 ? Infinity : reply };
  }

  async release(holder: string, place: string): Promise<boolean> {
    const handle = this.#live();
    checkHolder(holder);
    if (typeof place !== 'string') throw invalidArgument('place', 'a string', place);
    return this.#addon.placesRelease(handle, this.now(), holder, place);
  }

  async renew(holder: string): Promise<boolean> {
    const handle = this.#live();
    return this.#addon.placesRenew(handle, this.now(), checkHolder(holder));
  }

  async leave(holder: string): Promise<void> {
    const handle = this.#live();
    this.#addon.placesLeave(handle, this.now(), checkHolder(holder));
  }

  async counts(): Promise<PlaceCounts> {
    const [inFlight, cooling, waiting, holders] = this.#addon.placesCounts(this.#live(), this.now());
    return { inFlight, cooling, waiting, holders };
  }

  /**
   * Calls `listener` when the version moves. NOTE: the cost: while at least one listener is on,
   * one timer (unref'd: it never keeps the process alive) reads the version every 10 ms, an atomic
   * load without the lock, about 500 wake-ups a second; none while no listener is on.
   */
  watch(listener: () => void): () => void {
    if (typeof listener !== 'function') throw invalidArgument('listener', 'a function', listener);
    const handle = this.#live();
    if (this.#timer === undefined) {
      this.#seen = this.#addon.placesVersion(handle);
      this.#timer = setInterval(() => this.#poll(), WATCH_POLL_MS);
      this.#timer.unref();
    }
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopTimer();
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopTimer();
    this.#listeners.clear();
    this.#addon.placesClose(this.#handle);
  }

  #live(): object {
    if (this.#closed) throw closedError('place store');
    return this.#handle;
  }

  #poll(): void {
    const version = this.#addon.placesVersion(this.#handle);
    if (version === this.#seen) return;
    this.#seen = version;
    for (const listener of [...this.#listeners]) listener();
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** Removes the store's segment (places.<name>); processes still attached keep theirs until they close. */
export function destroySharedPlaces(name: string): boolean {
  return addonOrThrow().destroySharedMemory(SEGMENT_PREFIX + checkName(name));
}

/**
 * The terms (of the process that created it) and counts of the live store `name` (its segment
 * places.<name>), without opening one: what `npx tollgate inspect places.<name>` prints. Counting
 * takes the store's lock, as any call does, and first takes back what lapsed or cooled.
 * NOTE: throws TOLLGATE_SHARED_MEMORY when there is no such segment or it is damaged.
 */
export function inspectSharedPlaces(name: string): SharedPlacesReport {
  return addonOrThrow().inspectPlaces(checkName(name));
}
