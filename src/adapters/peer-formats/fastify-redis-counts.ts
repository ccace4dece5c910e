// FastifyRateLimitStore's counting on Redis, in @fastify/rate-limit's RedisStore format (see
// fastify-redis-lua.ts): the plugin's store calls as script calls, Redis failures answered by onError.
import { invalidArgument, redisError } from '../../common/errors.js';
import { FAIL_CLOSED_RETRY_MS } from '../../limiters/fallback.js';
import { script, type Script } from '../../redis/script.js';
import { INCR_LUA, READ_LUA } from './fastify-redis-lua.js';
import { isRedisFailure, verdict, type PeerRedisConfig } from './peer-redis-options.js';

const INCR = script(INCR_LUA);
const READ = script(READ_LUA);

/** What @fastify/rate-limit's store callbacks receive. */
export interface FastifyCount {
  current: number;
  ttl: number;
}

/** The plugin's settings a store (or a route's) is made with: the two that shape its windows. */
export interface WindowFlags {
  readonly continueExceeding: boolean;
  readonly exponentialBackoff: boolean;
}

export function windowFlags(params: unknown): WindowFlags {
  const p = (typeof params === 'object' && params !== null ? params : {}) as Record<string, unknown>;
  return { continueExceeding: p.continueExceeding === true, exponentialBackoff: p.exponentialBackoff === true };
}

export class FastifyRedisCounts {
  readonly #config: PeerRedisConfig;
  /** `<nameSpace>`, or for a route with its own config `<nameSpace><METHOD><url>-`, as the plugin's RedisStore names keys. */
  readonly #keyPrefix: string;
  readonly #flags: WindowFlags;

  constructor(config: PeerRedisConfig, keyPrefix: string, flags: WindowFlags) {
    this.#config = config;
    this.#keyPrefix = keyPrefix;
    this.#flags = flags;
  }

  /** A route's own counts, under the name the plugin's RedisStore gives them (its method and url). */
  child(routeOptions: unknown): FastifyRedisCounts {
    const info = (routeOptions as { routeInfo?: { method?: unknown; url?: unknown } } | undefined)?.routeInfo ?? {};
    // As the plugin: a route's store made by createRateLimit() has no method or url (both 'undefined').
    return new FastifyRedisCounts(this.#config, `${this.#keyPrefix}${String(info.method)}${String(info.url)}-`, windowFlags(routeOptions));
  }

  async #call(script: Script, key: string, args: readonly string[]): Promise<FastifyCount> {
    const reply = await this.#config.runner.run(script, key, args);
    if (Number(reply[2]) === 2) {
      throw redisError(
        `Redis key '${key}' holds a value @fastify/rate-limit never writes (another program's); nothing was changed. Delete the key, or give the store another prefix.`,
        'TOLLGATE_REDIS_STATE_MISMATCH',
      );
    }
    return { current: Number(reply[3]), ttl: Number(reply[4]) };
  }

  /** One hit; onError answers a count of 1 ('allow') or `max + 1` ('deny') when Redis fails. */
  async incr(key: unknown, timeWindow: unknown, max: unknown): Promise<FastifyCount> {
    if (typeof timeWindow !== 'number' || !Number.isInteger(timeWindow) || timeWindow < 1) throw invalidArgument('timeWindow', 'a positive integer of ms', timeWindow);
    // The plugin always passes max; without one (an older plugin) only the flags that need it are off.
    const limit = typeof max === 'number' && Number.isFinite(max) ? max : undefined;
    const flags = limit === undefined ? { continueExceeding: false, exponentialBackoff: false } : this.#flags;
    try {
      return await this.#call(INCR, `${this.#keyPrefix}${String(key)}`, [String(timeWindow), String(limit ?? 0), flags.continueExceeding ? '1' : '0', flags.exponentialBackoff ? '1' : '0']);
    } catch (error) {
      if (!isRedisFailure(error)) throw error;
      return verdict(this.#config.onError, error, String(key)) === 'allow' ? { current: 1, ttl: timeWindow } : { current: (limit ?? Number.MAX_SAFE_INTEGER - 1) + 1, ttl: FAIL_CLOSED_RETRY_MS };
    }
  }

  /** The count without a hit ({ current: 0, ttl: 0 } for none); rejects with a Redis failure. */
  read(key: unknown): Promise<FastifyCount> {
    return this.#call(READ, `${this.#keyPrefix}${String(key)}`, []);
  }

  /** Closes the runner this and every route's counts share: calls still out, and later ones, reject with TOLLGATE_CLOSED. */
  close(): void {
    this.#config.runner.close();
  }
}
