// What a Redis failure means for the limiter: each reply error Redis (or the client) gives is
// sorted into a class with its own code, and only the classes that say "this node cannot serve"
// count toward the node's breaker: a slot in migration, a key of another shape or a refused
// command (which the probe then names) is no dead node.
import { isRedisFailure, redisError, type RedisErrorCode } from '../common/errors.js';

/**
 * The first word of a Redis error reply, to its class. Scripts may wrap an error raised inside
 * them as "ERR <original>", so the original's word is looked for after an "ERR " too.
 */
const CLASSES: readonly (readonly [RegExp, RedisErrorCode])[] = [
  [/^(?:ERR )?OOM\b/, 'TOLLGATE_REDIS_OUT_OF_MEMORY'],
  [/^(?:ERR )?READONLY\b/, 'TOLLGATE_REDIS_READONLY'],
  // An ACL or a renamed command: the limiter probes the node again and names it (see server-probe.ts).
  [/^(?:ERR )?NOPERM\b|executing the script can't|unknown command|Invalid command/i, 'TOLLGATE_REDIS_NO_PERMISSION'],
  // A slot on the move (resharding): the keys are being served, elsewhere or in a moment.
  [/^(?:ERR )?(?:TRYAGAIN|ASK|MOVED)\b|Too many Cluster redirections/, 'TOLLGATE_REDIS_MOVING'],
  [/^(?:ERR )?(?:LOADING|BUSY|MASTERDOWN|CLUSTERDOWN)\b/, 'TOLLGATE_REDIS_UNAVAILABLE'],
];

/** The code of a Redis reply error's text. */
export function classifyReply(text: string): RedisErrorCode {
  for (const [pattern, code] of CLASSES) if (pattern.test(text)) return code;
  return 'TOLLGATE_REDIS_ERROR';
}

/**
 * A client's error as a tollgate error: already coded ones as they are, any other with the class
 * of its text, `reply` holding the server's words.
 */
export function asRedisError(error: unknown): Error & { code: RedisErrorCode; reply?: string } {
  if (isRedisFailure((error as { code?: unknown } | null)?.code)) return error as Error & { code: RedisErrorCode };
  const text = String((error as Error | null)?.message ?? error);
  return redisError(`Redis failed: ${text}`, classifyReply(text), error, text);
}

/** Failures that say nothing about whether the node can serve: a slot on the move, an answer, a configuration the probe reports. */
const NOT_THE_NODES: ReadonlySet<RedisErrorCode> = new Set<RedisErrorCode>([
  'TOLLGATE_REDIS_MOVING',
  'TOLLGATE_REDIS_STATE_MISMATCH',
  'TOLLGATE_REDIS_LATE',
  'TOLLGATE_REDIS_NO_PERMISSION',
  'TOLLGATE_REDIS_UNSUPPORTED',
]);

/** Whether a coded Redis failure counts toward its node's breaker. */
export function countsTowardBreaker(code: RedisErrorCode): boolean {
  return !NOT_THE_NODES.has(code);
}
