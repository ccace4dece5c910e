// rate-limit-redis' format on Redis, written in tollgate's scripts: a client's count is a string
// integer under `<prefix><key>` whose PX expiry ends its window, set when the window starts (the
// first hit, or a hit on a key left without an expiry) and, with resetExpiryOnChange (rate-limit-
// redis before 6), on every hit. express-rate-limit processes running rate-limit-redis and ones
// running ExpressRateLimitStore({ redis }) on one prefix then continue one count.
// Each script starts with the deadline check (DEADLINE_LUA) and replies {1, clock, status, ...}:
// status 1 done, 2 the key holds a value rate-limit-redis never writes (nothing was changed).
import { DEADLINE_LUA, REPLY_ERRORS_LUA } from '../../redis/lua.js';

/** Whether the key holds a count: a string integer (1), nothing (0), or something else (2). */
const COUNT_LUA = `local function count_of(key)
  local v = redis.pcall('GET', key)
  if type(v) == 'table' then
    if is_foreign(v) then return 2, 0 end
    error(v)
  end
  if not v then return 0, 0 end
  local n = tonumber(v)
  if n == nil or n ~= math.floor(n) then return 2, 0 end
  return 1, n
end
`;

/**
 * ARGV: deadline, windowMs, '1' to push the expiry to a whole window on every hit. Replies
 * {1, clock, status, hits, ms left in the window}. As rate-limit-redis 6: a key without an expiry
 * (none, or a count rate-limit-redis' DECR made from nothing) starts a window at 1; else INCR.
 */
export const INCREMENT_LUA = `${DEADLINE_LUA}${REPLY_ERRORS_LUA}${COUNT_LUA}local key, w = KEYS[1], tonumber(ARGV[2])
local ttl = redis.call('PTTL', key)
if ttl <= 0 then
  if ttl == -1 and count_of(key) == 2 then return { 1, clock, 2, 0, 0 } end
  redis.call('SET', key, 1, 'PX', w)
  return { 1, clock, 1, 1, w }
end
local hits = redis.pcall('INCR', key)
if type(hits) == 'table' then
  if is_foreign(hits) then return { 1, clock, 2, 0, 0 } end
  return hits
end
if ARGV[3] == '1' then
  redis.call('PEXPIRE', key, w)
  ttl = w
end
return { 1, clock, 1, hits, ttl }
`;

/** Replies {1, clock, status, hits, ms left}: status 0 when the key holds no count. */
export const GET_LUA = `${DEADLINE_LUA}${REPLY_ERRORS_LUA}${COUNT_LUA}local status, hits = count_of(KEYS[1])
if status ~= 1 then return { 1, clock, status, 0, 0 } end
return { 1, clock, 1, hits, redis.call('PTTL', KEYS[1]) }
`;

/**
 * Takes one hit back from a count above 0 (rate-limit-redis' DECR would also make -1 of a key
 * that expired meanwhile, a count without an expiry; both formats read it alike).
 */
export const DECREMENT_LUA = `${DEADLINE_LUA}${REPLY_ERRORS_LUA}${COUNT_LUA}local status, hits = count_of(KEYS[1])
if status == 1 and hits > 0 then redis.call('DECR', KEYS[1]) end
return { 1, clock, status }
`;

/** Forgets the client: replies {1, clock, 1, whether a key was deleted}. */
export const RESET_LUA = `${DEADLINE_LUA}return { 1, clock, 1, redis.call('DEL', KEYS[1]) }
`;
