// The three algorithms that keep a state on Redis (sliding window, token bucket, GCRA), each written
// once here as Lua text that the decide script (DECIDE_LUA, lua.ts) puts in two places: its
// functions for any request (any cost, peek or consume: `general`), and its loops over a batch of
// plain consumes (cost 1, spending: `plain`), one per algorithm from one template (plainLoopLua),
// where the same steps are specialised for a cost of 1 and written out, since in Redis' Lua every
// function call counts. The steps are those of src/engine/js/algorithms.ts; the differential tests
// hold both forms to the TypeScript engine.
//
// Each step works on its state's named locals in place, with `now`, `limit` and the policy's
// numbers (`w`; `t`, `i`) in scope, and sets `allowed, remaining, reset, retry` and `keep` (how
// long a state it spent must be kept); its state is then the state to store.
import { PolicyCode } from '../common/policies.js';
import { Op, Status } from './protocol.js';

/** A request as a step is written for: any cost, spending when `commit` is true (general), or a plain consume. */
export type StepForm = 'general' | 'plain';

/** The algorithms that keep a state (a fixed window is a plain counter). */
export type StateCode = typeof PolicyCode.SlidingWindow | typeof PolicyCode.TokenBucket | typeof PolicyCode.Gcra;

/**
 * A state's three numbers, as stored (see STATE_TAG in lua.ts), named per algorithm:
 * - sliding window: the start of the window counted in, its count, the window before's count;
 * - token bucket: tokens, when they were last refilled, and the credit toward the next token (in
 *   units of 1/rateTokens of a refill interval);
 * - GCRA: the theoretical arrival time (tat: when its backlog drains, in whole ms), the part of a
 *   ms beyond it (in units of 1/rateTokens ms), and a third number always 0.
 */
export const STATE_FIELDS: Readonly<Record<StateCode, readonly [string, string, string]>> = {
  [PolicyCode.SlidingWindow]: ['windowStart', 'count', 'previous'],
  [PolicyCode.TokenBucket]: ['tokens', 'refilledAt', 'credit'],
  [PolicyCode.Gcra]: ['tat', 'tatFraction', 'spare'],
};

/** What a step stores: its state's fields (GCRA's third always 0). */
export const STORED_FIELDS: Readonly<Record<StateCode, readonly [string, string, string]>> = {
  ...STATE_FIELDS,
  [PolicyCode.Gcra]: ['tat', 'tatFraction', '0'],
};

/** A fresh key's state (`limit` the limit it is decided under; `aligned` the current window's start). */
export const FRESH_STATE: Readonly<Record<StateCode, string>> = {
  [PolicyCode.SlidingWindow]: 'aligned, 0, 0',
  [PolicyCode.TokenBucket]: 'limit, now, 0',
  [PolicyCode.Gcra]: 'now, 0, 0',
};

/** The Lua locals a step needs from its policy `p` (a plain loop makes them once per batch). */
export const STEP_LOCALS: Readonly<Record<StateCode, string>> = {
  [PolicyCode.SlidingWindow]: 'local w = p.w\nlocal aligned = now - (now % w)\n',
  [PolicyCode.TokenBucket]: 'local t, i = p.t, p.i\n',
  [PolicyCode.Gcra]: 'local t, i = p.t, p.i\nlocal tol = limit * i\n',
};

/** `text` with every line indented by `spaces`. */
export const indent = (text: string, spaces: number): string =>
  text
    .split('\n')
    .map((line) => (line === '' ? line : ' '.repeat(spaces) + line))
    .join('\n');

/** `cost` times `unit`, as Lua: the unit alone for a cost of 1. */
const times = (cost: string, unit: string) => (cost === '1' ? unit : `${cost} * ${unit}`);

/**
 * Sliding window, the current window's view: windowStart, count and previous become the aligned
 * window's (a state of an older window carries its count as `previous` when it is the window just
 * before), and `elapsed` the time since the window began.
 */
export const SLIDING_VIEW_LUA = `if windowStart < aligned then
  if windowStart == aligned - w then previous = count else previous = 0 end
  windowStart, count = aligned, 0
end
local elapsed = max(0, now - windowStart)
`;

/** Sliding window: until the window ends while a count weighs in it, else 0 (what a caller is told). */
const SLIDING_RESET_LUA = `if count > 0 or (previous > 0 and elapsed < w) then reset = windowStart + w - now end`;

function slidingStep(form: StepForm): string {
  const cost = form === 'plain' ? '1' : 'cost';
  const retry = `local room = limit - count - ${cost}
if room >= 0 then
  retry = w - floor(room * w / previous) - elapsed
else
  retry = w - elapsed + w - floor((limit - ${cost}) * w / count)
end`;
  // Spent: this window's count weighs into the next, so the state lives until the next one ends.
  const spend = `count = count + ${cost}
allowed, remaining, reset, keep = true, limit - used - ${cost}, windowStart + w - now, windowStart + 2 * w - now`;
  return `${SLIDING_VIEW_LUA}local weighted = 0
if previous ~= 0 and elapsed < w then weighted = ceil(previous * (w - elapsed) / w) end
local used = count + weighted
if ${form === 'plain' ? '' : 'cost > limit or '}used + ${cost} > limit then
${indent(form === 'plain' ? retry : `retry = NEVER\nif cost <= limit then\n${indent(retry, 2)}\nend`, 2)}
  ${SLIDING_RESET_LUA}
  remaining = max(0, limit - used)
${form === 'plain' ? `else\n${indent(spend, 2)}\n` : `elseif commit then\n${indent(spend, 2)}\nelse\n  allowed, remaining = true, limit - used\n  ${SLIDING_RESET_LUA}\n`}end
`;
}

/** Token bucket: tokens refilled up to now (the state's time never goes back). */
export const REFILL_LUA = `if tokens >= limit then
  tokens, refilledAt, credit = limit, max(refilledAt, now), 0
elseif now > refilledAt then
  local elapsed = now - refilledAt
  if elapsed >= ceil(((limit - tokens) * i - credit) / t) then
    tokens, refilledAt, credit = limit, now, 0
  else
    local total = credit + elapsed * t
    tokens, refilledAt, credit = tokens + floor(total / i), now, total % i
  end
end
`;

/** Token bucket: until `target` tokens are there, as a Lua expression; `short` when fewer are known to be there. */
export const tokensWait = (target: string, short: boolean): string => `${short ? '' : `tokens >= ${target} and 0 or `}ceil(((${target} - tokens) * i - credit) / t)`;

function tokenBucketStep(form: StepForm): string {
  const plain = form === 'plain';
  const cost = plain ? '1' : 'cost';
  // A denial has fewer tokens than the cost, at most the limit; a spend leaves fewer than the limit.
  return `${REFILL_LUA}if ${plain ? '' : 'cost > limit or '}${cost} > tokens then
  remaining, reset = tokens, ${tokensWait('limit', plain)}
${indent(plain ? `retry = ${tokensWait('1', true)}` : `retry = NEVER\nif cost <= limit then retry = ${tokensWait('cost', true)} end`, 2)}
else
  ${plain ? 'tokens = tokens - 1' : 'if commit then tokens = tokens - cost end'}
  reset = ${tokensWait('limit', plain)}
  allowed, remaining, keep = true, tokens, reset
end
`;
}

/** GCRA: the backlog at `now`, in units of 1/rateTokens ms of intervals. */
export const BACKLOG_LUA = `local backlog = 0
if tat >= now then backlog = (tat - now) * t + tatFraction end
`;

function gcraStep(form: StepForm): string {
  const plain = form === 'plain';
  const cost = plain ? '1' : 'cost';
  const spend = `local after = backlog + ${times(cost, 'i')}
reset = ceil(after / t)
allowed, remaining, keep = true, max(0, floor(max(0, tol - after) / i)), reset
tat, tatFraction = now + floor(after / t), after % t`;
  return `${BACKLOG_LUA}if ${plain ? '' : 'cost > limit or '}backlog > tol - ${times(cost, 'i')} then
  remaining, reset = max(0, floor(max(0, tol - backlog) / i)), ceil(backlog / t)
${indent(plain ? 'retry = ceil((backlog - (tol - i)) / t)' : 'retry = NEVER\nif cost <= limit then retry = ceil((backlog - (tol - cost * i)) / t) end', 2)}
${plain ? `else\n${indent(spend, 2)}\n` : `elseif commit then\n${indent(spend, 2)}\nelse\n  allowed, remaining, reset = true, max(0, floor(max(0, tol - backlog) / i)), ceil(backlog / t)\n`}end
`;
}

/** The step of an algorithm, for `form`. */
export function stepLua(code: StateCode, form: StepForm): string {
  if (code === PolicyCode.SlidingWindow) return slidingStep(form);
  if (code === PolicyCode.TokenBucket) return tokenBucketStep(form);
  return gcraStep(form);
}

/** The Lua name of an algorithm's general function in the decide script. */
export const STEP_FUNCTION: Readonly<Record<StateCode, string>> = {
  [PolicyCode.SlidingWindow]: 'sliding',
  [PolicyCode.TokenBucket]: 'bucket',
  [PolicyCode.Gcra]: 'gcra',
};

/**
 * An algorithm as a function of the decide script, for any request: (p, limit, the state's three
 * fields, cost, commit) -> allowed, remaining, reset, retry, and when it spent, the state to store
 * and how long to keep it.
 */
export function stepFunctionLua(code: StateCode): string {
  const [f1, f2, f3] = STATE_FIELDS[code];
  const [s1, s2, s3] = STORED_FIELDS[code];
  return `local function ${STEP_FUNCTION[code]}(p, limit, ${f1}, ${f2}, ${f3}, cost, commit)
${indent(STEP_LOCALS[code], 2)}  local allowed, remaining, reset, retry, keep = false, 0, 0, 0, 0
${indent(stepLua(code, 'general'), 2)}  if allowed and commit then return true, remaining, reset, 0, ${s1}, ${s2}, ${s3}, keep end
  return allowed, remaining, reset, retry
end
`;
}

/**
 * The loop over a batch of plain consumes under one policy that keeps a state, of kind `code`:
 * load(), the algorithm's step for a cost of 1 (never above the limit), store() and the reply
 * written out, with the state in the algorithm's own names. Made for the decide script's
 * plain_run(), whose names it uses (next_k, last, blocks, blockedFor, general, foreign, failed,
 * parse, STATE_TAG, the SLACK bounds, out, n, pack, unpack), with `p`, `limit` and the step's
 * locals (STEP_LOCALS) in scope.
 */
export function plainLoopLua(code: StateCode): string {
  const [f1, f2, f3] = STATE_FIELDS[code];
  const [s1, s2, s3] = STORED_FIELDS[code];
  return `while next_k <= last do
  local k = next_k
  if blocks and blockedFor(k) > 0 then
    general(nil, k, ${Op.Consume}, 1)
  else
    local key = KEYS[k]
    -- load(): a missing key or one past its time is a fresh key's; the current form unpacked here.
    local v = redis.pcall('GET', key)
    local ${f1}, ${f2}, ${f3}, expires, fresh_at
    if v then
      if #v == 42 then
        local tag
        tag, ${f1}, ${f2}, ${f3}, expires, fresh_at = unpack('<c2ddddd', v)
        if tag ~= STATE_TAG then foreign(p) end
      else
        if type(v) == 'table' then failed(p, v) end
        ${f1}, ${f2}, ${f3}, expires, fresh_at = parse(p, v)
      end
      if fresh_at ~= nil and fresh_at <= now then ${f1}, ${f2}, ${f3} = ${FRESH_STATE[code]} end
    else
      ${f1}, ${f2}, ${f3} = ${FRESH_STATE[code]}
    end
    local allowed, remaining, reset, retry, keep = false, 0, 0, 0, 0
${indent(stepLua(code, 'plain'), 4)}    if allowed then
      -- store()
      if keep <= 0 then
        redis.call('DEL', key)
      elseif expires ~= nil and clock + keep <= expires then
        redis.call('SET', key, pack('<c2ddddd', STATE_TAG, ${s1}, ${s2}, ${s3}, expires, now + keep), 'KEEPTTL')
      else
        local ttl = keep + math.min(max(keep, SLACK_MIN_MS), SLACK_MAX_MS)
        redis.call('SET', key, pack('<c2ddddd', STATE_TAG, ${s1}, ${s2}, ${s3}, clock + ttl, now + keep), 'PXAT', clock + ttl)
      end
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Allowed}, remaining, reset, 0
    else
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = ${Status.Denied}, remaining, reset, retry
    end
    n = n + 4
  end
  next_k = k + 1
end
`;
}
