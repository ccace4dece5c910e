// rate-limiter-flexible's Redis storage, written by tollgate's scripts: one string key per
// limiter key (`keyPrefix:key`, or the bare key under keyPrefix ''), holding the points consumed
// as an integer, with the duration as the key's TTL (none for duration 0). RateLimiterRedis reads
// and writes the same keys, so both count together. A block is that counter set above `points`
// for the block's duration; nothing else is stored.
//
// Each script starts with DEADLINE_LUA (the call's deadline is ARGV[1]; the reply starts
// {1, clock}) and replies with integers only. A key holding something no counter is (a hash, a
// non-integer text) is reported as status 2, with nothing written.
import { DEADLINE_LUA } from '../../redis/lua.js';

/** Whether a pcall's error says the key holds another type or a value no counter holds. */
const FOREIGN_LUA = `local function is_foreign(e)
  local text = e.err or ''
  return string.find(text, '^WRONGTYPE') ~= nil or string.find(text, 'not an integer', 1, true) ~= nil or string.find(text, 'would overflow', 1, true) ~= nil
end
`;

/**
 * consume, penalty and reward (a negative ARGV[2]). KEYS[1]: the key. ARGV: deadline, points to
 * add, seconds of a new record (0: it never expires). As RateLimiterRedis: a missing key starts at
 * 0 with the duration as its TTL (SET NX EX), the points are added, and a key found without TTL
 * gets the duration then; with 0 seconds the key keeps whatever TTL it has. Replies
 * {1, clock, 1, consumed, pttl} (pttl -1: never expires), or {1, clock, 2} for a foreign value.
 */
export const RLF_UPSERT_LUA = `
${DEADLINE_LUA}${FOREIGN_LUA}local key, points, seconds = KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if seconds > 0 then redis.call('SET', key, 0, 'EX', seconds, 'NX') end
local consumed = redis.pcall('INCRBY', key, points)
if type(consumed) == 'table' then
  if is_foreign(consumed) then return { 1, clock, 2 } end
  return consumed
end
local ttl = redis.call('PTTL', key)
if ttl == -1 and seconds > 0 then
  redis.call('PEXPIRE', key, seconds * 1000)
  ttl = seconds * 1000
end
return { 1, clock, 1, consumed, ttl }
`;

/**
 * set and block: the key's points replaced, and its TTL with them. KEYS[1]: the key. ARGV:
 * deadline, points, seconds (0: no expiry). As RateLimiterRedis' SET key points [EX seconds],
 * whatever the key held. Replies {1, clock, 1, points, pttl}.
 */
export const RLF_SET_LUA = `
${DEADLINE_LUA}local key, points, seconds = KEYS[1], ARGV[2], tonumber(ARGV[3])
if seconds > 0 then redis.call('SET', key, points, 'EX', seconds) else redis.call('SET', key, points) end
return { 1, clock, 1, tonumber(points), redis.call('PTTL', key) }
`;

/**
 * get: KEYS[1]: the key. Replies {1, clock, 1, consumed, pttl}, {1, clock, 0} when the key does
 * not exist, or {1, clock, 2} when it holds something no counter is.
 */
export const RLF_GET_LUA = `
${DEADLINE_LUA}local value = redis.pcall('GET', KEYS[1])
if type(value) == 'table' then
  if string.find(value.err or '', '^WRONGTYPE') ~= nil then return { 1, clock, 2 } end
  return value
end
if not value then return { 1, clock, 0 } end
local consumed = tonumber(value)
if consumed == nil or consumed ~= math.floor(consumed) then return { 1, clock, 2 } end
return { 1, clock, 1, consumed, redis.call('PTTL', KEYS[1]) }
`;

/** delete: KEYS[1]: the key. Replies {1, clock, removed} (1 when it existed, else 0). */
export const RLF_DELETE_LUA = `
${DEADLINE_LUA}return { 1, clock, redis.call('DEL', KEYS[1]) }
`;
