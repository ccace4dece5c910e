// A circuit breaker for one Redis node: once calls to it fail, later calls go straight to the
// limiter's onError instead of each waiting out a timeout, while one trial call at a time, spaced
// by a growing backoff, finds out when the node answers again.

export interface BreakerOptions {
  /** Consecutive failed calls that open the breaker. */
  readonly afterFailures: number;
  /** The first wait before a trial call, in ms; doubled after each failed trial. */
  readonly retryMs: number;
  /** The longest wait between trials, in ms. */
  readonly maxRetryMs: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Transitions of every breaker of one limiter, for stats() and the metrics. */
export interface BreakerTransitions {
  opened: number;
  halfOpened: number;
  closed: number;
}

/** What a call to the node may do now. */
export type Admission = 'send' | 'trial' | 'skip';

export class Breaker {
  #state: BreakerState = 'closed';
  #failures = 0;
  #waitMs: number;
  #retryAt = 0;
  readonly #options: BreakerOptions;
  readonly #transitions: BreakerTransitions;
  readonly #random: () => number;

  constructor(options: BreakerOptions, transitions: BreakerTransitions, random: () => number = Math.random) {
    this.#options = options;
    this.#transitions = transitions;
    this.#random = random;
    this.#waitMs = options.retryMs;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /**
   * 'send' while closed; once open, 'skip' until the wait has passed, then 'trial' for exactly
   * one call (the caller reports its outcome), and 'skip' while that trial is out.
   */
  admit(now: number): Admission {
    if (this.#state === 'closed') return 'send';
    if (this.#state === 'half-open' || now < this.#retryAt) return 'skip';
    this.#state = 'half-open';
    this.#transitions.halfOpened++;
    return 'trial';
  }

  /** A call to the node answered: it is up. */
  success(): void {
    this.#failures = 0;
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#waitMs = this.#options.retryMs;
    this.#transitions.closed++;
  }

  /** A call to the node failed (an error or a timeout). */
  failure(now: number): void {
    if (this.#state === 'open') return;
    if (this.#state === 'closed' && ++this.#failures < this.#options.afterFailures) return;
    if (this.#state === 'half-open') this.#waitMs = Math.min(this.#options.maxRetryMs, this.#waitMs * 2);
    this.#state = 'open';
    this.#transitions.opened++;
    // Jitter, so that the processes of a fleet do not all try a recovering node at once.
    this.#retryAt = now + this.#waitMs * (0.8 + 0.4 * this.#random());
  }
}
