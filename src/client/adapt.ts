// Keeping the local limiter honest: follow what the upstream says is left, and settle a job's
// estimated cost against what it really cost.
import type { RateLimiter } from '../limiters/rate-limiter.js';
import type { UpstreamQuota } from './upstream-headers.js';

/**
 * When the upstream reports less left than the local limiter believes, spend the difference
 * locally; when it reports nothing left, block until its reset. Never gives capacity back on
 * the upstream's word: the local limit stays the ceiling.
 */
export async function adaptToUpstream(limiter: RateLimiter, key: string, quota: UpstreamQuota | undefined): Promise<void> {
  // A quota built by hand may hold fractions or NaN: whole units, or nothing, reach the limiter.
  if (quota?.remaining === undefined || Number.isNaN(quota.remaining)) return;
  const remaining = Math.floor(quota.remaining);
  if (remaining <= 0) {
    const resetMs = quota.resetMs === undefined ? NaN : Math.ceil(Math.min(quota.resetMs, Number.MAX_SAFE_INTEGER));
    if (resetMs > 0) await limiter.block(key, resetMs);
    return;
  }
  const local = await limiter.peek(key);
  if (local.remaining > remaining) await limiter.consume(key, local.remaining - remaining);
}

/**
 * Settles a cost charged as `estimated` once `actual` is known: refunds the surplus, or charges
 * the shortfall; a shortfall the limit cannot take now is paid by blocking the key for as long
 * as that capacity takes to come back.
 */
export async function correctCost(limiter: RateLimiter, key: string, estimated: number, actual: number): Promise<void> {
  if (!Number.isInteger(actual) || actual < 0 || actual === estimated) return;
  if (actual < estimated) {
    await limiter.refund(key, estimated - actual);
    return;
  }
  const d = await limiter.consume(key, actual - estimated);
  if (!d.allowed && Number.isFinite(d.retryAfterMs) && d.retryAfterMs > 0) await limiter.block(key, d.retryAfterMs);
}
