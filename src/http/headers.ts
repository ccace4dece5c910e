// Rate-limit response headers in each format clients look for, computed from one Decision.
import type { Decision } from '../decision.js';
import type { Policy } from '../policies.js';

/**
 * - 'legacy': X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (Unix time, seconds).
 * - 'draft-6': RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset (seconds), RateLimit-Policy.
 * - 'draft-7': RateLimit: limit=, remaining=, reset= and RateLimit-Policy.
 * - 'draft-8': the structured fields of draft-ietf-httpapi-ratelimit-headers -08 to -10:
 *   RateLimit-Policy: "name";q=100;w=60 and RateLimit: "name";r=42;t=17.
 */
export type HeaderFormat = 'legacy' | 'draft-6' | 'draft-7' | 'draft-8';
export const HEADER_FORMATS: readonly HeaderFormat[] = ['legacy', 'draft-6', 'draft-7', 'draft-8'];

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

/** Names as Structured Field strings need them: printable ASCII, quotes and backslashes escaped. */
export function sfString(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Appends [name, value] pairs for `formats` to `out`. */
export function rateLimitHeaders(
  out: [string, string][],
  formats: readonly HeaderFormat[],
  decision: Decision,
  policyName: string,
  windowS: number,
  nowMs: number,
): void {
  const resetS = Math.ceil(decision.resetMs / 1000);
  const limit = String(decision.limit);
  const remaining = String(decision.remaining);
  for (const format of formats) {
    switch (format) {
      case 'legacy':
        out.push(['X-RateLimit-Limit', limit], ['X-RateLimit-Remaining', remaining], ['X-RateLimit-Reset', String(Math.ceil((nowMs + decision.resetMs) / 1000))]);
        break;
      case 'draft-6':
        out.push(['RateLimit-Policy', `${limit};w=${windowS}`], ['RateLimit-Limit', limit], ['RateLimit-Remaining', remaining], ['RateLimit-Reset', String(resetS)]);
        break;
      case 'draft-7':
        out.push(['RateLimit-Policy', `${limit};w=${windowS}`], ['RateLimit', `limit=${limit}, remaining=${remaining}, reset=${resetS}`]);
        break;
      case 'draft-8':
        out.push(['RateLimit-Policy', `${policyName};q=${limit};w=${windowS}`], ['RateLimit', `${policyName};r=${remaining};t=${resetS}`]);
        break;
    }
  }
}

/** The problem type draft-ietf-httpapi-ratelimit-headers registers for a 429. */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

/** An RFC 9457 problem details body for a denied request. */
export function problemBody(decision: Decision, instance: string | undefined): string {
  const never = !Number.isFinite(decision.retryAfterMs);
  return JSON.stringify({
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Too Many Requests',
    status: 429,
    detail: never
      ? `This request costs more than the limit of ${decision.limit} allows.`
      : `Rate limit of ${decision.limit} exceeded; retry in ${Math.ceil(decision.retryAfterMs / 1000)} s.`,
    ...(instance === undefined ? {} : { instance }),
  });
}
