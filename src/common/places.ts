// Places at an upstream account: the seam between limitedFetch's `upstream` option and the stores
// that hold its places (this process's memory, a shared-memory segment, Redis). Every store keeps
// the same book, PlaceBook (src/engine/js/place-book.ts) states it in TypeScript, and the native
// and Lua stores decide as it does (test/places.test.ts compares them).
//
// A place is held by a request from its send. Under a window (`limit` per `windowMs`) it stays
// held until `windowMs` after the response, so that no window at the upstream sees more than
// `limit` arrivals whatever the network's delay; under `concurrency` alone it frees with the
// response. Places are held by holders (one per process and store), each with a lease it renews:
// a holder whose lease lapses (its process died or stalled) loses its places, which are counted
// as answered at the lapse. Holders waiting for a place queue by when their first waiter arrived.

/** The most holders (processes) one account's shared-memory segment keeps at once. */
export const MAX_PLACE_HOLDERS = 1024;
/** The most places (`limit`, or `concurrency` without a window) one account may have. */
export const MAX_PLACES = 100_000;

/** An upstream account's terms. 0 means no such limit; at least one of limit and concurrency is set. */
export interface PlaceTerms {
  /** Requests the upstream counts in any `windowMs`; 0 for none. */
  readonly limit: number;
  /** The upstream's window in ms (0 when `limit` is 0). */
  readonly windowMs: number;
  /** Requests in flight at once; 0 for none. */
  readonly concurrency: number;
  /** How long a holder's places outlive its last renewal, in ms. */
  readonly leaseMs: number;
}

/** What asking for a place answers. */
export type PlaceReply =
  | { readonly granted: true; readonly place: string }
  /**
   * Not yet: `wakeAt` (the store's clock) is the earliest time the book changes by itself (a
   * place cools, a lease lapses); Infinity when only another holder's release can help.
   */
  | { readonly granted: false; readonly wakeAt: number };

/** The book's counts, for stats and tests. */
export interface PlaceCounts {
  readonly inFlight: number;
  readonly cooling: number;
  /** Holders with a waiter queued. */
  readonly waiting: number;
  readonly holders: number;
}

/**
 * One account's places in some store. Holder ids are 16 lower-case hex digits; `waitingSince` is
 * when the holder's first waiter arrived, by the store's clock (`now()`), and orders holders
 * (then their ids). Every call first takes back the places of holders whose lease has lapsed.
 */
export interface PlaceStore {
  /** The store's clock, in ms: what `wakeAt` and `waitingSince` are told in. */
  now(): number;
  /** Asks for a place for `holder` (renewing its lease); when none is free, queues it at `waitingSince`. */
  acquire(holder: string, waitingSince: number): Promise<PlaceReply>;
  /** Gives `place` back as answered now; false when the holder no longer held it (its lease lapsed). */
  release(holder: string, place: string): Promise<boolean>;
  /** Renews `holder`'s lease; false when it had lapsed (its places were taken back). */
  renew(holder: string): Promise<boolean>;
  /** Takes `holder` out of the queue (no waiter left); a holder with no place is forgotten. */
  leave(holder: string): Promise<void>;
  counts(): Promise<PlaceCounts>;
  /**
   * Calls `listener` when a place may have been freed or the queue moved (a release, a leave, a
   * lapse), by any holder; returns the function that stops it. A store that cannot be told
   * (some Redis clients) calls it every `pollMs` while a listener is on.
   */
  watch(listener: () => void): () => void;
  /** Ends what the store holds open (a subscription, a mapping); calls after it reject with TOLLGATE_CLOSED. */
  close(): void;
}
