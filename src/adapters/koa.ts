// Koa middleware with the options of rateLimit(): app.use(koaRateLimit({ limiter })). Koa itself is
// not imported: the types below are the little of its context this middleware touches.
import type { IncomingMessage } from 'node:http';
import type { Decision } from '../decision.js';
import { MISSING_KEY_BODY, problemBody, RETRY_AFTER, type HeaderSink } from '../http/headers.js';
import { decisionOf, MISSING_KEY, RateLimitRule, tiersOf, type RateLimitOptions } from '../http/rule.js';

/** The parts of a Koa context the middleware reads and writes. */
export interface KoaContextLike {
  readonly req: IncomingMessage;
  readonly url: string;
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
}

export interface KoaRateLimitOptions extends RateLimitOptions<KoaContextLike> {
  /** Replaces the 429 answer; headers (including Retry-After) are already set. */
  readonly handler?: (ctx: KoaContextLike, decision: Decision) => unknown;
}


const writeHeader: HeaderSink<KoaContextLike> = (ctx, name, _lower, value) => ctx.set(name, value);

/**
 * Rate-limits every request that reaches it. `key: 'ip'` reads the socket's address (and, with
 * `trustProxy`, the forwarding header, as rateLimit() does); to follow Koa's own `app.proxy`
 * settings instead, give `key: (ctx) => ctx.ip`. Errors (an option function, the limiter, the
 * handler) reject into Koa's error handling.
 */
export function koaRateLimit(options: KoaRateLimitOptions): (ctx: KoaContextLike, next: () => Promise<unknown>) => Promise<unknown> {
  const rule = new RateLimitRule<KoaContextLike>(options);
  return async function tollgateRateLimit(ctx, next) {
    const verdict = await rule.run(ctx.req, ctx);
    const decision = decisionOf(verdict);
    if (decision === undefined) {
      if (verdict !== MISSING_KEY) return next();
      ctx.status = 400;
      ctx.type = 'application/problem+json';
      ctx.body = MISSING_KEY_BODY;
      return undefined;
    }
    rule.headers.write(ctx, writeHeader, decision, tiersOf(verdict));
    if (!rule.blocks(decision)) return next();
    if (Number.isFinite(decision.retryAfterMs)) ctx.set(RETRY_AFTER[0], String(Math.ceil(decision.retryAfterMs / 1000)));
    if (options.handler !== undefined) return options.handler(ctx, decision);
    ctx.status = 429;
    ctx.type = 'application/problem+json';
    ctx.body = problemBody(decision, ctx.url);
    return undefined;
  };
}
