// What a refused request is answered with when no handler answers: the status (429 unless
// `statusCode`) and the body (the problem details, or `message`). One answer for every framework.
import type { Decision } from '../common/decision.js';
import { invalidArgument, outOfRange } from '../common/errors.js';
import { problemBody } from './headers.js';

/** The parsed `statusCode` and `message` options. */
export interface RefusalConfig {
  readonly status: number;
  /** `message` as sent, or undefined for the problem details (made per request: they say the wait). */
  readonly body: string | undefined;
  readonly contentType: string;
}

export interface RefusalAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

const PROBLEM_TYPE = 'application/problem+json';

/**
 * Reads `statusCode` (an error status, 400-599: a refusal answered 200 would tell clients and
 * caches the request succeeded) and `message` (a string, or an object sent as JSON; a function is
 * what `handler` is for).
 */
export function checkRefusal(statusCode: unknown, message: unknown): RefusalConfig {
  let status = 429;
  if (statusCode !== undefined) {
    if (typeof statusCode !== 'number' || !Number.isInteger(statusCode)) throw invalidArgument('statusCode', 'an integer HTTP status', statusCode);
    if (statusCode < 400 || statusCode > 599) throw outOfRange('statusCode', 'an error status from 400 to 599', statusCode);
    status = statusCode;
  }
  if (message === undefined) return { status, body: undefined, contentType: PROBLEM_TYPE };
  if (typeof message === 'string') return { status, body: message, contentType: 'text/plain; charset=utf-8' };
  if (isPlainObject(message) || Array.isArray(message)) {
    let body: string;
    try {
      body = JSON.stringify(message);
    } catch {
      throw invalidArgument('message', 'an object JSON can write (this one has a cycle or a BigInt)', message);
    }
    return { status, body, contentType: 'application/json; charset=utf-8' };
  }
  throw invalidArgument('message', 'a string or an object (sent as JSON); for an answer made per request give handler: (req, res, decision) => ...', message);
}

function isPlainObject(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The answer to a refused request at `url` (as the framework gives it). */
export function refusalAnswer(config: RefusalConfig, decision: Decision, url: string | undefined): RefusalAnswer {
  return { status: config.status, contentType: config.contentType, body: config.body ?? problemBody(decision, url, config.status) };
}
