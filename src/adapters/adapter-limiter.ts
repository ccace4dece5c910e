// What every store adapter takes to make its tables, and the one place that makes them.
import type { ManualClock } from '../clock.js';
import type { EngineChoice } from '../engine/select-engine.js';
import { Limiter } from '../limiter.js';
import type { Policy } from '../policies.js';
import type { SharedMemoryStore } from '../stores/shared-memory.js';

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
export function adapterLimiter(options: AdapterTableOptions, policy: Policy): Limiter {
  const { store, capacity, engine, clock } = options;
  return new Limiter({
    policy,
    ...(store !== undefined && { store }),
    ...(capacity !== undefined && { capacity }),
    ...(engine !== undefined && { engine }),
    ...(clock !== undefined && { clock }),
  });
}
