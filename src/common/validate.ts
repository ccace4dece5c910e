// Argument checks shared by every public entry point; they run before anything crosses into C++.
import { checkKnownKeys } from './option-keys.js';
import { invalidArgument, outOfRange } from './errors.js';

import { MAX_KEY_LENGTH } from './constants.js';

export { MAX_KEY_LENGTH };

export function checkKey(key: unknown, name = 'key'): asserts key is string {
  if (typeof key !== 'string') throw invalidArgument(name, 'a non-empty string', key);
  if (key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw outOfRange(name, `a string of 1 to ${MAX_KEY_LENGTH} characters`, key);
  }
}

export function isKey(key: unknown): key is string {
  return typeof key === 'string' && key.length !== 0 && key.length <= MAX_KEY_LENGTH;
}

/** A whole number in [min, max]; the error names `name`. */
export function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number') throw invalidArgument(name, 'a positive integer', value);
  if (!Number.isInteger(value) || value < min || value > max) {
    const expected = min === 1 && max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from ${min} to ${max}`;
    throw outOfRange(name, expected, value);
  }
  return value;
}

export function checkPositiveInteger(value: unknown, name: string): number {
  return checkInteger(value, name, 1, Number.MAX_SAFE_INTEGER);
}

/**
 * Per-call options: undefined, or an object (its fields are checked by the caller). null, numbers,
 * strings and arrays are refused rather than ignored.
 */
export function checkOptions(value: unknown, name = 'options'): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  return checkObject(value, name);
}

export function checkObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArgument(name, 'an options object', value);
  }
  return value as Record<string, unknown>;
}

/**
 * The per-policy limits `options.limit` asks for, with `count` policies: a number applies to the
 * first, an array to each in turn (undefined: that policy's own). undefined when none is asked.
 */
export function splitLimits(options: unknown, count: number): (number | undefined)[] | undefined {
  const o = checkOptions(options);
  if (o === undefined) return undefined;
  // A misspelt option (`limits`) would silently mean the policies' own limits: refused, by name.
  for (const key in o) if (key !== 'limit') checkKnownKeys(o, ['limit'], 'options');
  if (o.limit === undefined) return undefined;
  const limit = o.limit;
  if (typeof limit === 'number') return [limit];
  if (!Array.isArray(limit) || limit.length > count) {
    throw invalidArgument('limit', `a number, or an array of at most ${count} limits (one per policy)`, limit);
  }
  return limit.map((l: unknown) => (l === undefined || l === null ? undefined : (l as number)));
}
