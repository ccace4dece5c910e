// What limitedFetch counts and tells: upstream waits it cut short, in stats() and to onEvent.
import type { LimitedFetchEvent } from './fetch-options.js';
import type { UpstreamLimits, UpstreamQuota } from './upstream-headers.js';

/** limitedFetch's counters since it was made. */
export interface LimitedFetchStats {
  /** Upstream-announced waits (Retry-After, resets) longer than maxUpstreamWaitMs, cut to it. */
  readonly waitsCapped: number;
}

export class FetchReport {
  readonly #onEvent: ((event: LimitedFetchEvent) => void) | undefined;
  readonly #maxWaitMs: number;
  #waitsCapped = 0;

  constructor(onEvent: ((event: LimitedFetchEvent) => void) | undefined, maxWaitMs: number) {
    this.#onEvent = onEvent;
    this.#maxWaitMs = maxWaitMs;
  }

  stats(): LimitedFetchStats {
    return { waitsCapped: this.#waitsCapped };
  }

  /**
   * The limits with every announced wait at most maxUpstreamWaitMs: an upstream's word (or its
   * misread units) must not pause this client for years.
   */
  capWaits(limits: UpstreamLimits): UpstreamLimits {
    const out: { -readonly [K in keyof UpstreamLimits]: UpstreamLimits[K] } = { ...limits };
    if (limits.retryAfterMs !== undefined) out.retryAfterMs = this.#cap(limits.retryAfterMs);
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
    return quota.resetMs === undefined ? quota : { ...quota, resetMs: this.#cap(quota.resetMs) };
  }

  #cap(ms: number): number {
    if (ms <= this.#maxWaitMs) return ms;
    this.#waitsCapped++;
    this.emit({ type: 'wait-capped', announcedMs: ms, cappedMs: this.#maxWaitMs });
    return this.#maxWaitMs;
  }
}
