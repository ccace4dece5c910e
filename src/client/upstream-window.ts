// An upstream's published limit (at most `limit` requests arriving in any `windowMs`), kept
// whatever the network's delay: a request holds one of `limit` places from its send until
// `windowMs` after its response.
import { closedError } from '../common/errors.js';

interface Waiter {
  readonly resolve: (release: () => void) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Why this is enough: the upstream counts a request when it arrives, some time between its send
 * and its response. Two requests count in one window only if their arrivals are less than
 * `windowMs` apart, which needs one to be sent less than `windowMs` after the other's response.
 * A request is sent only while fewer than `limit` others are in flight or answered less than
 * `windowMs` ago, so no window at the upstream ever sees more than `limit`, whatever the jitter
 * or the upstream's window alignment. The cost: each place is held for one round trip beyond the
 * window (at 5 per second with 40 ms round trips, 96% of the quota).
 */
export class UpstreamWindow {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #inFlight = 0;
  /** When each answered request's place frees, in the order they were answered. */
  #frees: number[] = [];
  #waiters: Waiter[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(limit: number, windowMs: number, now: () => number = () => performance.now()) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#now = now;
  }

  /** Places held now: in flight, or answered less than windowMs ago. */
  get held(): number {
    this.#prune(this.#now());
    return this.#inFlight + this.#frees.length;
  }

  /** Resolves, in order of asking, with the function to call once the response (or failure) has arrived. */
  acquire(): Promise<() => void> {
    if (this.#closed) return Promise.reject(closedError('upstream window'));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#grant();
    });
  }

  /** Rejects every waiting request (code TOLLGATE_CLOSED); requests in flight finish. */
  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const error = closedError('upstream window');
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  #prune(now: number): void {
    let expired = 0;
    while (expired < this.#frees.length && (this.#frees[expired] as number) <= now) expired++;
    if (expired > 0) this.#frees.splice(0, expired);
  }

  #grant(): void {
    if (this.#closed) return;
    const now = this.#now();
    this.#prune(now);
    while (this.#waiters.length > 0 && this.#inFlight + this.#frees.length < this.#limit) {
      const waiter = this.#waiters.shift() as Waiter;
      this.#inFlight++;
      let released = false;
      waiter.resolve(() => {
        if (released) return;
        released = true;
        this.#inFlight--;
        this.#frees.push(this.#now() + this.#windowMs);
        this.#grant();
      });
    }
    // Still waiting on places that free at a known time: wake then. (Places in flight wake
    // the queue when they are released.)
    if (this.#waiters.length > 0 && this.#frees.length > 0 && this.#timer === undefined) {
      const wait = Math.max(0, (this.#frees[0] as number) - now);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#grant();
      }, Math.ceil(wait));
    }
  }
}
