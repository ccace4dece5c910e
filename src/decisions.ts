// Folding the decisions of several limits on one request into one Decision.
import type { Decision } from './decision.js';

/**
 * allowed only if every limit allowed; `limit` and `remaining` from the limit with the least
 * room left (the one that binds); `resetMs` the longest; when denied, `retryAfterMs` the longest
 * wait among the limits that denied (Infinity if any can never pass).
 */
export function combineDecisions(decisions: readonly Decision[]): Decision {
  let binding = decisions[0] as Decision;
  let allowed = true;
  let resetMs = 0;
  let retryAfterMs = 0;
  for (const d of decisions) {
    if (d.remaining < binding.remaining) binding = d;
    resetMs = Math.max(resetMs, d.resetMs);
    if (!d.allowed) {
      allowed = false;
      retryAfterMs = Math.max(retryAfterMs, d.retryAfterMs);
    }
  }
  return { allowed, limit: binding.limit, remaining: binding.remaining, resetMs, retryAfterMs };
}
