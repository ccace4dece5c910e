// Errors with stable `code` strings, and the wording every argument check uses.

import { CLOSED_MESSAGE } from './constants.js';
import type { RedisErrorCode, TollgateErrorCode } from './codes.js';

// The code types are derived from the catalogue in codes.ts; re-exported here, where errors are made.
export type { AcquireErrorCode, RedisErrorCode, TollgateCode, TollgateErrorCode, TollgateWarningCode } from './codes.js';

export interface TollgateTypeError extends TypeError {
  readonly code: TollgateErrorCode;
}
export interface TollgateRangeError extends RangeError {
  readonly code: TollgateErrorCode;
}

function describe(value: unknown): string {
  if (typeof value === 'string') {
    return value.length > 40 ? `a string of length ${value.length}` : JSON.stringify(value);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  if (typeof value === 'function') return 'a function';
  return String(value);
}

/** "Expected <expected> for <name> but received <value>", as a TypeError. */
export function invalidArgument(name: string, expected: string, value: unknown): TollgateTypeError {
  const error = new TypeError(`Expected ${expected} for ${name} but received ${describe(value)}`);
  return Object.assign(error, { code: 'TOLLGATE_INVALID_ARGUMENT' as const });
}

/** Same wording as invalidArgument, as a RangeError: the type was right, the value was not. */
export function outOfRange(name: string, expected: string, value: unknown): TollgateRangeError {
  const error = new RangeError(`Expected ${expected} for ${name} but received ${describe(value)}`);
  return Object.assign(error, { code: 'TOLLGATE_OUT_OF_RANGE' as const });
}

export function closedError(what?: string): TollgateTypeError {
  const error = new TypeError(what === undefined ? CLOSED_MESSAGE : CLOSED_MESSAGE.replace('limiter', what));
  return Object.assign(error, { code: 'TOLLGATE_CLOSED' as const });
}

export function nativeUnavailable(detail: string): Error & { code: TollgateErrorCode } {
  const error = new Error(`The tollgate native addon could not be loaded:\n${detail}`);
  return Object.assign(error, { code: 'TOLLGATE_NATIVE_UNAVAILABLE' as const });
}

/**
 * A store that already holds state of this name under other terms (a place account set up with
 * another limit, say): two meanings under one name, which would make each one's decisions wrong.
 */
export function storeMismatch(message: string): Error & { code: TollgateErrorCode } {
  return Object.assign(new Error(message), { code: 'TOLLGATE_STORE_MISMATCH' as const });
}

/**
 * A Redis call that failed, outlived its timeout, was not sent (the node's breaker is open), was
 * refused by Redis as late, or met state of another shape; `cause` holds the client's error, if any.
 */
export function redisError(message: string, code: RedisErrorCode, cause?: unknown, reply?: string): Error & { code: RedisErrorCode; reply?: string } {
  const error = new Error(message, cause === undefined ? undefined : { cause });
  return Object.assign(error, reply === undefined ? { code } : { code, reply });
}

/** Whether an error's `code` names a Redis failure (redisError's codes; give it error codes, as two warnings share the prefix). */
export function isRedisFailure(code: unknown): code is RedisErrorCode {
  return typeof code === 'string' && code.startsWith('TOLLGATE_REDIS_');
}
