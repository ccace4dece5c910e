// What limitedFetch counts and tells: upstream waits it cut short, and responses it could not adapt
// to, in stats() and to onEvent (or, for the latter, one process warning when nobody listens).
import type { LimitedFetchEvent } from './fetch-options.js';
import type { UpstreamLimits, UpstreamQuota } from './upstream-headers.js';
import type { PlacesProblem } from './upstream-places.js';

/** limitedFetch's counters since it was made. */
export interface LimitedFetchStats {
  /** Upstream-announced waits (Retry-After, resets) longer than maxUpstreamWaitMs, cut to it. */
  readonly waitsCapped: number;
  /** Responses returned although adapting the local limiters to their headers failed. */
  readonly adaptFailures: number;
  /** Calls to `upstream.store` that failed (Redis unreachable, a lock held by a stopped process). */
  readonly upstreamStoreFailures: number;
  /** Times this process's lease on `upstream.store` had lapsed (it stalled longer than leaseMs). */
  readonly leasesLost: number;
}

export class FetchReport {
  readonly #onEvent: ((event: LimitedFetchEvent) => void) | undefined;
  readonly #maxWaitMs: number;
  #waitsCapped = 0;
  #adaptFailures = 0;
  #storeFailures = 0;
  #leasesLost = 0;

  constructor(onEvent: ((event: LimitedFetchEvent) => void) | undefined, maxWaitMs: number) {
    this.#onEvent = onEvent;
    this.#maxWaitMs = maxWaitMs;
  }

  stats(): LimitedFetchStats {
    return { waitsCapped: this.#waitsCapped, adaptFailures: this.#adaptFailures, upstreamStoreFailures: this.#storeFailures, leasesLost: this.#leasesLost };
  }

  /** Told to onEvent each time; without onEvent, one warning per limitedFetch for the first. */
  placesProblem(problem: PlacesProblem): void {
    const first = this.#storeFailures + this.#leasesLost === 0;
    if (problem.type === 'lease-lost') this.#leasesLost++;
    else this.#storeFailures++;
    if (first && this.#onEvent === undefined) {
      const what =
        problem.type === 'lease-lost'
          ? `this process's lease on upstream.store lapsed and its ${problem.places} place(s) were taken back (it stalled longer than leaseMs)`
          : `upstream.store failed ${problem.operation === 'acquire' ? 'an' : 'a'} ${problem.operation}: ${(problem.error as Error)?.message ?? String(problem.error)}`;
      process.emitWarning(`tollgate limitedFetch: ${what} (later ones are counted in stats())`, { code: 'TOLLGATE_UPSTREAM_STORE_FAILED' });
    }
    this.emit(problem);
  }

  /**
   * A response arrived but adapting to it failed (a limiter that rejects: Redis unreachable, its
   * breaker open). Told to onEvent each time; without onEvent, one warning per limitedFetch, so a
   * Redis outage does not print one line per request.
   */
  adaptFailed(status: number, error: unknown): void {
    if (this.#adaptFailures++ === 0 && this.#onEvent === undefined) {
      process.emitWarning(
        `tollgate limitedFetch: adapting to the upstream's rate headers failed (the response was returned; later failures are counted in stats().adaptFailures): ${(error as Error)?.message ?? String(error)}`,
        {
          code: 'TOLLGATE_UPSTREAM_ADAPT_FAILED',
        },
      );
    }
    this.emit({ type: 'adapt-failed', status, error });
  }

  /**
   * The limits with every announced wait at most maxUpstreamWaitMs: an upstream's word (or its
   * misread units) must not pause this client for years. A reset is a wait only where nothing is
   * left (a daily quota with room resetting in 10 h imposes nothing, and is neither cut nor counted).
   */
  capWaits(limits: UpstreamLimits): UpstreamLimits {
    const out: { -readonly [K in keyof UpstreamLimits]: UpstreamLimits[K] } = { ...limits };
    if (limits.retryAfterMs !== undefined) out.retryAfterMs = this.cap(limits.retryAfterMs);
    if (limits.requests !== undefined) out.requests = this.#capQuota(limits.requests);
    if (limits.tokens !== undefined) out.tokens = this.#capQuota(limits.tokens);
    return out;
  }

  /** Tells onEvent; what it throws is a warning and changes nothing. */
  emit(event: LimitedFetchEvent): void {
    try {
      this.#onEvent?.(event);
    } catch (thrown) {
      process.emitWarning(`tollgate limitedFetch: onEvent threw: ${(thrown as Error)?.message ?? String(thrown)}`, { code: 'TOLLGATE_CALLBACK_ERROR' });
    }
  }

  #capQuota(quota: UpstreamQuota): UpstreamQuota {
    return quota.resetMs === undefined || quota.remaining === undefined || quota.remaining > 0 ? quota : { ...quota, resetMs: this.cap(quota.resetMs) };
  }

  /** `ms`, or maxUpstreamWaitMs when longer (counted, and told to onEvent). */
  cap(ms: number): number {
    if (ms <= this.#maxWaitMs) return ms;
    this.#waitsCapped++;
    this.emit({ type: 'wait-capped', announcedMs: ms, cappedMs: this.#maxWaitMs });
    return this.#maxWaitMs;
  }
}
