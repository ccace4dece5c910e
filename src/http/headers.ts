// Rate-limit response headers in each format clients look for, written from one Decision. What
// does not change between requests (names, the policy list, the limit) is built once per rule.
import { STATUS_CODES } from 'node:http';
import type { Decision } from '../common/decision.js';
import { outOfRange } from '../common/errors.js';
import type { Policy } from '../common/policies.js';

/**
 * - 'legacy': X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (Unix time, seconds).
 * - 'draft-6': RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (seconds), RateLimit-Policy.
 * - 'draft-7': RateLimit: limit=, remaining=, reset= and RateLimit-Policy.
 * - 'draft-8': the structured fields of draft-ietf-httpapi-ratelimit-headers -08 to -10:
 *   RateLimit-Policy: "name";q=100;w=60 and RateLimit: "name";r=42;t=17.
 * The three drafts share header names, so at most one of them may be sent (beside 'legacy').
 */
export type HeaderFormat = 'legacy' | 'draft-6' | 'draft-7' | 'draft-8';
export const HEADER_FORMATS: readonly HeaderFormat[] = ['legacy', 'draft-6', 'draft-7', 'draft-8'];

/**
 * Writes one header: `name` as sent, `lower` its lower-case form (what node and fastify key
 * headers by), computed once. `target` is the adapter's response object.
 */
export type HeaderSink<T> = (target: T, name: string, lower: string, value: string) => void;

/** The policy's window in whole seconds: how long a full allowance takes to come back. */
export function windowSeconds(policy: Policy): number {
  switch (policy.kind) {
    case 'fixedWindow':
    case 'slidingWindow':
      return Math.max(1, Math.ceil(policy.windowMs / 1000));
    case 'tokenBucket':
      return Math.max(1, Math.ceil((policy.capacity * policy.refillIntervalMs) / policy.refillTokens / 1000));
    case 'leakyBucket':
      return Math.max(1, Math.ceil((policy.burst * policy.rateIntervalMs) / policy.rateTokens / 1000));
  }
}

/** A policy's own limit: the window limit, the bucket capacity or the GCRA burst. */
export function policyLimit(policy: Policy): number {
  switch (policy.kind) {
    case 'fixedWindow':
    case 'slidingWindow':
      return policy.limit;
    case 'tokenBucket':
      return policy.capacity;
    case 'leakyBucket':
      return policy.burst;
  }
}

/** Names as Structured Field strings need them: printable ASCII, quotes and backslashes escaped. */
export function sfString(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The formats asked for, without repeats; refuses drafts that would overwrite each other's headers. */
export function checkFormats(value: unknown): HeaderFormat[] {
  const list = value === undefined ? ['legacy', 'draft-8'] : value === false ? [] : Array.isArray(value) ? value : [value];
  const formats: HeaderFormat[] = [];
  for (const f of list) {
    if (!HEADER_FORMATS.includes(f as HeaderFormat)) throw outOfRange('headers', `formats among ${HEADER_FORMATS.join(', ')}`, f);
    if (!formats.includes(f as HeaderFormat)) formats.push(f as HeaderFormat);
  }
  const drafts = formats.filter((f) => f !== 'legacy');
  if (drafts.length > 1) {
    throw outOfRange('headers', `'legacy' and at most one draft format (${drafts.join(' and ')} both send RateLimit-Policy)`, formats.join(', '));
  }
  return formats;
}

// Header names, as sent and lower-cased.
const X_LIMIT = ['X-RateLimit-Limit', 'x-ratelimit-limit'] as const;
const X_REMAINING = ['X-RateLimit-Remaining', 'x-ratelimit-remaining'] as const;
const X_RESET = ['X-RateLimit-Reset', 'x-ratelimit-reset'] as const;
const RL_LIMIT = ['RateLimit-Limit', 'ratelimit-limit'] as const;
const RL_REMAINING = ['RateLimit-Remaining', 'ratelimit-remaining'] as const;
const RL_RESET = ['RateLimit-Reset', 'ratelimit-reset'] as const;
const RL_POLICY = ['RateLimit-Policy', 'ratelimit-policy'] as const;
const RL = ['RateLimit', 'ratelimit'] as const;
export const RETRY_AFTER = ['Retry-After', 'retry-after'] as const;

/**
 * The reset a response shows: the decision's, except that a refusal's is never earlier than its
 * Retry-After. A sliding window's reset is the end of its current window, yet a full window still
 * weighs on the next one, so its retry can come later (reset 5 s, retry 5.6 s): a client that
 * waited for the reset and sent again would be refused again, with remaining 0, round after round.
 * On a refusal the reset therefore means "when this request's quota is back". Allowed decisions
 * and costs that never fit (Infinity) keep the decision's reset.
 */
export function shownResetMs(decision: Decision): number {
  const retry = decision.retryAfterMs;
  return !decision.allowed && retry > decision.resetMs && Number.isFinite(retry) ? retry : decision.resetMs;
}

/**
 * The headers of one rule: its formats, and its policies' names, limits and windows. Every field
 * written for a decision describes the policy that binds it (Decision.policyIndex), and the
 * policy lists name every policy.
 */
export class RateLimitHeaders {
  readonly #legacy: boolean;
  readonly #draft: 'draft-6' | 'draft-7' | 'draft-8' | undefined;
  readonly #names: readonly string[];
  readonly #windows: readonly number[];
  readonly #limits: readonly number[];
  /** RateLimit-Policy for the policies' own limits; per-request limits (tiers) are cached below. */
  readonly #policyList: string;
  readonly #tierLists = new Map<string, string>();
  /** `"name";r=` per policy, for draft-8's RateLimit. */
  readonly #remainingPrefix: readonly string[];
  // One-entry caches: consecutive requests mostly share the limit and the reset second.
  #limitValue = -1;
  #limitText = '';
  #resetValue = -1;
  #resetText = '';

  constructor(formats: readonly HeaderFormat[], policies: readonly Policy[], names: readonly string[]) {
    this.#legacy = formats.includes('legacy');
    this.#draft = formats.find((f): f is 'draft-6' | 'draft-7' | 'draft-8' => f !== 'legacy');
    this.#names = names.map(sfString);
    this.#windows = policies.map(windowSeconds);
    this.#limits = policies.map(policyLimit);
    this.#policyList = this.#list(this.#limits);
    this.#remainingPrefix = this.#names.map((n) => `${n};r=`);
  }

  get empty(): boolean {
    return !this.#legacy && this.#draft === undefined;
  }

  #list(limits: readonly number[]): string {
    const items = limits.map((limit, i) => (this.#draft === 'draft-8' ? `${this.#names[i]};q=${limit};w=${this.#windows[i]}` : `${limit};w=${this.#windows[i]}`));
    return items.join(', ');
  }

  /** The policy list for these per-policy limits (undefined entries: the policy's own). */
  #policiesFor(decision: Decision, index: number, tiers: readonly (number | undefined)[] | undefined): string {
    if (tiers === undefined && decision.limit === this.#limits[index]) return this.#policyList;
    const limits = this.#limits.map((own, i) => (i === index ? decision.limit : (tiers?.[i] ?? own)));
    const cacheKey = limits.join(',');
    let list = this.#tierLists.get(cacheKey);
    if (list === undefined) {
      list = this.#list(limits);
      if (this.#tierLists.size < 256) this.#tierLists.set(cacheKey, list);
    }
    return list;
  }

  #limit(limit: number): string {
    if (limit !== this.#limitValue) {
      this.#limitValue = limit;
      this.#limitText = String(limit);
    }
    return this.#limitText;
  }

  /** Writes every header of `decision` through `sink`. `tiers`: the request's per-policy limits, if any. */
  write<T>(target: T, sink: HeaderSink<T>, decision: Decision, tiers?: readonly (number | undefined)[]): void {
    const index = decision.policyIndex ?? 0;
    const limit = this.#limit(decision.limit);
    const remaining = String(decision.remaining);
    const resetMs = shownResetMs(decision);
    if (this.#legacy) {
      sink(target, X_LIMIT[0], X_LIMIT[1], limit);
      sink(target, X_REMAINING[0], X_REMAINING[1], remaining);
      const at = Math.ceil((Date.now() + resetMs) / 1000);
      if (at !== this.#resetValue) {
        this.#resetValue = at;
        this.#resetText = String(at);
      }
      sink(target, X_RESET[0], X_RESET[1], this.#resetText);
    }
    const draft = this.#draft;
    if (draft === undefined) return;
    const resetS = Math.ceil(resetMs / 1000);
    sink(target, RL_POLICY[0], RL_POLICY[1], this.#policiesFor(decision, index, tiers));
    if (draft === 'draft-8') {
      sink(target, RL[0], RL[1], `${this.#remainingPrefix[index]}${remaining};t=${resetS}`);
    } else if (draft === 'draft-7') {
      sink(target, RL[0], RL[1], `limit=${limit}, remaining=${remaining}, reset=${resetS}`);
    } else {
      sink(target, RL_LIMIT[0], RL_LIMIT[1], limit);
      sink(target, RL_REMAINING[0], RL_REMAINING[1], remaining);
      sink(target, RL_RESET[0], RL_RESET[1], String(resetS));
    }
  }
}

/** The problem type draft-ietf-httpapi-ratelimit-headers registers for a 429. */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

/** The 400 answer to a request that carries no rate-limit key (onMissingKey 'reject'), one for every framework. */
export const MISSING_KEY_BODY = JSON.stringify({
  type: 'about:blank',
  title: 'Bad Request',
  status: 400,
  detail: 'The request carries no rate-limit key (for example, the API key header is missing).',
});

/**
 * The problem's `instance`: the request's path, the same in every framework (Hono gives a full
 * URL, the others a path): without scheme and host, and without the query, which may carry
 * credentials (`?api_key=`) a client's logs should not echo back.
 */
export function instancePath(url: string): string {
  let path = url;
  const scheme = path.startsWith('/') ? -1 : path.indexOf('://');
  if (scheme !== -1) {
    const slash = path.indexOf('/', scheme + 3);
    path = slash === -1 ? '/' : path.slice(slash);
  }
  const end = path.search(/[?#]/);
  return end === -1 ? path : path.slice(0, end);
}

/**
 * An RFC 9457 problem details body for a denied request; `url` as the framework gives it. `status`
 * is the one sent (429 unless the rule's statusCode says otherwise): the body repeats it, as RFC 9457 asks.
 */
export function problemBody(decision: Decision, url: string | undefined, status = 429): string {
  const never = !Number.isFinite(decision.retryAfterMs);
  return JSON.stringify({
    type: QUOTA_EXCEEDED_TYPE,
    title: STATUS_CODES[status] ?? 'Too Many Requests',
    status,
    detail: never ? `This request costs more than the limit of ${decision.limit} allows.` : `Rate limit of ${decision.limit} exceeded; retry in ${Math.ceil(decision.retryAfterMs / 1000)} s.`,
    ...(url === undefined ? {} : { instance: instancePath(url) }),
  });
}
