// Types of scripts/redis-scenarios.mjs for the TypeScript tests.
import type { Cluster, Redis } from 'ioredis';
import type { fixedWindow, Limiter, RedisLimiter, RedisLimiterEvent, RedisLimiterStats } from '../src/index.js';
import type { groupedKeyBase } from '../src/redis/redis-keys.js';
import type { keySlot } from '../src/redis/key-slot.js';
import type { DelayProxy } from './delay-proxy.mjs';
import type { LocalCluster } from './local-redis.mjs';
import type { SlotMigration } from './migrate-slot.mjs';
import type { WindowAuditReport } from './window-audit.mjs';

/** The library under test: src/ in the tests, dist/ in the bench. */
export interface Tollgate {
  readonly RedisLimiter: typeof RedisLimiter;
  readonly fixedWindow: typeof fixedWindow;
}
export interface TollgateWithKeys extends Tollgate {
  readonly Limiter: typeof Limiter;
  readonly keySlot: typeof keySlot;
  readonly groupedKeyBase: typeof groupedKeyBase;
}

export interface LeasesBehindSlowReplies {
  readonly limit: number;
  readonly report: WindowAuditReport;
  /** Decisions the leasing processes took from leases. */
  readonly leased: number;
  /** The direct process' calls Redis denied (a window filled). */
  readonly deniedByRedis: number;
}
export function leasesBehindSlowReplies(
  tollgate: Tollgate,
  options: { proxy: DelayProxy; serverPort: number; connect: (port: number) => Redis; prefix: string; leases?: boolean },
): Promise<LeasesBehindSlowReplies>;

export interface HotKeyBehindSlowReplies {
  readonly made: number;
  /** ms from call to settling, of each call that resolved. */
  readonly waits: readonly number[];
  readonly rejected: number;
  /** Calls still pending a second after the traffic stopped. */
  readonly pending: number;
  readonly stats: RedisLimiterStats;
}
export function hotKeyBehindSlowReplies(
  tollgate: Tollgate,
  options: { proxy: DelayProxy; redis: Redis; prefix: string; leases: boolean; perSecond: number; ms: number; timeoutMs: number },
): Promise<HotKeyBehindSlowReplies>;

export const RESHARD: { readonly name: string; readonly prefix: string; readonly groups: number };
export function reshardKeys(tollgate: Pick<TollgateWithKeys, 'keySlot' | 'groupedKeyBase'>): {
  /** A limiter key's Redis key, without the policy's suffix. */
  base(key: string): string;
  slotOf(key: string): number;
  inSlot(slot: number, stem: string, count: number): string[];
};

export interface MigrationUnderTraffic {
  /** Open: the caller closes it. */
  readonly limiter: RedisLimiter;
  readonly slot: number;
  /** The traffic's keys in the migrated group. */
  readonly inGroup: ReadonlySet<string>;
  readonly migration: SlotMigration;
  readonly decisions: number;
  readonly groupDecisions: number;
  /** The limiter's stats as the traffic started, and as it stopped. */
  readonly before: RedisLimiterStats;
  readonly after: RedisLimiterStats;
  /** The key of every call onError decided (populating included). */
  readonly fellBack: readonly string[];
  readonly events: readonly RedisLimiterEvent[];
}
export function migrationUnderTraffic(
  tollgate: TollgateWithKeys,
  options: { cluster: LocalCluster; client: Cluster; populated: number; keysPerGroup: number; lanes?: number; timeoutMs?: number },
): Promise<MigrationUnderTraffic>;
