// What a Redis failure means for the limiter: each reply error Redis (or the client) gives is
// sorted into a class with its own code, and only the classes that say "this node cannot serve"
// count toward the node's breaker: a slot in migration or a key of another shape is no dead node.
import { redisError, type RedisErrorCode } from '../common/errors.js';

export interface RedisFailure {
  readonly code: RedisErrorCode;
  /** Whether it counts toward the node's breaker. */
  readonly countsTowardBreaker: boolean;
}

/**
 * The first word of a Redis error reply, to its class. Scripts may wrap an error raised inside
 * them as "ERR <original>", so the original's word is looked for after an "ERR " too.
 */
const CLASSES: readonly (readonly [RegExp, RedisFailure])[] = [
  [/^(?:ERR )?OOM\b/, { code: 'TOLLGATE_REDIS_OUT_OF_MEMORY', countsTowardBreaker: true }],
  [/^(?:ERR )?READONLY\b/, { code: 'TOLLGATE_REDIS_READONLY', countsTowardBreaker: true }],
  [/^(?:ERR )?NOPERM\b|executing the script can't|unknown command|Invalid command/i, { code: 'TOLLGATE_REDIS_NO_PERMISSION', countsTowardBreaker: true }],
  // A slot on the move (resharding): the keys are being served, elsewhere or in a moment.
  [/^(?:ERR )?(?:TRYAGAIN|ASK|MOVED)\b|Too many Cluster redirections/, { code: 'TOLLGATE_REDIS_MOVING', countsTowardBreaker: false }],
  [/^(?:ERR )?(?:LOADING|BUSY|MASTERDOWN|CLUSTERDOWN)\b/, { code: 'TOLLGATE_REDIS_UNAVAILABLE', countsTowardBreaker: true }],
];

const OTHER: RedisFailure = { code: 'TOLLGATE_REDIS_ERROR', countsTowardBreaker: true };

/** The class of a Redis reply error's text. */
export function classifyReply(text: string): RedisFailure {
  for (const [pattern, failure] of CLASSES) if (pattern.test(text)) return failure;
  return OTHER;
}

/** Whether a tollgate error is a failure of Redis (a code of RedisLimiter's, other than a state mismatch). */
export function isRedisFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('TOLLGATE_REDIS_') && code !== 'TOLLGATE_REDIS_STATE_MISMATCH';
}

/**
 * A client's error as a tollgate error: already coded ones as they are, any other with the class
 * of its text, `reply` holding the server's words.
 */
export function asRedisError(error: unknown): Error & { code: RedisErrorCode; reply?: string } {
  const code = (error as { code?: string } | null)?.code;
  if (typeof code === 'string' && code.startsWith('TOLLGATE_REDIS_')) return error as Error & { code: RedisErrorCode };
  const text = String((error as Error | null)?.message ?? error);
  return redisError(`Redis failed: ${text}`, classifyReply(text).code, error, text);
}

/** Whether a coded Redis failure counts toward its node's breaker. */
export function countsTowardBreaker(code: RedisErrorCode): boolean {
  if (code === 'TOLLGATE_REDIS_MOVING' || code === 'TOLLGATE_REDIS_STATE_MISMATCH' || code === 'TOLLGATE_REDIS_LATE') return false;
  return true;
}
