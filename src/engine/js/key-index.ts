// From key to slot: V8's own Map does the string hashing (a string caches its hash), split into
// many small Maps so that no single rehash, which copies a whole Map, ever pauses one call for long.

/** Keys per Map the split aims at: a Map of this size rehashes in well under a millisecond. */
const KEYS_PER_MAP = 16_384;
const MAX_MAPS = 256;

/**
 * A cheap spread of a key over the Maps from a few of its code units (its length, last, middle and
 * second-to-last): enough for keys that differ anywhere near their end or middle, as ids, IPs and
 * user names do. Keys that all collide only make one Map larger, never a wrong answer.
 */
function spread(key: string): number {
  const n = key.length;
  let h = Math.imul(n ^ key.charCodeAt(n - 1), 0x9e3779b1);
  h = Math.imul(h ^ key.charCodeAt(n >>> 1), 0x85ebca6b);
  h = Math.imul(h ^ (key.charCodeAt(n - 2) | 0), 0xc2b2ae35);
  return h ^ (h >>> 15);
}

export class KeyIndex {
  // Made as keys first reach them: a table that holds a few keys costs a Map or two, not 64.
  readonly #maps: (Map<string, number> | undefined)[];
  readonly #mask: number;

  /** For a table of `capacity` slots. */
  constructor(capacity: number) {
    let count = 1;
    while (count < MAX_MAPS && count * KEYS_PER_MAP < capacity) count *= 2;
    this.#maps = new Array<Map<string, number> | undefined>(count).fill(undefined);
    this.#mask = count - 1;
  }

  /** The Map that holds `key`, if anything does. */
  mapOf(key: string): Map<string, number> {
    const i = this.#mask === 0 ? 0 : spread(key) & this.#mask;
    let map = this.#maps[i];
    if (map === undefined) {
      map = new Map<string, number>();
      this.#maps[i] = map;
    }
    return map;
  }

  clear(): void {
    for (const map of this.#maps) map?.clear();
  }
}
