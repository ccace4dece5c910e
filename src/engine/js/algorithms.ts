// The four algorithms in TypeScript, mirroring native/core/algorithms.cc line for line (only the
// dispatch differs: see DECIDERS). Every product stays below 2^50 (validated), so doubles compute
// them, and floor/ceil of their quotients, exactly. Each kind's state: counter-state.ts.
import { PolicyCode } from '../../common/policies.js';
import { TokenBucketState, type CounterState, type SlidingWindowState, type FixedWindowState, type GcraState } from './counter-state.js';

/** The policy as the algorithms read it (the native side's `Policy`, without the limit). */
export interface PolicyView {
  readonly code: PolicyCode;
  readonly windowMs: number;
  /** tokenBucket's refillTokens, leakyBucket's rateTokens. */
  readonly rateTokens: number;
  /** tokenBucket's refillIntervalMs, leakyBucket's rateIntervalMs. */
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

// ---- fixed window (public fixedWindow) ----

function fixedWindow(p: PolicyView, limit: number, s: FixedWindowState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  let windowStart = s.windowStart;
  let count = s.count;
  if (now >= windowStart + p.windowMs) {
    windowStart = now;
    count = 0;
  }
  const reset = windowStart + p.windowMs - now;
  if (cost > limit || count + cost > limit) {
    return set(v, false, limit, Math.max(0, limit - count), reset, cost > limit ? Infinity : reset);
  }
  if (commit) {
    count += cost;
    s.windowStart = windowStart;
    s.count = count;
  }
  return set(v, true, limit, limit - count, reset, 0);
}

// ---- sliding window (public slidingWindow) ----

/** The state as of now (its window the current one), and how far into that window now is. */
interface SlidingView {
  windowStart: number;
  count: number;
  previousCount: number;
  /** ms into the current window. */
  elapsed: number;
}

const view: SlidingView = { windowStart: 0, count: 0, previousCount: 0, elapsed: 0 };

function slidingView(p: PolicyView, s: SlidingWindowState, now: number): SlidingView {
  const w = p.windowMs;
  const aligned = now - (now % w);
  view.windowStart = aligned;
  view.count = 0;
  view.previousCount = 0;
  if (s.windowStart >= aligned) {
    view.windowStart = s.windowStart;
    view.count = s.count;
    view.previousCount = s.previousCount;
  } else if (s.windowStart === aligned - w) {
    view.previousCount = s.count;
  }
  view.elapsed = Math.max(0, now - view.windowStart);
  return view;
}

function weightedPrevious(p: PolicyView, v: SlidingView): number {
  const w = p.windowMs;
  if (v.previousCount === 0 || v.elapsed >= w) return 0;
  return ceilDiv(v.previousCount * (w - v.elapsed), w);
}

/** Until the state is that of a fresh key: this window's count weighs into the next one. */
function slidingExpiry(p: PolicyView, v: SlidingView, now: number): number {
  if (v.count > 0) return v.windowStart + 2 * p.windowMs - now;
  if (v.previousCount > 0 && v.elapsed < p.windowMs) return v.windowStart + p.windowMs - now;
  return 0;
}

/** What a caller is told: until the current window ends (at most one window); 0 with nothing counted. */
function slidingReset(p: PolicyView, v: SlidingView, now: number): number {
  if (v.count > 0 || (v.previousCount > 0 && v.elapsed < p.windowMs)) return v.windowStart + p.windowMs - now;
  return 0;
}

function slidingRetry(p: PolicyView, limit: number, v: SlidingView, cost: number): number {
  const w = p.windowMs;
  if (cost > limit) return Infinity;
  const room = limit - v.count - cost;
  if (room >= 0) return w - floorDiv(room * w, v.previousCount) - v.elapsed;
  return w - v.elapsed + w - floorDiv((limit - cost) * w, v.count);
}

function slidingWindow(p: PolicyView, limit: number, s: SlidingWindowState, now: number, cost: number, commit: boolean, out: Verdict): Verdict {
  const v = slidingView(p, s, now);
  const used = v.count + weightedPrevious(p, v);
  if (cost > limit || used + cost > limit) {
    set(out, false, limit, Math.max(0, limit - used), slidingReset(p, v, now), slidingRetry(p, limit, v, cost));
  } else if (commit) {
    v.count += cost;
    s.windowStart = v.windowStart;
    s.count = v.count;
    s.previousCount = v.previousCount;
    set(out, true, limit, limit - used - cost, slidingReset(p, v, now), 0);
  } else {
    set(out, true, limit, limit - used, slidingReset(p, v, now), 0);
  }
  out.expiresMs = slidingExpiry(p, v, now);
  return out;
}

// ---- token bucket (public tokenBucket) ----

/** Brings the bucket up to `now` (a full bucket drops its credit; refilledAt never goes back). */
function refill(p: PolicyView, capacity: number, s: TokenBucketState, now: number): void {
  const t = p.rateTokens;
  const i = p.rateIntervalMs;
  if (s.tokens >= capacity) {
    s.tokens = capacity;
    s.credit = 0;
  } else if (now > s.refilledAt) {
    const elapsed = now - s.refilledAt;
    const need = (capacity - s.tokens) * i - s.credit;
    if (elapsed >= ceilDiv(need, t)) {
      s.tokens = capacity;
      s.credit = 0;
    } else {
      const credit = s.credit + elapsed * t;
      s.tokens += floorDiv(credit, i);
      s.credit = credit % i;
    }
  }
  s.refilledAt = Math.max(s.refilledAt, now);
}

/** ms until the bucket holds `target` tokens. */
function tokensWait(p: PolicyView, s: TokenBucketState, target: number): number {
  if (s.tokens >= target) return 0;
  return ceilDiv((target - s.tokens) * p.rateIntervalMs - s.credit, p.rateTokens);
}

const bucketView = new TokenBucketState();

function tokenBucket(p: PolicyView, capacity: number, s: TokenBucketState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  const b = bucketView;
  b.tokens = s.tokens;
  b.refilledAt = s.refilledAt;
  b.credit = s.credit;
  refill(p, capacity, b, now);
  if (cost > capacity || cost > b.tokens) {
    return set(v, false, capacity, b.tokens, tokensWait(p, b, capacity), cost > capacity ? Infinity : tokensWait(p, b, cost));
  }
  if (!commit) return set(v, true, capacity, b.tokens, tokensWait(p, b, capacity), 0);
  b.tokens -= cost;
  s.tokens = b.tokens;
  s.refilledAt = b.refilledAt;
  s.credit = b.credit;
  return set(v, true, capacity, b.tokens, tokensWait(p, b, capacity), 0);
}

// ---- GCRA (public leakyBucket) ----

/** How far the theoretical arrival time is ahead of now, in 1/rateTokens ms (0 when behind). */
function gcraBacklog(s: GcraState, now: number, t: number): number {
  if (s.tat < now) return 0;
  return (s.tat - now) * t + s.tatFraction;
}

function gcra(p: PolicyView, burst: number, s: GcraState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  const t = p.rateTokens;
  const i = p.rateIntervalMs;
  const backlog = gcraBacklog(s, now, t);
  const tolerance = burst * i; // tau: burst emission intervals
  const remainingOf = (b: number) => Math.max(0, floorDiv(Math.max(0, tolerance - b), i));
  if (cost > burst || backlog > tolerance - cost * i) {
    return set(v, false, burst, remainingOf(backlog), ceilDiv(backlog, t), cost > burst ? Infinity : ceilDiv(backlog - (tolerance - cost * i), t));
  }
  if (!commit) return set(v, true, burst, remainingOf(backlog), ceilDiv(backlog, t), 0);
  const next = backlog + cost * i;
  s.tat = now + floorDiv(next, t);
  s.tatFraction = next % t;
  return set(v, true, burst, remainingOf(next), ceilDiv(next, t), 0);
}

// ---- dispatch: `p.code` and `s.kind` are the table's policy code ----

type Decide<S extends CounterState> = (p: PolicyView, limit: number, s: S, now: number, cost: number, commit: boolean, v: Verdict) => Verdict;

// Each kind's decision by its code: one indexed load picks it, where a switch would compare the
// code with each imported PolicyCode label in turn on every call.
const DECIDERS: { readonly [C in PolicyCode]: Decide<Extract<CounterState, { readonly kind: C }>> } = {
  [PolicyCode.FixedWindow]: fixedWindow,
  [PolicyCode.SlidingWindow]: slidingWindow,
  [PolicyCode.TokenBucket]: tokenBucket,
  [PolicyCode.Gcra]: gcra,
};

/** Sets `s` to the state of a key never seen (or expired) at `now`. */
export function freshState(p: PolicyView, limit: number, now: number, s: CounterState): CounterState {
  switch (s.kind) {
    case PolicyCode.FixedWindow:
      s.windowStart = now;
      s.count = 0;
      break;
    case PolicyCode.SlidingWindow:
      s.windowStart = now - (now % p.windowMs);
      s.count = 0;
      s.previousCount = 0;
      break;
    case PolicyCode.TokenBucket:
      s.tokens = limit;
      s.refilledAt = now;
      s.credit = 0;
      break;
    case PolicyCode.Gcra:
      s.tat = now;
      s.tatFraction = 0;
  }
  return s;
}

/** Decides a request of `cost`; commits it into `s` when allowed and `commit` is set (a denial never changes `s`). */
export function decide(p: PolicyView, limit: number, s: CounterState, now: number, cost: number, commit: boolean, v: Verdict): Verdict {
  // `s` is of the kind p.code names (a table makes both from one code).
  return (DECIDERS[p.code] as Decide<CounterState>)(p, limit, s, now, cost, commit, v);
}

/** Gives back up to `amount`; returns, in ms from now, when the state will be that of a fresh key (the slot's new expiry). */
export function refund(p: PolicyView, limit: number, s: CounterState, now: number, amount: number): number {
  amount = Math.min(amount, limit);
  switch (s.kind) {
    case PolicyCode.FixedWindow:
      if (now >= s.windowStart + p.windowMs) return 0;
      s.count = Math.max(0, s.count - amount);
      return s.windowStart + p.windowMs - now;
    case PolicyCode.SlidingWindow: {
      const v = slidingView(p, s, now);
      v.count = Math.max(0, v.count - amount);
      s.windowStart = v.windowStart;
      s.count = v.count;
      s.previousCount = v.previousCount;
      return slidingExpiry(p, v, now);
    }
    case PolicyCode.TokenBucket:
      refill(p, limit, s, now);
      if (amount >= limit - s.tokens) {
        s.tokens = limit;
        s.credit = 0;
      } else {
        s.tokens += amount;
      }
      return tokensWait(p, s, limit);
    case PolicyCode.Gcra: {
      const t = p.rateTokens;
      const back = amount * p.rateIntervalMs;
      const backlog = gcraBacklog(s, now, t);
      const next = back >= backlog ? 0 : backlog - back;
      s.tat = now + floorDiv(next, t);
      s.tatFraction = next % t;
      return ceilDiv(next, t);
    }
  }
}
