// Middleware for express, connect and plain node:http servers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../decision.js';
import { problemBody } from './headers.js';
import { RateLimitRule, type Outcome, type RateLimitOptions } from './rule.js';

export interface NodeRateLimitOptions extends RateLimitOptions<IncomingMessage> {
  /** Replaces the 429 answer; headers (including Retry-After) are already set. */
  readonly handler?: (req: IncomingMessage, res: ServerResponse, decision: Decision) => void;
}

export interface RateLimitMiddleware {
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /**
   * For node:http handlers: sets the headers, answers 429 or 400 itself when the request must
   * stop, and resolves whether the request may go on.
   */
  check(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

const MISSING_KEY_BODY = JSON.stringify({
  type: 'about:blank',
  title: 'Bad Request',
  status: 400,
  detail: 'The request carries no rate-limit key (for example, the API key header is missing).',
});

/** Writes the outcome; returns whether the request may go on. */
function apply(outcome: Outcome, req: IncomingMessage, res: ServerResponse, options: NodeRateLimitOptions): boolean {
  const headers = outcome.headers;
  for (let i = 0; i < headers.length; i++) res.setHeader((headers[i] as [string, string])[0], (headers[i] as [string, string])[1]);
  if (outcome.action === 'pass') return true;
  if (outcome.action === 'reject') {
    res.statusCode = 400;
    res.setHeader('Content-Type', 'application/problem+json');
    res.end(MISSING_KEY_BODY);
    return false;
  }
  const decision = outcome.decision as Decision;
  if (options.handler !== undefined) {
    options.handler(req, res, decision);
    return false;
  }
  res.statusCode = 429;
  res.setHeader('Content-Type', 'application/problem+json');
  res.end(problemBody(decision, req.url));
  return false;
}

/**
 * Rate-limits requests: `app.use(rateLimit({ limiter }))` in express or connect, or
 * `if (!(await limit.check(req, res))) return;` in a node:http handler.
 */
export function rateLimit(options: NodeRateLimitOptions): RateLimitMiddleware {
  const rule = new RateLimitRule<IncomingMessage>(options);
  const middleware = ((req, res, next) => {
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = rule.run(req, req);
    } catch (error) {
      if (next) next(error);
      else fail(res, error);
      return;
    }
    if (outcome instanceof Promise) {
      outcome.then(
        (o) => {
          if (apply(o, req, res, options)) next?.();
        },
        (error: unknown) => (next ? next(error) : fail(res, error)),
      );
    } else if (apply(outcome, req, res, options)) {
      next?.();
    }
  }) as RateLimitMiddleware;
  middleware.check = async (req, res) => apply(await rule.run(req, req), req, res, options);
  return middleware;
}

function fail(res: ServerResponse, error: unknown): void {
  res.statusCode = 500;
  res.end();
  process.emitWarning(`tollgate rateLimit failed: ${(error as Error)?.message ?? String(error)}`, { code: 'TOLLGATE_MIDDLEWARE_ERROR' });
}
