// The four algorithms in TypeScript, mirroring native/core/algorithms.cc line for line. Every
// product stays below 2^50 (validated), so doubles compute them, and floor/ceil of their
// quotients, exactly.

/** Per-key state; field meanings as in native/core/counter_state.h. */
export interface CounterState {
  a: number;
  b: number;
  c: number;
}

export interface PolicyView {
  readonly code: number;
  readonly windowMs: number;
  readonly rateTokens: number;
  readonly rateIntervalMs: number;
}

/** Reused output of decide(); retryMs is Infinity where the native side says kNever. */
export interface Verdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** What the caller is told: until the key is fresh, or for a sliding window until its current window ends. */
  resetMs: number;
  retryMs: number;
  /** Until the state is that of a fresh key (the slot's expiry): resetMs, except for a sliding window. */
  expiresMs: number;
}

const floorDiv = (a: number, b: number): number => Math.floor(a / b);
const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

function set(v: Verdict, allowed: boolean, limit: number, remaining: number, resetMs: number, retryMs: number): Verdict {
  v.allowed = allowed;
  v.limit = limit;
  v.remaining = remaining;
  v.resetMs = resetMs;
  v.retryMs = retryMs;
  v.expiresMs = resetMs;
  return v;
}

// ---- fixed window ----

function fixedWindow(p: PolicyView, limit: number, s: CounterState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  let start = s.a;
  let count = s.b;
  if (now >= start + p.windowMs) {
    start = now;
    count = 0;
  }
  const reset = start + p.windowMs - now;
  if (cost > limit || count + cost > limit) {
    return set(v, false, limit, Math.max(0, limit - count), reset, cost > limit ? Infinity : reset);
  }
  if (commit) {
    count += cost;
    s.a = start;
    s.b = count;
  }
  return set(v, true, limit, limit - count, reset, 0);
}

// ---- sliding window ----

interface SlidingView {
  start: number;
  cur: number;
  prev: number;
  elapsed: number;
}

const view: SlidingView = { start: 0, cur: 0, prev: 0, elapsed: 0 };

function slidingView(p: PolicyView, s: CounterState, now: number): SlidingView {
  const w = p.windowMs;
  const aligned = now - (now % w);
  view.start = aligned;
  view.cur = 0;
  view.prev = 0;
  if (s.a >= aligned) {
    view.start = s.a;
    view.cur = s.b;
    view.prev = s.c;
  } else if (s.a === aligned - w) {
    view.prev = s.b;
  }
  view.elapsed = Math.max(0, now - view.start);
  return view;
}

function weightedPrev(p: PolicyView, v: SlidingView): number {
  const w = p.windowMs;
  if (v.prev === 0 || v.elapsed >= w) return 0;
  return ceilDiv(v.prev * (w - v.elapsed), w);
}

/** Until the state is that of a fresh key: this window's count weighs into the next one. */
function slidingExpiry(p: PolicyView, v: SlidingView, now: number): number {
  if (v.cur > 0) return v.start + 2 * p.windowMs - now;
  if (v.prev > 0 && v.elapsed < p.windowMs) return v.start + p.windowMs - now;
  return 0;
}

/** What a caller is told: until the current window ends (at most one window); 0 with nothing counted. */
function slidingReset(p: PolicyView, v: SlidingView, now: number): number {
  if (v.cur > 0 || (v.prev > 0 && v.elapsed < p.windowMs)) return v.start + p.windowMs - now;
  return 0;
}

function slidingRetry(p: PolicyView, limit: number, v: SlidingView, cost: number): number {
  const w = p.windowMs;
  if (cost > limit) return Infinity;
  const room = limit - v.cur - cost;
  if (room >= 0) return w - floorDiv(room * w, v.prev) - v.elapsed;
  return w - v.elapsed + w - floorDiv((limit - cost) * w, v.cur);
}

function slidingWindow(p: PolicyView, limit: number, s: CounterState, now: number, cost: number, commit: boolean, out: Verdict): Verdict {
  const v = slidingView(p, s, now);
  const used = v.cur + weightedPrev(p, v);
  if (cost > limit || used + cost > limit) {
    set(out, false, limit, Math.max(0, limit - used), slidingReset(p, v, now), slidingRetry(p, limit, v, cost));
  } else if (commit) {
    v.cur += cost;
    s.a = v.start;
    s.b = v.cur;
    s.c = v.prev;
    set(out, true, limit, limit - used - cost, slidingReset(p, v, now), 0);
  } else {
    set(out, true, limit, limit - used, slidingReset(p, v, now), 0);
  }
  out.expiresMs = slidingExpiry(p, v, now);
  return out;
}

// ---- token bucket ----

function refillTokens(p: PolicyView, capacity: number, s: CounterState, now: number): void {
  const t = p.rateTokens;
  const i = p.rateIntervalMs;
  if (s.a >= capacity) {
    s.a = capacity;
    s.c = 0;
  } else if (now > s.b) {
    const elapsed = now - s.b;
    const need = (capacity - s.a) * i - s.c;
    if (elapsed >= ceilDiv(need, t)) {
      s.a = capacity;
      s.c = 0;
    } else {
      const credit = s.c + elapsed * t;
      s.a += floorDiv(credit, i);
      s.c = credit % i;
    }
  }
  s.b = Math.max(s.b, now);
}

function tokensWait(p: PolicyView, s: CounterState, target: number): number {
  if (s.a >= target) return 0;
  return ceilDiv((target - s.a) * p.rateIntervalMs - s.c, p.rateTokens);
}

const scratch: CounterState = { a: 0, b: 0, c: 0 };

function tokenBucket(p: PolicyView, capacity: number, s: CounterState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  scratch.a = s.a;
  scratch.b = s.b;
  scratch.c = s.c;
  refillTokens(p, capacity, scratch, now);
  if (cost > capacity || cost > scratch.a) {
    return set(v, false, capacity, scratch.a, tokensWait(p, scratch, capacity), cost > capacity ? Infinity : tokensWait(p, scratch, cost));
  }
  if (!commit) return set(v, true, capacity, scratch.a, tokensWait(p, scratch, capacity), 0);
  scratch.a -= cost;
  s.a = scratch.a;
  s.b = scratch.b;
  s.c = scratch.c;
  return set(v, true, capacity, scratch.a, tokensWait(p, scratch, capacity), 0);
}

// ---- GCRA ----

function gcraBacklog(s: CounterState, now: number, t: number): number {
  if (s.a < now) return 0;
  return (s.a - now) * t + s.b;
}

function gcra(p: PolicyView, burst: number, s: CounterState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  const t = p.rateTokens;
  const i = p.rateIntervalMs;
  const backlog = gcraBacklog(s, now, t);
  const tolerance = burst * i;
  const remainingOf = (b: number) => Math.max(0, floorDiv(Math.max(0, tolerance - b), i));
  if (cost > burst || backlog > tolerance - cost * i) {
    return set(v, false, burst, remainingOf(backlog), ceilDiv(backlog, t), cost > burst ? Infinity : ceilDiv(backlog - (tolerance - cost * i), t));
  }
  if (!commit) return set(v, true, burst, remainingOf(backlog), ceilDiv(backlog, t), 0);
  const next = backlog + cost * i;
  s.a = now + floorDiv(next, t);
  s.b = next % t;
  return set(v, true, burst, remainingOf(next), ceilDiv(next, t), 0);
}

// ---- dispatch ----

export function freshState(p: PolicyView, limit: number, now: number, s: CounterState): CounterState {
  s.c = 0;
  switch (p.code) {
    case 1:
      s.a = now;
      s.b = 0;
      break;
    case 2:
      s.a = now - (now % p.windowMs);
      s.b = 0;
      break;
    case 3:
      s.a = limit;
      s.b = now;
      break;
    default:
      s.a = now;
      s.b = 0;
  }
  return s;
}

export function decide(p: PolicyView, limit: number, s: CounterState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  switch (p.code) {
    case 1:
      return fixedWindow(p, limit, s, now, cost, commit, v);
    case 2:
      return slidingWindow(p, limit, s, now, cost, commit, v);
    case 3:
      return tokenBucket(p, limit, s, now, cost, commit, v);
    default:
      return gcra(p, limit, s, now, cost, commit, v);
  }
}

/** Gives back up to `amount`; returns, in ms from now, when the state will be that of a fresh key (the slot's new expiry). */
export function refund(p: PolicyView, limit: number, s: CounterState, now: number, amount: number): number {
  amount = Math.min(amount, limit);
  switch (p.code) {
    case 1:
      if (now >= s.a + p.windowMs) return 0;
      s.b = Math.max(0, s.b - amount);
      return s.a + p.windowMs - now;
    case 2: {
      const v = slidingView(p, s, now);
      v.cur = Math.max(0, v.cur - amount);
      s.a = v.start;
      s.b = v.cur;
      s.c = v.prev;
      return slidingExpiry(p, v, now);
    }
    case 3:
      refillTokens(p, limit, s, now);
      if (amount >= limit - s.a) {
        s.a = limit;
        s.c = 0;
      } else {
        s.a += amount;
      }
      return tokensWait(p, s, limit);
    default: {
      const t = p.rateTokens;
      const back = amount * p.rateIntervalMs;
      const backlog = gcraBacklog(s, now, t);
      const next = back >= backlog ? 0 : backlog - back;
      s.a = now + floorDiv(next, t);
      s.b = next % t;
      return ceilDiv(next, t);
    }
  }
}
