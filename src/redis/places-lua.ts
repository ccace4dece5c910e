// One upstream account's places on Redis: PlaceBook (src/engine/js/place-book.ts) in Lua, step for
// step, so that every call decides as the book in memory would (test/redis-places.test.ts runs both
// on one random sequence and compares every reply). One script, one declared key: the account's
// base `<prefix>{<name>}`; every other key is the base plus a suffix, so all share its slot.
import { DEADLINE_LUA, NOW_LUA } from './lua.js';

/** The operations, as ARGV[7] names them. */
export const PlaceOp = { Acquire: 'a', Release: 'r', Renew: 'n', Leave: 'l', Counts: 'c' } as const;
export type PlaceOp = (typeof PlaceOp)[keyof typeof PlaceOp];

/** The reply's status (its third field). */
export const PlaceStatus = { Done: 1, Foreign: 2, OtherTerms: 3 } as const;

/** The channel a call that may have let a waiter on publishes to (PlaceBook's version bump). */
export const changedChannel = (base: string): string => `${base}:changed`;

/**
 * KEYS[1]: the base, holding the terms as text ("limit windowMs concurrency leaseMs"). Beside it:
 *   :holders   ZSET holder id -> lease_until (a holder's places lapse at that time unless renewed)
 *   :tickets   ZSET holder id -> waiting_since, for holders with a waiter queued; the ZSET's order
 *              (score, then member bytes) is PlaceBook's (waitingSince, id) order, ids being 16
 *              lower-case hex digits
 *   :cooling   ZSET place id -> the time it frees (a place answered at t cools until t + windowMs)
 *   :places:<holder>  SET of the place ids the holder holds
 *   :inflight  places held, as an integer
 *   :next      the last place id given
 * ARGV: deadline, now ('' = Redis' clock, else a test clock's time), limit, windowMs, concurrency,
 * leaseMs, op (PlaceOp), holder id, then waiting_since (acquire) or the place id (release).
 * Replies {1, clock, status, ...}: status 2 when the base holds what no place store writes (nothing
 * was changed), 3 with the stored limit, windowMs, concurrency, leaseMs when the account was set up
 * with other terms (nothing was changed), else 1 and: acquire 1, place id | 0, wakeAt (-1 for
 * never); release and renew 1 | 0; leave nothing; counts inFlight, cooling, waiting, holders.
 *
 * Every key's TTL is refreshed by each call to 2 * (leaseMs + windowMs), past which every lease
 * has lapsed and every place cooled, so an abandoned account leaves nothing behind. A holder's set
 * lives leaseMs longer, from its last renewal: any call that still finds the holder (before its
 * lapse is swept) then finds its places too.
 */
export const PLACES_LUA = `${DEADLINE_LUA}${NOW_LUA}local base = KEYS[1]
local limit, w, concurrency, lease = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local op, holder = ARGV[7], ARGV[8]
-- Numbers go to Redis as exact decimal text (a ManualClock's time may have 16 digits).
local function num(x) return string.format('%.17g', x) end

-- The account's terms: set by its first call, the same for every later one.
local terms = ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6]
local stored = redis.pcall('GET', base)
if type(stored) == 'table' then
  if string.find(stored.err or '', '^WRONGTYPE') then return { 1, clock, 2 } end
  return stored
end
if stored and stored ~= terms then
  local a, b, c, d = string.match(stored, '^(%d+) (%d+) (%d+) (%d+)$')
  if a == nil then return { 1, clock, 2 } end
  return { 1, clock, 3, tonumber(a), tonumber(b), tonumber(c), tonumber(d) }
end

local holders, tickets, cooling = base .. ':holders', base .. ':tickets', base .. ':cooling'
local inflight, next_place = base .. ':inflight', base .. ':next'
local function places_of(id) return base .. ':places:' .. id end
local ttl = 2 * (lease + w)
local in_flight = tonumber(redis.call('GET', inflight) or '0')
-- PlaceBook's version: whether this call may have let a waiter on (published once, at the end).
local changed = false

-- sweep(): lapsed holders' places are counted as answered at the lapse (cooling until
-- lease_until + windowMs under a window), and places cooled by now free.
local lapsed = redis.call('ZRANGEBYSCORE', holders, '-inf', num(now), 'WITHSCORES')
for i = 1, #lapsed, 2 do
  local id, lease_until = lapsed[i], tonumber(lapsed[i + 1])
  local held = redis.call('SMEMBERS', places_of(id))
  in_flight = in_flight - #held
  if limit > 0 then
    for _, place in ipairs(held) do redis.call('ZADD', cooling, num(lease_until + w), place) end
  end
  redis.call('DEL', places_of(id))
  redis.call('ZREM', tickets, id)
  changed = true
end
if #lapsed > 0 then redis.call('ZREMRANGEBYSCORE', holders, '-inf', num(now)) end
if redis.call('ZREMRANGEBYSCORE', cooling, '-inf', num(now)) > 0 then changed = true end

local function known(id) return redis.call('ZSCORE', holders, id) ~= false end
local function renew_lease(id)
  redis.call('ZADD', holders, num(now + lease), id)
  redis.call('PEXPIRE', places_of(id), ttl + lease)
end
-- forgetIfIdle(): a holder with no place and no waiter goes.
local function forget_if_idle(id)
  if redis.call('EXISTS', places_of(id)) == 0 and redis.call('ZSCORE', tickets, id) == false then redis.call('ZREM', holders, id) end
end

local out
if op == 'a' then
  -- A holder new to the book starts with no place, whatever an expired account left under its id.
  if not known(holder) then redis.call('DEL', places_of(holder)) end
  renew_lease(holder)
  local free = math.huge
  if limit > 0 then free = limit - in_flight - redis.call('ZCARD', cooling) end
  if concurrency > 0 then free = math.min(free, concurrency - in_flight) end
  -- Holders ahead: those waiting with a smaller (waiting_since, id), which is this holder's rank
  -- once its ticket stands at waiting_since.
  redis.call('ZADD', tickets, ARGV[9], holder)
  local ahead = redis.call('ZRANK', tickets, holder)
  if ahead < free then
    redis.call('ZREM', tickets, holder)
    -- Ids of an account that expired and started again begin at Redis' clock in microseconds,
    -- past every id the old one gave (it gave fewer than one a microsecond), so a holder that
    -- slept through the expiry never releases a place it no longer holds.
    if redis.call('EXISTS', next_place) == 0 then
      redis.call('SET', next_place, string.format('%d', tonumber(t[1]) * 1000000 + tonumber(t[2])))
    end
    local place = redis.call('INCR', next_place)
    redis.call('SADD', places_of(holder), string.format('%d', place))
    redis.call('PEXPIRE', places_of(holder), ttl + lease)
    in_flight = in_flight + 1
    out = { 1, clock, 1, 1, place }
  else
    -- Not yet: the book changes by itself when the first cooling place frees or another holder's
    -- lease lapses (the two soonest leases hold the soonest other than this holder's).
    local wake = -1
    local first = redis.call('ZRANGE', cooling, 0, 0, 'WITHSCORES')
    if first[2] then wake = tonumber(first[2]) end
    local soonest = redis.call('ZRANGE', holders, 0, 1, 'WITHSCORES')
    for i = 1, #soonest, 2 do
      if soonest[i] ~= holder then
        local lease_until = tonumber(soonest[i + 1])
        if wake < 0 or lease_until < wake then wake = lease_until end
        break
      end
    end
    out = { 1, clock, 1, 0, wake }
  end
elseif op == 'r' then
  local place = ARGV[9]
  local done = 0
  if known(holder) and redis.call('SREM', places_of(holder), place) == 1 then
    in_flight = in_flight - 1
    renew_lease(holder)
    if limit > 0 then redis.call('ZADD', cooling, num(now + w), place) end
    forget_if_idle(holder)
    changed = true
    done = 1
  end
  out = { 1, clock, 1, done }
elseif op == 'n' then
  local done = 0
  if known(holder) then
    renew_lease(holder)
    done = 1
  end
  out = { 1, clock, 1, done }
elseif op == 'l' then
  if known(holder) and redis.call('ZREM', tickets, holder) == 1 then
    forget_if_idle(holder)
    changed = true
  end
  out = { 1, clock, 1 }
else
  out = { 1, clock, 1, in_flight, redis.call('ZCARD', cooling), redis.call('ZCARD', tickets), redis.call('ZCARD', holders) }
end

redis.call('SET', base, terms, 'PX', ttl)
redis.call('SET', inflight, num(in_flight), 'PX', ttl)
for _, key in ipairs({ holders, tickets, cooling, next_place }) do redis.call('PEXPIRE', key, ttl) end
if changed then redis.call('PUBLISH', base .. ':changed', '1') end
return out
`;
