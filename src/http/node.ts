// Middleware for express, connect and plain node:http servers.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Decision } from '../common/decision.js';
import { MISSING_KEY_BODY } from './headers.js';
import { isPromise } from '../limiters/rate-limiter.js';
import { refuseForeignHandler } from './foreign-options.js';
import { writeHeader } from './node-response.js';
import { warnTrustsEveryHop } from './request-key.js';
import { onResponseOutcome } from './response-outcome.js';
import { RateLimitRule, type FrameworkAddress, type RateLimitInfo, type RateLimitOptions, type RuleOutcome } from './rule.js';

/**
 * `Req` and `Res` are your framework's request and response (express's `Request` and `Response`,
 * by default node's): `rateLimit<Request, Response>({ key: (req) => req.user?.id })`, or annotate
 * a callback's parameter and they are inferred.
 */
export interface NodeRateLimitOptions<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> extends RateLimitOptions<Req> {
  /** Replaces the 429 answer; headers (including Retry-After) are already set. */
  readonly handler?: (req: Req, res: Res, decision: Decision) => unknown;
}

/** A request as the middleware leaves it: `rateLimit` set on every request it counted, as express-rate-limit does (express, node, and fastify: `RateLimitedRequest<FastifyRequest>`). */
export type RateLimitedRequest<Req = IncomingMessage> = Req & { rateLimit?: RateLimitInfo };

export interface RateLimitMiddleware<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> {
  (req: Req, res: Res, next?: (error?: unknown) => void): void;
  /**
   * For node:http handlers: sets the headers, answers 429 or 400 itself when the request must
   * stop, and resolves whether the request may go on.
   */
  check(req: Req, res: Res): Promise<boolean>;
}

/** Writes the verdict; returns whether the request may go on. An async handler's failure goes to `failed`. */
function apply<Req extends IncomingMessage, Res extends ServerResponse>(
  rule: RateLimitRule<Req>,
  verdict: RuleOutcome,
  req: Req,
  res: Res,
  options: NodeRateLimitOptions<Req, Res>,
  failed: (error: unknown) => void,
): boolean {
  const info = rule.info(verdict);
  if (info !== undefined) (req as RateLimitedRequest<Req>).rateLimit = info;
  const refundable = rule.refundable(verdict);
  if (refundable !== undefined) onResponseOutcome(res, (status) => rule.settle(refundable, status));
  const response = rule.respond(verdict, res, writeHeader);
  if (response === 'pass') return true;
  if (response === 'missing-key') {
    problem(res, 400, MISSING_KEY_BODY);
    return false;
  }
  if (options.handler !== undefined) {
    const done: unknown = options.handler(req, res, response.refused);
    if (isPromise(done)) done.then(undefined, failed);
    return false;
  }
  // express's originalUrl: req.url inside a mounted router lacks the mount path.
  const answer = rule.refusal(response.refused, (req as { originalUrl?: string }).originalUrl ?? req.url);
  problem(res, answer.status, answer.body, answer.contentType);
  return false;
}

function problem(res: ServerResponse, status: number, body: string, contentType = 'application/problem+json'): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.end(body);
}

/**
 * Inside express, the app's own `trust proxy` setting: when it is set, express's `req.ip` (the
 * address it derives from X-Forwarded-For by that setting), else undefined. Read per request, so a
 * setting made after the middleware was created counts. `true` (every hop) is said once, as a warning.
 */
function expressAddress(): FrameworkAddress<IncomingMessage> {
  let warned = false;
  return (raw) => {
    const trust = (raw as { app?: { settings?: Record<string, unknown> } }).app?.settings?.['trust proxy'];
    if (!trust) return undefined;
    if (trust === true && !warned) {
      warned = true;
      warnTrustsEveryHop(
        "express's 'trust proxy' is true, so req.ip is the leftmost X-Forwarded-For entry",
        "app.set('trust proxy', ...) your proxies' addresses ('loopback', '10.0.0.0/8') or their number (1 for one), or give rateLimit trustProxy",
      );
    }
    return (raw as { ip?: string }).ip;
  };
}

/**
 * Rate-limits requests: `app.use(rateLimit({ limiter }))` in express or connect, or
 * `if (!(await limit.check(req, res))) return;` in a node:http handler.
 */
export function rateLimit<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse>(options: NodeRateLimitOptions<Req, Res>): RateLimitMiddleware<Req, Res> {
  refuseForeignHandler(options?.handler, 3);
  const rule = new RateLimitRule<Req>(options, expressAddress());
  const middleware = ((req, res, next) => {
    // Every error (an option function, the limiter, a custom handler) ends here: passed to
    // express's error handling, or answered 500, never left as an unhandled rejection.
    const failed = (error: unknown) => (next ? next(error) : fail(res, error));
    let verdict: RuleOutcome | Promise<RuleOutcome>;
    try {
      verdict = rule.run(req, req);
    } catch (error) {
      failed(error);
      return;
    }
    if (verdict instanceof Promise) {
      verdict.then((v) => finish(rule, v, req, res, options, next, failed), failed);
    } else {
      finish(rule, verdict, req, res, options, next, failed);
    }
  }) as RateLimitMiddleware<Req, Res>;
  middleware.check = async (req, res) => {
    const verdict = await rule.run(req, req);
    return apply(rule, verdict, req, res, options, (error) => fail(res, error));
  };
  return middleware;
}

function finish<Req extends IncomingMessage, Res extends ServerResponse>(
  rule: RateLimitRule<Req>,
  verdict: RuleOutcome,
  req: Req,
  res: Res,
  options: NodeRateLimitOptions<Req, Res>,
  next: ((error?: unknown) => void) | undefined,
  failed: (error: unknown) => void,
): void {
  let go: boolean;
  try {
    go = apply(rule, verdict, req, res, options, failed);
  } catch (error) {
    failed(error);
    return;
  }
  if (go) next?.();
}

function fail(res: ServerResponse, error: unknown): void {
  if (!res.headersSent) res.statusCode = 500;
  if (!res.writableEnded) res.end();
  process.emitWarning(`tollgate rateLimit failed: ${(error as Error)?.message ?? String(error)}`, { code: 'TOLLGATE_MIDDLEWARE_ERROR' });
}
