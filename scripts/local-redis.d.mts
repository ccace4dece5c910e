// Types of scripts/local-redis.mjs for the TypeScript tests.
import type { ChildProcess } from 'node:child_process';

export interface LocalRedis {
  readonly port: number;
  readonly host: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}
export interface LocalCluster {
  readonly nodes: readonly { host: string; port: number }[];
  /** The node processes, in the order of `nodes`. */
  readonly servers: readonly LocalRedis[];
  stop(): Promise<void>;
}
export function redisAvailable(): { available: boolean; reason?: string; version?: string };
export function freePort(): Promise<number>;
export function startRedis(extraArgs?: string[], port?: number, options?: { clusterBus?: boolean }): Promise<LocalRedis>;
export function startCluster(options?: { replicas?: number; nodeTimeoutMs?: number }): Promise<LocalCluster>;
