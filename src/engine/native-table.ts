// A native table as a TableEngine. The addon makes its table functions once and each takes a
// table's handle first: a table costs one External, not a dozen N-API functions with a
// finalizer each (which left 20,000 short-lived limiters' worth of allocator arenas behind).
import {
  topKeyText,
  type NativeAddon,
  type NativeTableFunctions,
  type NativeTableHandle,
  type PolicyRecord,
  type RawTopKey,
  type TableConfig,
  type TableEngine,
  type TableStats,
} from './table-engine.js';

export class NativeTable implements TableEngine {
  readonly #self: object;
  readonly #f: NativeTableFunctions;
  readonly created: boolean;
  readonly creatorPolicy: PolicyRecord;

  constructor(addon: NativeAddon, config: TableConfig) {
    const opened: NativeTableHandle = addon.createTable(config);
    this.#self = opened.self;
    this.#f = addon.tableFunctions;
    this.created = opened.created;
    this.creatorPolicy = opened.creatorPolicy;
  }

  // An argument left out (not undefined) means its default to the addon, as on the hot path.
  consume(key: string, cost?: number, limit?: number): boolean {
    if (cost === undefined) return this.#f.consume(this.#self, key);
    return limit === undefined ? this.#f.consume(this.#self, key, cost) : this.#f.consume(this.#self, key, cost, limit);
  }

  tryConsume(key: string, cost?: number, limit?: number): boolean {
    if (cost === undefined) return this.#f.tryConsume(this.#self, key);
    return limit === undefined ? this.#f.tryConsume(this.#self, key, cost) : this.#f.tryConsume(this.#self, key, cost, limit);
  }

  peek(key: string, cost: number, limit: number): boolean {
    return this.#f.peek(this.#self, key, cost, limit);
  }

  refund(key: string, amount: number, limit: number): void {
    this.#f.refund(this.#self, key, amount, limit);
  }

  block(key: string, durationMs: number): boolean {
    return this.#f.block(this.#self, key, durationMs);
  }

  reset(key: string): boolean {
    return this.#f.reset(this.#self, key);
  }

  consumeMany(keys: readonly string[], cost: number, limit: number, out: Uint8Array): number {
    return this.#f.consumeMany(this.#self, keys, cost, limit, out);
  }

  sweep(): number {
    return this.#f.sweep(this.#self);
  }

  stats(): TableStats {
    return this.#f.stats(this.#self);
  }

  topKeys(): RawTopKey[] {
    return this.#f.topKeys(this.#self).map(topKeyText);
  }

  close(): void {
    this.#f.close(this.#self);
  }

  /** @internal Tables made with testHooks only (crash tests): takes the key's shard lock for ever. */
  holdShardLock(key: string): void {
    this.#f.holdShardLock(this.#self, key);
  }
}
