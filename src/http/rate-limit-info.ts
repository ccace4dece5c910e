// What a limited request carries for the app's own handlers (express's req.rateLimit, Koa's
// ctx.state.rateLimit, fastify's request.rateLimit, Hono's c.get('rateLimit')): the shape
// express-rate-limit gives, so handlers written against it keep working.
import type { Decision } from '../common/decision.js';
import { shownResetMs } from './headers.js';

/**
 * A request's quota after this request, as express-rate-limit's `req.rateLimit` has it, plus the
 * Decision itself.
 * - `limit`: the limit that applied (of the binding policy, with the request's tier).
 * - `used`: `limit - remaining`. A refused request is not counted, so it is not in `used`
 *   (express-rate-limit counts it: its `used` reads `limit + 1` then).
 * - `remaining`: what the key may still spend now.
 * - `resetTime`: when the quota is back, as the response's reset headers say (on a refusal,
 *   never before Retry-After).
 * - `key`: the key counted, as the limiter holds it (hashed past 256 characters):
 *   `limiter.reset(req.rateLimit.key)` forgets the client.
 */
export interface RateLimitInfo {
  readonly limit: number;
  readonly used: number;
  readonly remaining: number;
  readonly resetTime: Date;
  readonly key: string;
  readonly decision: Decision;
}

export function rateLimitInfo(decision: Decision, key: string): RateLimitInfo {
  return {
    limit: decision.limit,
    used: Math.max(0, decision.limit - decision.remaining),
    remaining: decision.remaining,
    resetTime: new Date(Date.now() + shownResetMs(decision)),
    key,
    decision,
  };
}
