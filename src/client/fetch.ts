// fetch for one rate-limited upstream: waits for local capacity (requests and tokens), retries
// 429s and 5xx of idempotent requests with backoff that honours Retry-After, adapts to the upstream's rate headers,
// and settles estimated token costs against the real ones.
import { invalidArgument } from '../common/errors.js';
import { checkObject } from '../common/validate.js';
import { UpstreamPause } from './upstream-pause.js';
import { UpstreamPlaces } from './upstream-places.js';
import { upstreamConfig, type UpstreamOptions } from './upstream-options.js';
import { openUpstreamStore } from './upstream-store.js';
import type { RateLimiter } from '../limiters/rate-limiter.js';
import { adaptToUpstream, correctCost } from './adapt.js';
import { createQueue, type DeadLetter, type QueueLimit } from './queue.js';
import { parseUpstreamLimits } from './upstream-headers.js';
import { fetchConfig, type FetchRetryOptions, type LimitedFetchEvent } from './fetch-options.js';
import { FetchReport, type LimitedFetchStats } from './fetch-report.js';

export interface LimitedFetchOptions {
  /** The fetch to call; default globalThis.fetch. */
  readonly fetch?: typeof fetch;
  /** Requests allowed by the upstream (e.g. requests per minute). */
  readonly requests?: RateLimiter;
  /** Tokens allowed by the upstream: estimated before a call, corrected after it. */
  readonly tokens?: {
    readonly limiter: RateLimiter;
    readonly estimate: (input: RequestInfo | URL, init?: RequestInit) => number;
    /** The real cost from the response (e.g. usage.total_tokens); undefined keeps the estimate. */
    readonly actual?: (response: Response) => number | undefined | Promise<number | undefined>;
  };
  /**
   * The upstream's published terms, as it counts them: at most `limit` requests arriving in any
   * `windowMs`, and at most `concurrency` in flight. Each request holds a place from its send
   * until `windowMs` after its response (under `concurrency` alone, until the response), so the
   * limit holds at the upstream whatever the network's delay or the upstream's window alignment
   * (a plain rate limiter here sends on time, and jitter bunches arrivals). Places are handed out
   * first come, first served. With `store` (`sharedMemory({ name })`, `{ redis, name }`), every
   * process using it shares the account's places; without, this process has them all.
   */
  readonly upstream?: UpstreamOptions;
  /** The key both limiters spend from; default 'default'. Use one per upstream account. */
  readonly key?: string;
  readonly concurrency?: number;
  readonly maxSize?: number;
  /** Retries; `methods` (default the idempotent ones) says which methods may be sent again. */
  readonly retry?: FetchRetryOptions | false;
  readonly onDeadLetter?: (letter: DeadLetter) => void;
  /**
   * The longest wait an upstream may impose (Retry-After, a reset with nothing left): longer ones
   * are cut to it, counted in stats().waitsCapped and told to onEvent. Default retry.deadlineMs
   * (120 s): past it no retry would be sent anyway, and a key blocked that long is asked again then.
   */
  readonly maxUpstreamWaitMs?: number;
  /** Told of waits capped and of responses whose headers could not be adapted to; what it throws is a warning. */
  readonly onEvent?: (event: LimitedFetchEvent) => void;
}

/** An upstream answer worth retrying: 429, 408 or 5xx. */
export class UpstreamError extends Error {
  readonly status: number;
  readonly retryAfterMs: number | undefined;
  readonly retryable = true;
  constructor(status: number, retryAfterMs: number | undefined) {
    super(`Upstream answered ${status}`);
    this.name = 'UpstreamError';
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);

/** An error the queue must not retry (the caller aborted): marked in place, so its type and name stay. */
function notRetried(error: unknown): unknown {
  if (typeof error === 'object' && error !== null && Object.isExtensible(error)) Object.defineProperty(error, 'retryable', { value: false, configurable: true });
  return error;
}

/** A fetch that waits for its limits; close() rejects every call still waiting (code TOLLGATE_CLOSED). */
export interface LimitedFetch {
  (input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  close(): void;
  stats(): LimitedFetchStats;
}

const isRequest = (input: RequestInfo | URL): input is Request => typeof Request === 'function' && input instanceof Request;

/** The request's method, upper-case as fetch sends it: init's, else the Request's, else GET. */
function methodOf(input: RequestInfo | URL, init: RequestInit | undefined): string {
  const method = init?.method ?? (isRequest(input) ? input.method : 'GET');
  return method.toUpperCase();
}

export function limitedFetch(options: LimitedFetchOptions = {}): LimitedFetch {
  const o = checkObject(options, 'options');
  const config = fetchConfig(o);
  const report = new FetchReport(config.onEvent, config.maxUpstreamWaitMs);
  const upstream = o.upstream === undefined ? undefined : upstreamConfig(o.upstream);
  const fetchImpl = (o.fetch as typeof fetch | undefined) ?? globalThis.fetch;
  if (typeof fetchImpl !== 'function') throw invalidArgument('fetch', 'a fetch function', o.fetch);
  const key = options.key ?? 'default';
  const limits: QueueLimit[] = [];
  if (options.requests !== undefined) limits.push({ limiter: options.requests, key });
  if (options.tokens !== undefined) limits.push({ limiter: options.tokens.limiter, key, cost: (job) => job.cost });
  const queue = createQueue({
    limits,
    ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    ...(options.maxSize === undefined ? {} : { maxSize: options.maxSize }),
    ...(config.retry === undefined ? {} : { retry: config.retry }),
    ...(options.onDeadLetter === undefined ? {} : { onDeadLetter: options.onDeadLetter }),
  });

  // Opened last, once every option is known good: nothing is left open by a bad one.
  const places = upstream === undefined ? undefined : new UpstreamPlaces(openUpstreamStore(upstream.store, upstream.terms), upstream.terms.leaseMs, (problem) => report.placesProblem(problem));

  const { requests, tokens } = options;
  // With places alone, the upstream's "nothing left" pauses the sends (a requests limiter is blocked instead).
  const upstreamPause = places !== undefined && requests === undefined ? new UpstreamPause() : undefined;
  /** Runs an adaptation to a response already received: a failure is reported, never thrown (a throw would send the request again). */
  const adapt = async (status: number, step: () => unknown): Promise<void> => {
    try {
      await step();
    } catch (error) {
      report.adaptFailed(status, error);
    }
  };

  /** Returns what the queue's limits charged for a request that was never sent. */
  const giveBack = async (estimated: number): Promise<void> => {
    if (requests !== undefined) await adapt(0, () => requests.refund(key, 1));
    if (tokens !== undefined) await adapt(0, () => correctCost(tokens.limiter, key, estimated, 0));
  };

  const call = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    let estimated: number;
    try {
      estimated = options.tokens?.estimate(input, init) ?? 1;
    } catch (error) {
      return Promise.reject(error);
    }
    const retryable = config.retryMethods.has(methodOf(input, init));
    const signal = init?.signal ?? (isRequest(input) ? input.signal : undefined) ?? undefined;
    return queue.add(
      async () => {
        // The caller gave up: nothing is sent again, and the error says so to the queue.
        if (signal?.aborted) throw notRetried(signal.reason);
        // Held from the send until windowMs after the answer, a failed one too (it may have arrived).
        let release: (() => void) | undefined;
        if (places !== undefined) {
          try {
            await upstreamPause?.wait(signal);
            release = await places.acquire(signal);
          } catch (error) {
            // Never sent (closed, aborted, the store failed): what the limits charged for it goes back.
            await giveBack(estimated);
            throw signal?.aborted ? notRetried(error) : error;
          }
        }
        let response: Response;
        try {
          // A Request's body is read by the send: each attempt sends a copy, so a retry has one to send.
          response = await fetchImpl(isRequest(input) ? input.clone() : input, init);
        } catch (error) {
          throw signal?.aborted ? notRetried(error) : error;
        } finally {
          release?.();
        }
        if (!(response instanceof Response) && (typeof response !== 'object' || response === null)) {
          throw new TypeError(`fetch resolved with ${String(response)}, not a Response`);
        }
        // The upstream has answered: from here only its status may ask for the request again.
        const { status } = response;
        const upstream = report.capWaits(parseUpstreamLimits(response.headers));
        if (upstream.requests?.remaining === 0 && upstream.requests.resetMs !== undefined) upstreamPause?.extend(upstream.requests.resetMs);
        if (requests !== undefined) await adapt(status, () => adaptToUpstream(requests, key, upstream.requests));
        if (tokens !== undefined) await adapt(status, () => adaptToUpstream(tokens.limiter, key, upstream.tokens));
        if (RETRYABLE.has(status)) {
          await response.body?.cancel();
          const resetMs = upstream.requests?.resetMs;
          const wait = upstream.retryAfterMs ?? (resetMs === undefined ? undefined : report.cap(resetMs));
          // Everyone sharing the limiter pauses, not just this request: until the upstream's own
          // reset when it gives one (to the millisecond), else for its Retry-After. The retried
          // request itself always waits at least Retry-After.
          const pause = upstream.requests?.remaining === 0 && upstream.requests.resetMs !== undefined ? upstream.requests.resetMs : wait;
          if (status === 429 && requests !== undefined && pause !== undefined && pause > 0) {
            await adapt(status, () => requests.block(key, pause));
          }
          throw new UpstreamError(status, wait);
        }
        const actual = tokens?.actual;
        if (tokens !== undefined && actual !== undefined) {
          await adapt(status, async () => {
            const used = await actual(response.clone());
            if (used !== undefined) await correctCost(tokens.limiter, key, estimated, used);
          });
        }
        return response;
      },
      { cost: estimated, retryable },
    );
  };
  return Object.assign(call, {
    close: () => {
      queue.close();
      upstreamPause?.close();
      places?.close();
    },
    stats: () => report.stats(),
  });
}
