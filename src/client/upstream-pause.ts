// A pause the upstream asked for (its headers say nothing is left until its reset), for a
// limitedFetch whose only limit is the upstream's places: a `requests` limiter, when given, is
// blocked until the reset instead. Every send of this process waits it out; close() and the
// request's own AbortSignal end a wait at once.
import { closedError } from '../common/errors.js';

export class UpstreamPause {
  /** Date.now() ms until which nothing is sent. */
  #until = 0;
  readonly #stops = new Set<() => void>();
  #closed = false;

  /** Pauses sends for `ms` from now; a shorter pause never cuts a longer one. */
  extend(ms: number): void {
    if (ms > 0) this.#until = Math.max(this.#until, Date.now() + ms);
  }

  /** Resolves once no pause is in force; rejects with TOLLGATE_CLOSED at close, or with the signal's reason. */
  async wait(signal: AbortSignal | undefined): Promise<void> {
    for (let left = this.#until - Date.now(); left > 0; left = this.#until - Date.now()) {
      await new Promise<void>((resolve, reject) => {
        if (this.#closed) return reject(closedError('limitedFetch'));
        if (signal?.aborted) return reject(signal.reason);
        const end = (settle: () => void) => () => {
          clearTimeout(timer);
          this.#stops.delete(stop);
          signal?.removeEventListener('abort', onAbort);
          settle();
        };
        const stop = end(() => reject(closedError('limitedFetch')));
        const onAbort = end(() => reject(signal?.reason));
        const timer = setTimeout(end(resolve), left);
        this.#stops.add(stop);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  close(): void {
    this.#closed = true;
    for (const stop of [...this.#stops]) stop();
  }
}
