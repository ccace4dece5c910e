// One-key Lua scripts run with the Redis tier's guarantees, for the stores that keep another
// library's format on Redis (see src/adapters/peer-formats): a deadline Redis itself checks, a
// bound on the wait, a breaker per node, EVALSHA with the script's text on NOSCRIPT, and every
// failure as a coded TOLLGATE_REDIS_* error, until close(). RedisLimiter batches and probes; this
// does neither.
import { closedError, redisError, type RedisErrorCode } from '../common/errors.js';
import { Breaker, type BreakerOptions, type BreakerTransitions } from './breaker.js';
import { keySlot } from './key-slot.js';
import { asRedisError, countsTowardBreaker } from './redis-errors.js';
import type { RedisTransport } from './redis-client.js';
import { ServerClock } from './server-clock.js';
import { DEADLINE_LUA } from './lua.js';
import { script as makeScript, type Script } from './script.js';

/** Reads Redis' clock, for a node whose clock is not known yet (see run). */
const CLOCK = makeScript(`${DEADLINE_LUA}return { 1, clock }\n`);

export interface ScriptRunnerOptions {
  /** Bound on every call, in ms. */
  readonly timeoutMs: number;
  /** undefined: no breaker (every call is sent). */
  readonly breaker: BreakerOptions | undefined;
}

interface NodeState {
  readonly breaker: Breaker | undefined;
  readonly clock: ServerClock;
  /** The clock read under way for a node whose clock is not known yet, shared by the calls waiting. */
  clockRead?: Promise<readonly unknown[]> | undefined;
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
  /** Rejects each call still waiting for its reply (each clears its own timer), so close() can end them. */
  readonly #unsettled = new Set<(error: Error) => void>();
  #closed = false;

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
   * whose breaker is open is not asked (TOLLGATE_REDIS_UNAVAILABLE at once). After close(), and for
   * a call still out when close() is called, rejects with TOLLGATE_CLOSED at once.
   *
   * A node whose clock is not known yet (no reply so far) is asked for it first, within the same
   * timeoutMs: a script is never sent without a deadline, since Redis would act on it however late
   * it arrived, counting a call that onError has already answered here.
   */
  async run(script: Script, key: string, args: readonly string[]): Promise<readonly unknown[]> {
    if (this.#closed) throw closedError('store');
    const node = this.#node(key);
    const startedAt = realNow();
    if (node.breaker?.admit(startedAt) === 'skip') {
      throw redisError('Redis is down (its breaker is open); decided by onError', 'TOLLGATE_REDIS_UNAVAILABLE');
    }
    const timeoutMs = this.#options.timeoutMs;
    try {
      // No deadline without Redis' clock: learn it (one round trip, once per node), in the budget.
      if (node.clock.deadline(startedAt, startedAt) === 0) {
        node.clockRead ??= this.#eval(node, CLOCK, key, ['0']).finally(() => (node.clockRead = undefined));
        await this.#bounded(node.clockRead, timeoutMs);
      }
      const now = realNow();
      // The reply must be back before the timeout: Redis stops acting a round trip's worth early.
      const margin = Math.min(timeoutMs / 4, 2 * node.clock.roundTripMs + 1);
      const deadline = node.clock.deadline(startedAt + timeoutMs - margin, now);
      const reply = await this.#bounded(this.#eval(node, script, key, [String(deadline), ...args]), Math.max(1, startedAt + timeoutMs - now));
      if (Number(reply[0]) === 0) throw redisError(`Redis refused the call as late (past its deadline by Redis' clock)`, 'TOLLGATE_REDIS_LATE');
      node.breaker?.success();
      return reply;
    } catch (error) {
      // Closed under it: no failure of the node's, and the breaker is no one's concern any more.
      if (this.#closed) throw closedError('store');
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
          if (this.#closed) throw closedError('store'); // nothing is sent after close(); #bounded already settled
          return this.#redis.eval(script.lua, [key], args);
        });
    return attempt.then((raw) => {
      if (!Array.isArray(raw)) throw new Error(`unexpected reply ${String(raw)}`);
      if (first) node.scripts.add(script);
      node.clock.observe(Number(raw[1]), sentAt, realNow());
      return raw as readonly unknown[];
    });
  }

  /**
   * Settles within `ms`, or at once on close(); the late answer is dropped (the deadline, once the
   * node's clock is known, keeps Redis from acting on a late call).
   */
  #bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
    return new Promise((resolve, reject) => {
      // Whichever comes first (reply, timeout, close()) settles the call; the others find it gone.
      const settle = (error: Error | undefined, value?: T) => {
        if (!this.#unsettled.delete(fail)) return;
        clearTimeout(timer);
        if (error === undefined) resolve(value as T);
        else reject(error);
      };
      const fail = (error: Error) => settle(error);
      const timer = setTimeout(() => fail(redisError(`Redis did not answer within ${this.#options.timeoutMs} ms`, 'TOLLGATE_REDIS_TIMEOUT')), ms);
      timer.unref?.();
      this.#unsettled.add(fail);
      promise.then(
        (value) => settle(undefined, value),
        (error: unknown) => fail(asRedisError(error)),
      );
    });
  }

  /**
   * Ends the runner: every call still out rejects at once with TOLLGATE_CLOSED, and so does every
   * later one. Replies that arrive afterwards are dropped. The Redis client is left to its owner.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const error = closedError('store');
    for (const fail of [...this.#unsettled]) fail(error);
    this.#nodes.clear();
  }
}
