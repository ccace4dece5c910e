// The TS engine's heavy hitters: one Space-Saving summary (the native engine keeps one per shard),
// halving every period, as in native/core/top_keys.cc.
import type { RawTopKey } from '../table-engine.js';

export class TopKeysSummary {
  readonly #size: number;
  readonly #periodMs: number;
  readonly #entries = new Map<string, { count: number; denied: number; error: number }>();
  #epoch = -1;

  constructor(size: number, periodMs: number) {
    this.#size = size;
    this.#periodMs = periodMs;
  }

  #decay(now: number): void {
    if (this.#epoch < 0) this.#epoch = now;
    if (now - this.#epoch < this.#periodMs) return;
    const halvings = Math.min(63, Math.floor((now - this.#epoch) / this.#periodMs));
    const factor = 2 ** halvings;
    for (const [key, e] of this.#entries) {
      e.count = Math.floor(e.count / factor);
      e.denied = Math.floor(e.denied / factor);
      e.error = Math.floor(e.error / factor);
      if (e.count === 0) this.#entries.delete(key);
    }
    this.#epoch += halvings * this.#periodMs;
  }

  record(key: string, denied: boolean, now: number): void {
    this.#decay(now);
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      entry.count++;
      if (denied) entry.denied++;
      return;
    }
    let inherited = 0;
    if (this.#entries.size >= this.#size) {
      let smallestKey = '';
      let smallest = Infinity;
      for (const [k, e] of this.#entries) {
        if (e.count < smallest) {
          smallest = e.count;
          smallestKey = k;
        }
      }
      this.#entries.delete(smallestKey);
      inherited = smallest;
    }
    this.#entries.set(key, { count: inherited + 1, denied: denied ? 1 : 0, error: inherited });
  }

  collect(now: number): RawTopKey[] {
    this.#decay(now);
    return [...this.#entries].map(([key, e]) => ({ key, length: key.length, count: e.count, denied: e.denied, error: e.error }));
  }
}
