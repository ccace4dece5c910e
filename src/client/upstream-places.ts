// This process's side of an upstream account's places (src/common/places.ts): its requests wait
// here in arrival order, one holder speaks for them to the store, and its lease is renewed while
// it holds a place or waits for one.
import { randomBytes } from 'node:crypto';
import { closedError } from '../common/errors.js';
import type { PlaceReply, PlaceStore } from '../common/places.js';

interface Waiter {
  /** When it arrived, by the store's clock: the holder queues at its first waiter's arrival. */
  readonly arrivedAt: number;
  readonly resolve: (release: () => void) => void;
  readonly reject: (error: unknown) => void;
}

/** What went wrong beside a request (the request itself goes on): told to limitedFetch's onEvent. */
export type PlacesProblem =
  /** A call to the store failed; a failed acquire also rejects the request that waited. */
  | { readonly type: 'upstream-store-failed'; readonly operation: 'acquire' | 'release' | 'renew' | 'leave'; readonly error: unknown }
  /** The holder's lease had lapsed (the process stalled longer than leaseMs): its places were taken back. */
  | { readonly type: 'lease-lost'; readonly places: number };

export class UpstreamPlaces {
  readonly #store: PlaceStore;
  readonly #leaseMs: number;
  readonly #onProblem: (problem: PlacesProblem) => void;
  /** 16 hex digits, random: no two processes (or limitedFetch instances) share one. */
  readonly #holder = randomBytes(8).toString('hex');
  readonly #waiters: Waiter[] = [];
  /** Places this holder has in flight (answered ones are released, not kept). */
  readonly #held = new Set<string>();
  #pumping = false;
  #pumpAgain = false;
  /** Whether the store may have this holder queued. */
  #queued = false;
  #wakeTimer: ReturnType<typeof setTimeout> | undefined;
  #renewTimer: ReturnType<typeof setInterval> | undefined;
  #unwatch: (() => void) | undefined;
  #closed = false;
  /** The store is closed (after close(), once no place is in flight). */
  #ended = false;

  constructor(store: PlaceStore, leaseMs: number, onProblem: (problem: PlacesProblem) => void) {
    this.#store = store;
    this.#leaseMs = leaseMs;
    this.#onProblem = onProblem;
  }

  /** Resolves, first come first served across every holder, with the function to call once the response (or failure) has arrived. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.#closed) return Promise.reject(closedError('upstream places'));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        arrivedAt: this.#store.now(),
        resolve: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      // Aborted while waiting: out of the line at once, having held nothing.
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at < 0) return;
        this.#waiters.splice(at, 1);
        waiter.reject(signal?.reason);
        void this.#pump();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      void this.#pump();
    });
  }

  /**
   * Rejects every waiting request at once (TOLLGATE_CLOSED) and leaves the queue. Requests in
   * flight keep their places until they are answered; the store closes after the last.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError('upstream places');
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
    this.#stopWaiting();
    if (this.#queued) {
      this.#queued = false;
      this.#call('leave', this.#store.leave(this.#holder));
    }
    // A store call under way (the pump's) ends first: what it gave back must reach the store.
    if (this.#held.size === 0 && !this.#pumping) this.#end();
  }

  async #pump(): Promise<void> {
    if (this.#pumping) {
      this.#pumpAgain = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#pumpAgain = false;
        while (this.#waiters.length > 0 && !this.#closed) {
          const head = this.#waiters[0] as Waiter;
          let reply: PlaceReply;
          try {
            reply = await this.#store.acquire(this.#holder, head.arrivedAt);
          } catch (error) {
            if (this.#closed) break;
            // The store failed (Redis down, a lock held by a stopped process): this request fails,
            // the next asks again. Its place in the store's queue is kept (the lease lapses it).
            const at = this.#waiters.indexOf(head);
            if (at >= 0) this.#waiters.splice(at, 1);
            this.#onProblem({ type: 'upstream-store-failed', operation: 'acquire', error });
            if (at >= 0) head.reject(error);
            continue;
          }
          if (this.#closed) {
            // Closed while the store answered: give back what it gave, or leave its queue.
            this.#queued = false;
            const done = reply.granted ? this.#store.release(this.#holder, reply.place) : this.#store.leave(this.#holder);
            this.#call(reply.granted ? 'release' : 'leave', done);
            await done.catch(() => undefined); // the store closes after it
            break;
          }
          if (reply.granted) {
            this.#queued = false;
            // The place goes to whoever heads the line now: the waiter it was asked for may have
            // been aborted meanwhile, and the next one is next in order.
            const next = this.#waiters.shift();
            if (next === undefined) {
              this.#call('release', this.#store.release(this.#holder, reply.place));
              continue;
            }
            this.#held.add(reply.place);
            next.resolve(this.#releaser(reply.place));
            continue;
          }
          this.#queued = true;
          this.#wakeAt(reply.wakeAt);
          break;
        }
      } while (this.#pumpAgain && !this.#closed);
    } finally {
      this.#pumping = false;
    }
    if (this.#closed) {
      if (this.#held.size === 0) this.#end();
      return;
    }
    if (this.#waiters.length === 0) {
      this.#stopWaiting();
      if (this.#queued) {
        this.#queued = false;
        this.#call('leave', this.#store.leave(this.#holder));
      }
    } else {
      this.#unwatch ??= this.#store.watch(() => void this.#pump());
    }
    this.#keepLease();
  }

  #releaser(place: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // A place the store took back (the lease lapsed) is no longer ours to give.
      if (!this.#held.delete(place)) return;
      const done = this.#store.release(this.#holder, place);
      this.#call('release', done);
      void done.then(
        (held) => {
          // The store had taken the place back (the lease lapsed while this process stalled).
          if (!held) this.#onProblem({ type: 'lease-lost', places: 1 });
          if (this.#closed && this.#held.size === 0) this.#end();
          else void this.#pump();
        },
        () => {
          if (this.#closed && this.#held.size === 0) this.#end();
        },
      );
      this.#keepLease();
    };
  }

  /** Asks again when the book changes by itself (a place cools, a lease lapses). */
  #wakeAt(wakeAt: number): void {
    if (this.#wakeTimer !== undefined) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    if (!Number.isFinite(wakeAt)) return;
    const ms = Math.min(2 ** 31 - 1, Math.max(0, Math.ceil(wakeAt - this.#store.now())));
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = undefined;
      void this.#pump();
    }, ms);
  }

  /** Renews the lease a few times per leaseMs while the holder has a place or a waiter. */
  #keepLease(): void {
    const needed = this.#held.size > 0 || (!this.#closed && this.#waiters.length > 0);
    if (!needed) {
      if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
      this.#renewTimer = undefined;
      return;
    }
    if (this.#renewTimer === undefined) {
      this.#renewTimer = setInterval(() => this.#renew(), Math.max(1, Math.floor(this.#leaseMs / 3)));
    }
    // Waiters keep the process alive (their wake may come from another process only); places in
    // flight have their request to do that.
    if (this.#waiters.length > 0) this.#renewTimer.ref?.();
    else this.#renewTimer.unref?.();
  }

  #renew(): void {
    const renewed = this.#store.renew(this.#holder);
    this.#call('renew', renewed);
    // A store that fails a renewal may not tell of releases either (Redis down: no PUBLISH
    // arrives): waiters ask again, so they fail with the store's error instead of waiting on.
    renewed.catch(() => {
      if (this.#waiters.length > 0) void this.#pump();
    });
    void renewed.then(
      (held) => {
        if (held) return;
        // Lapsed: the places are the store's again (counted as answered at the lapse), and the
        // holder is no longer queued. Its requests in flight finish; waiters ask again.
        const lost = this.#held.size;
        this.#held.clear();
        this.#queued = false;
        if (lost > 0) this.#onProblem({ type: 'lease-lost', places: lost });
        void this.#pump();
      },
      () => undefined,
    );
  }

  #stopWaiting(): void {
    if (this.#wakeTimer !== undefined) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = undefined;
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#renewTimer !== undefined) clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    this.#store.close();
  }

  /** A store call whose failure is reported, never thrown. */
  #call(operation: 'release' | 'renew' | 'leave', done: Promise<unknown>): void {
    done.catch((error: unknown) => {
      if (this.#closed && (error as { code?: string })?.code === 'TOLLGATE_CLOSED') return;
      this.#onProblem({ type: 'upstream-store-failed', operation, error });
    });
  }
}
