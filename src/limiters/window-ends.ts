// When each fixed window ends by Redis' clock, as replies showed, for the keys seen lately: a table
// of bounded size, so that it holds at any key count in bounded memory (a key displaces the one
// whose slot it hashes to). It starts small and doubles as keys fill it, up to its bound: a limiter
// made per tenant, or one per ttl in NestThrottlerStorage, costs a few KB until its keys need more.

import { fnv1a } from '../common/fnv.js';

/** Slots a table starts with. */
const FIRST_BITS = 8;

/** Window ends, by the limiter key, in up to `2^maxBits` slots. */
export class WindowEnds {
  /** Per slot: the limiter key whose end it holds (undefined: none). */
  #keys: (string | undefined)[];
  /** Per slot: that key's window end by Redis' clock (ms). */
  #ends: Float64Array;
  #mask: number;
  /** Slots holding a key. */
  #used = 0;
  readonly #maxSlots: number;

  constructor(maxBits: number) {
    this.#maxSlots = 1 << maxBits;
    const slots = Math.min(this.#maxSlots, 1 << FIRST_BITS);
    this.#keys = new Array<string | undefined>(slots).fill(undefined);
    this.#ends = new Float64Array(slots);
    this.#mask = slots - 1;
  }

  /** Slots now (for tests and stats). */
  get slots(): number {
    return this.#mask + 1;
  }

  /** FNV-1a over the key's code units, its high bits folded into the low ones the mask keeps. */
  static #hash(key: string): number {
    const h = fnv1a(key);
    return h ^ (h >>> 15);
  }

  /** The window end last seen for `key`; 0 when none is known. */
  get(key: string): number {
    const slot = WindowEnds.#hash(key) & this.#mask;
    return this.#keys[slot] === key ? (this.#ends[slot] as number) : 0;
  }

  set(key: string, end: number): void {
    let slot = WindowEnds.#hash(key) & this.#mask;
    if (this.#keys[slot] === undefined) {
      // Three quarters full and below the bound: double, so keys seen lately keep their ends.
      if (4 * (this.#used + 1) > 3 * (this.#mask + 1) && this.#mask + 1 < this.#maxSlots) {
        this.#grow();
        slot = WindowEnds.#hash(key) & this.#mask;
      }
      if (this.#keys[slot] === undefined) this.#used++;
    }
    this.#keys[slot] = key;
    this.#ends[slot] = end;
  }

  /** Forgets `key`'s end (a reset). */
  forget(key: string): void {
    const slot = WindowEnds.#hash(key) & this.#mask;
    if (this.#keys[slot] === key) {
      this.#keys[slot] = undefined;
      this.#used--;
    }
  }

  #grow(): void {
    const keys = this.#keys;
    const ends = this.#ends;
    const slots = 2 * (this.#mask + 1);
    this.#keys = new Array<string | undefined>(slots).fill(undefined);
    this.#ends = new Float64Array(slots);
    this.#mask = slots - 1;
    this.#used = 0;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (key === undefined) continue;
      const slot = WindowEnds.#hash(key) & this.#mask;
      if (this.#keys[slot] === undefined) this.#used++;
      this.#keys[slot] = key;
      this.#ends[slot] = ends[i] as number;
    }
  }
}
