// Errors with stable `code` strings, and the wording every argument check uses.

import { CLOSED_MESSAGE } from './constants.js';

/** The codes of RedisLimiter's failures. */
export type RedisErrorCode =
  | 'TOLLGATE_REDIS_TIMEOUT'
  | 'TOLLGATE_REDIS_ERROR'
  | 'TOLLGATE_REDIS_UNAVAILABLE'
  | 'TOLLGATE_REDIS_LATE'
  | 'TOLLGATE_REDIS_STATE_MISMATCH'
  | 'TOLLGATE_REDIS_OUT_OF_MEMORY'
  | 'TOLLGATE_REDIS_READONLY'
  | 'TOLLGATE_REDIS_NO_PERMISSION'
  | 'TOLLGATE_REDIS_MOVING'
  | 'TOLLGATE_REDIS_UNSUPPORTED';

export type TollgateErrorCode =
  | 'TOLLGATE_INVALID_ARGUMENT'
  | 'TOLLGATE_OUT_OF_RANGE'
  | 'TOLLGATE_CLOSED'
  | 'TOLLGATE_NATIVE_UNAVAILABLE'
  | 'TOLLGATE_STORE_MISMATCH'
  | 'TOLLGATE_SHARED_MEMORY'
  | 'TOLLGATE_OUT_OF_MEMORY'
  | RedisErrorCode;

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

export function isRedisFailure(code: unknown): code is RedisErrorCode { return typeof code === 'string' && code.startsWith('TOLLGATE_REDIS_'); }
