// Types of scripts/migrate-slot.mjs for the TypeScript tests.
import type { Redis } from 'ioredis';

export interface SlotMigration {
  readonly moved: number;
  /** MIGRATE calls made. */
  readonly calls: number;
  readonly ms: number;
  /** Ports of the old and the new owner. */
  readonly from: number;
  readonly to: number;
}
export function migrateSlot(nodes: readonly { host: string; port: number }[], slot: number, to: number, options?: { batch?: number }): Promise<SlotMigration>;
export function ownerOf(client: Redis, slot: number): Promise<number>;
