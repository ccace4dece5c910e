// ExpressRateLimitStore's counting on Redis, in rate-limit-redis' format (see rate-limit-redis-lua.ts):
// express-rate-limit's Store operations as script calls, Redis failures answered by onError.
import { redisError } from '../../common/errors.js';
import { makeRoom } from '../../common/bounded-map.js';
import { FAIL_CLOSED_RETRY_MS } from '../../limiters/fallback.js';
import { script, type Script } from '../../redis/script.js';
import { DECREMENT_LUA, GET_LUA, INCREMENT_LUA, RESET_LUA } from './rate-limit-redis-lua.js';
import { isRedisFailure, verdict, type PeerRedisConfig } from './peer-redis-options.js';

const INCREMENT = script(INCREMENT_LUA);
const GET = script(GET_LUA);
const DECREMENT = script(DECREMENT_LUA);
const RESET = script(RESET_LUA);

/** What express-rate-limit's `increment` and `get` return. */
export interface HitInfo {
  totalHits: number;
  resetTime: Date | undefined;
}

/** Keys remembered at most with hits onError answered (see #uncounted). */
const MAX_UNCOUNTED_KEYS = 10_000;

export class RateLimitRedisCounts {
  readonly #config: PeerRedisConfig;
  /**
   * Hits onError answered, per key, not yet given back. express-rate-limit gives a hit back
   * (skipFailedRequests, skipSuccessfulRequests) by calling decrement: for such a hit, nothing
   * was counted on Redis, so taking one off there would take off another request's.
   */
  readonly #uncounted = new Map<string, number>();
  readonly #prefix: string;
  readonly #resetExpiryOnChange: string;
  windowMs = 60_000;
  /** express-rate-limit's limit when a number (a fail-closed answer goes one past it). */
  limit: number | undefined;

  constructor(config: PeerRedisConfig, prefix: string, resetExpiryOnChange: boolean) {
    this.#config = config;
    this.#prefix = prefix;
    this.#resetExpiryOnChange = resetExpiryOnChange ? '1' : '0';
  }

  /** The Redis key, as rate-limit-redis writes it: the prefix, then the key as text (no hashing, so both stores meet). */
  #key(key: unknown): string {
    return `${this.#prefix}${String(key)}`;
  }

  async #call(script: Script, key: string, args: readonly string[]): Promise<readonly unknown[]> {
    const reply = await this.#config.runner.run(script, key, args);
    if (Number(reply[2]) === 2) {
      throw redisError(
        `Redis key '${key}' holds a value rate-limit-redis never writes (another program's); nothing was changed. Delete the key, or give the store another prefix.`,
        'TOLLGATE_REDIS_STATE_MISMATCH',
      );
    }
    return reply;
  }

  async increment(key: unknown): Promise<HitInfo> {
    let reply: readonly unknown[];
    try {
      reply = await this.#call(INCREMENT, this.#key(key), [String(this.windowMs), this.#resetExpiryOnChange]);
    } catch (error) {
      if (!isRedisFailure(error)) throw error;
      const answer = verdict(this.#config.onError, error, String(key));
      this.#remember(String(key));
      // express-rate-limit compares the count with its limit: onError's answer is a count.
      return answer === 'allow'
        ? { totalHits: 1, resetTime: new Date(Date.now() + this.windowMs) }
        : { totalHits: (this.limit ?? Number.MAX_SAFE_INTEGER - 1) + 1, resetTime: new Date(Date.now() + FAIL_CLOSED_RETRY_MS) };
    }
    return { totalHits: Number(reply[3]), resetTime: new Date(Date.now() + Number(reply[4])) };
  }

  /** The client's count, or undefined when Redis holds none. Rejects with the Redis failure (no decision rests on it). */
  async get(key: unknown): Promise<HitInfo | undefined> {
    const reply = await this.#call(GET, this.#key(key), []);
    if (Number(reply[2]) === 0) return undefined;
    return { totalHits: Number(reply[3]), resetTime: new Date(Date.now() + Math.max(0, Number(reply[4]))) };
  }

  #remember(key: string): void {
    if (!this.#uncounted.has(key)) makeRoom(this.#uncounted, MAX_UNCOUNTED_KEYS);
    this.#uncounted.set(key, (this.#uncounted.get(key) ?? 0) + 1);
  }

  async decrement(key: unknown): Promise<void> {
    // A hit onError answered was never counted: giving it back takes nothing off Redis.
    const uncounted = this.#uncounted.get(String(key));
    if (uncounted !== undefined) {
      if (uncounted > 1) this.#uncounted.set(String(key), uncounted - 1);
      else this.#uncounted.delete(String(key));
      return;
    }
    await this.#call(DECREMENT, this.#key(key), []);
  }

  async resetKey(key: unknown): Promise<void> {
    await this.#call(RESET, this.#key(key), []);
  }

  /** Calls still out, and later ones, reject with TOLLGATE_CLOSED (onError is not asked); the client stays its owner's. */
  close(): void {
    this.#config.runner.close();
  }
}
