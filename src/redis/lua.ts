// The Lua that decides on Redis: the same four algorithms as src/engine/js/algorithms.ts (the same
// steps, in Lua's terms; the differential tests hold them to the same decisions), over many
// requests in one call. Numbers are doubles in Redis' Lua; every product stays
// below 2^50 (validated in TypeScript), so floor and ceil of quotients are exact, as in the TS engine.
import { PolicyCode } from '../common/policies.js';
import { BACKLOG_LUA, indent, plainLoopLua, REFILL_LUA, SLIDING_VIEW_LUA, STEP_FUNCTION, STEP_LOCALS, stepFunctionLua, tokensWait } from './algorithms-lua.js';
import { CallHead, END_KNOWN, Form, KNOWN_END, LeaseReply, NEVER, Op, Status } from './protocol.js';

/**
 * Every script starts here: Redis' own clock, and the call's deadline (ARGV[1], in Redis ms; 0 =
 * none). A call that reaches Redis after its deadline, when the client has already answered
 * without it (a timeout, a paused server, a queue replayed after a reconnect), does nothing and
 * replies {CallHead.Late, clock}; otherwise the reply starts {CallHead.Ran, clock, ...} (written
 * {1, clock, ...} below). The clock lets the client keep its estimate of Redis' time, from which it
 * makes the deadlines (see server-clock.ts).
 */
export const DEADLINE_LUA = `local floor = math.floor
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[1])
if deadline > 0 and clock > deadline then return { ${CallHead.Late}, clock } end
`;

/**
 * What a reply error that a pcall caught means: state of another shape under the key (WRONGTYPE,
 * a counter that is not an integer, or one no tollgate limit reaches, at the 64-bit maximum) is
 * the caller's to report; any other (OOM, READONLY, an ACL refusal, ...) is a failure of Redis,
 * raised again with Redis' own words for the client to sort.
 */
export const REPLY_ERRORS_LUA = `local function is_foreign(e)
  local text = e.err or ''
  return string.find(text, '^WRONGTYPE') ~= nil or string.find(text, 'not an integer', 1, true) ~= nil or string.find(text, 'would overflow', 1, true) ~= nil
end
`;

/**
 * A counter just incremented by 'added' to 'count' must end with its window, 'w' ms from its first
 * unit: window_end() gives the ms left and whether this call started the window. A count of
 * 'added' may be a new key: PEXPIRE NX sets its TTL in one call on Redis 7 (before 7, a TTL read
 * first does what NX does, inside the script). Any other reads its TTL, and one found without (an
 * older deployment's, an interrupted call's) is repaired here. When the expiry cannot be set (an
 * ACL without PEXPIRE), the increment is undone before the error goes up, so no failure leaves a
 * counter that never ends.
 */
const WINDOW_END_LUA = `local HAS_NX = (redis.REDIS_VERSION_NUM or 0) >= ${0x07_00_00}
local function start_window(key, w, count, added, nx)
  local set
  if nx then set = redis.pcall('PEXPIRE', key, w, 'NX') else set = redis.pcall('PEXPIRE', key, w) end
  if type(set) == 'table' then
    if count == added then redis.pcall('DEL', key) else redis.pcall('DECRBY', key, added) end
    error(set)
  end
  return set
end
local function window_end(key, w, count, added)
  if count == added and HAS_NX then
    if start_window(key, w, count, added, true) == 1 then return w, true end
    return redis.call('PTTL', key), false
  end
  local reset = redis.call('PTTL', key)
  if reset >= 0 then return reset, false end
  start_window(key, w, count, added, false)
  return w, count == added
end
`;

/** The tag of a packed state, the current form (see STATE_TAG in DECIDE_LUA). */
const STATE_TAG = 'T3';

/** The decision time in ms: ARGV[2] when a test clock gave one, else Redis' own clock. */
export const NOW_LUA = `local now = clock
if ARGV[2] ~= '' then now = tonumber(ARGV[2]) end
`;

/**
 * KEYS: the blocks marker of the batch (see blockMarker in redis-keys.ts: a hash, per blocked key
 * its block's end in Redis ms), then per request one state key per policy (all with one hash tag).
 * ARGV: deadline, now ('' = Redis TIME), policy count P, the length of policy 1's key suffix (a
 * state key without it is the key's base, its field in the marker), five numbers per policy (kind,
 * limit, windowMs, rateTokens, rateIntervalMs), then the batch's form (see Form in protocol.ts):
 * plain when every request is a plain consume (cost 1, the policies' own limits), else detailed and
 * 2 + P per request: op (Op: consume, peek, or refund `cost`), cost, and one limit override per
 * policy (0 = the policy's own). A batch of plain consumes under one fixed window goes to
 * FIXED_WINDOW_LUA instead, and here only what it sends back.
 * Returns {CallHead.Ran, clock} (or {CallHead.Late, clock} when late), then per request a Status
 * (denied, allowed, or foreign: a state key holds something no tollgate policy of this shape
 * wrote, nothing was changed, and the next number is that policy's 1-based index), then with one
 * policy: remaining, resetMs, retryAfterMs (NEVER for never); with several, per policy: allowed,
 * limit, remaining, resetMs, retryAfterMs. A request is all-or-nothing across its policies.
 */
export const DECIDE_LUA = `
${DEADLINE_LUA}local P = tonumber(ARGV[3])
local base = 4 + P * 5

-- The blocks marker (KEYS[1]) exists while a key of this batch's slot group (of the limiter, on a
-- single server) may be blocked: without it, nothing about blocks is read. Its fields are key
-- bases, its values their blocks' ends by Redis' clock; a field read after its end goes.
local marker = KEYS[1]
local blocks = redis.call('EXISTS', marker) == 1

-- After the policies, the batch's form: plain (nothing more is sent per request), or detailed
-- and, per request, op, cost and one limit override per policy. With one policy a request's reply
-- is 4 numbers: status, remaining, resetMs, retryAfterMs (allowed is the status, the limit the
-- caller knows); with several, the status and 5 per policy as described above.
local plain = ARGV[base + 1] == '${Form.Plain}'
local out = { ${CallHead.Ran}, clock }
local n = 2
local last = #KEYS

-- The functions every batch here needs (made by Redis on every call: a script's closures are not
-- kept between calls).
local function machinery()
  local ceil, max = math.ceil, math.max
  local NEVER = ${NEVER}
${REPLY_ERRORS_LUA}${WINDOW_END_LUA}${NOW_LUA}  local cut = tonumber(ARGV[4])
  local policies = {}
  for i = 1, P do
    local o = 4 + (i - 1) * 5
    policies[i] = { n = i, kind = tonumber(ARGV[o + 1]), limit = tonumber(ARGV[o + 2]), w = tonumber(ARGV[o + 3]),
                    t = tonumber(ARGV[o + 4]), i = tonumber(ARGV[o + 5]) }
  end

  -- How long the request whose first state key is KEYS[k] stays blocked (0 when it is not).
  local function blockedFor(k)
    if not blocks then return 0 end
    local key = KEYS[k]
    local field = string.sub(key, 1, #key - cut)
    local ends = tonumber(redis.pcall('HGET', marker, field))
    if ends == nil then return 0 end
    if ends <= clock then
      redis.call('HDEL', marker, field)
      return 0
    end
    return ends - clock
  end

  -- State of another shape (another program's value, a hash, a list): the request stops before
  -- it writes anything and reports which policy's key it was.
  local MISMATCH = {}
  local mismatched = 0
  local function foreign(p)
    mismatched = p.n
    error(MISMATCH)
  end

  -- A reply error a pcall caught: foreign state (see is_foreign), else Redis' failure raised again.
  local function failed(p, e)
    if is_foreign(e) then foreign(p) end
    error(e)
  end

  -- A key's value, or false when it does not exist; a key of another type is foreign.
  local function get(p, key)
    local v = redis.pcall('GET', key)
    if type(v) == 'table' then failed(p, v) end
    return v
  end

  -- A fixed window's count; anything but an integer is foreign.
  -- (2^53 and above: no tollgate limit reaches it, and a double no longer counts it exactly.)
  local function count_of(p, key)
    local count = tonumber(get(p, key) or '0')
    if count == nil or count ~= floor(count) or count < 0 or count >= 9007199254740992 then foreign(p) end
    return count
  end

  -- A state is three numbers, passed and returned as values rather than in a table: no allocation
  -- per request. Here, where any algorithm's passes, they are s1, s2, s3; each algorithm names its
  -- own (STATE_FIELDS in algorithms-lua.ts): a sliding window's windowStart, count, previous; a
  -- token bucket's tokens, refilledAt, credit; GCRA's tat, tatFraction and a 0.
  local function fresh(p, limit)
    if p.kind == ${PolicyCode.SlidingWindow} then return now - (now % p.w), 0, 0 end
    if p.kind == ${PolicyCode.TokenBucket} then return limit, now, 0 end
    return now, 0, 0
  end

  -- The state of a sliding window, token bucket or GCRA: 'T3', its three numbers, when the key
  -- expires by Redis' clock, and when (by the decisions' clock) the state becomes a fresh key's
  -- under the limit it was decided with, as little-endian doubles (every one an integer below 2^53,
  -- so exact), unpacked by struct in C rather than parsed from text. A state read at or after that
  -- time is a fresh key's, as a local table's entry is once expired: for a token bucket the two
  -- differ under another limit (a tier change), so the TTL's slack must not keep it. 'T2' (the same
  -- without that time) and 'T1' (without the expiry either, from tollgate 0.1) still read. Any
  -- other value under the key is foreign.
  local STATE_TAG = '${STATE_TAG}'

  -- Writes a state that must live 'reset' ms more. A SET that keeps the key's TTL costs Redis far
  -- less than one that sets it (a relative expiry is rewritten for replication), so a TTL is set
  -- with slack, up to a minute, and kept by every write that it still covers; the slack only keeps
  -- a state that load() reads as a fresh key's. The TTL is set as PXAT, the same instant as the
  -- state's own expiry field (Redis rewrites a relative PX into PXAT for replication: a PXAT costs
  -- it less).
  local SLACK_MIN_MS, SLACK_MAX_MS = 1000, 60000

  local function store(key, s1, s2, s3, reset, expires)
    if reset <= 0 then
      redis.call('DEL', key)
      return
    end
    if expires ~= nil and clock + reset <= expires then
      redis.call('SET', key, struct.pack('<c2ddddd', STATE_TAG, s1, s2, s3, expires, now + reset), 'KEEPTTL')
    else
      local ttl = reset + math.min(max(reset, SLACK_MIN_MS), SLACK_MAX_MS)
      redis.call('SET', key, struct.pack('<c2ddddd', STATE_TAG, s1, s2, s3, clock + ttl, now + reset), 'PXAT', clock + ttl)
    end
  end

  -- A state's three numbers, its key's expiry by Redis' clock and when it is a fresh key's by the
  -- decisions' (each nil when the form does not say).
  local function parse(p, v)
    local size = #v
    if size == 42 then
      local tag, s1, s2, s3, expires, fresh_at = struct.unpack('<c2ddddd', v)
      if tag == STATE_TAG then return s1, s2, s3, expires, fresh_at end
    elseif size == 34 then
      local tag, s1, s2, s3, expires = struct.unpack('<c2dddd', v)
      if tag == 'T2' then return s1, s2, s3, expires, nil end
    elseif size == 26 then
      local tag, s1, s2, s3 = struct.unpack('<c2ddd', v)
      if tag == 'T1' then return s1, s2, s3, nil, nil end
    end
    foreign(p)
  end

  -- The state under a key (fresh when missing or past its time), its expiry (nil when unknown);
  -- foreign raises. Every path that decides reads state through here but the plain loops, which
  -- write it out.
  local function load(p, limit, key)
    local v = redis.pcall('GET', key)
    if not v then return fresh(p, limit) end
    if type(v) == 'table' then failed(p, v) end
    local s1, s2, s3, expires, fresh_at = parse(p, v)
    if fresh_at ~= nil and fresh_at <= now then
      s1, s2, s3 = fresh(p, limit)
    end
    return s1, s2, s3, expires
  end

  -- The algorithms for any request (see algorithms-lua.ts): allowed, remaining, resetMs,
  -- retryAfterMs, and when they spent (commit and allowed) the new state and how long to keep it.
${indent(stepFunctionLua(PolicyCode.SlidingWindow), 2)}
${indent(stepFunctionLua(PolicyCode.TokenBucket), 2)}
${indent(stepFunctionLua(PolicyCode.Gcra), 2)}
  -- One policy on one key. Fixed windows are a plain counter: INCRBY, with PEXPIRE NX so a window
  -- is never extended; the others keep their packed state (see store) with a PX expiry.
  local function decide(p, limit, key, cost, commit)
    local kind = p.kind
    if kind == ${PolicyCode.FixedWindow} and commit then
      -- Spend first (one call on the common path), and take it back on a denial.
      local count = redis.pcall('INCRBY', key, cost)
      if type(count) == 'table' then failed(p, count) end
      local reset, started = window_end(key, p.w, count, cost)
      if count > limit then
        if started then redis.call('DEL', key) else redis.call('DECRBY', key, cost) end
        local retry = NEVER
        if cost <= limit then retry = reset end
        return false, max(0, limit - (count - cost)), reset, retry
      end
      return true, limit - count, reset, 0
    end
    if kind == ${PolicyCode.FixedWindow} then
      local count = count_of(p, key)
      local reset = p.w
      if count > 0 then
        reset = redis.call('PTTL', key)
        if reset < 0 then reset = p.w end
      end
      if cost > limit or count + cost > limit then
        local retry = NEVER
        if cost <= limit then retry = reset end
        return false, max(0, limit - count), reset, retry
      end
      return true, limit - count, reset, 0
    end
    local s1, s2, s3, expires = load(p, limit, key)
    local allowed, remaining, reset, retry, n1, n2, n3, keep
    if kind == ${PolicyCode.SlidingWindow} then
      allowed, remaining, reset, retry, n1, n2, n3, keep = ${STEP_FUNCTION[PolicyCode.SlidingWindow]}(p, limit, s1, s2, s3, cost, commit)
    elseif kind == ${PolicyCode.TokenBucket} then
      allowed, remaining, reset, retry, n1, n2, n3, keep = ${STEP_FUNCTION[PolicyCode.TokenBucket]}(p, limit, s1, s2, s3, cost, commit)
    else
      allowed, remaining, reset, retry, n1, n2, n3, keep = ${STEP_FUNCTION[PolicyCode.Gcra]}(p, limit, s1, s2, s3, cost, commit)
    end
    -- A sliding window's state lives longer than the reset it shows (until its count stops weighing).
    if n1 ~= nil then store(key, n1, n2, n3, keep, expires) end
    return allowed, remaining, reset, retry
  end

  -- Gives back up to 'amount', as refund() in src/engine/js/algorithms.ts; a missing key stays missing.
  local function refund(p, limit, key, amount)
    local back = math.min(amount, limit)
    if p.kind == ${PolicyCode.FixedWindow} then
      local count = count_of(p, key)
      if count > 0 then
        if back >= count then redis.call('SET', key, 0, 'KEEPTTL') else redis.call('DECRBY', key, back) end
      end
      return
    end
    local v = get(p, key)
    if not v then return end
    local s1, s2, s3, expires, fresh_at = parse(p, v)
    -- A state past its time is a fresh key's, which a refund leaves as it is (as a missing key).
    if fresh_at ~= nil and fresh_at <= now then return end
    if p.kind == ${PolicyCode.SlidingWindow} then
${indent(STEP_LOCALS[PolicyCode.SlidingWindow], 6)}      local windowStart, count, previous = s1, s2, s3
${indent(SLIDING_VIEW_LUA, 6)}      count = max(0, count - back)
      -- Until the state is that of a fresh key: this window's count weighs into the next.
      local keep = 0
      if count > 0 then
        keep = windowStart + 2 * w - now
      elseif previous > 0 and elapsed < w then
        keep = windowStart + w - now
      end
      store(key, windowStart, count, previous, keep, expires)
    elseif p.kind == ${PolicyCode.TokenBucket} then
${indent(STEP_LOCALS[PolicyCode.TokenBucket], 6)}      local tokens, refilledAt, credit = s1, s2, s3
${indent(REFILL_LUA, 6)}      if back >= limit - tokens then tokens, credit = limit, 0 else tokens = tokens + back end
      store(key, tokens, refilledAt, credit, ${tokensWait('limit', false)}, expires)
    else
      local t, i = p.t, p.i
      local tat, tatFraction = s1, s2
${indent(BACKLOG_LUA, 6)}      local after = 0
      if back * i < backlog then after = backlog - back * i end
      store(key, now + floor(after / t), after % t, 0, ceil(after / t), expires)
    end
  end

  -- Reads a key as its policy stores it, only to find foreign state before anything is written.
  local function count_or_parse(p, key)
    if p.kind == ${PolicyCode.FixedWindow} then return count_of(p, key) end
    local v = get(p, key)
    if v then parse(p, v) end
  end

  -- The limit of policy i for the request whose arguments start at r: the policy's own, or the
  -- request's override for it (0 = none). r is nil in a batch of plain consumes (no arguments).
  local function limitOf(r, i)
    if r == nil then return policies[i].limit end
    local override = tonumber(ARGV[r + 1 + i])
    if override > 0 then return override end
    return policies[i].limit
  end

  -- One request, its state keys from KEYS[k]: its per-policy results and whether it passed. Every
  -- read that can find foreign state comes before the first write.
  local function run(r, k, op, cost)
    local blocked = blockedFor(k)
    local results = {}
    local all = blocked <= 0
    if op == ${Op.Refund} then
      -- Refund 'cost' on every policy (all read first); the reply's fields are unused.
      for i = 1, P do count_or_parse(policies[i], KEYS[k + i - 1]) end
      for i = 1, P do
        local limit = limitOf(r, i)
        refund(policies[i], limit, KEYS[k + i - 1], cost)
        results[i] = { true, limit, 0, 0, 0 }
      end
    else
      -- First decide every policy without writing: a request denied by one spends nothing anywhere.
      for i = 1, P do
        local p = policies[i]
        local limit = limitOf(r, i)
        local allowed, remaining, reset, retry = decide(p, limit, KEYS[k + i - 1], cost, false)
        if blocked > 0 then
          allowed, remaining, reset = false, 0, max(reset, blocked)
          if retry ~= NEVER then retry = max(retry, blocked) end
        end
        results[i] = { allowed, limit, remaining, reset, retry }
        if not allowed then all = false end
      end
      if all and op == ${Op.Consume} then
        for i = 1, P do
          local p = policies[i]
          local limit = results[i][2]
          local allowed, remaining, reset, retry = decide(p, limit, KEYS[k + i - 1], cost, true)
          results[i] = { allowed, limit, remaining, reset, retry }
        end
      end
    end
    return results, all
  end

  -- Any request through run(): a block, several policies, peek, refund, per-call limits.
  local function general(at, k, op, cost)
    local ok, results, all = pcall(run, at, k, op, cost)
    if ok then
      if P == 1 then
        local x = results[1]
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = all and ${Status.Allowed} or ${Status.Denied}, x[3], x[4], x[5]
        n = n + 4
      else
        out[n + 1] = all and ${Status.Allowed} or ${Status.Denied}
        n = n + 1
        for i = 1, P do
          local x = results[i]
          out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = x[1] and ${Status.Allowed} or ${Status.Denied}, x[2], x[3], x[4], x[5]
          n = n + 5
        end
      end
    elseif results == MISMATCH then
      if P == 1 then
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Foreign}, 1, 0, 0
        n = n + 4
      else
        out[n + 1], out[n + 2] = ${Status.Foreign}, mismatched
        n = n + 2
        for i = 2, 5 * P do
          n = n + 1
          out[n] = 0
        end
      end
    else
      error(results, 0)
    end
  end

  -- Plain consumes under one policy of the other kinds: one pcall for the run of requests rather
  -- than one each: a request whose state is foreign stops the run before it writes anything, is
  -- answered, and the run goes on after it (see plain_single).
  local next_k = 2

  -- Plain consumes under one token bucket, GCRA or sliding window: a loop per algorithm, each made
  -- from one template (plainLoopLua) with the algorithm's step for a cost of 1 written out, since
  -- in Redis' Lua every function call counts (bench/FINDINGS.md, "Redis at the server's speed").
  -- The kind is tested once per run, not once per request.
  local function plain_run()
    local p = policies[1]
    local kind, limit = p.kind, p.limit
    local unpack, pack = struct.unpack, struct.pack
    if kind == ${PolicyCode.TokenBucket} then
${indent(STEP_LOCALS[PolicyCode.TokenBucket] + plainLoopLua(PolicyCode.TokenBucket), 6)}    elseif kind == ${PolicyCode.Gcra} then
${indent(STEP_LOCALS[PolicyCode.Gcra] + plainLoopLua(PolicyCode.Gcra), 6)}    else
${indent(STEP_LOCALS[PolicyCode.SlidingWindow] + plainLoopLua(PolicyCode.SlidingWindow), 6)}    end
  end

  local function plain_single()
    while next_k <= last do
      local ok, err = pcall(plain_run)
      if not ok then
        if err ~= MISMATCH then error(err, 0) end
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Foreign}, 1, 0, 0
        n = n + 4
        next_k = next_k + 1
      end
    end
  end

  return general, plain_single
end

-- Plain consumes under one fixed window come here only when FIXED_WINDOW_LUA sent some back (a
-- blocked key): they go through general(), as every request of another batch.
local general, plain_single = machinery()
if plain and P == 1 and tonumber(ARGV[5]) ~= ${PolicyCode.FixedWindow} then
  plain_single()
else
  local r = base + 2
  for at = 2, last, P do
    local op, cost, args = ${Op.Consume}, 1, nil
    if not plain then op, cost, args = tonumber(ARGV[r]), tonumber(ARGV[r + 1]), r end
    general(args, at, op, cost)
    if not plain then r = r + 2 + P end
  end
end
return out
`;

/**
 * The common batch, plain consumes under one fixed window, in a script small enough that keeping it
 * loaded costs Redis' Lua GC little (its marking walks every loaded script: DECIDE_LUA, far larger,
 * slowed every script's p99: bench/FINDINGS.md, "A small script for the common batch"). KEYS and
 * ARGV as DECIDE_LUA's for a plain batch, then ARGV[11]: END_KNOWN for each request whose window
 * end the caller knows (it ends after this call's deadline), whose reset is then answered as
 * KNOWN_END, "the end you know". Per request:
 * INCR, and PTTL (with PEXPIRE for a new window) unless the end is known; DECR when over the limit.
 * The reply is DECIDE_LUA's for one policy, with one more status: Status.Blocked, a blocked key,
 * which this script neither counts nor answers: the caller sends that request through DECIDE_LUA,
 * which decides it as every request of a batch it gets (a block is rare: DECIDE_LUA need not be
 * loaded otherwise). State of another shape (the INCR fails and writes nothing) is Status.Foreign
 * here, as in DECIDE_LUA; any other failure of Redis is raised with its words.
 */
export const FIXED_WINDOW_LUA = `
${DEADLINE_LUA}${REPLY_ERRORS_LUA}local limit, w, cut = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[4])
local known = ARGV[11] or ''
local marker = KEYS[1]
-- The blocks marker: see DECIDE_LUA. Without it, nothing about blocks is read.
local blocks = redis.call('EXISTS', marker) == 1
local nx = (redis.REDIS_VERSION_NUM or 0) >= ${0x07_00_00}
local out = { ${CallHead.Ran}, clock }
local n = 2
for k = 2, #KEYS do
  local key = KEYS[k]
  local held = false
  if blocks then
    -- DECIDE_LUA's blockedFor(): a block read after its end goes.
    local field = string.sub(key, 1, #key - cut)
    local ends = tonumber(redis.pcall('HGET', marker, field))
    if ends ~= nil then
      if ends <= clock then redis.call('HDEL', marker, field) else held = true end
    end
  end
  if held then
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Blocked}, 0, 0, 0
  else
    local count = redis.pcall('INCR', key)
    if type(count) == 'table' then
      if not is_foreign(count) then error(count) end
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Foreign}, 1, 0, 0
    elseif count < 1 then
      -- The key held a negative number, which no tollgate counter is: undone, and reported.
      redis.call('DECR', key)
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Foreign}, 1, 0, 0
    else
      local reset
      -- A count of 1 is a window this call may have started, whatever the caller knew.
      if count ~= 1 and string.byte(known, k - 1) == ${END_KNOWN.charCodeAt(0)} then
        reset = ${KNOWN_END}
      else
        -- DECIDE_LUA's window_end(): a new window (the common case at many keys) is one PEXPIRE
        -- NX (Redis 7+), else its TTL is read first; a TTL missing (an interrupted call's) is set;
        -- an expiry that cannot be set undoes the INCR before the error goes up.
        local set = 0
        if count == 1 and nx then set = redis.pcall('PEXPIRE', key, w, 'NX') end
        if set == 1 then
          reset = w
        else
          if type(set) ~= 'table' then
            reset = redis.call('PTTL', key)
            if reset < 0 then
              set = redis.pcall('PEXPIRE', key, w)
              reset = w
            end
          end
          if type(set) == 'table' then
            if count == 1 then redis.pcall('DEL', key) else redis.pcall('DECRBY', key, 1) end
            error(set)
          end
        end
      end
      if count > limit then
        redis.call('DECR', key)
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Denied}, math.max(0, limit - count + 1), reset, reset
      else
        out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Allowed}, limit - count, reset, 0
      end
    end
  end
  n = n + 4
end
return out
`;

/**
 * How long the key whose marker field is ARGV[i] stays blocked (0 when it is not), as blockedFor in
 * DECIDE_LUA; KEYS[1] is the blocks marker.
 */
const BLOCKED_LUA = (field: string) => `local function blocked()
  if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
  local ends = tonumber(redis.pcall('HGET', KEYS[1], ${field}))
  if ends == nil or ends <= clock then return 0 end
  return ends - clock
end
`;

/**
 * Lease, for a fixed window: KEYS = blocks marker, window key; ARGV = deadline, want, limit,
 * windowMs, share, cost, the key's base (its field in the marker). Takes up to `want` of the
 * window's remaining quota, at most `share` of it (at least `cost` when that much is left), as one
 * INCRBY, so every lease and every other decision together stay within the limit. Returns {1,
 * clock, granted, count after, reset ms, the window's expiry (PEXPIRETIME)}; granted 0 when blocked
 * (count LeaseReply.Blocked, the reset is then the block's) or when not even `cost` is left; {1,
 * clock, LeaseReply.Foreign} when the window key holds something else.
 */
export const LEASE_LUA = `
${DEADLINE_LUA}${REPLY_ERRORS_LUA}${WINDOW_END_LUA}${BLOCKED_LUA('ARGV[7]')}local want, limit, w, share, cost = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local held = blocked()
if held > 0 then return { ${CallHead.Ran}, clock, 0, ${LeaseReply.Blocked}, held } end
-- Read before anything is written: a server without PEXPIRETIME fails here, with nothing counted.
redis.call('PEXPIRETIME', KEYS[2])
local v = redis.pcall('GET', KEYS[2])
if type(v) == 'table' then
  if not is_foreign(v) then error(v) end
  return { ${CallHead.Ran}, clock, ${LeaseReply.Foreign} }
end
local count = tonumber(v or '0')
if count == nil or count ~= floor(count) or count < 0 or count >= 9007199254740992 then return { ${CallHead.Ran}, clock, ${LeaseReply.Foreign} } end
local left = limit - count
local grant = math.min(want, left, math.max(cost, floor(left * share)))
if grant < cost then
  local reset = w
  if count > 0 then reset = window_end(KEYS[2], w, count, 0) end
  return { ${CallHead.Ran}, clock, 0, count, reset }
end
count = redis.call('INCRBY', KEYS[2], grant)
local reset = window_end(KEYS[2], w, count, grant)
return { ${CallHead.Ran}, clock, grant, count, reset, redis.call('PEXPIRETIME', KEYS[2]) }
`;

/**
 * Gives back lease units a process let go unspent: KEYS = the window key; ARGV = deadline, units,
 * the window's expiry (PEXPIRETIME, Unix ms) and its count just after the lease was taken. Only to
 * that same window: a key reset and counting again since expires at another millisecond, or, when
 * it started again in the same one, has not reached that count; it is left alone (see LeaseWindow
 * in leases.ts). Returns {1, clock, units given back}.
 */
export const GIVE_BACK_LUA = `
${DEADLINE_LUA}if redis.call('PEXPIRETIME', KEYS[1]) ~= tonumber(ARGV[3]) then return { ${CallHead.Ran}, clock, 0 } end
local count = tonumber(redis.call('GET', KEYS[1]))
if count == nil or count ~= floor(count) or count <= 0 or count < tonumber(ARGV[4]) then return { ${CallHead.Ran}, clock, 0 } end
local back = math.min(tonumber(ARGV[2]), count)
redis.call('DECRBY', KEYS[1], back)
return { ${CallHead.Ran}, clock, back }
`;

/**
 * Block: KEYS = blocks marker; ARGV = deadline, duration ms, the key's base (its field). Only ever
 * lengthens a block, and keeps the marker at least as long, so decisions know to look. Each call
 * also drops a few ended blocks at random, so a marker that new blocks keep alive does not keep
 * every old one. Returns {1, clock}.
 */
export const BLOCK_LUA = `
${DEADLINE_LUA}local ms, field = tonumber(ARGV[2]), ARGV[3]
local marker = KEYS[1]
if redis.call('TYPE', marker).ok ~= 'hash' then redis.call('DEL', marker) end
local ends = clock + ms
local before = tonumber(redis.call('HGET', marker, field))
if before == nil or before < ends then redis.call('HSET', marker, field, ends) end
-- A marker without a TTL (PTTL -1: an interrupted call) gets one here too. When none can be set,
-- the field is put back as it was before the error goes up: a block never outlives its end.
if redis.call('PTTL', marker) < ms then
  local set = redis.pcall('PEXPIRE', marker, ms)
  if type(set) == 'table' then
    if before == nil then redis.pcall('HDEL', marker, field) else redis.pcall('HSET', marker, field, before) end
    error(set)
  end
end
local sample = redis.call('HRANDFIELD', marker, 8, 'WITHVALUES')
for i = 1, #sample, 2 do
  if tonumber(sample[i + 1]) <= clock then redis.call('HDEL', marker, sample[i]) end
end
return { ${CallHead.Ran}, clock }
`;

/**
 * Reset: KEYS = blocks marker, then every state key of one limiter key; ARGV = deadline, the key's
 * base (its field), the decisions' time ('' or absent: Redis' clock). Deletes them and the block.
 * Returns {1, clock, how many of its state keys and its block were live}: as a local table's entry,
 * a packed state until it is a fresh key's (its key lives on a while: see store() in DECIDE_LUA),
 * a counter (or anything else) while it exists, a block until its end.
 */
export const RESET_LUA = `
${DEADLINE_LUA}${BLOCKED_LUA('ARGV[2]')}local now = clock
if ARGV[3] ~= nil and ARGV[3] ~= '' then now = tonumber(ARGV[3]) end
local held = 0
for k = 2, #KEYS do
  local v = redis.pcall('GET', KEYS[k])
  if type(v) == 'string' and #v == 42 then
    local tag, _, _, _, _, fresh_at = struct.unpack('<c2ddddd', v)
    if tag ~= '${STATE_TAG}' or fresh_at > now then held = held + 1 end
  elseif v then
    held = held + 1
  end
end
redis.call('DEL', unpack(KEYS, 2))
if blocked() > 0 then held = held + 1 end
redis.pcall('HDEL', KEYS[1], ARGV[2])
return { ${CallHead.Ran}, clock, held }
`;

/**
 * What a node is, read on first contact (with its clock, on the node that holds KEYS[1]; no key is
 * touched): ARGV = deadline, then the commands tollgate may run. Returns {1, clock, the version as
 * a number (0 before Redis 7, which has no redis.REDIS_VERSION_NUM), maxmemory-policy ('' when
 * INFO is refused), maxmemory, the server's run_id (''), then each of the commands that the script's user may not run on
 * KEYS[1] or that the server does not know (Redis 7+; nothing is listed before)}.
 */
export const PROBE_LUA = `
${DEADLINE_LUA}local out = { ${CallHead.Ran}, clock, redis.REDIS_VERSION_NUM or 0, '', 0, '' }
local read, info = pcall(redis.call, 'INFO', 'memory')
if read and type(info) == 'string' then
  out[4] = string.match(info, 'maxmemory_policy:(%S+)') or ''
  out[5] = tonumber(string.match(info, 'maxmemory:(%d+)')) or 0
end
read, info = pcall(redis.call, 'INFO', 'server')
if read and type(info) == 'string' then out[6] = string.match(info, 'run_id:(%x+)') or '' end
if redis.acl_check_cmd then
  for i = 2, #ARGV do
    local ok, allowed
    -- The probe itself runs as EVAL: EVALSHA is asked about in its own shape (sha, numkeys, key).
    if ARGV[i] == 'EVALSHA' then
      ok, allowed = pcall(redis.acl_check_cmd, 'EVALSHA', string.rep('0', 40), '1', KEYS[1])
    else
      ok, allowed = pcall(redis.acl_check_cmd, ARGV[i], KEYS[1])
    end
    if not ok or not allowed then out[#out + 1] = ARGV[i] end
  end
end
return out
`;
