// A Lua script as tollgate sends it (its text, and the SHA that EVALSHA names it by), and the
// package-internal door through which other parts of tollgate run their own scripts on a
// RedisLimiter's nodes, with its deadline, breaker and NOSCRIPT recovery.
import { createHash } from 'node:crypto';

export interface Script {
  readonly lua: string;
  readonly sha: string;
}

/** `lua` with its SHA, computed once. */
export const script = (lua: string): Script => ({ lua, sha: createHash('sha1').update(lua).digest('hex') });

/**
 * `limiter[RUN_SCRIPT](s, keys, args)`: runs `s` on the node that serves `keys[0]`, as the
 * limiter's own calls run (see RedisLimiter). The script must begin with DEADLINE_LUA (lua.ts), so
 * its ARGV[1] is the deadline the limiter puts in front of `args` and its reply starts
 * {1, clock, ...}. Not exported from the package: a symbol, so no user code meets it by name.
 */
export const RUN_SCRIPT: unique symbol = Symbol('tollgate.runScript');
