// @fastify/rate-limit's RedisStore format on Redis, written in tollgate's scripts: a client's count
// is a string integer under `<nameSpace><key>` (a route with its own config:
// `<nameSpace><METHOD><url>-<key>`), INCR per hit, its window the key's PX expiry, set on the first
// hit; with continueExceeding set again on every hit over `max`, with exponentialBackoff made
// timeWindow * 2^(hits - max - 1) on each. Processes running the plugin's RedisStore and ones
// running FastifyRateLimitStore.with({ redis }) on one nameSpace then continue one count.
// Each script starts with the deadline check (DEADLINE_LUA) and replies {1, clock, status, ...}:
// status 1 done, 2 the key holds a value the plugin never writes (nothing was changed).
import { DEADLINE_LUA, REPLY_ERRORS_LUA } from '../../redis/lua.js';

/**
 * ARGV: deadline, timeWindow, max, continueExceeding ('1'/'0'), exponentialBackoff ('1'/'0').
 * Replies {1, clock, status, current, ttl}. A count found without an expiry (which the plugin's
 * own script would keep for ever) gets a window from now.
 */
export const INCR_LUA = `${DEADLINE_LUA}${REPLY_ERRORS_LUA}local key, w, max = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local current = redis.pcall('INCR', key)
if type(current) == 'table' then
  if is_foreign(current) then return { 1, clock, 2, 0, 0 } end
  return current
end
if current == 1 or (ARGV[4] == '1' and current > max) then
  redis.call('PEXPIRE', key, w)
elseif ARGV[5] == '1' and current > max then
  w = math.min(w * (2 ^ (current - max - 1)), 2 ^ 53 - 1)
  redis.call('PEXPIRE', key, w)
else
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then redis.call('PEXPIRE', key, w) else w = ttl end
end
return { 1, clock, 1, current, w }
`;

/** The count without a hit, as the plugin's read: {1, clock, status, current, ttl}, {.., 0, 0} for none. */
export const READ_LUA = `${DEADLINE_LUA}${REPLY_ERRORS_LUA}local v = redis.pcall('GET', KEYS[1])
if type(v) == 'table' then
  if is_foreign(v) then return { 1, clock, 2, 0, 0 } end
  return v
end
if not v then return { 1, clock, 1, 0, 0 } end
local n = tonumber(v)
if n == nil then return { 1, clock, 2, 0, 0 } end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return { 1, clock, 1, n, ttl }
`;
