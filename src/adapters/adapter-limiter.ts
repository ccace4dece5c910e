// What every store adapter takes to make its tables, and the one place that makes them.
import type { ManualClock } from '../common/clock.js';
import type { EngineChoice } from '../engine/select-engine.js';
import { Limiter, QUIET_POLICY_MISMATCH } from '../limiters/limiter.js';
import { hitCounterPolicy, type Policy } from '../common/policies.js';
import type { SharedMemoryStore } from '../engine/shared-memory.js';

/** The keys of AdapterTableOptions, for the adapters' unknown-option checks. */
export const ADAPTER_TABLE_KEYS = ['store', 'capacity', 'engine', 'clock'] as const;

export interface AdapterTableOptions {
  /** `sharedMemory({ name, capacity })`: one count for every process that opens the name. */
  readonly store?: SharedMemoryStore;
  /** Keys held at most (default 1,000,000); ignored with a shared store (it has its own). */
  readonly capacity?: number;
  readonly engine?: EngineChoice;
  /** For tests: decide at this clock's time. */
  readonly clock?: ManualClock;
}

/** A Limiter for `policy` on the table the adapter's options describe. */
export function adapterLimiter(options: AdapterTableOptions, policy: Policy, otherWindowsMeant = false): Limiter {
  const { store, capacity, engine, clock } = options;
  return new Limiter({
    // A hit counter's limit follows its window, and each route or duration has its own keys.
    ...(otherWindowsMeant && { [QUIET_POLICY_MISMATCH]: true }),
    policy,
    ...(store !== undefined && { store }),
    ...(capacity !== undefined && { capacity }),
    ...(engine !== undefined && { engine }),
    ...(clock !== undefined && { clock }),
  });
}

/**
 * A table that counts hits in fixed windows of `windowMs` rather than limiting them (see
 * hitCounterPolicy): a key's hits so far in its window are `ceiling - remaining`. The stores whose
 * libraries compare counts themselves use it.
 */
export interface HitCounter {
  readonly limiter: Limiter;
  readonly ceiling: number;
}

export function hitCounter(options: AdapterTableOptions, windowMs: number): HitCounter {
  const policy = hitCounterPolicy(windowMs);
  return { limiter: adapterLimiter(options, policy, true), ceiling: policy.limit };
}
