// Koa middleware with the options of rateLimit(): app.use(koaRateLimit({ limiter })). Koa itself is
// not imported: the types below are the little of its context this middleware touches.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../common/decision.js';
import { refuseForeignHandler } from './foreign-options.js';
import { MISSING_KEY_BODY, type HeaderSink } from './headers.js';
import { writeHeader as writeNodeHeader } from './node-response.js';
import { warnTrustsEveryHop } from './request-key.js';
import { onResponseOutcome } from './response-outcome.js';
import { RateLimitRule, type FrameworkAddress, type RateLimitOptions } from './rule.js';

/** The parts of a Koa context the middleware reads and writes. */
export interface KoaContextLike {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly url: string;
  /** The URL as requested (koa-mount rewrites `url` below its mount path). */
  readonly originalUrl?: string;
  status: number;
  body: unknown;
  type: string;
  set(name: string, value: string): void;
  /** Koa's client address (from X-Forwarded-For when app.proxy is set). */
  readonly ip?: string;
  /** `maxIpsCount`: how many X-Forwarded-For entries, from the right, Koa reads (0: all of them). */
  readonly app?: { readonly proxy?: boolean; readonly maxIpsCount?: number };
  /** Koa's per-request namespace: the middleware sets `ctx.state.rateLimit` (a RateLimitInfo). */
  readonly state?: Record<string, unknown>;
}

/** `Ctx` is your Koa context type (Koa's `Context` by inference from an annotated callback, or given). */
export interface KoaRateLimitOptions<Ctx extends KoaContextLike = KoaContextLike> extends RateLimitOptions<Ctx> {
  /** Replaces the 429 answer; headers (including Retry-After) are already set. */
  readonly handler?: (ctx: Ctx, decision: Decision) => unknown;
}

// On node's response, as ctx.set() would (Koa keeps no headers of its own), without re-validating
// names and values tollgate made.
const writeHeader: HeaderSink<KoaContextLike> = (ctx, name, lower, value) => writeNodeHeader(ctx.res, name, lower, value);

function problem(ctx: KoaContextLike, status: number, body: string, type = 'application/problem+json'): undefined {
  ctx.status = status;
  ctx.type = type;
  ctx.body = body;
  return undefined;
}

/**
 * Koa's own proxy setting: `ctx.ip` when `app.proxy` is set, else undefined (the socket's peer).
 * With `maxIpsCount` 0 (Koa's default) `ctx.ip` is the leftmost X-Forwarded-For entry, which the
 * client writes: said once per middleware, as a warning with the fix.
 */
function koaAddress(): FrameworkAddress<KoaContextLike> {
  let warned = false;
  return (_raw, ctx) => {
    const app = ctx.app;
    if (app?.proxy !== true) return undefined;
    if (!warned && !((app.maxIpsCount ?? 0) > 0)) {
      warned = true;
      warnTrustsEveryHop(
        "Koa's app.proxy is set with app.maxIpsCount 0, so ctx.ip is the leftmost X-Forwarded-For entry",
        "set app.maxIpsCount to the number of proxies in front of the app (1 for one), or give koaRateLimit trustProxy (e.g. ['loopback'])",
      );
    }
    return ctx.ip;
  };
}

/**
 * Rate-limits every request that reaches it. `key: 'ip'` follows Koa's `app.proxy` (then
 * `ctx.ip`, from the last `app.maxIpsCount` X-Forwarded-For entries) unless `trustProxy` is given, which then decides as in
 * rateLimit(). Errors (an option function, the limiter, the handler) reject into Koa's error
 * handling.
 */
export function koaRateLimit<Ctx extends KoaContextLike = KoaContextLike>(options: KoaRateLimitOptions<Ctx>): (ctx: Ctx, next: () => Promise<unknown>) => Promise<unknown> {
  refuseForeignHandler(options?.handler, 2);
  const rule = new RateLimitRule<Ctx>(options, koaAddress());
  return async function tollgateRateLimit(ctx, next) {
    const verdict = await rule.run(ctx.req, ctx);
    const info = rule.info(verdict);
    if (info !== undefined && ctx.state !== undefined) ctx.state.rateLimit = info;
    // On node's response: Koa writes its status there, its error handling included.
    const refundable = rule.refundable(verdict);
    if (refundable !== undefined) onResponseOutcome(ctx.res, (status) => rule.settle(refundable, status));
    const response = rule.respond(verdict, ctx, writeHeader);
    if (response === 'pass') return next();
    if (response === 'missing-key') return problem(ctx, 400, MISSING_KEY_BODY);
    if (options.handler !== undefined) return options.handler(ctx, response.refused);
    const answer = rule.refusal(response.refused, ctx.originalUrl ?? ctx.url);
    return problem(ctx, answer.status, answer.body, answer.contentType);
  };
}
