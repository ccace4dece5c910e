// One-key Lua scripts run with the Redis tier's guarantees, for the stores that keep another
// library's format on Redis (see src/adapters/peer-formats): a deadline Redis itself checks, a
// bound on the wait, a breaker per node, EVALSHA with the script's text on NOSCRIPT, and every
// failure as a coded TOLLGATE_REDIS_* error. RedisLimiter batches and probes; this does neither.
import { redisError, type RedisErrorCode } from '../common/errors.js';
import { Breaker, type BreakerOptions, type BreakerTransitions } from './breaker.js';
import { keySlot } from './key-slot.js';
import { asRedisError, countsTowardBreaker } from './redis-errors.js';
import type { RedisTransport } from './redis-client.js';
import { ServerClock } from './server-clock.js';
import type { Script } from './script.js';

export interface ScriptRunnerOptions {
  /** Bound on every call, in ms. */
  readonly timeoutMs: number;
  /** undefined: no breaker (every call is sent). */
  readonly breaker: BreakerOptions | undefined;
}

interface NodeState {
  readonly breaker: Breaker | undefined;
  readonly clock: ServerClock;
  /** Scripts this node has run (later calls send the SHA). */
  readonly scripts: Set<Script>;
}

/** Nodes remembered at most (a Cluster has far fewer; the map starts over past it). */
const MAX_NODES = 1024;

/** Local time for deadlines and breakers: real and monotonic. */
const realNow = () => performance.now();

export class ScriptRunner {
  readonly #redis: RedisTransport;
  readonly #options: ScriptRunnerOptions;
  readonly #nodes = new Map<string, NodeState>();
  readonly #transitions: BreakerTransitions = { opened: 0, halfOpened: 0, closed: 0 };

  constructor(redis: RedisTransport, options: ScriptRunnerOptions) {
    this.#redis = redis;
    this.#options = options;
  }

  #node(key: string): NodeState {
    const name = this.#redis.cluster ? this.#redis.nodeOf(keySlot(key)) : '';
    let node = this.#nodes.get(name);
    if (node === undefined) {
      if (this.#nodes.size >= MAX_NODES) this.#nodes.clear();
      const breaker = this.#options.breaker === undefined ? undefined : new Breaker(this.#options.breaker, this.#transitions);
      node = { breaker, clock: new ServerClock(), scripts: new Set() };
      this.#nodes.set(name, node);
    }
    return node;
  }

  /**
   * Runs `script` (its Lua starts with DEADLINE_LUA, src/redis/lua.ts: ARGV[1] is the deadline and
   * the reply starts {1, clock}, or {0, clock} when Redis refused it as late) on `key` with `args`
   * after the deadline; resolves with the whole reply (its
   * {1, clock} head included) or rejects with a TOLLGATE_REDIS_* error within timeoutMs. A node
   * whose breaker is open is not asked (TOLLGATE_REDIS_UNAVAILABLE at once).
   */
  async run(script: Script, key: string, args: readonly string[]): Promise<readonly unknown[]> {
    const node = this.#node(key);
    const startedAt = realNow();
    if (node.breaker?.admit(startedAt) === 'skip') {
      throw redisError('Redis is down (its breaker is open); decided by onError', 'TOLLGATE_REDIS_UNAVAILABLE');
    }
    const timeoutMs = this.#options.timeoutMs;
    // The reply must be back before the timeout: Redis stops acting a round trip's worth early.
    const margin = Math.min(timeoutMs / 4, 2 * node.clock.roundTripMs + 1);
    const deadline = node.clock.deadline(startedAt + timeoutMs - margin, startedAt);
    try {
      const reply = await this.#bounded(this.#eval(node, script, key, [String(deadline), ...args]), timeoutMs);
      if (Number(reply[0]) === 0) throw redisError(`Redis refused the call as late (past its deadline by Redis' clock)`, 'TOLLGATE_REDIS_LATE');
      node.breaker?.success();
      return reply;
    } catch (error) {
      const coded = asRedisError(error);
      this.#failed(node, coded.code);
      throw coded;
    }
  }

  /** A failed call, told to the node's breaker when it speaks for the node (a trial always ends with an outcome). */
  #failed(node: NodeState, code: RedisErrorCode): void {
    const breaker = node.breaker;
    if (breaker === undefined) return;
    // A late refusal is an answer from a node too slow for this call: only a trial counts it.
    if (code === 'TOLLGATE_REDIS_LATE') {
      if (breaker.state === 'half-open') breaker.failure(realNow());
    } else if (countsTowardBreaker(code)) breaker.failure(realNow());
    else if (breaker.state === 'half-open') breaker.success(); // the node answered
  }

  /** EVAL on a node's first call of the script (which loads it), EVALSHA after, the text again on NOSCRIPT. */
  #eval(node: NodeState, script: Script, key: string, args: readonly string[]): Promise<readonly unknown[]> {
    const sentAt = realNow();
    const first = !node.scripts.has(script);
    const attempt = first
      ? this.#redis.eval(script.lua, [key], args)
      : this.#redis.evalsha(script.sha, [key], args).catch((error: unknown) => {
          if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error;
          return this.#redis.eval(script.lua, [key], args);
        });
    return attempt.then((raw) => {
      if (!Array.isArray(raw)) throw new Error(`unexpected reply ${String(raw)}`);
      if (first) node.scripts.add(script);
      node.clock.observe(Number(raw[1]), sentAt, realNow());
      return raw as readonly unknown[];
    });
  }

  /** Settles within `ms`; the late answer is dropped (the deadline keeps Redis from acting on a late call). */
  #bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(redisError(`Redis did not answer within ${this.#options.timeoutMs} ms`, 'TOLLGATE_REDIS_TIMEOUT')), ms);
      timer.unref?.();
      promise.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(asRedisError(error));
        },
      );
    });
  }
}
