// What every store adapter takes to make its tables, and the one place that makes them.
import type { ManualClock } from '../common/clock.js';
import type { EngineChoice } from '../engine/select-engine.js';
import { Limiter, QUIET_POLICY_MISMATCH } from '../limiters/limiter.js';
import { hitCounterPolicy, type Policy } from '../common/policies.js';
import type { SharedMemoryStore } from '../engine/shared-memory.js';
import { checkKnownKeys } from '../common/option-keys.js';

/** The keys of AdapterTableOptions, for the adapters' unknown-option checks. */
export const ADAPTER_TABLE_KEYS = ['store', 'capacity', 'engine', 'clock'] as const;

/**
 * Why a table option means nothing to a store that counts on Redis, said in the error so the fix is
 * plain. `client`: the option that gives the Redis client (`redis`, or rate-limiter-flexible's `storeClient`).
 */
const NOT_WITH_REDIS: Readonly<Record<(typeof ADAPTER_TABLE_KEYS)[number], (client: string) => string>> = {
  store: (client) => `store and ${client} are two places to count: a sharedMemory store is one host's, ${client} is every host's; give one of them`,
  capacity: (client) => `capacity bounds an in-process table, and with ${client} the counts live on Redis (bounded by its maxmemory); leave capacity out`,
  engine: (client) => `engine picks the in-process table, and with ${client} none is made; leave engine out`,
  clock: () => "windows on Redis run on Redis' own clock; leave clock out",
};

const refusal = (where: string, message: string) => Object.assign(new TypeError(`${where}: ${message}`), { code: 'TOLLGATE_INVALID_ARGUMENT' as const });

/**
 * Refuses, with the reason, a table option given to a store that counts on Redis (through the
 * option `client`): nothing would use it. TypeError with code TOLLGATE_INVALID_ARGUMENT.
 */
export function refuseTableOptions(o: Record<string, unknown>, client: string, where: string): void {
  for (const key of ADAPTER_TABLE_KEYS) if (o[key] !== undefined) throw refusal(where, `${key} cannot be given with ${client}: ${NOT_WITH_REDIS[key](client)}`);
}

/**
 * Checks a store adapter's options: with `redis`, against `redisKeys` (and a table option is
 * refused with the reason); without, against the table options (and a Redis-only one is refused
 * as such). Returns whether the store counts on Redis. TypeErrors with code TOLLGATE_INVALID_ARGUMENT.
 */
export function checkStoreOptions(o: Record<string, unknown>, redisKeys: readonly string[], where: string): boolean {
  if (o.redis !== undefined) {
    refuseTableOptions(o, 'redis', where);
    checkKnownKeys(o, redisKeys, where);
    return true;
  }
  for (const key of redisKeys) {
    if (key !== 'redis' && o[key] !== undefined) throw refusal(where, `${key} applies to counting on Redis: give redis (a Redis client) too, or leave ${key} out`);
  }
  checkKnownKeys(o, ADAPTER_TABLE_KEYS, where);
  return false;
}

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
