// Another middleware's options given to tollgate's: express-rate-limit's `{ windowMs, limit }` and
// @fastify/rate-limit's `{ max, timeWindow }` are the first thing a switching user writes. They are
// refused with the line to write instead, made from the values given, so that the limit they meant
// is the one they get.
import { invalidArgument } from '../common/errors.js';

/** Options that hold the limit or the window in those libraries; in tollgate both live in the limiter's policy. */
const WINDOW_KEYS = ['windowMs', 'timeWindow', 'max'];

/** `60000` as `60_000`: the line reads as it would be written. */
function literal(n: number): string {
  return Number.isSafeInteger(n) && n >= 10_000 ? String(n).replace(/\B(?=(\d{3})+$)/g, '_') : String(n);
}

/**
 * The limiter line for another library's window options: their limit and window where they are
 * numbers, express-rate-limit's defaults (5 per 60 s) where they are not given. A fixed window
 * counts as express-rate-limit's MemoryStore and @fastify/rate-limit do: from a client's first hit.
 */
export function limiterLine(o: Record<string, unknown>): string {
  const given = [o.limit, o.max].find((v) => typeof v === 'number');
  const window = [o.windowMs, o.timeWindow].find((v) => typeof v === 'number');
  const limit = typeof given === 'number' ? literal(given) : typeof o.limit === 'function' || typeof o.max === 'function' ? '100' : '5';
  const windowMs = typeof window === 'number' ? literal(window) : '60_000';
  return `limiter: new Limiter({ policy: fixedWindow({ limit: ${limit}, windowMs: ${windowMs} }) })`;
}

const IMPORT = "(import { Limiter, fixedWindow } from 'tollgate'; slidingWindow, tokenBucket and leakyBucket are the other policies)";

/**
 * Throws a TypeError (code TOLLGATE_INVALID_ARGUMENT) naming the first of another library's window
 * options in `o` (`windowMs`, `timeWindow`, `max`, or `limit` given as a number), with the limiter
 * line to write. `where` names the options, as in "rate limit options".
 */
export function refuseForeignWindow(o: Record<string, unknown>, where: string): void {
  const key = Object.keys(o).find((k) => WINDOW_KEYS.includes(k)) ?? (typeof o.limit === 'number' ? 'limit' : undefined);
  if (key === undefined) return;
  const line = limiterLine(o);
  if (key === 'limit') {
    throw invalidArgument('limit', `a function of the request (a per-request limit, e.g. for a paid tier); the limit itself is the policy's: write ${line} ${IMPORT}`, o.limit);
  }
  const error = new TypeError(`Unknown option ${where}.${key}: tollgate's middleware takes a limiter, whose policy holds the limit and the window. Write ${line} ${IMPORT}`);
  throw Object.assign(error, { code: 'TOLLGATE_INVALID_ARGUMENT' as const });
}

/**
 * express-rate-limit's handler is `(req, res, next, options)`; tollgate's receives the Decision
 * third and nothing fourth, so one written for the other would read `options.statusCode` from
 * undefined on the first refusal. Refused when it is made, with what replaces it.
 */
export function refuseForeignHandler(handler: unknown, arity: number): void {
  if (typeof handler === 'function' && handler.length > arity) {
    throw invalidArgument(
      'handler',
      `a function of at most ${arity} parameters, the last one the Decision (express-rate-limit's (req, res, next, options) has no equivalent: use statusCode and message for another answer, or write it from the decision)`,
      handler,
    );
  }
}
