// Folding the decisions of several limits on one request into one Decision.
import type { Decision } from './decision.js';

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
  return { allowed, limit: b.limit, remaining: b.remaining, resetMs: b.resetMs, retryAfterMs: allowed ? 0 : b.retryAfterMs, policyIndex: binding };
}
