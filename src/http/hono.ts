// Hono middleware with the options of rateLimit(): app.use(honoRateLimit({ limiter })). Hono itself
// is not imported: the types below are the little of its context this middleware touches. It runs
// wherever Hono does; the client address comes from `address` (by default node-server's socket).
import type { IncomingMessage } from 'node:http';
import type { Decision } from '../common/decision.js';
import { invalidArgument } from '../common/errors.js';
import { refuseForeignHandler } from './foreign-options.js';
import { MISSING_KEY_BODY, type HeaderSink } from './headers.js';
import { RateLimitRule, type RateLimitOptions } from './rule.js';

/** The parts of a Hono context the middleware reads and writes. */
export interface HonoContextLike {
  readonly req: { readonly url: string; header(name: string): string | undefined };
  readonly env?: unknown;
  header(name: string, value: string): void;
  body(data: string, status: number, headers?: Record<string, string>): Response;
  /** The response once the handlers ran: its status decides skipSuccessfulRequests / skipFailedRequests. */
  readonly res?: { readonly status: number };
}

/** Hono's `c.set`, which its own types tie to the app's declared Variables: called through this shape. */
type ContextSet = { set?: (key: string, value: unknown) => void };

/** `C` is your Hono context type (inferred from an annotated callback, or given). */
export interface HonoRateLimitOptions<C extends HonoContextLike = HonoContextLike> extends RateLimitOptions<C> {
  /**
   * The client's address, for `key: 'ip'` and `allowList`. By default the socket address under
   * @hono/node-server; elsewhere give Hono's own accessor, e.g. `(c) => getConnInfo(c).remote.address`.
   */
  readonly address?: (c: C) => string | undefined;
  /** Replaces the 429 answer; headers (including Retry-After) are already set. */
  readonly handler?: (c: C, decision: Decision) => Response | Promise<Response>;
}

const PROBLEM = { 'content-type': 'application/problem+json' };

const writeHeader: HeaderSink<HonoContextLike> = (c, name, _lower, value) => c.header(name, value);

function nodeServerAddress(c: HonoContextLike): string | undefined {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress;
}

/**
 * Rate-limits every request that reaches it; a refused one gets 429 with the problem body (or the
 * handler's response). Errors (an option function, the limiter, the handler) reject into Hono's
 * error handling.
 */
export function honoRateLimit<C extends HonoContextLike = HonoContextLike>(options: HonoRateLimitOptions<C>): (c: C, next: () => Promise<void>) => Promise<Response | undefined> {
  const address: (c: C) => string | undefined = options.address ?? nodeServerAddress;
  if (typeof address !== 'function') throw invalidArgument('address', 'a function of the context', address);
  refuseForeignHandler(options?.handler, 2);
  const rule = new RateLimitRule<C>(options, undefined, ['handler', 'address']);
  const requestHeaders = rule.requestHeaders;
  return async function tollgateRateLimit(c, next) {
    // The rule reads a node-style request: the address, and the few headers it names.
    const headers: Record<string, string | undefined> = {};
    for (const name of requestHeaders) headers[name] = c.req.header(name);
    const raw = { socket: { remoteAddress: address(c) }, headers } as unknown as IncomingMessage;
    const verdict = await rule.run(raw, c);
    const info = rule.info(verdict);
    if (info !== undefined) (c as unknown as ContextSet).set?.('rateLimit', info);
    const response = rule.respond(verdict, c, writeHeader);
    if (response === 'pass') {
      const refundable = rule.refundable(verdict);
      if (refundable === undefined) {
        await next();
        return undefined;
      }
      // Hono turns a handler's error into c.res through its error handler; one that still
      // reaches here never answered, a failure.
      try {
        await next();
      } catch (error) {
        rule.settle(refundable, undefined);
        throw error;
      }
      rule.settle(refundable, c.res?.status);
      return undefined;
    }
    if (response === 'missing-key') return c.body(MISSING_KEY_BODY, 400, PROBLEM);
    if (options.handler !== undefined) return options.handler(c, response.refused);
    const answer = rule.refusal(response.refused, c.req.url);
    return c.body(answer.body, answer.status, { 'content-type': answer.contentType });
  };
}
