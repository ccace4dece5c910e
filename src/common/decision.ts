// The result of asking a limiter about one request, and how several limits' results fold into one.

/**
 * What a limiter decided. Times are milliseconds from now.
 * - `limit`: the limit that applied (window limit, bucket capacity or GCRA burst).
 * - `remaining`: what the key may still spend now, counted after this request when it was
 *   consumed; rounded down.
 * - `resetMs`: until the key is back to a fresh key's full allowance; rounded up.
 * - `retryAfterMs`: 0 when allowed; when denied, the exact wait until a request of the same cost
 *   could pass if nothing else is spent; `Infinity` when it never can (cost above the limit).
 *
 * Several limits decided together (allOf, an array, a multi-policy RedisLimiter) give one
 * Decision whose fields all describe one limit, the one that binds: when denied, the limit that
 * denied with the longest wait; when allowed, the limit with the least left. `policyIndex` says
 * which (its position among the limits); it is absent for a single limit.
 */
export interface Decision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  readonly resetMs: number;
  readonly retryAfterMs: number;
  readonly policyIndex?: number;
}

/**
 * A per-call limit (a tier, e.g. a paid API key): a number replaces the limit of the first
 * policy; with several policies, an array gives one per policy (undefined keeps that policy's).
 */
export type LimitOverride = number | readonly (number | undefined)[];

/**
 * Decisions made without counting anything (a store down and onError 'allow' or 'deny'): their
 * limit, remaining and reset describe no count, so the HTTP middleware sends no quota headers for
 * them. A WeakSet, not a field: Decision's shape (and what callers compare it to) stays as is.
 */
const uncounted = new WeakSet<Decision>();

/** Marks `decision` as made without counting; returns it. */
export function uncountedDecision<D extends Decision>(decision: D): D {
  uncounted.add(decision);
  return decision;
}

/** Whether `decision` was made without counting (see uncountedDecision). */
export function isUncounted(decision: Decision): boolean {
  return uncounted.has(decision);
}

/**
 * allowed only if every limit allowed. Every other field comes from the limit that binds, so that
 * they describe one limit consistently (a client reading limit, remaining and reset together
 * must not mix a per-second limit with an hourly reset): when denied, the denying limit with the
 * longest wait (Infinity first); when allowed, the one with the least remaining (the first on a
 * tie). `policyIndex` names it.
 */
export function combineDecisions(decisions: readonly Decision[]): Decision {
  let binding = 0;
  let allowed = true;
  for (let i = 0; i < decisions.length; i++) {
    const d = decisions[i] as Decision;
    const best = decisions[binding] as Decision;
    if (!d.allowed) {
      if (allowed || d.retryAfterMs > best.retryAfterMs) binding = i;
      allowed = false;
    } else if (allowed && d.remaining < best.remaining) {
      binding = i;
    }
  }
  const b = decisions[binding] as Decision;
  const combined = { allowed, limit: b.limit, remaining: b.remaining, resetMs: b.resetMs, retryAfterMs: allowed ? 0 : b.retryAfterMs, policyIndex: binding };
  // The fields come from the binding decision: uncounted if it was.
  return uncounted.has(b) ? uncountedDecision(combined) : combined;
}
