// Middleware for express, connect and plain node:http servers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../decision.js';
import { problemBody } from './headers.js';
import { RateLimitRule, type Outcome, type RateLimitOptions } from './rule.js';

export interface NodeRateLimitOptions extends RateLimitOptions<IncomingMessage> {
  /** Replaces the 429 answer; headers (including Retry-After) are already set. */
  readonly handler?: (req: IncomingMessage, res: ServerResponse, decision: Decision) => void | Promise<void>;
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

/** Writes the outcome; returns whether the request may go on. An async handler's failure goes to `failed`. */
function apply(
  outcome: Outcome,
  req: IncomingMessage,
  res: ServerResponse,
  options: NodeRateLimitOptions,
  failed: (error: unknown) => void,
): boolean {
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
    const done: unknown = options.handler(req, res, decision);
    if (typeof (done as { then?: unknown } | undefined)?.then === 'function') (done as Promise<unknown>).then(undefined, failed);
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
    // Every error (an option function, the limiter, a custom handler) ends here: passed to
    // express's error handling, or answered 500, never left as an unhandled rejection.
    const failed = (error: unknown) => (next ? next(error) : fail(res, error));
    const finish = (o: Outcome) => {
      let go: boolean;
      try {
        go = apply(o, req, res, options, failed);
      } catch (error) {
        failed(error);
        return;
      }
      if (go) next?.();
    };
    let outcome: Outcome | Promise<Outcome>;
    try {
      outcome = rule.run(req, req);
    } catch (error) {
      failed(error);
      return;
    }
    if (outcome instanceof Promise) outcome.then(finish, failed);
    else finish(outcome);
  }) as RateLimitMiddleware;
  middleware.check = async (req, res) => {
    const outcome = await rule.run(req, req);
    return apply(outcome, req, res, options, (error) => fail(res, error));
  };
  return middleware;
}

function fail(res: ServerResponse, error: unknown): void {
  if (!res.headersSent) res.statusCode = 500;
  if (!res.writableEnded) res.end();
  process.emitWarning(`tollgate rateLimit failed: ${(error as Error)?.message ?? String(error)}`, { code: 'TOLLGATE_MIDDLEWARE_ERROR' });
}
