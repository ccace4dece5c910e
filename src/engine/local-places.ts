// An upstream account's places in this process only: the book in memory, changes told at once.
import { closedError } from '../common/errors.js';
import { monotonicMs, type ManualClock } from '../common/clock.js';
import { checkPlaceTerms } from '../common/place-terms.js';
import type { PlaceCounts, PlaceReply, PlaceStore, PlaceTerms } from '../common/places.js';
import { PlaceBook } from './js/place-book.js';

export class LocalPlaces implements PlaceStore {
  readonly #book: PlaceBook;
  readonly #clock: ManualClock | undefined;
  readonly #listeners = new Set<() => void>();
  #closed = false;

  constructor(terms: PlaceTerms, clock?: ManualClock) {
    this.#book = new PlaceBook(checkPlaceTerms(terms));
    this.#clock = clock;
  }

  now(): number {
    return this.#clock === undefined ? monotonicMs() : this.#clock.now();
  }

  acquire(holder: string, waitingSince: number): Promise<PlaceReply> {
    return this.#run(() => this.#book.acquire(this.now(), holder, waitingSince));
  }

  release(holder: string, place: string): Promise<boolean> {
    return this.#run(() => this.#book.release(this.now(), holder, place));
  }

  renew(holder: string): Promise<boolean> {
    return this.#run(() => this.#book.renew(this.now(), holder));
  }

  leave(holder: string): Promise<void> {
    return this.#run(() => this.#book.leave(this.now(), holder));
  }

  counts(): Promise<PlaceCounts> {
    return this.#run(() => this.#book.counts(this.now()));
  }

  watch(listener: () => void): () => void {
    const own = () => listener();
    this.#listeners.add(own);
    return () => this.#listeners.delete(own);
  }

  close(): void {
    this.#closed = true;
    this.#listeners.clear();
  }

  /** Runs one call on the book; a change is told to the listeners after the caller has its answer. */
  #run<T>(call: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError('upstream places'));
    const before = this.#book.version;
    const result = call();
    if (this.#book.version !== before && this.#listeners.size > 0) {
      queueMicrotask(() => {
        for (const listener of [...this.#listeners]) listener();
      });
    }
    return Promise.resolve(result);
  }
}
