// RedisPlaces' options, read once into what the store runs with: every check and default here.
import { checkClock, type ManualClock } from '../common/clock.js';
import { invalidArgument, outOfRange } from '../common/errors.js';
import { checkKnownKeys } from '../common/option-keys.js';
import { checkPlaceTerms } from '../common/place-terms.js';
import type { PlaceTerms } from '../common/places.js';
import { checkInteger, checkObject } from '../common/validate.js';
import type { BreakerOptions } from './breaker.js';
import { parseBreaker } from './breaker-options.js';
import { redisTransport, type RedisClient, type RedisTransport } from './redis-client.js';
import { escapeTagText } from './redis-keys.js';

export interface RedisPlacesOptions {
  /** ioredis 5/6 or iovalkey, node-redis 4+, either's Cluster, or a RedisCommandSender; its lifecycle stays yours. */
  readonly redis: RedisClient;
  /** The upstream account's name: every store of one name, in any process, shares its places. */
  readonly name: string;
  /** Put before every key; default 'tollgate:places:'. No braces: the store sets its own hash tag. */
  readonly prefix?: string;
  /** Whether `redis` is a Redis Cluster client; detected for ioredis, iovalkey and node-redis. */
  readonly cluster?: boolean;
  /** Bound on every Redis call, in ms; default 1000. Redis refuses to act on a call past it. */
  readonly timeoutMs?: number;
  /**
   * As RedisLimiter's: after `afterFailures` failed calls (default 1), calls reject at once with
   * TOLLGATE_REDIS_UNAVAILABLE until a trial call succeeds; false sends every call.
   */
  readonly breaker?: false | Partial<BreakerOptions>;
  /** How often watch() calls its listeners for a client that cannot subscribe, in ms; default 50. */
  readonly pollMs?: number;
}

/** What a RedisPlaces runs with. */
export interface RedisPlacesConfig {
  readonly redis: RedisTransport;
  /** The client itself, for the subscription watch() makes from it. */
  readonly client: unknown;
  /** `<prefix>{<name>}`: the account's key, which every other key of it extends (one hash tag, one slot). */
  readonly base: string;
  readonly terms: PlaceTerms;
  readonly timeoutMs: number;
  readonly breaker: BreakerOptions | undefined;
  readonly pollMs: number;
  readonly clock: ManualClock | undefined;
}

const OPTION_KEYS = ['redis', 'name', 'prefix', 'cluster', 'timeoutMs', 'breaker', 'pollMs'];
const DEFAULT_TIMEOUT_MS = 1000;
const DEFAULT_POLL_MS = 50;

/** `path` names the options where the caller took them from (limitedFetch: 'upstream.store'). */
export function parseRedisPlacesOptions(options: unknown, terms: unknown, clock: unknown, path = 'options'): RedisPlacesConfig {
  const at = (key: string) => (path === 'options' ? key : `${path}.${key}`);
  const o = checkObject(options, path);
  checkKnownKeys(o, OPTION_KEYS, path);
  if (o.cluster !== undefined && typeof o.cluster !== 'boolean') throw invalidArgument(at('cluster'), 'a boolean', o.cluster);
  const redis = redisTransport(o.redis, o.cluster as boolean | undefined, at('redis'));
  if (typeof o.name !== 'string') throw invalidArgument(at('name'), 'a string of 1 to 256 characters', o.name);
  if (o.name.length === 0 || o.name.length > 256) throw outOfRange(at('name'), 'a string of 1 to 256 characters', o.name);
  const prefix = o.prefix === undefined ? 'tollgate:places:' : o.prefix;
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) throw invalidArgument(at('prefix'), 'a string without braces', prefix);
  return {
    redis,
    client: o.redis,
    // The name is escaped: no brace of it can end the tag early and send keys of one account to other slots.
    base: `${prefix}{${escapeTagText(o.name)}}`,
    terms: checkPlaceTerms(terms),
    timeoutMs: o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : checkInteger(o.timeoutMs, at('timeoutMs'), 1, 600_000),
    breaker: parseBreaker(o.breaker),
    pollMs: o.pollMs === undefined ? DEFAULT_POLL_MS : checkInteger(o.pollMs, at('pollMs'), 1, 60_000),
    clock: checkClock(clock),
  };
}
