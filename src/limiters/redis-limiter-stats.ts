// What RedisLimiter counts itself, and its stats() put together from those, the transport's and the fallback's.
import type { ScriptRunner } from '../redis/script-runner.js';
import type { Fallback } from './fallback.js';
import type { RedisLimiterStats } from './rate-limiter.js';

/** Counted by the limiter; the Redis calls' own counts are the transport's. `timeouts`: consumes whose wait for a lease call ran out. */
export interface LimiterCounts {
  allowed: number;
  denied: number;
  decisions: number;
  denyCacheHits: number;
  shortCircuited: number;
  stateMismatches: number;
  leaseCalls: number;
  timeouts: number;
}

export const newLimiterCounts = (): LimiterCounts => ({ allowed: 0, denied: 0, decisions: 0, denyCacheHits: 0, shortCircuited: 0, stateMismatches: 0, leaseCalls: 0, timeouts: 0 });

export function redisLimiterStats(name: string, counts: LimiterCounts, runner: ScriptRunner, leasedDecisions: number, fallback: Fallback): RedisLimiterStats {
  const transitions = runner.transitions;
  return {
    name,
    store: 'redis',
    ...counts,
    ...runner.counts,
    timeouts: runner.counts.timeouts + counts.timeouts,
    leasedDecisions,
    failedOpen: fallback.failedOpen,
    failedClosed: fallback.failedClosed,
    fallbackDecisions: fallback.decisions,
    breakerOpened: transitions.opened,
    breakerHalfOpened: transitions.halfOpened,
    breakerClosed: transitions.closed,
    openNodes: runner.openNodes(),
  };
}
